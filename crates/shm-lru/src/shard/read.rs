//! The lock-free reader: finds a key through the index and validates what it copied with the
//! sequence number of the bucket that indexes it, as a seqlock reader does.
//!
//! A writer makes a bucket's sequence number odd before it changes the bucket's entries or the
//! key, lengths, flags or data of a slot indexed there, and even again after (`index.rs`). A
//! reader loads the number (acquire), reads with word-sized relaxed atomic loads, issues an
//! acquire fence and loads the number again: if it is the same even number, nothing it read was
//! being written meanwhile, so the entry it copied was whole and indexed under that key at that
//! moment. Entries never move while their key stays, so a key present throughout a read is
//! always found. An odd number, a changed one, or a slot mid-write makes the reader report
//! [`Probe::Unsure`]; the caller retries a few times, then takes the lock (which also repairs
//! the shard if a writer died with a bucket open). Every id read is range-checked and every loop
//! is bounded, so a reader never faults or spins, whatever bytes the region holds.

use super::slots::{Shard, SlotMeta};
use super::Hashed;
use crate::layout::{bucket, BUCKET_ENTRIES, F_WRITING};
use std::sync::atomic::{fence, Ordering};

/// What an optimistic lookup found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Probe {
    /// The key is in slot `id`, whose fields were `meta`, indexed in `bucket` whose sequence
    /// number was `seq`: copy what is needed, then [`Shard::still`] must confirm it.
    Found {
        bucket: u32,
        seq: u32,
        id: u32,
        meta: SlotMeta,
    },
    /// The key was not indexed at some instant during the lookup.
    Absent,
    /// A writer was busy where the key could be: try again, or take the lock.
    Unsure,
}

impl Shard<'_> {
    /// Looks `k` up without the lock.
    #[inline(always)]
    pub(crate) fn probe(&self, k: &Hashed<'_>) -> Probe {
        let home = self.home(k.h);
        let tag = self.tag_of(k.h);
        let hp = self.bucket_at(home);
        let reach = (self.bucket_word(hp, bucket::SPILL).load(Ordering::Relaxed) >> 16).min(self.max_reach());
        for dist in 0..=reach {
            let b = if dist == 0 { home } else { self.after(home, dist) };
            let bp = if dist == 0 { hp } else { self.bucket_at(b) };
            let seq_word = self.bucket_word(bp, bucket::SEQ);
            let seq = seq_word.load(Ordering::Acquire);
            if seq & 1 != 0 {
                return Probe::Unsure;
            }
            let mut m = self.matches_at(bp, tag);
            while m != 0 {
                let pos = m.trailing_zeros() as usize;
                m &= m - 1;
                let e = self.bucket_word(bp, bucket::ENTRIES + 4 * (pos % BUCKET_ENTRIES));
                let id = self.entry_id(e.load(Ordering::Relaxed));
                if id == 0 {
                    continue;
                }
                let meta = self.meta(id);
                if meta.key != k.word {
                    continue;
                }
                if meta.flags & F_WRITING != 0 {
                    return Probe::Unsure;
                }
                if self.holds(id, &meta, &k.key, k.word) {
                    return Probe::Found {
                        bucket: b,
                        seq,
                        id,
                        meta,
                    };
                }
            }
            fence(Ordering::Acquire);
            if seq_word.load(Ordering::Relaxed) != seq {
                return Probe::Unsure;
            }
        }
        Probe::Absent
    }

    /// Whether bucket `b` still has sequence number `seq`: nothing read since `seq` was loaded
    /// was being changed.
    #[inline]
    pub(crate) fn still(&self, b: u32, seq: u32) -> bool {
        fence(Ordering::Acquire);
        self.seq(b).load(Ordering::Relaxed) == seq
    }

    /// Copies `dst.len()` value bytes of a found entry (the caller bounds the length by the
    /// record size).
    #[inline]
    pub(crate) fn copy_value(&self, id: u32, meta: &SlotMeta, dst: &mut [u8]) {
        self.read_data(id, meta.klen as usize, dst);
    }
}

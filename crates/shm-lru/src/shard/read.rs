//! The lock-free reader: finds a key through the index and validates what it copied with the
//! sequence number of the bucket that indexes it and the slot's own, as a seqlock reader does.
//!
//! A writer makes a bucket's sequence number odd before it changes the bucket's entries or the
//! key, lengths, flags or data of a slot indexed there, and even again after (`index.rs`). A
//! rewrite of a value in place leaves the bucket alone: it sets the slot's `writing` flag, and
//! clears it with the slot's rewrite generation moved on (and opens the bucket's window too
//! when that generation wraps to 0). A reader loads the bucket's number (acquire), then the
//! slot's `VLEN_FLAGS` word (acquire), reads with word-sized relaxed atomic loads, issues an
//! acquire fence and loads both again: if neither changed, nothing it read was being written
//! meanwhile, so the entry it copied was whole and indexed under that key at that moment. (The
//! same generation after a rewrite means 16 of them, one of which moved the bucket's number.)
//! Entries never move while their key stays, so a key present throughout a read is always
//! found. An odd number, a changed one, or a slot of the key mid-write makes the reader report
//! [`Probe::Unsure`]; the caller retries a few times, then takes the lock (which also repairs
//! the shard if a writer died mid-write). Every id read is range-checked and every loop is
//! bounded, so a reader never faults or spins, whatever bytes the region holds.

use super::slots::{Shard, SlotMeta};
use super::Hashed;
use crate::layout::{bucket, BUCKET_SIZE, F_WRITING};
use std::sync::atomic::{fence, Ordering};

/// A key found by a lock-free lookup: where, and the slot's fields as read then. Copy what is
/// needed, then [`Shard::still`] must confirm it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    /// The slot's id in its shard.
    pub id: u32,
    /// The slot's fields.
    pub meta: SlotMeta,
    /// The bucket that indexes the slot, and its sequence number when the lookup read it.
    bucket: *mut u8,
    seq: u32,
    /// The slot's address.
    slot: *mut u8,
}

/// A bucket and its sequence number when a lock-free lookup read it: enough to tell later,
/// under the lock, that nothing in the bucket changed since (see [`Shard::unchanged`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    bucket: *mut u8,
    seq: u32,
}

impl Hit {
    /// The bucket and sequence number this hit was read under.
    #[inline(always)]
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            bucket: self.bucket,
            seq: self.seq,
        }
    }
}

/// What an optimistic lookup found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Probe {
    /// The key is indexed (see [`Hit`]).
    Found(Hit),
    /// The key was not indexed at some instant during the lookup.
    Absent,
    /// A writer was busy where the key could be, or (for [`Shard::probe_home`]) the key may
    /// be in a bucket after its home: try again, or take the lock.
    Unsure,
}

impl Shard<'_> {
    /// Looks `k` up without the lock: its home bucket, then the buckets after it where a key
    /// homed there may have been placed.
    #[inline]
    pub(crate) fn probe(&self, k: &Hashed<'_>) -> Probe {
        let (p, reach) = self.probe_home_bucket(self.home_bucket(k.h), k);
        match p {
            Probe::Absent if reach > 0 => self.probe_spilled(self.home(k.h), reach, k),
            p => p,
        }
    }

    /// Like [`probe`](Self::probe) but only the home bucket and the one after it, whose
    /// address the caller computed (it must be [`home_bucket`](Self::home_bucket) of the key's
    /// hash): [`Probe::Unsure`] if the key was in neither and may be further on. What a read
    /// tries first, inline: a key that did not fit in its home bucket is mostly in the next
    /// one.
    #[inline(always)]
    pub(crate) fn probe_home(&self, bp: *mut u8, k: &Hashed<'_>) -> Probe {
        debug_assert_eq!(bp, self.home_bucket(k.h));
        let reach = match self.probe_home_bucket(bp, k) {
            (Probe::Absent, reach) if reach > 0 => reach,
            (p, _) => return p,
        };
        match self.probe_one(self.next_bucket(bp), k) {
            Probe::Absent if reach > 1 => Probe::Unsure,
            p => p,
        }
    }

    /// The bucket after the one at `bp`, wrapping around the shard.
    #[inline(always)]
    fn next_bucket(&self, bp: *mut u8) -> *mut u8 {
        let next = bp.wrapping_add(BUCKET_SIZE as usize);
        if next == self.bucket_end() {
            self.bucket_at(0)
        } else {
            next
        }
    }

    /// Looks for `k` in the bucket at `bp` alone (not as its home): found, absent, or a writer
    /// busy there.
    #[inline(always)]
    fn probe_one(&self, bp: *mut u8, k: &Hashed<'_>) -> Probe {
        self.probe_at::<false>(bp, k).0
    }

    /// The home bucket's answer, and how far after it keys homed there may be.
    #[inline(always)]
    fn probe_home_bucket(&self, bp: *mut u8, k: &Hashed<'_>) -> (Probe, u32) {
        self.probe_at::<true>(bp, k)
    }

    /// Looks for `k` in the bucket at `bp`, validated by the bucket's sequence number; with
    /// `REACH`, also reads (under the same validation) how far after it keys homed there may
    /// be, reported with [`Probe::Absent`] (0 otherwise).
    #[inline(always)]
    fn probe_at<const REACH: bool>(&self, bp: *mut u8, k: &Hashed<'_>) -> (Probe, u32) {
        let seq_word = self.bucket_word(bp, bucket::SEQ);
        let seq = seq_word.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return (Probe::Unsure, 0);
        }
        if let Some(p) = self.probe_bucket(bp, seq, self.tag_of(k.h), k) {
            return (p, 0);
        }
        let reach = if REACH {
            (self.bucket_word(bp, bucket::SPILL).load(Ordering::Relaxed) >> 16).min(self.max_reach())
        } else {
            0
        };
        fence(Ordering::Acquire);
        if seq_word.load(Ordering::Relaxed) != seq {
            return (Probe::Unsure, 0);
        }
        (Probe::Absent, reach)
    }

    /// The buckets after `home`, up to `reach` away, where a key homed there may have been
    /// placed.
    #[inline(never)]
    fn probe_spilled(&self, home: u32, reach: u32, k: &Hashed<'_>) -> Probe {
        for dist in 1..=reach {
            match self.probe_one(self.bucket_at(self.after(home, dist)), k) {
                Probe::Absent => {}
                p => return p,
            }
        }
        Probe::Absent
    }

    /// Looks for `k` among the entries of the bucket at `bp` (sequence number `seq`) whose tag
    /// is `tag`: `None` if it is not there.
    #[inline(always)]
    fn probe_bucket(&self, bp: *mut u8, seq: u32, tag: u32, k: &Hashed<'_>) -> Option<Probe> {
        let mut m = self.matches_at(bp, tag);
        while m != 0 {
            let pos = m.trailing_zeros() as usize;
            m &= m - 1;
            let id = self.entry_id_at(bp, pos);
            if id == 0 {
                continue;
            }
            let slot = self.slot_at(id);
            let meta = self.meta_at(slot);
            if meta.key != k.word {
                continue;
            }
            // A slot of the key mid-write: a rewrite in place (whose bucket stays even), or a
            // writer that died in one. The lock settles it.
            if meta.flags & F_WRITING != 0 {
                return Some(Probe::Unsure);
            }
            if self.holds(id, &meta, &k.key) {
                return Some(Probe::Found(Hit {
                    id,
                    meta,
                    bucket: bp,
                    seq,
                    slot,
                }));
            }
        }
        None
    }

    /// A hint before a write of `k` (whose home bucket is at `bp`), without the lock: asks for
    /// the lines of the slot its home bucket names under its tag (up to 256 bytes of it) in a
    /// state this core can write, so that an update finds them here once it holds the lock
    /// instead of fetching them, one after the other, while it holds it. Reads the bucket's
    /// entries only; a wrong guess costs a few prefetches.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self, bp: *mut u8, k: &Hashed<'_>) {
        let m = self.matches_at(bp, self.tag_of(k.h));
        if m == 0 {
            return;
        }
        let id = self.entry_id_at(bp, m.trailing_zeros() as usize);
        if id == 0 {
            return;
        }
        let slot = self.slot_at(id);
        let span = self.stride().min(256);
        let mut off = 0;
        while off < span {
            crate::sys::prefetch_write(slot.wrapping_add(off));
            off += 64;
        }
        crate::sys::prefetch_write(slot.wrapping_add(span - 1));
    }

    /// Whether nothing read since the lookup that found `hit` was being changed meanwhile: the
    /// slot's `VLEN_FLAGS` word (its rewrite generation) and the bucket's number are as they
    /// were.
    #[inline(always)]
    pub(crate) fn still(&self, hit: &Hit) -> bool {
        fence(Ordering::Acquire);
        self.vf_at(hit.slot) == hit.meta.vf_word() && self.unchanged(hit.stamp())
    }

    /// Whether the bucket of `st` still has the sequence number it had then. Under the lock,
    /// `true` means no writer changed the bucket, or a slot it indexes, since; a lock-free
    /// reader issues an acquire fence first (see [`still`](Self::still)).
    #[inline(always)]
    pub(crate) fn unchanged(&self, st: Stamp) -> bool {
        self.bucket_word(st.bucket, bucket::SEQ).load(Ordering::Relaxed) == st.seq
    }

    /// Copies `dst.len()` value bytes of a found entry (the caller bounds the length by the
    /// record size).
    #[inline(always)]
    pub(crate) fn copy_value_of(&self, hit: &Hit, dst: &mut [u8]) {
        if hit.meta.klen == 0 {
            // Integer keys: the value starts the data area, word-aligned.
            self.read_words_at(hit.slot, dst);
        } else {
            self.read_data(hit.id, hit.meta.klen as usize, dst);
        }
    }

    /// [`note_use`](Self::note_use) for a found entry.
    #[inline(always)]
    pub(crate) fn note_hit(&self, hit: &Hit, now: u64) -> bool {
        self.note_use(hit.id, self.use_word_at(hit.slot), now)
    }

    /// Copies `dst.len()` value bytes of slot `id`, whose fields are `meta` (lock held, or
    /// validated by the caller).
    #[inline]
    pub(crate) fn copy_value(&self, id: u32, meta: &SlotMeta, dst: &mut [u8]) {
        self.read_data(id, meta.klen as usize, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::slots::Shard;
    use super::super::Hashed;
    use super::Probe;
    use crate::key::KeyRef;
    use crate::layout::BUCKET_SIZE;
    use crate::options::{SetMode, ValueKind};

    #[test]
    fn a_read_overlapping_any_number_of_rewrites_in_place_is_not_taken_as_whole() {
        // One shard of 16 slots of 64-byte records over 4 buckets, in zeroed memory: header
        // (256 bytes), buckets (64-aligned), slots, the undo record and the count of live
        // entries.
        let (cap, nb, stride) = (16u32, 4u32, 104usize);
        let mut mem = vec![0u64; (256 + 64 + nb as usize * 64 + (cap as usize + 1) * stride + 8) / 8];
        let base = mem.as_mut_ptr().cast::<u8>();
        let hdr = base;
        let buckets = base.wrapping_add(256 + (64 - (base as usize + 256) % 64) % 64);
        let slots = buckets.wrapping_add(nb as usize * 64);
        let journal = slots.wrapping_add(cap as usize * stride);
        let live = journal.wrapping_add(stride);
        // SAFETY: every part lies inside `mem`, aligned as the format requires, which outlives
        // the view; this thread alone uses it.
        let s = unsafe {
            Shard::new(
                hdr, buckets, slots, journal, cap, nb, stride, 64, live, cap as u64,
            )
        };
        let k = Hashed::new(KeyRef::Hash(7));
        let set = |fill: u8, now: u64| {
            s.set(
                &k,
                &[fill; 64],
                ValueKind::Bytes,
                0,
                SetMode::Upsert,
                false,
                now,
                false,
            )
        };
        assert!(set(0, 1_000).unwrap().inserted);
        // A read that took its first look, then `n` rewrites of the value before its second: the
        // slot's generation tells 1 to 15 of them, the bucket's number every 16th.
        let (mut now, mut last) = (1_000, 0u8);
        for n in 0..50u64 {
            let Probe::Found(hit) = s.probe(&k) else {
                panic!("key 7 not found");
            };
            for _ in 0..n {
                now += 1;
                assert!(s
                    .update_in_place(&k, &[n as u8; 64], ValueKind::Bytes, None, now)
                    .is_some());
            }
            assert_eq!(s.still(&hit), n == 0, "a read across {n} rewrites");
            if n > 0 {
                last = n as u8;
            }
            let mut v = [0u8; 64];
            let Probe::Found(hit) = s.probe(&k) else {
                panic!("key 7 not found");
            };
            s.copy_value_of(&hit, &mut v);
            assert!(s.still(&hit));
            assert_eq!(v, [last; 64], "the value after {n} rewrites");
        }
    }

    #[test]
    fn the_bucket_after_the_last_is_the_first() {
        // Four buckets' worth of bytes; the view only computes addresses here.
        let mut mem = vec![0u64; 4 * BUCKET_SIZE as usize / 8 + 64];
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: the view is used only to compute bucket addresses, never to access memory.
        let s = unsafe { Shard::new(base, base, base, base, 8, 4, 64, 16, base, 8) };
        for b in 0..4u32 {
            assert_eq!(
                s.next_bucket(s.bucket_at(b)),
                s.bucket_at((b + 1) % 4),
                "after {b}"
            );
        }
    }
}

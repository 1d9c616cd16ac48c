//! The index: per shard, an array of 64-byte buckets. A bucket holds a sequence number, a spill
//! word and 14 entries, each a slot id with tag bits of the key's hash above it (0 = empty). A
//! key lives in its home bucket or, when that is full, in one of the next ones (at most
//! `spill.reach` past home, counted in the home's spill word), so a hit reads the bucket line and
//! the slot, and a miss usually reads the bucket line alone. Entries never move while their key
//! stays, which is what lets a lock-free reader trust what it finds (see `cache/read.rs`).
//!
//! Every change to a bucket's entries, and to the key, lengths, flags or data of a slot indexed
//! in it, happens between [`Shard::begin_write`] and [`Shard::end_write`] on that bucket.

use super::Hashed;
use super::{BucketPtr, Shard, SlotMeta, SlotPtr};
use crate::key::KeyRef;
use crate::layout::{bucket, BUCKET_ENTRIES, F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use std::sync::atomic::{fence, Ordering};

/// Where an indexed key is: its bucket, the entry's position in it, how far the bucket is from
/// the key's home, and the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub bucket: u32,
    pub pos: usize,
    pub dist: u32,
    pub id: u32,
}

/// An entry found in its key's home bucket, with the addresses of the bucket and the slot and
/// the slot's fields, for a writer that changes it at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Home<'a> {
    pub bucket: BucketPtr<'a>,
    pub pos: usize,
    pub id: u32,
    pub slot: SlotPtr<'a>,
    pub meta: SlotMeta,
}

impl<'a> Shard<'a> {
    /// Opens a write window on bucket `b`: its sequence number becomes odd. Returns the odd
    /// value, for [`end_write`](Self::end_write). Lock held.
    #[inline]
    pub(super) fn begin_write(&self, b: u32) -> u32 {
        self.begin_write_at(self.bucket(b))
    }

    /// [`begin_write`](Self::begin_write) on the bucket at `bp`.
    #[inline(always)]
    pub(super) fn begin_write_at(&self, bp: BucketPtr<'a>) -> u32 {
        let s = self.bucket_word(bp, bucket::SEQ);
        let odd = s.load(Ordering::Relaxed) | 1;
        s.store(odd, Ordering::Relaxed);
        // Readers that see any store below also see the odd number (or a later one).
        fence(Ordering::Release);
        odd
    }

    /// Closes the window opened by `begin_write`: the sequence number moves on to even.
    #[inline]
    pub(super) fn end_write(&self, b: u32, odd: u32) {
        self.end_write_at(self.bucket(b), odd)
    }

    /// [`end_write`](Self::end_write) on the bucket at `bp`.
    #[inline(always)]
    pub(super) fn end_write_at(&self, bp: BucketPtr<'a>, odd: u32) {
        self.bucket_word(bp, bucket::SEQ)
            .store(odd.wrapping_add(1), Ordering::Release);
    }

    /// Whether slot `id`, whose fields are `m`, holds `key`, given that its stored key word
    /// is `key`'s.
    #[inline(always)]
    pub(crate) fn holds(&self, id: u32, m: &SlotMeta, key: &KeyRef<'_>) -> bool {
        match key {
            // An integer key: occupied, not a byte key, not mid-write (a writer holding the lock
            // clears that before it unlocks), no key bytes and a value that fits.
            KeyRef::Hash(_) => {
                m.flags & (F_OCCUPIED | F_BYTES_KEY | F_WRITING) == F_OCCUPIED
                    && m.klen == 0
                    && m.vlen <= self.record_size()
            }
            KeyRef::Bytes(b) => {
                m.flags & (F_OCCUPIED | F_BYTES_KEY) == (F_OCCUPIED | F_BYTES_KEY)
                    && self.lengths_ok(m)
                    && m.klen as usize == b.len()
                    && if self.budget() {
                        self.store_holds_key(id, b)
                    } else {
                        self.data_starts_with(id, b)
                    }
            }
        }
    }

    /// The entry of `k`, if indexed (expiry not considered). Lock held. The home bucket is
    /// searched inline, the buckets after it out of line.
    #[inline]
    pub(crate) fn lookup(&self, k: &Hashed<'_>) -> Option<Found> {
        if let Some(f) = self.find_home(k) {
            return Some(Found {
                bucket: self.home(k.hash),
                pos: f.pos,
                dist: 0,
                id: f.id,
            });
        }
        let (_, reach) = self.spill(self.home(k.hash));
        if reach == 0 {
            return None;
        }
        self.lookup_spilled(k)
    }

    #[inline(never)]
    fn lookup_spilled(&self, k: &Hashed<'_>) -> Option<Found> {
        let tag = self.tag_of(k.hash);
        self.find_entry(
            k.hash,
            |b, _| self.matches_at(self.bucket(b), tag),
            |id| {
                let m = self.meta(id);
                m.key == k.word && self.holds(id, &m, &k.key)
            },
        )
    }

    /// `k`'s entry in the bucket at `bp`, whose entries' tags are compared with `tag`.
    #[inline(always)]
    fn find_in(&self, bp: BucketPtr<'a>, tag: u32, k: &Hashed<'_>) -> Option<Home<'a>> {
        self.entries_for(bp, tag, k.word)
            .find(|&(_, id, _, meta)| self.holds(id, &meta, &k.key))
            .map(|(pos, id, slot, meta)| Home {
                bucket: bp,
                pos,
                id,
                slot,
                meta,
            })
    }

    /// `k`'s entry if it is in its home bucket (expiry not considered). Lock held.
    #[inline(always)]
    pub(super) fn find_home(&self, k: &Hashed<'_>) -> Option<Home<'a>> {
        self.find_in(self.home_bucket(k.hash), self.tag_of(k.hash), k)
    }

    /// The entry naming slot `id`, whose key has spread hash `h`. Lock held.
    pub(super) fn entry_of(&self, id: u32, h: u64) -> Option<Found> {
        self.find_entry(h, |_, _| (1 << BUCKET_ENTRIES) - 1, |e| e == id)
    }

    /// Walks the buckets where a key of spread hash `h` may be, and in each the entries that
    /// `candidates(bucket, dist)` marks, for the first whose slot id satisfies `pick`.
    fn find_entry(
        &self,
        h: u64,
        candidates: impl Fn(u32, u32) -> u32,
        pick: impl Fn(u32) -> bool,
    ) -> Option<Found> {
        let home = self.home(h);
        let (_, reach) = self.spill(home);
        for dist in 0..=reach {
            let b = self.after(home, dist);
            let mut m = candidates(b, dist);
            while m != 0 {
                let pos = m.trailing_zeros() as usize;
                m &= m - 1;
                let id = self.entry_id(self.entry(b, pos).load(Ordering::Relaxed));
                if id != 0 && pick(id) {
                    return Some(Found {
                        bucket: b,
                        pos,
                        dist,
                        id,
                    });
                }
            }
        }
        None
    }

    /// A free entry for a key of spread hash `h`: in its home bucket or the nearest one after
    /// it that has room, at most `max_reach` away. Records the spill in the home bucket. Lock
    /// held.
    pub(super) fn place(&self, h: u64) -> Option<(u32, usize, u32)> {
        let home = self.home(h);
        for dist in 0..=self.reach() {
            let b = self.after(home, dist);
            for pos in 0..BUCKET_ENTRIES {
                if self.entry(b, pos).load(Ordering::Relaxed) == 0 {
                    if dist > 0 {
                        let (count, reach) = self.spill(home);
                        self.set_spill(home, count + 1, reach.max(dist));
                    }
                    return Some((b, pos, dist));
                }
            }
        }
        None
    }

    /// Forgets that one key homed at `h`'s home bucket was placed `dist` buckets away.
    pub(super) fn unspill(&self, h: u64, dist: u32) {
        if dist == 0 {
            return;
        }
        let home = self.home(h);
        let (count, reach) = self.spill(home);
        let count = count.saturating_sub(1);
        self.set_spill(home, count, if count == 0 { 0 } else { reach });
    }

    /// Empties every bucket (sequence numbers left as they are). Lock held, and every bucket's
    /// write window open.
    pub(super) fn clear_buckets(&self) {
        for b in 0..self.nbuckets() {
            self.set_spill(b, 0, 0);
            for pos in 0..BUCKET_ENTRIES {
                self.entry(b, pos).store(0, Ordering::Relaxed);
            }
            if self.budget() {
                // No entry's use is recorded in an empty bucket's use word.
                self.use_hint_word(self.bucket(b)).store(0, Ordering::Relaxed);
            }
        }
    }
}

//! The index of a cache with a byte budget grows inside the budget: a unit at a time
//! (`layout::UNIT_SIZE`: a bucket with its hints, and eight slots), whose bytes are taken a
//! group at a time from both ends of the shard's ring of records: the group's buckets from its
//! start (all buckets are one array at the bottom of the value store) and its slots from its
//! end (at the top).
//!
//! # Why memory only ever becomes index
//!
//! Lock-free readers store into index memory: a slot's use word, a bucket's use word. They do
//! so after validating what they read, and a reader stopped in between may store much later.
//! So bytes that were index never go back to the ring, and a unit's buckets and slots stay
//! buckets and slots for the segment's life: the unit count only grows.
//!
//! # When the ring can spare a unit
//!
//! Positions go round the whole store (`store.rs`), so a ring shorter at either end changes no
//! position's offset. A group's slots can be taken from the ring's end when no record the store
//! still walks lies there: when the tail and the head are in one lap and the head is short of
//! them (with room for the record being written). Its buckets are taken from the ring's start
//! once the tail has been walked past them, each live record there moved to the head (as a
//! second chance moves it) while the head stays short of the slots
//! (`Shard::free_ring_start`). That holds throughout the first lap of a new or cleared store;
//! afterwards once a lap, from when the tail passes the end of a lap until the head does. A
//! cache that evicts takes its units then: a new key that finds every slot taken and
//! cannot have a unit at once is inserted by evicting (by the recency list), and the shard
//! notes that it wants units (`shard_header::WANTS_UNITS`). A cache that does not evict walks
//! its tail on (moving every live record) until it can take them, and then takes a quarter
//! more units at once, so that such walks stay rare.
//!
//! # Buckets in use
//!
//! A key's home is its hash scaled to the buckets the index uses
//! (`layout::shard_header::BUCKETS`), as in an index that does not grow, so every bucket in use
//! has as many keys to expect as any other. The count moves on when the entries would pass
//! eleven a bucket, by a quarter at least (to nine a bucket), up to the buckets the units have;
//! a key whose home and the buckets after it are full moves it on too. Then every key may have a
//! new home, and all are placed again: the buckets it starts to use are initialised in write
//! windows before any reader can reach them, every bucket's window opens, the count is published
//! (release), the entries go to their new places, and the windows close. A lock-free reader that
//! meets an open window falls back to the lock and waits; one that computed a home with the old
//! count and finds the key absent checks the count again before it reports a miss
//! (`cache/read.rs`): the count moved before the windows closed. A writer killed anywhere in it
//! leaves windows open and the lock to recover: the rebuild places every entry again under the
//! count it finds. Entries move a few times each as a cache fills (each quarter more of them
//! moves them all once); a full cache's index no longer changes.

use super::{home_of, Shard};
use crate::layout::{
    bucket, grown_buckets_for, hint, index_bucket_bytes, index_bytes, index_slot_bytes, shard_header,
    BUCKET_ENTRIES, MOST_PER_BUCKET, UNIT_BUCKETS,
};
use std::sync::atomic::Ordering::{Relaxed, Release};

impl Shard<'_> {
    /// Before a new key whose record takes `len` bytes is inserted: gives the index one more
    /// unit if it needs one (every slot it has holds an entry; or it needed one earlier and
    /// could not have it then), the cache is under its capacity, and the ring can spare the
    /// unit now (see the module docs); then uses more buckets if the entries need them or the
    /// key is `crowded` (its home and the buckets after it are full). `evict` says whether the
    /// cache evicts. Returns whether the index grew. Lock held.
    pub(super) fn grow_for(&self, len: u64, crowded: bool, evict: bool, now: u64) -> bool {
        let grew_units = self.grow_units_for(len, crowded, evict, now);
        let n = self.nbuckets();
        let entries = self.len() as u64 + 1;
        if !crowded && entries <= MOST_PER_BUCKET as u64 * n as u64 {
            return grew_units;
        }
        let most = self.units() * UNIT_BUCKETS;
        let want = grown_buckets_for(entries).max(n as u64 + (n as u64 / 4).max(1));
        let to = want.min(most as u64) as u32;
        if to <= n {
            return grew_units;
        }
        self.use_buckets(to);
        true
    }

    /// The unit half of [`grow_for`](Self::grow_for): whether it took units.
    fn grow_units_for(&self, len: u64, crowded: bool, evict: bool, now: u64) -> bool {
        if self.units() >= self.max_units() || self.cache_len().load(Relaxed) >= self.limit() {
            return false;
        }
        let want = self.hdr32(shard_header::WANTS_UNITS);
        let slots_short = self.free_head() == 0 && self.handed_out() >= self.slot_count();
        // A crowded key needs buckets; the units have none left to give.
        let buckets_short = crowded && self.nbuckets() >= self.units() * UNIT_BUCKETS;
        let short = slots_short || buckets_short;
        if !short && want.load(Relaxed) == 0 {
            return false;
        }
        if !self.take_units(len, 1, now) {
            if short {
                want.store(1, Relaxed);
            }
            return false;
        }
        want.store(0, Relaxed);
        // A cache that does not evict came here by walking its tail a lap: it takes a quarter
        // more units while it is at it.
        if !evict {
            for _ in 0..self.units() / 4 {
                if self.units() >= self.max_units() || !self.take_units(len, 1, now) {
                    break;
                }
            }
        }
        true
    }

    /// Whether the index wanted a unit it could not have (`shard_header::WANTS_UNITS`).
    pub(super) fn wants_units(&self) -> bool {
        self.hdr32(shard_header::WANTS_UNITS).load(Relaxed) != 0
    }

    /// Takes `k` more units if the ring can spare them: their slots are handed out as keys
    /// come, their buckets initialised when the index starts to use them. Lock held.
    fn take_units(&self, len: u64, k: u32, now: u64) -> bool {
        let units = self.units();
        if units + k > self.max_units() || !self.spare_units(len, k, now) {
            return false;
        }
        self.hdr32(shard_header::UNITS).store(units + k, Release);
        true
    }

    /// Whether the index can have `k` more units: in the groups it has taken already, or else
    /// if the ring can give up the bytes of the groups they need at both its ends, keeping two
    /// of the largest records' worth between them. At the top, the slots' bytes must hold
    /// nothing the store still walks, with room left before them for a record of `len` bytes at
    /// the head: head and tail in one lap, the head short of them. At the bottom, the buckets'
    /// bytes: the tail is walked past them, each live record there moved to the head while that
    /// stays short of the slots' bytes (`Shard::free_ring_start`). Lock held.
    fn spare_units(&self, len: u64, k: u32, now: u64) -> bool {
        let units = self.units();
        if index_bytes(units + k) == index_bytes(units) {
            return true;
        }
        let start = index_bucket_bytes(units + k);
        let end = self.store_bytes - index_slot_bytes(units + k);
        end >= start + 2 * self.biggest() && self.free_ring_start(start, end, len, now)
    }

    /// Buckets `from..to`, which no reader can reach, empty and in write windows, whose odd
    /// numbers it returns. (Their words may be anything, bytes of the ring once: the sequence
    /// number is only made odd, so that it never goes back to a number it had.) Lock held.
    pub(crate) fn init_buckets(&self, from: u32, to: u32) -> Vec<u32> {
        let mut windows = Vec::with_capacity(to.saturating_sub(from) as usize);
        for b in from..to {
            let bp = self.bucket(b);
            windows.push(self.begin_write_at(bp));
            self.bucket_word(bp, bucket::SPILL).store(0, Relaxed);
            for pos in 0..BUCKET_ENTRIES {
                self.bucket_word(bp, bucket::ENTRIES + 4 * pos).store(0, Relaxed);
                self.hint_word(bp, pos).store(hint::NONE, Relaxed);
            }
            self.use_hint_word(bp).store(0, Relaxed);
        }
        windows
    }

    /// Uses `to` buckets (more than now, at most the units have) and places every entry again
    /// under the new count (see the module docs). An entry that finds no place, which takes
    /// more than `max_reach` full buckets in a row, is evicted. Lock held.
    ///
    /// Where each entry goes is worked out first, with every window closed: that reads each
    /// entry's slot for its hash, the slow part. Then the windows open, and each bucket is
    /// written once, one after another, its window closed as soon as it is.
    fn use_buckets(&self, to: u32) {
        let from = self.nbuckets();
        debug_assert!(from < to && to <= self.units() * UNIT_BUCKETS);
        let mut moving = Vec::with_capacity(self.len() as usize);
        for b in 0..from {
            let bp = self.bucket(b);
            for pos in 0..BUCKET_ENTRIES {
                let e = self.entry(b, pos).load(Relaxed);
                let id = self.entry_id(e);
                if id != 0 {
                    moving.push((id, e, self.hint_word(bp, pos).load(Relaxed)));
                }
            }
        }
        // In the order of the old buckets, which is nearly that of the new homes (a key's home
        // is its hash scaled to the count): the buckets written are near each other. The slots
        // read for the keys' hashes are asked for some entries ahead.
        const AHEAD: usize = 32;
        for m in moving.iter().take(AHEAD) {
            self.prefetch_slot(m.0);
        }
        // The buckets are empty when the entries go in, so each one's next free entry is
        // counted here rather than looked for.
        let reach = self.max_reach().min(to - 1);
        let mut filled = vec![0u8; to as usize];
        let mut spills = vec![(0u32, 0u32); to as usize];
        // Each bucket's entries and hints, staged in the order they go in.
        let mut staged = vec![(0u32, hint::NONE); to as usize * BUCKET_ENTRIES];
        let mut dropped = Vec::new();
        for (i, &(id, e, at)) in moving.iter().enumerate() {
            if let Some(m) = moving.get(i + AHEAD) {
                self.prefetch_slot(m.0);
            }
            let home = home_of(self.stored_hash(id), to);
            let place = (0..=reach).find_map(|d| {
                let b = home + d;
                let b = if b >= to { b - to } else { b };
                (filled[b as usize] < BUCKET_ENTRIES as u8).then_some((b, d))
            });
            let Some((b, d)) = place else {
                dropped.push(id);
                continue;
            };
            staged[b as usize * BUCKET_ENTRIES + filled[b as usize] as usize] = (e, at);
            filled[b as usize] += 1;
            if d > 0 {
                let sp = &mut spills[home as usize];
                sp.0 += 1;
                sp.1 = sp.1.max(d);
            }
        }
        // Every window opens (the buckets not used yet are written empty below), then the new
        // count is published, and each bucket is written once and its window closed, one after
        // another: a reader waits only for the buckets not written yet.
        let windows: Vec<u32> = (0..to).map(|b| self.begin_write(b)).collect();
        // Readers that see the new count see every bucket's window open, or its new entries.
        self.hdr32(shard_header::BUCKETS).store(to, Release);
        for (b, odd) in windows.into_iter().enumerate() {
            let bp = self.bucket(b as u32);
            let row = &staged[b * BUCKET_ENTRIES..(b + 1) * BUCKET_ENTRIES];
            for (pos, &(e, at)) in row.iter().enumerate() {
                self.bucket_word(bp, bucket::ENTRIES + 4 * pos).store(e, Relaxed);
                self.hint_word(bp, pos).store(at, Relaxed);
            }
            let (count, far) = spills[b];
            self.set_spill(b as u32, count, far);
            self.use_hint_word(bp).store(0, Relaxed);
            self.end_write_at(bp, odd);
        }
        // Keys that found no place, their entries out of the index already.
        for id in dropped {
            self.remove_slot(id);
            self.bump(shard_header::EVICTIONS);
        }
    }

    /// Whether a key of spread hash `h` has a free entry in its home bucket or one it may be
    /// placed in.
    pub(super) fn has_place(&self, h: u64) -> bool {
        let home = self.home(h);
        (0..=self.reach()).any(|d| {
            let b = self.after(home, d);
            (0..BUCKET_ENTRIES).any(|pos| self.entry(b, pos).load(Relaxed) == 0)
        })
    }

    /// Frees a place for a key of spread hash `h` whose home and the buckets after it are
    /// full: evicts the least recently used entry among them. Lock held.
    pub(super) fn evict_near(&self, h: u64) {
        let home = self.home(h);
        let oldest = (0..=self.reach())
            .flat_map(|d| (0..BUCKET_ENTRIES).map(move |pos| (self.after(home, d), pos)))
            .map(|(b, pos)| self.entry_id(self.entry(b, pos).load(Relaxed)))
            .filter(|&id| id != 0 && self.holds_entry(id))
            .min_by_key(|&id| self.use_of(id).used);
        if let Some(id) = oldest {
            self.remove_slot(id);
            self.bump(shard_header::EVICTIONS);
        }
    }
}

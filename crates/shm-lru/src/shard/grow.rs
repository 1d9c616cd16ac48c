//! The index of a cache with a byte budget grows inside the budget: a unit at a time
//! (`layout::UNIT_SIZE`: two buckets with their hints, and twelve slots), taken from the top of
//! the shard's value store, below which the ring of records lies.
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
//! Positions go round the whole store (`store.rs`), so a shorter ring changes no position's
//! offset. The unit below the index can be taken when no record the store still walks lies in
//! it: when the tail and the head are in one lap and the head is short of the unit (with room
//! for the record being written). That holds throughout the first lap of a new or cleared
//! store; afterwards once a lap, from when the tail passes the end of a lap until the head
//! does. A cache that evicts takes its units then: a new key that finds every slot taken and
//! cannot have a unit at once is inserted by evicting (by the recency list), and the shard
//! notes that it wants units (`shard_header::WANTS_UNITS`). A cache that does not evict walks
//! its tail on (moving every live record) until it can take them, and then takes a quarter
//! more units at once, so that such walks stay rare.
//!
//! # Linear hashing
//!
//! Going from `n` to `n + 1` buckets, bucket `n` takes the keys of bucket `n - m/2` (`m` the
//! power of two above `n`) whose hash has bit `m/2` set (`bucket::linear_home`); no other key
//! changes home. A unit adds two buckets: two such splits, of neighbouring buckets. A key is
//! placed only in its home or the buckets after it, never past the last, so the keys that move
//! are in the splitting buckets or the ones their spill words reach.
//!
//! The split opens the write windows of the new buckets (initialised while no reader can reach
//! them) and of every bucket it takes keys from, then publishes the unit count (release),
//! moves the keys, and closes the windows. A reader that computed a key's home with the old
//! count and finds the bucket unchanged and the key absent checks the count again before it
//! reports a miss (`cache/read.rs`): the count moved before the windows closed. A writer killed
//! anywhere in a split leaves windows open and the lock to recover: the rebuild places every
//! entry again under the count it finds.

use super::bucket::linear_home;
use super::Shard;
use crate::layout::{bucket, hint, index_bytes, shard_header, BUCKET_ENTRIES, UNIT_BUCKETS};
use std::sync::atomic::Ordering::{Relaxed, Release};

impl Shard<'_> {
    /// Before a new key whose record takes `len` bytes is inserted: gives the index one more
    /// unit if it needs one (every slot it has holds an entry, or `crowded`: the key's home
    /// and the buckets after it are full; or it needed one earlier and could not have it then),
    /// the cache is under its capacity, and the ring can spare the unit now (see the module
    /// docs). `evict` says whether the cache evicts. Returns whether it grew. Lock held.
    pub(super) fn grow_for(&self, len: u64, crowded: bool, evict: bool) -> bool {
        if self.units() >= self.max_units() || self.cache_len().load(Relaxed) >= self.limit() {
            return false;
        }
        let want = self.hdr32(shard_header::WANTS_UNITS);
        let short = crowded || (self.free_head() == 0 && self.handed_out() >= self.slot_count());
        if !short && want.load(Relaxed) == 0 {
            return false;
        }
        if !self.grow_units(len, evict) {
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
                if self.units() >= self.max_units() || !self.grow_units(len, evict) {
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

    /// Adds a unit, or when the keys moving to the unit's last bucket would not all fit, two or
    /// three at once (their buckets take the overflow), if the ring can spare them. Lock held.
    fn grow_units(&self, len: u64, evict: bool) -> bool {
        let last = (1..=3).find(|&k| {
            self.units() + k <= self.max_units()
                && self.can_spare_units(len, k)
                && self.split_units(k, k == 3 && evict)
        });
        last.is_some()
    }

    /// Whether the index can have `k` more units: in the group it has taken already, or else
    /// if the group below the index (the ring's last `GROUP_SIZE` bytes) holds nothing the store
    /// still walks, with room left before it for a record of `len` bytes at the head, and two of
    /// the largest records' worth of ring after it: head and tail in one lap, and the head short
    /// of the group by `len`. Lock held.
    fn can_spare_units(&self, len: u64, k: u32) -> bool {
        let units = self.units();
        let more = index_bytes(units + k) - index_bytes(units);
        if more == 0 {
            return true;
        }
        let (head, tail, lap) = (self.store_head(), self.store_tail(), self.store_bytes);
        let Some(shorter) = self.ring().checked_sub(more) else {
            return false;
        };
        tail <= head
            && head / lap == tail / lap
            && head % lap + len <= shorter
            && shorter >= 2 * self.biggest()
    }

    /// Adds `k` units: buckets `n ..n + 2k` (the index has `n`, and `n + 2k` does not pass the
    /// next power of two), and moves to them the keys they take over. If more keys move to the
    /// new buckets than they hold from their homes on, the rest are evicted (`evict`), or
    /// nothing is done and `false` returned. Lock held; the caller checked that the units'
    /// bytes are free.
    fn split_units(&self, k: u32, evict: bool) -> bool {
        let units = self.units();
        let n = units * UNIT_BUCKETS;
        let add = k * UNIT_BUCKETS;
        let half = 1u32 << (31 - n.leading_zeros());
        if n + add > 2 * half {
            return false;
        }
        // The buckets that split, and those their keys may be placed in.
        let from = n - half;
        let to = (from + add - 1).min(n - 1);
        let last = (from..=to)
            .map(|b| b + self.spill(b).1)
            .max()
            .unwrap_or(to)
            .min(n - 1);
        let moves = |id: u32| {
            let h = self.stored_hash(id);
            linear_home(h, n) != linear_home(h, n + add)
        };
        let movers: Vec<(u32, usize, u32)> = (from..=last)
            .flat_map(|b| (0..BUCKET_ENTRIES).map(move |pos| (b, pos)))
            .filter_map(|(b, pos)| {
                let e = self.entry(b, pos).load(Relaxed);
                let id = self.entry_id(e);
                (id != 0 && moves(id)).then_some((b, pos, e))
            })
            .collect();
        // Where each goes: its new home, or the first new bucket after it with room.
        let mut room = vec![BUCKET_ENTRIES; add as usize];
        let mut plan = Vec::with_capacity(movers.len());
        let mut over = Vec::new();
        for &(b, pos, e) in &movers {
            let home = linear_home(self.stored_hash(self.entry_id(e)), n + add) - n;
            match (home as usize..add as usize).find(|&d| room[d] > 0) {
                Some(d) => {
                    room[d] -= 1;
                    plan.push((b, pos, e, home, d as u32));
                }
                None => over.push((b, pos, e)),
            }
        }
        if !over.is_empty() && !evict {
            return false;
        }
        let new: Vec<_> = (0..add).map(|d| self.bucket(n + d)).collect();
        // The new buckets, empty and in a write window, before any reader can reach them.
        for &bp in &new {
            self.bucket_word(bp, bucket::SEQ).store(1, Relaxed);
            self.bucket_word(bp, bucket::SPILL).store(0, Relaxed);
            for pos in 0..BUCKET_ENTRIES {
                self.bucket_word(bp, bucket::ENTRIES + 4 * pos).store(0, Relaxed);
                self.hint_word(bp, pos).store(hint::NONE, Relaxed);
            }
            self.use_hint_word(bp).store(0, Relaxed);
        }
        let windows: Vec<u32> = (from..=last).map(|b| self.begin_write(b)).collect();
        // Readers that see the new count see the new buckets' windows open.
        self.hdr32(shard_header::UNITS).store(units + k, Release);
        let mut filled = vec![0usize; add as usize];
        for (b, pos, e, home, d) in plan {
            let (bp, nb) = (self.bucket(b), new[d as usize]);
            let at = self.hint_word(bp, pos).load(Relaxed);
            self.entry(b, pos).store(0, Relaxed);
            self.hint_word(bp, pos).store(hint::NONE, Relaxed);
            let slot = filled[d as usize].min(BUCKET_ENTRIES - 1);
            filled[d as usize] += 1;
            self.entry(n + d, slot).store(e, Relaxed);
            self.hint_word(nb, slot).store(at, Relaxed);
            if d > home {
                let (count, reach) = self.spill(n + home);
                self.set_spill(n + home, count + 1, reach.max(d - home));
            }
        }
        let mut dropped = Vec::new();
        for (b, pos, e) in over {
            self.entry(b, pos).store(0, Relaxed);
            self.hint_word(self.bucket(b), pos).store(hint::NONE, Relaxed);
            dropped.push(self.entry_id(e));
        }
        // What stays of the split buckets' spills: their keys still placed after them.
        for home in from..=to {
            let (mut count, mut far) = (0, 0);
            for b in home + 1..=last {
                for pos in 0..BUCKET_ENTRIES {
                    let id = self.entry_id(self.entry(b, pos).load(Relaxed));
                    if id != 0 && linear_home(self.stored_hash(id), n + add) == home {
                        count += 1;
                        far = b - home;
                    }
                }
            }
            self.set_spill(home, count, far);
        }
        for (b, odd) in (from..=last).zip(windows) {
            self.end_write(b, odd);
        }
        for d in 0..add {
            self.end_write(n + d, 1);
        }
        // Keys the new buckets could not hold, their entries out of the index already.
        for id in dropped {
            self.remove_slot(id);
            self.bump(shard_header::EVICTIONS);
        }
        true
    }

    /// Whether a key of spread hash `h` has a free entry in its home bucket or one it may be
    /// placed in.
    pub(super) fn has_place(&self, h: u64) -> bool {
        let home = self.home(h);
        let reach = self.max_reach().min(self.nbuckets() - 1 - home);
        (0..=reach).any(|d| (0..BUCKET_ENTRIES).any(|pos| self.entry(home + d, pos).load(Relaxed) == 0))
    }

    /// Frees a place for a key of spread hash `h` whose home and the buckets after it are
    /// full, in an index that does not wrap: evicts the least recently used entry among them.
    /// Lock held.
    pub(super) fn evict_near(&self, h: u64) {
        let home = self.home(h);
        let reach = self.max_reach().min(self.nbuckets() - 1 - home);
        let oldest = (0..=reach)
            .flat_map(|d| (0..BUCKET_ENTRIES).map(move |pos| (home + d, pos)))
            .map(|(b, pos)| self.entry_id(self.entry(b, pos).load(Relaxed)))
            .filter(|&id| id != 0 && self.holds_entry(id))
            .min_by_key(|&id| self.use_of(id).used);
        if let Some(id) = oldest {
            self.remove_slot(id);
            self.bump(shard_header::EVICTIONS);
        }
    }
}

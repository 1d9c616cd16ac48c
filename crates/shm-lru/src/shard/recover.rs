//! Rebuilding a shard from its slots: after a process died holding its lock, and on demand
//! (`repair`).
//!
//! The slots are the source of truth; the index, the recency list, the free list and the count
//! are derived. A slot counts as an entry when it is occupied, not mid-write, its lengths fit
//! the record (with a byte budget: it names a whole record of the value store that names it
//! back) and its key belongs to this shard; anything else is freed. Every bucket's write
//! window stays open for the whole rebuild, so lock-free readers do not trust the half-built
//! index: they fall back to the lock, and wait for the rebuild to finish.

use super::Hashed;
use super::Shard;
use crate::key::{spread_stored, Key};
use crate::layout::{F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use std::sync::atomic::Ordering::Relaxed;

/// What a rebuild kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rebuilt {
    pub kept: u64,
    pub dropped: u64,
    /// The slot whose rewrite in place was cut short and got its old value back.
    pub rolled_back: Option<u32>,
}

impl Shard<'_> {
    /// Rebuilds the derived structures from the slots. Lock held. `belongs(h)` says whether a
    /// key of spread hash `h` maps to this shard.
    pub(crate) fn rebuild(&self, belongs: impl Fn(u64) -> bool) -> Rebuilt {
        let windows: Vec<u32> = if self.grows() {
            // A unit count out of range (damage) is taken as the nearest possible one; the
            // buckets in use as many as the slots handed out need, if the count says fewer.
            use crate::layout::{grown_buckets_for, shard_header, UNIT_BUCKETS};
            self.hdr32(shard_header::UNITS).store(self.units(), Relaxed);
            let (from, most) = (self.nbuckets(), self.units() * UNIT_BUCKETS);
            let to = (grown_buckets_for(self.handed_out() as u64).min(most as u64) as u32).max(from);
            // Every bucket in use in a write window, and those it starts to use initialised in
            // one, before a reader can home a key by the new count.
            let mut windows: Vec<u32> = (0..from).map(|b| self.begin_write(b)).collect();
            windows.extend(self.init_buckets(from, to));
            self.hdr32(shard_header::BUCKETS)
                .store(to, std::sync::atomic::Ordering::Release);
            windows
        } else {
            (0..self.nbuckets()).map(|b| self.begin_write(b)).collect()
        };
        let n = self.handed_out();
        // A rewrite in place cut short gets its old value back, and so keeps its entry.
        let rolled_back = self.roll_back_rewrite();
        if self.budget() {
            let (head, tail) = (self.store_head(), self.store_tail());
            let (start, end) = (self.ring_start(), self.ring_end());
            let past = |p: u64| p % self.store_bytes > end || p % self.store_bytes < start;
            if head < tail || head - tail > self.store_bytes || past(head) || past(tail) {
                // Store positions past repair (or inside the index): no record can be trusted.
                self.clear_store();
            }
        }
        self.clear_buckets();
        self.set_head(0);
        self.set_tail(0);
        self.set_free_head(0);
        self.set_len(0);
        let mut live = vec![false; n as usize + 1];
        let mut order: Vec<(u64, u64, u32)> = Vec::new();
        let mut earliest = u64::MAX;
        let mut dropped = 0;
        for id in 1..=n {
            let m = self.meta(id);
            if m.flags & F_OCCUPIED == 0 {
                continue;
            }
            let bytes_key = m.flags & F_BYTES_KEY != 0;
            let h = spread_stored(m.key, bytes_key);
            let whole = m.flags & F_WRITING == 0
                && self.lengths_ok(&m)
                && (bytes_key || m.klen == 0)
                && (!self.budget() || self.record_of(id).is_some_and(|(_, r)| r.fits_slot(&m)));
            let key = self.key_of(id, &m);
            let key_ok = match &key {
                Key::Bytes(b) => crate::hash::fnv1a64(b) == m.key,
                Key::Hash(_) => true,
            };
            if !whole || !key_ok || !belongs(h) {
                dropped += 1;
                continue;
            }
            // Two slots with one key cannot arise from the write order, but a duplicate must
            // not survive a rebuild: keep the first.
            let k = Hashed {
                key: key.as_ref(),
                word: m.key,
                hash: h,
            };
            if self.lookup(&k).is_some() {
                dropped += 1;
                continue;
            }
            let Some((b, pos, _)) = self.place(h) else {
                dropped += 1;
                continue;
            };
            // With a byte budget the record's expiry is the one readers saw: the slot takes it.
            let expires = if self.budget() {
                self.hint_kept_entry(self.bucket(b), pos, id)
            } else {
                m.expires
            };
            self.entry(b, pos).store(self.entry_for(id, h), Relaxed);
            live[id as usize] = true;
            let u = self.use_of(id);
            order.push((u.linked, u.used, id));
            if expires != 0 {
                earliest = earliest.min(expires);
            }
        }
        order.sort_unstable();
        for &(_, _, id) in &order {
            self.push_front(id);
        }
        for id in (1..=n).rev() {
            if !live[id as usize] {
                self.set_vlen_flags(id, 0, 0);
                self.push_free(id);
            }
        }
        // The count of the whole cache is set again by the caller, from every shard's count.
        self.set_len(order.len() as u32);

        self.set_earliest_expiry(earliest);
        for (b, odd) in windows.into_iter().enumerate() {
            self.end_write(b as u32, odd);
        }
        if self.budget() {
            // With the index whole again: pads over the spans between live records (removing,
            // in their windows, entries a damaged store leaves unwalkable), then the count.
            let before = self.len();
            self.repair_store();
            self.recount_store();
            dropped += (before - self.len()) as u64;
        }
        let kept = self.len() as u64;
        Rebuilt {
            kept,
            dropped,
            rolled_back,
        }
    }
}

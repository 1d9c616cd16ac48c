//! Whole-cache walks, one shard locked at a time: entries, scan, eviction by age, purge,
//! clear and counts; check and repair, every shard locked at once.

use super::Cache;
use crate::counters::Counter;
use crate::error::Result;
use crate::layout::shard_header;
use crate::options::{Entry, Order, Stats};
use crate::report::{CheckReport, RepairReport};
use crate::shard::{check_shard, expired, Toward};
use std::sync::atomic::Ordering;

/// Where a [`Cache::scan`] stands: opaque, but plain data, so that a binding can hand it to its
/// caller and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    /// The shard being walked.
    pub shard: u32,
    /// The slot (within the shard) to go on from.
    pub next: u32,
    /// Its link time when the last batch ended, to tell whether it is still in place.
    pub linked: u64,
}

impl Cache {
    /// Evicts up to `max` entries last used before `cutoff_ms` (epoch ms), least recently used
    /// first, and returns them. An entry used at or after the cutoff is never taken.
    pub fn evict_used_before(&self, cutoff_ms: u64, max: usize) -> Result<Vec<Entry>> {
        // (time of last use, shard, slot, link time, stored hash): the last two tell, when the
        // shard is locked again, whether the slot still holds the same entry.
        let mut cands: Vec<(u64, u32, u32, u64, u64)> = Vec::new();
        for s in 0..self.params.geo.shards {
            let g = self.lock(s)?;
            cands.extend(
                g.used_before(cutoff_ms, max)
                    .into_iter()
                    .map(|(u, id)| (u, s, id, g.use_of(id).linked, g.stored_hash(id))),
            );
        }
        cands.sort_unstable();
        cands.truncate(max);
        let mut out = Vec::with_capacity(cands.len());
        for s in 0..self.params.geo.shards {
            if !cands.iter().any(|c| c.1 == s) {
                continue;
            }
            let g = self.lock(s)?;
            for &(used, _, id, linked, hash) in cands.iter().filter(|c| c.1 == s) {
                // Still the same entry (not removed, cleared or replaced meanwhile), still
                // unused since the cutoff?
                let u = g.use_of(id);
                if !g.holds_entry(id)
                    || u.used != used
                    || u.linked != linked
                    || g.stored_hash(id) != hash
                    || u.used >= cutoff_ms
                {
                    continue;
                }
                // (An entry whose record is damaged goes, unreported.)
                if let Some(c) = g.copy(id) {
                    out.push((used, self.entry(s, c)));
                }
                g.remove_slot(id);
                g.bump(shard_header::EVICTIONS);
            }
        }
        out.sort_by_key(|e| e.0);
        Ok(out.into_iter().map(|e| e.1).collect())
    }

    /// Evicts up to `max` entries not used in the last `age_ms` milliseconds.
    pub fn evict_older_than(&self, age_ms: u64, max: usize) -> Result<Vec<Entry>> {
        self.evict_used_before(self.now_ms_fresh().saturating_sub(age_ms), max)
    }

    /// Reclaims every expired entry now; returns how many.
    pub fn purge_expired(&self) -> Result<u64> {
        let now = self.now_ms_fresh();
        let mut n = 0;
        for s in 0..self.params.geo.shards {
            n += self.lock(s)?.purge_expired(now);
        }
        Ok(n)
    }

    /// A snapshot of the live entries in order of last use, optionally only those with
    /// `share_key`, at most `limit`. Shards are locked one at a time.
    pub fn entries(&self, order: Order, share_key: Option<u32>, limit: Option<usize>) -> Result<Vec<Entry>> {
        self.seg.verify_size()?;
        let now = self.now_ms();
        let mut all: Vec<Entry> = Vec::new();
        for s in 0..self.params.geo.shards {
            let g = self.lock(s)?;
            let mut v = g.live_entries(now, share_key);
            if order == Order::LruFirst {
                v.reverse();
            }
            all.extend(v.into_iter().map(|c| self.entry(s, c)));
        }
        match order {
            Order::MruFirst => all.sort_by_key(|e| std::cmp::Reverse(e.used_ms)),
            Order::LruFirst => all.sort_by_key(|e| e.used_ms),
        }
        all.truncate(limit.unwrap_or(usize::MAX));
        Ok(all)
    }

    /// Up to `max` live entries from `from` on (the start when `None`), for walking a cache of
    /// any size in constant memory: shard after shard, each shard in `order` along its recency
    /// list (by link time: exact when the shard's refresh interval is 0, within it otherwise).
    /// Returns them and where to go on from (`None` at the end). Each call locks one shard
    /// once. A walk over a changing cache sees each entry that stays put once; one moved or
    /// removed meanwhile may be seen twice or not at all.
    pub fn scan(
        &self,
        order: Order,
        from: Option<ScanCursor>,
        max: usize,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>)> {
        self.seg.verify_size()?;
        let shards = self.params.geo.shards;
        let mut at = from.unwrap_or(ScanCursor {
            shard: 0,
            next: 0,
            linked: 0,
        });
        let mut out = Vec::new();
        let now = self.now_ms();
        while at.shard < shards && out.len() < max.max(1) {
            let g = self.lock(at.shard)?;
            let mru = order == Order::MruFirst;
            let (start, toward) = if mru {
                (g.head(), Toward::Tail)
            } else {
                (g.tail(), Toward::Head)
            };
            let id = if at.next == 0 {
                start
            } else if g.holds_entry(at.next) && g.use_of(at.next).linked == at.linked {
                at.next
            } else {
                // The entry to go on from moved or went: find the first one not yet passed
                // by its link time, which the list is ordered by.
                let mut w = g.walk(start, toward);
                loop {
                    let here = w.at();
                    match w.next() {
                        Some(id) => {
                            let l = g.use_of(id).linked;
                            if (mru && l <= at.linked) || (!mru && l >= at.linked) {
                                break here;
                            }
                        }
                        None => break here,
                    }
                }
            };
            let mut w = g.walk(id, toward);
            while out.len() < max.max(1) {
                let Some(id) = w.next() else { break };
                if !expired(g.meta(id).expires, now) {
                    if let Some(c) = g.copy(id) {
                        out.push(self.entry(at.shard, c));
                    }
                }
            }
            if w.ended() {
                at = ScanCursor {
                    shard: at.shard + 1,
                    next: 0,
                    linked: 0,
                };
            } else {
                at = ScanCursor {
                    shard: at.shard,
                    next: w.at(),
                    linked: g.use_of(w.at()).linked,
                };
            }
        }
        Ok((out, (at.shard < shards).then_some(at)))
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> Result<u64> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let mut n = 0;
        for s in 0..self.params.geo.shards {
            n += self.lock(s)?.clear();
        }
        Ok(n)
    }

    /// Live entries now (expired ones are reclaimed first).
    pub fn len(&self) -> Result<u64> {
        let now = self.now_ms();
        let mut n = 0;
        for s in 0..self.params.geo.shards {
            let g = self.lock(s)?;
            g.purge_expired(now);
            n += g.len() as u64;
        }
        Ok(n)
    }

    /// Whether the cache holds no live entry.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Counters summed over shards and processes (expired entries are reclaimed first).
    pub fn stats(&self) -> Result<Stats> {
        let now = self.now_ms();
        let mut st = Stats {
            capacity: self.capacity(),
            hits: self.lanes.total(Counter::Hits),
            misses: self.lanes.total(Counter::Misses),
            ..Stats::default()
        };
        for s in 0..self.params.geo.shards {
            let g = self.lock(s)?;
            g.purge_expired(now);
            st.inserts += g.counter(shard_header::INSERTS);
            st.updates += g.counter(shard_header::UPDATES);
            st.removes += g.counter(shard_header::REMOVES);
            st.evictions += g.counter(shard_header::EVICTIONS);
            st.expirations += g.counter(shard_header::EXPIRATIONS);
            st.recoveries += g.recoveries() as u64;
            st.len += g.len() as u64;
            if g.budget() {
                let u = g.store_use();
                st.bytes_live += u.live;
                st.bytes_used += u.used;
                st.bytes_free += u.free;
            } else {
                let stride = g.stride() as u64;
                st.bytes_live += g.len() as u64 * stride;
                st.bytes_used += g.len() as u64 * stride;
                st.bytes_free += (g.slot_count() - g.len()) as u64 * stride;
            }
        }
        st.max_bytes = self.max_bytes();
        Ok(st)
    }

    /// Each shard's refresh interval R, ms: the time within which the recency order of two
    /// uses is approximate (see the crate docs).
    pub fn refresh_intervals(&self) -> Vec<u64> {
        (0..self.params.geo.shards)
            .map(|s| self.shard(s).refresh_ms())
            .collect()
    }

    /// Verifies every structural invariant of every shard (index, lists, free space and counts
    /// agree; no cycles) and of the whole cache (its shared count of entries is the sum of the
    /// shards'), and reports what is wrong. Holds every shard's lock at once, taken in order.
    pub fn check(&self) -> Result<CheckReport> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let mut report = CheckReport {
            shards: self.params.geo.shards,
            ..CheckReport::default()
        };
        let guards = self.lock_all()?;
        for (s, g) in guards.iter().enumerate() {
            check_shard(g, s as u32, self.params.geo.shards, &mut report);
        }
        let (live, sum) = self.live_and_sum(&guards);
        if live != sum {
            report.problems.push(format!(
                "the cache counts {live} entries but its shards hold {sum}"
            ));
        }
        Ok(report)
    }

    /// Checks every shard and rebuilds each damaged one from its slots, as recovery after a
    /// dead lock holder does: entries that cannot be trusted (mid-write, lengths over the
    /// record, a key that does not match its hash or shard, a duplicate) are dropped.
    pub fn repair(&self) -> Result<RepairReport> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let shards = self.params.geo.shards;
        let mut r = RepairReport {
            before: CheckReport {
                shards,
                ..CheckReport::default()
            },
            after: CheckReport {
                shards,
                ..CheckReport::default()
            },
            ..RepairReport::default()
        };
        let guards = self.lock_all()?;
        for (s, g) in guards.iter().enumerate() {
            let s = s as u32;
            let mut one = CheckReport::default();
            check_shard(g, s, shards, &mut one);
            r.before.entries += one.entries;
            r.before.free += one.free;
            if !one.is_ok() {
                r.before.problems.append(&mut one.problems);
                let done = g.rebuild(|h| self.member(s).belongs(h));
                r.rebuilt += 1;
                r.kept += done.kept;
                r.dropped += done.dropped;
            }
            check_shard(g, s, shards, &mut r.after);
        }
        // The shared count last, once every shard's own count is right.
        let (live, sum) = self.live_and_sum(&guards);
        if live != sum {
            r.before.problems.push(format!(
                "the cache counts {live} entries but its shards hold {sum}"
            ));
            self.live_count().store(sum, Ordering::Relaxed);
            r.recounted = true;
        }
        Ok(r)
    }
}

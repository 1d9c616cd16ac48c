//! The invariant checker: walks every list, bucket and slot of a shard and reports each way in
//! which they disagree with each other.

use super::Shard;
use crate::key::spread_stored;
use crate::layout::{BUCKET_ENTRIES, F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use crate::report::CheckReport;
use std::sync::atomic::Ordering::Relaxed;

const IN_LIST: u8 = 1;
const IN_FREE: u8 = 2;
const IN_INDEX: u8 = 4;

/// One step of a walk along `list`: marks slot `id` with `bit` in `seen` (one entry per slot
/// handed out, and slot 0), or reports why the walk must stop there (a slot never handed out, or
/// one this walk reached before: a cycle) and returns false.
fn reach(seen: &mut [u8], id: u32, bit: u8, list: &str, p: &mut impl FnMut(String)) -> bool {
    let Some(mark) = seen.get_mut(id as usize) else {
        p(format!("{list} reaches never-used slot {id}"));
        return false;
    };
    if *mark & bit != 0 {
        p(format!("{list} has a cycle at slot {id}"));
        return false;
    }
    *mark |= bit;
    true
}

/// Checks one shard (index `shard` of `shards`), whose lock the caller holds.
pub(crate) fn check_shard(view: &Shard<'_>, shard: u32, shards: u32, report: &mut CheckReport) {
    let mut p = |msg: String| report.problems.push(format!("shard {shard}: {msg}"));
    if view.grows() {
        let raw = view.units_raw();
        if raw == 0 || raw > view.max_units() {
            p(format!(
                "the index has {raw} units, outside 1..={}",
                view.max_units()
            ));
        }
        let (nb, most) = (view.buckets_raw(), view.units() * crate::layout::UNIT_BUCKETS);
        if nb == 0 || nb > most {
            p(format!("the index uses {nb} buckets, outside 1..={most}"));
        }
    }
    let cap = view.slot_count();
    let n = view.handed_out();
    if n > cap {
        p(format!("{n} slots are marked handed out of {cap}"));
        return;
    }
    if view.undo_target() != 0 {
        p(format!(
            "the undo record names slot {} outside a locked operation",
            view.undo_target()
        ));
    }
    let mut seen = vec![0u8; n as usize + 1];
    let mut earliest = u64::MAX;

    // Recency list, head to tail.
    let mut count = 0u64;
    let mut prev = 0u32;
    let mut id = view.head();
    while id != 0 {
        if !reach(&mut seen, id, IN_LIST, "recency list", &mut p) {
            break;
        }
        count += 1;
        let m = view.meta(id);
        if m.expires != 0 {
            earliest = earliest.min(m.expires);
        }
        if m.flags & F_OCCUPIED == 0 {
            p(format!("slot {id} is on the recency list but not occupied"));
        }
        if m.flags & F_WRITING != 0 {
            p(format!(
                "slot {id} is marked mid-write outside a locked operation"
            ));
        }
        if !view.lengths_ok(&m) {
            p(format!(
                "slot {id} has key {} + value {} bytes over the record",
                m.klen, m.vlen
            ));
        }
        if view.budget() {
            match view.record_of(id) {
                None => p(format!("slot {id} names no whole record of the value store")),
                Some((pos, h)) => {
                    if let Some(msg) = view.check_hints_of(id, &m, pos, &h) {
                        p(msg);
                    }
                }
            }
        }
        if m.flags & F_BYTES_KEY != 0 {
            let key = view.key_of(id, &m);
            if let crate::key::Key::Bytes(b) = key {
                if crate::hash::fnv1a64(&b) != m.key {
                    p(format!("slot {id}: key bytes do not match the stored key hash"));
                }
            }
        }
        if view.prev(id) != prev {
            p(format!(
                "slot {id}: prev is {} but the list reaches it from {prev}",
                view.prev(id)
            ));
        }
        let h = spread_stored(m.key, m.flags & F_BYTES_KEY != 0);
        if shards > 1 && (h as u32) & (shards - 1) != shard {
            p(format!(
                "slot {id} holds a key that belongs to shard {}",
                (h as u32) & (shards - 1)
            ));
        }
        prev = id;
        id = view.next(id);
    }
    if view.earliest_expiry() > earliest {
        p(format!(
            "the earliest expiry is recorded as {} but slot entries expire at {earliest}",
            view.earliest_expiry()
        ));
    }
    if view.tail() != prev {
        p(format!("tail is {} but the list ends at {prev}", view.tail()));
    }
    if count != view.len() as u64 {
        p(format!(
            "count is {} but the recency list has {count}",
            view.len()
        ));
    }
    if view.budget() {
        view.check_store(count, &mut p);
    }

    // Free list.
    let mut free = 0u64;
    let mut id = view.free_head();
    while id != 0 {
        if !reach(&mut seen, id, IN_FREE, "free list", &mut p) {
            break;
        }
        if seen[id as usize] & IN_LIST != 0 {
            p(format!("slot {id} is both in use and free"));
        }
        if view.flags(id) != 0 {
            p(format!("free slot {id} has flags {:#x}", view.flags(id)));
        }
        free += 1;
        id = view.next(id);
    }
    if count + free != n as u64 {
        p(format!(
            "{} of {n} used slots are neither entries nor free (leaked)",
            n as u64 - (count + free).min(n as u64)
        ));
    }

    // Index: every entry names a listed slot whose key hashes to a home bucket at most `reach`
    // before it, with the right tag, each slot exactly once; spill words count what they should.
    let nb = view.nbuckets();
    let mut spilled = vec![(0u32, 0u32); nb as usize];
    let mut indexed = 0u64;
    for b in 0..nb {
        if view.seq(b).load(Relaxed) & 1 != 0 {
            p(format!("bucket {b} is marked mid-write"));
        }
        for pos in 0..BUCKET_ENTRIES {
            let e = view.entry(b, pos).load(Relaxed);
            if e == 0 {
                continue;
            }
            let id = view.entry_id(e);
            if id == 0 || id > n {
                p(format!(
                    "bucket {b} entry {pos} names slot {} beyond the used ones",
                    e
                ));
                continue;
            }
            if seen[id as usize] & IN_INDEX != 0 {
                p(format!("slot {id} is in the index twice (again in bucket {b})"));
                continue;
            }
            seen[id as usize] |= IN_INDEX;
            if seen[id as usize] & IN_LIST == 0 {
                p(format!("bucket {b} holds slot {id}, which is not an entry"));
                continue;
            }
            let m = view.meta(id);
            let h = spread_stored(m.key, m.flags & F_BYTES_KEY != 0);
            if view.entry_for(id, h) != e {
                p(format!("bucket {b} has the wrong tag for slot {id}"));
            }
            let home = view.home(h);
            let dist = (b + nb - home) % nb;
            if dist > view.reach() {
                p(format!(
                    "bucket {b} holds slot {id}, whose home is bucket {home}, {dist} before it"
                ));
                continue;
            }
            if dist > 0 {
                let s = &mut spilled[home as usize];
                s.0 += 1;
                s.1 = s.1.max(dist);
            }
            indexed += 1;
        }
    }
    for (b, &(count, far)) in spilled.iter().enumerate() {
        let (have, reach) = view.spill(b as u32);
        if have != count {
            p(format!(
                "bucket {b} counts {have} keys placed further on, but {count} are"
            ));
        }
        if reach < far {
            p(format!(
                "bucket {b} says its keys are at most {reach} buckets on, but one is {far} on"
            ));
        }
    }
    if indexed != count {
        p(format!(
            "the index holds {indexed} slots but the recency list {count}"
        ));
    }
    report.entries += count;
    report.free += free + (cap - n) as u64;
}

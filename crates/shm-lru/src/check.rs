//! The invariant checker: walks every list and chain of a shard and reports each way in which
//! they disagree with each other or with the slots.

use crate::key::spread_stored;
use crate::layout::{F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use crate::slots::ShardView;
use std::fmt;

/// What [`Cache::check`](crate::Cache::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Shards checked.
    pub shards: u32,
    /// Entries found on the recency lists.
    pub entries: u64,
    /// Slots found on the free lists or never used.
    pub free: u64,
    /// One line per violated invariant; empty when the cache is sound.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether no invariant is violated.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} shard(s), {} entries, {} free slots: {}",
            self.shards,
            self.entries,
            self.free,
            if self.is_ok() { "ok" } else { "PROBLEMS" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

const IN_LIST: u8 = 1;
const IN_FREE: u8 = 2;
const IN_INDEX: u8 = 4;

/// Checks one shard (index `shard` of `shards`), whose lock the caller holds.
pub(crate) fn check_shard(view: &ShardView, shard: u32, shards: u32, report: &mut CheckReport) {
    let mut p = |msg: String| report.problems.push(format!("shard {shard}: {msg}"));
    let cap = view.cap();
    let n = view.unused();
    let mut seen = vec![0u8; n as usize + 1];

    // Recency list, head to tail.
    let mut count = 0u64;
    let mut prev = 0u32;
    let mut id = view.head();
    while id != 0 {
        if id > n {
            p(format!("recency list reaches never-used slot {id}"));
            break;
        }
        if seen[id as usize] & IN_LIST != 0 {
            p(format!("recency list has a cycle at slot {id}"));
            break;
        }
        seen[id as usize] |= IN_LIST;
        count += 1;
        let m = view.meta(id);
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
    if view.tail() != prev {
        p(format!("tail is {} but the list ends at {prev}", view.tail()));
    }
    if count != view.len() as u64 {
        p(format!(
            "count is {} but the recency list has {count}",
            view.len()
        ));
    }

    // Free list.
    let mut free = 0u64;
    let mut id = view.free_head();
    while id != 0 {
        if id > n {
            p(format!("free list reaches never-used slot {id}"));
            break;
        }
        if seen[id as usize] & IN_FREE != 0 {
            p(format!("free list has a cycle at slot {id}"));
            break;
        }
        if seen[id as usize] & IN_LIST != 0 {
            p(format!("slot {id} is both in use and free"));
        }
        seen[id as usize] |= IN_FREE;
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

    // Index: every chain entry is a listed entry in its right bucket, each exactly once.
    let mut indexed = 0u64;
    for b in 0..view.nbuckets() {
        let mut id = view.bucket(b);
        let mut hops = 0u32;
        while id != 0 {
            if id > n {
                p(format!("bucket {b} reaches never-used slot {id}"));
                break;
            }
            if seen[id as usize] & IN_INDEX != 0 {
                p(format!("slot {id} is in the index twice (or a chain cycles)"));
                break;
            }
            seen[id as usize] |= IN_INDEX;
            if seen[id as usize] & IN_LIST == 0 {
                p(format!("bucket {b} holds slot {id}, which is not an entry"));
            }
            let m = view.meta(id);
            let want = view.bucket_of(spread_stored(m.key, m.flags & F_BYTES_KEY != 0));
            if want != b {
                p(format!("slot {id} is chained in bucket {b} but hashes to {want}"));
            }
            indexed += 1;
            hops += 1;
            if hops > cap {
                break;
            }
            id = view.chain(id);
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

#[cfg(test)]
mod tests {
    use super::{check_shard, CheckReport};
    use crate::key::KeyRef;
    use crate::list::tests::heap_shard;
    use crate::shard::{Hashed, SetMode, ValueKind};
    use crate::slots::ShardView;

    fn problems(v: &ShardView) -> Vec<String> {
        let mut r = CheckReport::default();
        check_shard(v, 0, 1, &mut r);
        r.problems
    }

    fn filled() -> crate::list::tests::HeapShard {
        let s = heap_shard(8, 16);
        for k in 0..5u64 {
            let key = Hashed::new(KeyRef::Hash(k));
            s.view
                .set(&key, b"v", ValueKind::Bytes, 0, SetMode::Upsert, false, k + 1)
                .unwrap();
        }
        s
    }

    #[test]
    fn a_sound_shard_passes_and_is_counted() {
        let s = filled();
        let mut r = CheckReport::default();
        check_shard(&s.view, 0, 1, &mut r);
        assert!(r.is_ok(), "{r}");
        assert_eq!((r.entries, r.free), (5, 3));
    }

    #[test]
    fn each_broken_invariant_is_reported() {
        type Break = fn(&ShardView);
        let cases: [(Break, &str); 6] = [
            (|v| v.set_next(v.head(), v.head()), "cycle"),
            (|v| v.set_len(4), "count is"),
            (|v| v.set_tail(v.head()), "tail is"),
            (|v| v.set_flags(v.head(), 0), "not occupied"),
            (|v| v.set_free_head(v.head()), "both in use and free"),
            (|v| v.zero_buckets(), "index holds 0"),
        ];
        for (i, (brk, want)) in cases.into_iter().enumerate() {
            let s = filled();
            brk(&s.view);
            let p = problems(&s.view);
            assert!(!p.is_empty(), "case {i}: nothing found");
            assert!(p.iter().any(|m| m.contains(want)), "case {i}: {p:?}");
        }
    }
}

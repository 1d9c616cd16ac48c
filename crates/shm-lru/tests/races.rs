//! Whole-cache operations racing each other in threads of one process: each entry is removed
//! exactly once, and the cache stays sound and keeps its capacity.

use crate::util::*;
use shm_lru::Cache;
use std::sync::Barrier;

fn fill(c: &Cache, n: u64, round: u64) {
    for k in 0..n {
        c.put(round << 32 | k, &k.to_le_bytes()).unwrap();
    }
}

/// Eviction by age locks each shard twice (once to choose, once to take); a `clear` between the
/// two must not make it take slots that `clear` already emptied.
#[test]
fn eviction_by_age_racing_clear_removes_each_entry_once() {
    let cap = 120_000;
    let c = cache("evict-clear", &sharded(4, cap, 16, true));
    let rounds = 6;
    for round in 0..rounds {
        fill(&c, cap, round);
        assert_eq!(c.len().unwrap(), cap);
        let start = Barrier::new(2);
        let (evicted, cleared) = std::thread::scope(|t| {
            let e = t.spawn(|| {
                start.wait();
                c.evict_used_before(u64::MAX, 1_000_000).unwrap()
            });
            let k = t.spawn(|| {
                start.wait();
                c.clear().unwrap()
            });
            (e.join().unwrap(), k.join().unwrap())
        });
        assert_sound(&c);
        assert_eq!(
            evicted.len() as u64 + cleared,
            cap,
            "round {round}: {} evicted and {cleared} cleared of {cap}",
            evicted.len()
        );
        assert_eq!(c.len().unwrap(), 0);
    }
    // The shared count of entries is right too: the cache holds its capacity again.
    fill(&c, cap, rounds);
    assert_eq!(c.len().unwrap(), cap);
    assert_sound(&c);
}

/// A scan that goes on from a cursor after the shard was cleared must not walk the emptied
/// slots' stale links.
#[test]
fn a_scan_resumed_after_clear_sees_no_cleared_entry() {
    let c = cache("scan-clear", &single_shard(1_000, 16, true));
    fill(&c, 1_000, 0);
    let (first, cursor) = c.scan(shm_lru::Order::LruFirst, None, 10).unwrap();
    assert_eq!(first.len(), 10);
    c.clear().unwrap();
    let (rest, _) = c.scan(shm_lru::Order::LruFirst, cursor, 10_000).unwrap();
    assert!(rest.is_empty(), "scan returned {} cleared entries", rest.len());
}

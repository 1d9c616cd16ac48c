//! A cache's life across real processes: many of them calling `open_or_create` on one name at
//! the same instant, and a cache destroyed while processes use it (theirs keeps working; the
//! next `open_or_create` makes a new one).

use crate::util::{self, assert_sound, child_var, result_u64, tell_parent, unique_posix, SegGuard};
use shm_lru::{Cache, CacheOptions, SegmentId};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The options every process passes to `open_or_create`.
fn shared_opts() -> CacheOptions {
    util::sharded(4, 4_096, 64, true)
}

fn joiner_key(id: u64) -> String {
    format!("joined-{id}")
}

/// Child role: on "go", calls `open_or_create`, writes its own key and bumps a shared counter,
/// then stays attached until "stop" and reports whether its call made the cache.
pub fn open_or_create_child() {
    let id: SegmentId = child_var("SEG").parse().unwrap();
    let me: u64 = child_var("ID").parse().unwrap();
    let stop = util::go_then_stop();
    let c = Cache::open_or_create(&id, &shared_opts()).unwrap();
    c.put(joiner_key(me).as_bytes(), &me.to_le_bytes()).unwrap();
    c.incr(&b"joiners"[..], 1, None).unwrap();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    tell_parent(&format!("RESULT id={me} created={}", c.segment().created() as u8));
}

#[test]
fn many_processes_calling_open_or_create_at_once_share_one_new_cache() {
    const KIDS: u64 = 8;
    for round in 0..4 {
        let id = unique_posix("race");
        let _g = SegGuard(id.clone());
        let mut kids = util::spawn_roles("open-or-create", &id, KIDS, util::run_seed());
        // All wait for "go", so that their calls start together.
        util::start_all(&mut kids);
        let results = util::stop_all(kids);
        assert_eq!(results.len() as u64, KIDS, "round {round}");
        let creators: Vec<u64> = results
            .iter()
            .filter(|r| result_u64(r, "created") == 1)
            .map(|r| result_u64(r, "id"))
            .collect();
        assert_eq!(creators.len(), 1, "round {round}: made by {creators:?}");
        // One cache, holding what every process wrote.
        let c = Cache::open(&id).unwrap();
        for me in 1..=KIDS {
            let v = c.get(joiner_key(me).as_bytes()).unwrap();
            assert_eq!(
                v,
                Some(me.to_le_bytes().to_vec()),
                "round {round}: process {me}'s key"
            );
        }
        assert_eq!(
            c.get(&b"joiners"[..]).unwrap().as_deref(),
            Some(KIDS.to_string().as_bytes()),
            "round {round}: every increment counted"
        );
        assert_eq!(c.len().unwrap(), KIDS + 1);
        assert_sound(&c);
    }
}

/// Child role: opens the cache, says so, then until "stop" writes and reads back keys of its own
/// in its mapping; reports its operations and whether it still sees `old` (written before the
/// cache was destroyed) and `new` (written to the cache made after).
pub fn keep_using_child() {
    let c = util::open_child_cache();
    let me: u64 = child_var("ID").parse().unwrap();
    let stop = util::go_then_stop();
    let mut ops = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let k = me * 1_000 + ops % 100;
        c.put(k, &ops.to_le_bytes()).unwrap();
        assert_eq!(c.get(k).unwrap(), Some(ops.to_le_bytes().to_vec()));
        ops += 1;
    }
    let old = c.get(&b"old"[..]).unwrap() == Some(b"before".to_vec());
    let new = c.contains(&b"new"[..]).unwrap();
    assert_sound(&c);
    tell_parent(&format!("RESULT ops={ops} old={} new={}", old as u8, new as u8));
}

#[test]
fn destroying_a_cache_in_use_is_safe_and_the_next_open_or_create_makes_a_new_one() {
    let id = unique_posix("destroy");
    let _g = SegGuard(id.clone());
    let old = Cache::open_or_create(&id, &shared_opts()).unwrap();
    assert!(old.segment().created());
    old.put(&b"old"[..], b"before").unwrap();
    let mut kids = util::spawn_roles("keep-using", &id, 2, util::run_seed());
    util::start_all(&mut kids);
    std::thread::sleep(Duration::from_millis(100));

    // Destroyed while two processes (and this one) are using it.
    assert!(old.destroy().unwrap());
    assert!(Cache::open(&id).is_err(), "the name is gone");
    // The next open_or_create makes a new, empty cache under the name.
    let new = Cache::open_or_create(&id, &shared_opts()).unwrap();
    assert!(new.segment().created(), "open_or_create made a new cache");
    assert_eq!(new.len().unwrap(), 0);
    assert_eq!(new.get(&b"old"[..]).unwrap(), None);
    new.put(&b"new"[..], b"after").unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // The processes that had it kept working on the old one, and never saw the new one.
    let results = util::stop_all(kids);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert!(result_u64(r, "ops") > 0, "{r:?}");
        assert_eq!(result_u64(r, "old"), 1, "{r:?}");
        assert_eq!(result_u64(r, "new"), 0, "{r:?}");
    }
    // So did this process's old handle.
    assert_eq!(old.get(&b"old"[..]).unwrap().as_deref(), Some(&b"before"[..]));
    assert!(!old.contains(&b"new"[..]).unwrap());
    assert_sound(&old);
    // And a process that opens the name now gets the new cache.
    let again = Cache::open_or_create(&id, &shared_opts()).unwrap();
    assert!(!again.segment().created());
    assert_eq!(again.get(&b"new"[..]).unwrap().as_deref(), Some(&b"after"[..]));
    assert_sound(&new);
}

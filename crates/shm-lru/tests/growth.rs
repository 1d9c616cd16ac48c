//! The index of a cache with a byte budget grows inside its budget: small values fill the
//! budget without a capacity; keys moved by a split are never missed by lock-free readers in
//! other processes; a writer killed in the middle of a split leaves a cache the next lock
//! holder repairs; a cache that does not evict grows by compacting instead of refusing; and
//! `check` names a unit count out of range.

use crate::budget::budget_opts;
use crate::util::{self, assert_sound, make_value, validate_value, Rng};
use shm_lru::layout::{self, shard_header};
use shm_lru::{Cache, CacheOptions, Key, Order};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// The units of shard `s`'s index, as its header holds them.
fn units(c: &Cache, s: u32) -> u32 {
    util::read_u32(
        c.segment(),
        util::shard_field(&c.geometry(), s, shard_header::UNITS),
    )
}

/// The buckets shard `s`'s index uses, as its header holds them.
fn buckets(c: &Cache, s: u32) -> u32 {
    util::read_u32(
        c.segment(),
        util::shard_field(&c.geometry(), s, shard_header::BUCKETS),
    )
}

fn one_shard(tag: &str, max_bytes: u64, evict: bool) -> util::TestCache {
    util::cache(
        tag,
        &CacheOptions {
            shards: Some(1),
            ..budget_opts(max_bytes, 64 << 10, evict)
        },
    )
}

/// The key of stable entry `n`, and its value: `n` names it.
fn stable(n: u64) -> (Vec<u8>, Vec<u8>) {
    (
        format!("stable-{n:016}").into_bytes(),
        make_value(n, 0, n, 100 + (n as usize * 37) % 200),
    )
}

#[test]
fn small_values_fill_the_budget_without_a_capacity() {
    // 4 MiB, values of 100–300 bytes with 24-byte keys, three budgets' worth of keys: the
    // index grows from its first units until the entries take the budget, as the records of
    // a trace would with a capacity chosen for them (1.5 bytes of segment per live byte).
    let c = one_shard("growth-small", 4 * MIB, true);
    let start = units(&c, 0);
    let mut rng = Rng::new(7);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < 12 * MIB {
        let len = 100 + rng.below(201) as usize;
        c.put(format!("{i:024}").as_bytes(), &vec![b'v'; len]).unwrap();
        written += 24 + len as u64;
        i += 1;
    }
    let st = c.stats().unwrap();
    let live: u64 = c
        .entries(Order::MruFirst, None, None)
        .unwrap()
        .iter()
        .map(|e| match &e.key {
            Key::Bytes(b) => b.len() as u64 + e.value.len() as u64,
            Key::Hash(_) => 8 + e.value.len() as u64,
        })
        .sum();
    let per_live = c.region_size() as f64 / live as f64;
    assert!(units(&c, 0) > 20 * start, "units {start} → {}", units(&c, 0));
    assert!(
        per_live <= 1.5,
        "{per_live:.3} bytes of segment per live byte: {st:?}"
    );
    assert!(
        st.evictions > 0,
        "three budgets' worth of keys evicted none: {st:?}"
    );
    assert_sound(&c);
}

#[test]
fn values_that_grow_larger_keep_the_index_and_fill_the_store() {
    // Small values first (the index grows), then values of 20 KB: the units stay, the ring
    // holds the large values, and everything is sound and reads back.
    let c = one_shard("growth-shift", 4 * MIB, true);
    for i in 0..20_000u64 {
        c.put(i, &[b's'; 120]).unwrap();
    }
    let grown = units(&c, 0);
    for i in 0..2_000u64 {
        let (k, v) = stable(i);
        c.put(k.as_slice(), &[v.as_slice(), &[0u8; 20_000]].concat())
            .unwrap();
    }
    assert_eq!(units(&c, 0), grown, "the index does not shrink");
    let st = c.stats().unwrap();
    assert!(
        st.bytes_live as f64 > 0.8 * (st.bytes_used + st.bytes_free) as f64,
        "{st:?}"
    );
    let (k, v) = stable(1_999);
    let got = c.get(k.as_slice()).unwrap().unwrap();
    assert_eq!(&got[..v.len()], &v[..]);
    assert_sound(&c);
}

#[test]
fn a_new_group_of_buckets_takes_the_ring_s_first_page_and_its_records_move_to_the_head() {
    // One shard of 8 MiB that evicts, filled in its first lap: the first keys' records are the
    // ring's first bytes. Each group the index takes adds a page to the bucket array at the
    // store's bottom, where those records were: they move to the head, and none is lost.
    let c = one_shard("growth-bottom", 8 * MIB, true);
    let g = c.geometry();
    let (start0, units0) = (util::ring_start(&c, 0), units(&c, 0));
    assert_eq!(start0, g.store_start(0) + units0.div_ceil(32) as u64 * 4096);
    let mut written = Vec::new();
    for i in 0..20_000u64 {
        let v = make_value(i, 1, i, 60 + (i as usize * 7) % 100);
        c.put(i, &v).unwrap();
        written.push(v);
    }
    let (start, u) = (util::ring_start(&c, 0), units(&c, 0));
    assert!(u.div_ceil(32) >= units0.div_ceil(32) + 4, "units {units0} → {u}");
    assert_eq!(start, g.store_start(0) + u.div_ceil(32) as u64 * 4096);
    // The bucket array's last byte is the ring's first, and the head and tail lie in the ring.
    assert_eq!(
        util::bucket_off(&g, 0, u - 1) + 128 + (u.div_ceil(32) * 32 - u) as u64 * 128,
        start
    );
    let st = c.stats().unwrap();
    assert_eq!(st.evictions, 0, "{st:?}");
    for (i, v) in written.iter().enumerate() {
        assert_eq!(
            c.peek(i as u64).unwrap().as_deref(),
            Some(v.as_slice()),
            "key {i}"
        );
    }
    // The first key's record was written at the ring's start, then moved into the ring as it
    // now is: its slot names it there.
    let id = c.slot_of(0u64).unwrap().unwrap();
    let named = util::read_u64(c.segment(), util::slot_field(&g, id, 40));
    assert!(
        g.store_start(0) + named >= start,
        "key 0's record at store offset {named}, below the ring's start {}",
        start - g.store_start(0)
    );
    assert_sound(&c);
}

#[test]
fn a_cache_that_does_not_evict_grows_its_index_by_compacting() {
    // Removals and writes of 900 keys in 3 MiB that does not evict: the store's first lap
    // ends with the index sized for fewer entries than are later live at once. A new key
    // then finds no slot; the cache walks its tail (moving live records) until the ring can
    // spare units, instead of refusing a write that fits.
    let c = one_shard("growth-noevict", 3 * MIB, false);
    let mut rng = Rng::new(11);
    let mut model = std::collections::HashMap::new();
    for i in 0..200_000u64 {
        let k = rng.below(900);
        if rng.below(2) == 0 {
            c.remove(k).unwrap();
            model.remove(&k);
        } else {
            let v = make_value(k, 1, i, 100 + rng.below(3_000) as usize);
            c.put(k, &v)
                .unwrap_or_else(|e| panic!("op {i}: {e}: {:?}", c.stats()));
            model.insert(k, v);
        }
    }
    // Then many more small entries than were ever live: the index must grow again, after laps
    // that left the tail a lap behind the head.
    for i in 0..6_000u64 {
        let k = 10_000 + i;
        let v = make_value(k, 2, i, 80);
        c.put(k, &v)
            .unwrap_or_else(|e| panic!("small {i}: {e}: {:?}", c.stats()));
        model.insert(k, v);
    }
    let st = c.stats().unwrap();
    assert_eq!(st.evictions, 0, "{st:?}");
    assert_eq!(st.len, model.len() as u64);
    for (k, v) in &model {
        assert_eq!(c.peek(*k).unwrap().as_deref(), Some(v.as_slice()), "key {k}");
    }
    assert_sound(&c);
}

/// A one-shard cache of `max_bytes` holding stable entries `0..n`; `evict` says whether it
/// evicts.
fn with_stable(tag: &str, max_bytes: u64, evict: bool, n: u64) -> util::TestCache {
    let c = one_shard(tag, max_bytes, evict);
    for i in 0..n {
        let (k, v) = stable(i);
        c.put(k.as_slice(), &v).unwrap();
    }
    c
}

/// A write after a repair reads back.
fn assert_writes_read_back(c: &Cache) {
    c.put(b"after".as_slice(), b"repair").unwrap();
    assert_eq!(
        c.get(b"after".as_slice()).unwrap().as_deref(),
        Some(&b"repair"[..])
    );
}

#[test]
fn check_names_a_unit_or_bucket_count_out_of_range_and_repair_mends_it() {
    let c = with_stable("growth-check", 2 * MIB, true, 1_000);
    let g = c.geometry();
    let at = util::shard_field(&g, 0, shard_header::UNITS);
    let was = units(&c, 0);
    for bad in [0, g.buckets_per_shard / layout::UNIT_BUCKETS + 1] {
        util::write_u32(c.segment(), at, bad);
        let report = c.check().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("units, outside")),
            "{bad}: {report}"
        );
        util::write_u32(c.segment(), at, was);
        assert!(c.check().unwrap().is_ok());
    }
    // A count of buckets in use beyond what the units have, or none: named, and mended by a
    // repair that keeps every entry.
    let at_b = util::shard_field(&g, 0, shard_header::BUCKETS);
    let was_b = buckets(&c, 0);
    let len = c.len().unwrap();
    let units_now = units(&c, 0);
    let most = g.buckets_per_shard;
    for bad in [0, units_now * layout::UNIT_BUCKETS + 1, most, most + 7, u32::MAX] {
        // Put the count back as the writers use it, then damage it.
        util::write_u32(c.segment(), at_b, was_b);
        util::write_u32(c.segment(), at_b, bad);
        // Keys homed by a count that is not the one they were placed by may be missed until a
        // repair, by readers and writers alike; no read returns another value or fails.
        for n in 0..1_000 {
            let (k, v) = stable(n);
            if let Some(got) = c.get(k.as_slice()).unwrap() {
                assert_eq!(got, v, "{bad}: {n}");
            }
        }
        let report = c.check().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("buckets, outside")),
            "{bad}: {report}"
        );
        let fixed = c.repair().unwrap();
        assert!(fixed.after.is_ok(), "{fixed}");
        assert_eq!(c.len().unwrap(), len);
        assert!(buckets(&c, 0) >= 1 && buckets(&c, 0) <= units(&c, 0) * layout::UNIT_BUCKETS);
    }
    util::write_u32(c.segment(), at_b, was_b);
    c.repair().unwrap();
    assert!(c.check().unwrap().is_ok());
    // Too many units: the ring shrinks over records; a repair keeps what it can, soundly.
    util::write_u32(c.segment(), at, was + 40);
    let fixed = c.repair().unwrap();
    assert!(fixed.after.is_ok(), "{fixed}");
    assert_sound(&c);
    assert_writes_read_back(&c);
}

#[test]
fn check_names_a_store_position_among_the_buckets_and_repair_mends_it() {
    // The tail or the head of the store at an offset below the ring's start (in the bucket
    // array): named by `check`; a repair starts the store again, and the cache goes on.
    let c = with_stable("growth-position", 2 * MIB, true, 100);
    let g = c.geometry();
    let start = util::ring_start(&c, 0) - g.store_start(0);
    // (Each within a lap of the other, the head not behind the tail: only the offset is wrong.)
    for (field, name, bad) in [
        (shard_header::STORE_TAIL, "tail", start - 64),
        (shard_header::STORE_HEAD, "head", g.store_bytes + start - 64),
    ] {
        let at = util::shard_field(&g, 0, field);
        let was = util::read_u64(c.segment(), at);
        util::write_u64(c.segment(), at, bad);
        let report = c.check().unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(&format!("value store {name}")) && p.contains("outside the ring")),
            "{name}: {report}"
        );
        util::write_u64(c.segment(), at, was);
        assert!(c.check().unwrap().is_ok());
    }
    let at = util::shard_field(&g, 0, shard_header::STORE_TAIL);
    util::write_u64(c.segment(), at, start - 64);
    let fixed = c.repair().unwrap();
    assert!(fixed.after.is_ok(), "{fixed}");
    assert_sound(&c);
    assert_writes_read_back(&c);
}

// ---- real processes ----

/// Stable keys of the multi-process tests.
const STABLE: u64 = 1_500;

/// Child role: reads the stable keys without the lock until told to stop; every one must be
/// found, whole and its own. Reports the reads and the unit count seen last.
pub fn stable_reader() {
    let c = util::open_child_cache();
    let mut rng = Rng::new(util::child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let mut reads = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            let n = rng.below(STABLE);
            let (k, _) = stable(n);
            let v = c
                .get(k.as_slice())
                .unwrap()
                .unwrap_or_else(|| panic!("stable key {n} was not found"));
            validate_value(n, &v).unwrap_or_else(|e| panic!("stable key {n}: {e}"));
            reads += 1;
        }
    }
    util::tell_parent(&format!("RESULT reads={reads}"));
}

/// Child role: inserts new small keys (its own, by `ID`) as fast as it can until killed, so
/// that the index splits again and again; in a cache that does not evict, until it is full.
pub fn inserter() {
    let c = util::open_child_cache();
    let id: u64 = util::child_var("ID").parse().unwrap();
    let mut rng = Rng::new(util::child_var("SEED").parse().unwrap());
    util::tell_parent("READY");
    let end = Instant::now() + Duration::from_secs(30);
    let mut i = 0u64;
    while Instant::now() < end {
        let len = 60 + rng.below(100) as usize;
        match c.put((id << 40) | i, &vec![b'n'; len]) {
            Ok(_) => {}
            Err(shm_lru::Error::Full) => util::wait_to_be_killed(),
            Err(e) => panic!("{e}"),
        }
        i += 1;
    }
}

/// A one-shard cache of `max_bytes` holding the stable keys; `evict` says whether it evicts.
fn stable_cache(tag: &str, max_bytes: u64, evict: bool) -> util::TestCache {
    with_stable(tag, max_bytes, evict, STABLE)
}

#[test]
fn keys_moved_by_growth_are_never_missed_by_readers_in_other_processes() {
    // 16 MiB holds the stable keys and some 80,000 small ones: nothing is evicted while this
    // process inserts 60,000 new keys, and the index moves to more buckets some ten times,
    // placing every stable key again each time, while two other processes read them without
    // the lock. Eight caches in turn, for more moves to be read across.
    for round in 0..8 {
        let c = stable_cache(&format!("growth-readers-{round}"), 16 * MIB, true);
        let id = c.segment().id().clone();
        let (units_before, buckets_before) = (units(&c, 0), buckets(&c, 0));
        let seed = util::run_seed() ^ round;
        let mut readers = util::spawn_roles("growth-stable-reader", &id, 2, seed);
        util::start_all(&mut readers);
        for i in 0..60_000u64 {
            c.put((1u64 << 50) | i, &[b'n'; 100]).unwrap();
            if i % 1_000 == 0 {
                // Let the readers run between bursts of writes.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let results = util::stop_all(readers);
        for r in &results {
            assert!(util::result_u64(r, "reads") > 10_000, "{r:?}");
        }
        let (u, b) = (units(&c, 0), buckets(&c, 0));
        assert!(u >= 4 * units_before, "units {units_before} → {u}");
        assert!(b >= 8 * buckets_before, "buckets {buckets_before} → {b}");
        assert_eq!(c.stats().unwrap().evictions, 0);
        assert_sound(&c);
    }
}

#[test]
fn a_writer_killed_while_it_places_the_keys_again_leaves_a_cache_the_next_holder_repairs() {
    // Inserters grow the index until killed; after each kill, the buckets in use tell whether
    // it died while the index moved on to more buckets (the windows of the buckets not yet
    // written are open until each is; an insert opens one or two), and the store's tail
    // whether it died walking the tail past a new page of buckets: in this store's first lap
    // nothing else moves the tail, a walk that ends passes the page's end by less than the
    // largest record (under 512 bytes), and one that gives up (the head too near the slots)
    // cannot while the head is in the store's first half, so a tail that moved since the last
    // kill and stops inside the page, short of its end by more than that, was cut short.
    // Readers check the stable keys throughout, the next inserter recovers the cache. An index grows fast while its store first fills, then once a lap:
    // when it has stopped growing, the attempt ends (the cache checked sound) and another
    // starts on a new cache, until inserters died moving the index on five times and walking
    // the tail three.
    const MOVES: u32 = 5;
    const WALKS: u32 = 3;
    let base = util::run_seed();
    let mut rng = Rng::new(base);
    let began = Instant::now();
    let (mut kills, mut in_moves, mut in_walks) = (0u64, 0u32, 0u32);
    for attempt in 0u64.. {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "inserters died placing the keys again {in_moves} times and walking the tail \
             {in_walks} in {kills} kills over {attempt} caches"
        );
        // A cache that does not evict, so that the stable keys stay whatever the inserters
        // write (they stop at a full cache).
        let c = stable_cache(&format!("growth-kill-{attempt}"), 48 * MIB, false);
        let id = c.segment().id().clone();
        let g = c.geometry();
        let mut readers = util::spawn_roles("growth-stable-reader", &id, 2, base ^ attempt);
        util::start_all(&mut readers);
        let (mut here, mut walks, mut same, mut last) = (0, 0, 0, buckets(&c, 0));
        let field = |f| util::read_u64(c.segment(), util::shard_field(&g, 0, f));
        let mut last_tail = field(shard_header::STORE_TAIL);
        let started = Instant::now();
        while (in_moves + here < MOVES || in_walks + walks < WALKS)
            && same < 20
            && field(shard_header::STORE_HEAD) < g.store_bytes / 2
            && started.elapsed() < Duration::from_secs(15)
        {
            let mut w = util::spawn_role("growth-inserter", &id, 1 + kills, base ^ kills);
            util::wait_for_line(&mut w.1, "READY");
            std::thread::sleep(Duration::from_micros(2_000 + rng.below(20_000)));
            util::kill_child(&mut w.0);
            kills += 1;
            let u = buckets(&c, 0).clamp(1, g.buckets_per_shard);
            let open = (0..u)
                .filter(|&b| util::read_u32(c.segment(), util::bucket_off(&g, 0, b)) & 1 == 1)
                .count() as u32;
            if u > 8 && open > 2 {
                here += 1;
            }
            let (tail, head) = (field(shard_header::STORE_TAIL), field(shard_header::STORE_HEAD));
            let start = layout::index_bucket_bytes(units(&c, 0));
            if tail != last_tail && head < g.store_bytes / 2 && (start + 512..start + 4096).contains(&tail) {
                walks += 1;
            }
            last_tail = tail;
            same = if u == last { same + 1 } else { 0 };
            last = u;
        }
        let st = c.stats().unwrap();
        let results = util::stop_all(readers);
        for r in &results {
            assert!(util::result_u64(r, "reads") > 1_000, "{r:?}");
        }
        for n in 0..STABLE {
            let (k, _) = stable(n);
            validate_value(n, &c.peek(k.as_slice()).unwrap().unwrap()).unwrap();
        }
        assert_sound(&c);
        if here + walks > 0 {
            assert!(st.recoveries > 0, "{st:?}");
        }
        in_moves += here;
        in_walks += walks;
        if in_moves >= MOVES && in_walks >= WALKS {
            eprintln!(
                "{kills} kills over {} caches, {in_moves} of them placing keys again, \
                 {in_walks} walking the tail",
                attempt + 1
            );
            break;
        }
    }
}

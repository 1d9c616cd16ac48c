//! Lock-free readers against real processes: writers churning the same shards and dying by
//! SIGKILL, and a process scribbling random bytes over buckets and slots. Also the recency
//! guarantees with a refresh interval driven up by real promotions.

use crate::util::{
    self, assert_sound, cache_with_clock, child_var, kill_child, make_value, open_child_cache, result_u64,
    tell_parent, validate_value, wait_for_line, Rng, TestCache,
};
use shm_lru::internals::robust_mutex::{self, Locked};
use shm_lru::layout::shard_header;
use shm_lru::{Cache, Key, Order, SegmentId, SetOptions};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Keys filled before the readers start and never deleted or overwritten: u64 keys
/// `0..STABLE` and byte keys `s{n}`.
const STABLE: u64 = 200;
/// Keys the writers insert, overwrite and remove: `CHURN_BASE..CHURN_BASE + CHURN`.
const CHURN_BASE: u64 = 10_000;
const CHURN: u64 = 400;
const RECORD: u32 = 160;

fn stable_key(n: u64) -> Key {
    if n % 2 == 0 {
        Key::Hash(n)
    } else {
        Key::Bytes(format!("s{n}").into_bytes())
    }
}

fn churn_key(n: u64) -> Key {
    if n % 3 == 0 {
        Key::Bytes(format!("churn-{n}").into_bytes())
    } else {
        Key::Hash(CHURN_BASE + n)
    }
}

/// Child role: reads stable keys until told to stop; every read must find its key with a whole
/// value. Reports reads and the slowest read.
pub fn stable_reader() {
    let c = open_child_cache();
    let mut rng = Rng::new(child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let (mut reads, mut slowest) = (0u64, Duration::ZERO);
    let mut buf = vec![0u8; RECORD as usize];
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let n = rng.below(STABLE);
            let k = stable_key(n);
            let t = Instant::now();
            let got = if n % 4 < 2 {
                c.get(k.as_ref()).unwrap()
            } else {
                c.get_into(k.as_ref(), &mut buf)
                    .unwrap()
                    .map(|(len, _)| buf[..len].to_vec())
            };
            slowest = slowest.max(t.elapsed());
            let v = got.unwrap_or_else(|| panic!("stable key {k:?} was not found"));
            if let Err(e) = validate_value(n, &v) {
                panic!("stable key {k:?}: {e}");
            }
            reads += 1;
        }
    }
    tell_parent(&format!("RESULT reads={reads} max_us={}", slowest.as_micros()));
}

/// Child role: inserts, overwrites and removes churn keys as fast as it can until killed.
pub fn churn_writer() {
    let c = open_child_cache();
    let id: u32 = child_var("ID").parse().unwrap();
    let mut rng = Rng::new(child_var("SEED").parse().unwrap());
    tell_parent("READY");
    let end = Instant::now() + Duration::from_secs(30);
    let mut seq = 0;
    while Instant::now() < end {
        let n = rng.below(CHURN);
        let k = churn_key(n);
        if rng.below(3) == 0 {
            c.remove(k.as_ref()).unwrap();
        } else {
            seq += 1;
            let extra = rng.below(100) as usize;
            c.put(k.as_ref(), &make_value(CHURN_BASE + n, id, seq, extra))
                .unwrap();
        }
    }
}

/// A cache of two shards of 1024 records holding the stable keys, and its segment's id.
fn stable_cache(tag: &str, evict_on_full: bool) -> (TestCache, SegmentId) {
    let c = util::cache(tag, &util::sharded(2, 1024, RECORD, evict_on_full));
    for n in 0..STABLE {
        c.put(stable_key(n).as_ref(), &make_value(n, 0, n, (n % 90) as usize))
            .unwrap();
    }
    let id = c.segment().id().clone();
    (c, id)
}

#[test]
fn readers_find_every_key_nobody_deletes_while_writers_churn_and_are_killed() {
    // Two shards, both holding stable and churned keys; no eviction, so a stable key can only
    // go missing by a reader's mistake.
    let (c, id) = stable_cache("lockfree-churn", false);
    let base = util::run_seed();
    let mut readers = util::spawn_roles("stable-reader", &id, 3, base);
    util::start_all(&mut readers);

    let mut rng = Rng::new(base);
    let mut kills = 0u64;
    let began = Instant::now();
    // Three seconds of kills at least, and on until one of them caught a writer holding a
    // shard's lock (stats() takes every lock, so a dead holder's shard is rebuilt and counted
    // here): a kill test that kills nobody mid-write proves nothing. Bounded, so that a
    // recovery that never comes fails the test instead of hanging it.
    let mut recoveries = 0;
    while began.elapsed() < Duration::from_millis(3_000) || recoveries == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{kills} writers killed in a minute and none held a lock"
        );
        let mut writers: Vec<_> = (0..2)
            .map(|w| {
                util::spawn_role(
                    "churn-writer",
                    &id,
                    100 + kills * 2 + w,
                    base ^ (kills * 2 + w + 11),
                )
            })
            .collect();
        for (_, out) in writers.iter_mut() {
            wait_for_line(out, "READY");
        }
        std::thread::sleep(Duration::from_millis(5 + rng.below(40)));
        for (w, _) in writers.iter_mut() {
            kill_child(w);
            kills += 1;
        }
        recoveries = c.stats().unwrap().recoveries;
    }
    let results = util::stop_all(readers);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(result_u64(r, "reads") > 10_000, "{r:?}");
        assert!(result_u64(r, "max_us") < 2_000_000, "a read took over 2 s: {r:?}");
    }
    // Every stable key is still there, whole; the shards are sound after the recoveries.
    for n in 0..STABLE {
        let v = c
            .peek(stable_key(n).as_ref())
            .unwrap()
            .expect("stable key present");
        validate_value(n, &v).unwrap();
    }
    assert_sound(&c);
    let recoveries = c.stats().unwrap().recoveries;
    assert!(recoveries >= 1, "no writer died holding a lock in {kills} kills");
    eprintln!(
        "{kills} writers killed, {recoveries} recoveries, reads {:?}",
        results.iter().map(|r| result_u64(r, "reads")).collect::<Vec<_>>()
    );
}

/// Child role: reads random keys (stable, churned, never written) until told to stop. Any answer
/// is acceptable — a value, a miss, a typed error — but the process must not crash, and no read
/// may take long.
pub fn any_reader() {
    let c = open_child_cache();
    let mut rng = Rng::new(child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let (mut ops, mut values, mut errors, mut slowest) = (0u64, 0u64, 0u64, Duration::ZERO);
    let mut buf = vec![0u8; RECORD as usize];
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let n = rng.below(STABLE * 2);
            let k = stable_key(n);
            let t = Instant::now();
            let r = match rng.below(4) {
                0 => c.get(k.as_ref()).map(|v| v.is_some()),
                1 => c.get_into(k.as_ref(), &mut buf).map(|v| v.is_some()),
                2 => c.contains(k.as_ref()),
                _ => c.peek(k.as_ref()).map(|v| v.is_some()),
            };
            slowest = slowest.max(t.elapsed());
            match r {
                Ok(true) => values += 1,
                Ok(false) => {}
                Err(e) => {
                    assert!(e.code().starts_with("ERR_SHM_"), "{e}");
                    errors += 1;
                }
            }
            ops += 1;
        }
    }
    tell_parent(&format!(
        "RESULT ops={ops} values={values} errors={errors} max_us={}",
        slowest.as_micros()
    ));
}

/// Child role: writes random words over the buckets and slots (never the headers, which hold
/// the mutexes; with a byte budget, also the unit and bucket counts of the shards' indexes, in
/// their headers) until told to stop.
pub fn scribbler() {
    let c = open_child_cache();
    let g = c.geometry();
    let mut rng = Rng::new(child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let base = c.segment().as_ptr();
    let (from, to) = (g.buckets_off, g.total);
    let mut writes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for i in 0..64 {
            let mut off = from + (rng.below((to - from) / 4)) * 4;
            if g.has_store() && i < 2 {
                use shm_lru::layout::shard_header::{BUCKETS, UNITS};
                let s = rng.below(g.shards as u64) as u32;
                off = util::shard_field(&g, s, if i == 0 { UNITS } else { BUCKETS });
            }
            let v = match rng.below(4) {
                0 => 0,
                1 => rng.below(16) as u32,
                2 => rng.below(g.slots_per_shard.max(g.buckets_per_shard) as u64 + 2) as u32,
                _ => rng.next() as u32,
            };
            // SAFETY: `off` is a 4-aligned offset inside the region's buckets and slots, which
            // `c` keeps mapped; every process accesses these words atomically.
            unsafe { std::sync::atomic::AtomicU32::from_ptr(base.add(off as usize).cast()) }
                .store(v, Ordering::Relaxed);
            writes += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    tell_parent(&format!("RESULT writes={writes}"));
}

#[test]
fn random_bytes_in_buckets_and_slots_never_crash_or_hang_a_reader() {
    let (c, id) = stable_cache("lockfree-scribble", true);
    scribbled_under_readers(&c, &id);
}

#[test]
fn random_bytes_in_a_value_store_never_crash_or_hang_a_reader() {
    // A cache with a byte budget: the scribbler's range runs through the value store too, so
    // readers meet slots naming records anywhere and records with any header.
    let c = util::cache(
        "lockfree-scribble-budget",
        &shm_lru::CacheOptions {
            shards: Some(2),
            ..crate::budget::budget_opts(1 << 20, 64 << 10, true)
        },
    );
    for n in 0..STABLE {
        c.put(stable_key(n).as_ref(), &make_value(n, 0, n, (n % 90) as usize))
            .unwrap();
    }
    let id = c.segment().id().clone();
    scribbled_under_readers(&c, &id);
}

/// Readers of the stable keys while a process scribbles over the index, slots and values; then
/// `check` must name the damage and `repair` mend it.
fn scribbled_under_readers(c: &Cache, id: &SegmentId) {
    let id = id.clone();
    let base = util::run_seed();
    let mut kids = util::spawn_roles("any-reader", &id, 2, base);
    kids.push(util::spawn_role("scribbler", &id, 9, base ^ 99));
    util::start_all(&mut kids);
    std::thread::sleep(Duration::from_millis(1_500));
    let results = util::stop_all(kids);
    let (readers, scribbler) = results.split_at(2);
    assert!(result_u64(&scribbler[0], "writes") > 100, "{scribbler:?}");
    for r in readers {
        assert!(result_u64(r, "ops") > 10_000, "{r:?}");
        assert!(result_u64(r, "max_us") < 1_000_000, "a read took over 1 s: {r:?}");
    }
    // The damage is named, and repair makes the cache sound again.
    let report = c.check().unwrap();
    assert!(!report.is_ok(), "random writes went unnoticed");
    let fixed = c.repair().unwrap();
    assert!(fixed.rebuilt > 0, "{fixed}");
    assert!(fixed.after.is_ok(), "{fixed}\nafter the repair: {}", fixed.after);
    assert_sound(c);
    // And it works: what it holds now reads back as written.
    c.put(77u64, b"after").unwrap();
    assert_eq!(c.get(77u64).unwrap().as_deref(), Some(&b"after"[..]));
}

/// Drives shard 0's refresh interval up with real promotions (reads of entries linked at least
/// R ago, many per window of the manual clock) until it is at least `want` ms.
fn raise_refresh(c: &Cache, clock: &std::sync::atomic::AtomicU64, keys: u64, want: u64) {
    for _ in 0..20 {
        if c.refresh_intervals()[0] >= want {
            return;
        }
        clock.fetch_add(120, Ordering::Relaxed);
        for k in 0..keys {
            c.get(k).unwrap();
        }
    }
    panic!("refresh interval stuck at {:?}", c.refresh_intervals());
}

/// A single-shard cache read through a manual clock, holding keys 0..n (values "v"), evicting
/// when full.
fn filled_single_shard(tag: &str, n: u64) -> (util::TestCache, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let (t, clock) = cache_with_clock(tag, &util::single_shard(n, 16, true));
    for k in 0..n {
        t.cache.put(k, b"v").unwrap();
    }
    (t, clock)
}

#[test]
fn a_busy_new_shard_lengthens_its_refresh_interval_before_its_window_ends() {
    // A new shard is a strict LRU (R = 0), so every read in a new millisecond promotes. Once a
    // window's budget of promotions is spent, the window closes early and R grows: here within
    // one millisecond of the manual clock, far less than a window.
    const N: u64 = 5_000;
    let (t, clock) = filled_single_shard("recency-budget", N);
    let c = &t.cache;
    assert_eq!(c.refresh_intervals(), vec![0]);
    clock.fetch_add(1, Ordering::Relaxed);
    for k in 0..N {
        assert!(c.get(k).unwrap().is_some());
    }
    let r = c.refresh_intervals()[0];
    assert!(
        r > 0,
        "still a strict LRU after {N} promotions in one millisecond"
    );
    // And the order stays sound.
    assert_sound(c);
}

#[test]
fn with_a_long_refresh_interval_uses_far_apart_are_still_evicted_in_order() {
    const N: u64 = 8_000;
    let (t, clock) = filled_single_shard("recency-r", N);
    let c = &t.cache;
    assert_eq!(
        c.refresh_intervals(),
        vec![0],
        "a new cache starts as a strict LRU"
    );
    raise_refresh(c, &clock, N, 32);
    let r = c.refresh_intervals()[0];
    assert!(r >= 32, "{r}");

    // Ten keys used 2R + 1 ms apart, after everything else.
    clock.fetch_add(3 * r, Ordering::Relaxed);
    let marked: Vec<u64> = (0..10).map(|i| 100 + i * 37).collect();
    for &k in &marked {
        clock.fetch_add(2 * r + 1, Ordering::Relaxed);
        assert!(c.get(k).unwrap().is_some());
    }
    // Eviction by age never takes an entry used at or after its cutoff: marked key i was used
    // at (i + 1) steps after the start, now is 10 steps after it, so keys 4.. stay.
    let cutoff = c.now_ms() - 5 * (2 * r + 1);
    let gone = c.evict_used_before(cutoff, usize::MAX).unwrap();
    assert!(gone.iter().all(|e| e.used_ms < cutoff));
    assert!(
        gone.windows(2).all(|w| w[0].used_ms <= w[1].used_ms),
        "oldest first"
    );
    let left: Vec<u64> = marked
        .iter()
        .copied()
        .filter(|&k| c.contains(k).unwrap())
        .collect();
    assert_eq!(
        left,
        marked[4..].to_vec(),
        "exactly the marked keys used after the cutoff stay"
    );
    // Insert new keys until the marked ones go: they leave in the order of their uses.
    let mut order = Vec::new();
    let mut k = 1_000_000u64;
    while order.len() < left.len() {
        c.set(k, b"n", &SetOptions::default()).unwrap();
        k += 1;
        for &m in &left {
            if !order.contains(&m) && !c.contains(m).unwrap() {
                order.push(m);
            }
        }
        assert!(k < 1_000_000 + 2 * N, "the marked keys were never evicted");
    }
    assert_eq!(order, left, "uses more than 2R apart are evicted oldest first");
    assert_sound(c);
}

#[test]
fn in_a_busy_shard_hits_record_their_use_once_per_grain_never_before_it() {
    const N: u64 = 8_000;
    let (t, clock) = filled_single_shard("recency-grain", N);
    let c = &t.cache;
    raise_refresh(c, &clock, N, 1024);
    let used = |k: u64| {
        let slot = c.slot_of(k).unwrap().expect("present");
        c.slot_entry(slot as u64).unwrap().used_ms
    };
    // Past the refresh interval of every entry, so that the first hit promotes, which records
    // the time itself (and may close the promotion-rate window, changing R).
    let r = c.refresh_intervals()[0];
    let promoted = clock.load(Ordering::Relaxed) + 2 * r;
    clock.store(promoted, Ordering::Relaxed);
    let k = 4_321;
    assert!(c.get(k).unwrap().is_some());
    assert_eq!(used(k), promoted, "a promotion records the time itself");
    // The grain: the largest power of two at most R / 16, at most 256 ms.
    let r = c.refresh_intervals()[0];
    let grain = 1u64 << (63 - (r / 16).clamp(1, 256).leading_zeros());
    assert!(grain >= 32, "R = {r}, grain {grain}");
    // The next hits, well within R of the promotion: each records the last millisecond of its
    // grain, unless that is recorded already.
    let start = (promoted / grain + 1) * grain;
    clock.store(start + 3, Ordering::Relaxed);
    assert!(c.get(k).unwrap().is_some());
    let first = used(k);
    assert_eq!(first, start + grain - 1, "the end of the hit's grain");
    for d in [5, grain / 2, grain - 1] {
        clock.store(start + d, Ordering::Relaxed);
        assert!(c.get(k).unwrap().is_some());
        assert_eq!(
            used(k),
            first,
            "a hit within a recorded grain changes nothing ({d} ms in)"
        );
    }
    clock.store(start + grain + 1, Ordering::Relaxed);
    assert!(c.get(k).unwrap().is_some());
    assert_eq!(used(k), start + 2 * grain - 1, "the next grain's hit moves it on");
    assert_eq!(c.refresh_intervals()[0], r, "no promotion since");
    // Never before the real use: an eviction by age with its cutoff at the last hit keeps it,
    // one a grain later takes it.
    let gone = c.evict_used_before(start + grain + 1, usize::MAX).unwrap();
    assert!(
        gone.iter().all(|e| e.key != Key::Hash(k)),
        "evicted although used at the cutoff"
    );
    let gone = c.evict_used_before(start + 2 * grain, usize::MAX).unwrap();
    assert!(
        gone.iter().any(|e| e.key == Key::Hash(k)),
        "kept although unused for a grain"
    );
    assert_sound(c);
}

#[test]
fn a_shard_gone_quiet_halves_its_refresh_interval_window_by_window_back_to_a_strict_lru() {
    const N: u64 = 8_000;
    let (t, clock) = filled_single_shard("recency-quiet", N);
    let c = &t.cache;
    raise_refresh(c, &clock, N, 64);
    // Quiet: one promotion per window (a read of an entry linked more than R ago), far below
    // the rate that keeps R up, so each window that closes halves it.
    let mut r = c.refresh_intervals()[0];
    let mut windows = 0;
    let mut k = 0;
    while r > 0 {
        windows += 1;
        assert!(windows <= 40, "R still {r} ms after {windows} quiet windows");
        clock.fetch_add(r.max(100) + 1, Ordering::Relaxed);
        assert!(c.get(k).unwrap().is_some());
        k += 1;
        let next = c.refresh_intervals()[0];
        assert_eq!(next, r / 2, "a quiet window halves R (window {windows})");
        r = next;
    }
    // A strict LRU again: every read of an entry not at the head moves it there.
    clock.fetch_add(1, Ordering::Relaxed);
    assert!(c.get(N - 1).unwrap().is_some());
    let head = c.entries(Order::MruFirst, None, Some(1)).unwrap();
    assert_eq!(head[0].key, Key::Hash(N - 1));
    assert_sound(c);
}

/// Sets shard 0's refresh interval to `r` ms and starts a new promotion-rate window at `now`,
/// so that the promotions of the next 100 ms of the clock leave R as it is.
fn pin_refresh(c: &Cache, r: u32, now: u64) {
    let (seg, g) = (c.segment(), c.geometry());
    util::write_u32(seg, util::shard_field(&g, 0, shard_header::REFRESH_MS), r);
    util::write_u64(seg, util::shard_field(&g, 0, shard_header::WINDOW_START), now);
    util::write_u32(seg, util::shard_field(&g, 0, shard_header::WINDOW_PROMOTIONS), 0);
}

#[test]
fn when_an_entry_went_unused_for_2r_eviction_takes_one_unused_for_r() {
    // A full shard with R pinned (its grain is 8 ms), and a random mix of hits, updates and
    // inserts, with the clock moving by a few ms (so that the shard
    // turns over within about 2R), sometimes up to R / 2, now and then by a pause of 2R to 4R
    // (after which every entry is old). At every eviction: when some entry was not used within
    // 2R, the victim was not used within R; and no entry was used more than 2R before it.
    const CAP: u64 = 16;
    const R: u64 = 128;
    let (t, clock) = cache_with_clock("recency-2r", &util::single_shard(CAP, 16, true));
    let c = &t.cache;
    let seed = util::run_seed();
    let mut rng = Rng::new(seed);
    let mut next_key = 0u64;
    let (mut stale_seen, mut evictions) = (0u64, 0u64);
    for step in 0..30_000u64 {
        let dt = match rng.below(100) {
            0..89 => rng.below(3),
            89..99 => 1 + rng.below(R / 2),
            _ => 2 * R + rng.below(2 * R),
        };
        let now = clock.fetch_add(dt, Ordering::Relaxed) + dt;
        pin_refresh(c, R as u32, now);
        let all = c.entries(Order::MruFirst, None, None).unwrap();
        let r = rng.below(10);
        if all.is_empty() || r < 4 {
            // An insert: evicts when the shard is full.
            let out = c.set(next_key, b"n", &SetOptions::default()).unwrap();
            assert!(out.inserted);
            next_key += 1;
            if out.evicted {
                evictions += 1;
                let victim = all
                    .iter()
                    .find(|e| !c.contains(e.key.as_ref()).unwrap())
                    .expect("an entry left");
                let oldest = all.iter().map(|e| e.used_ms).min().unwrap();
                let what = format!(
                    "step {step} (seed {seed}), R = {R}: evicted {:?} used {} ms ago (as \
                     recorded: up to a grain late); the oldest use was {} ms ago",
                    victim.key,
                    now as i64 - victim.used_ms as i64,
                    now as i64 - oldest as i64
                );
                if oldest + 2 * R < now {
                    stale_seen += 1;
                    assert!(victim.used_ms + R <= now, "{what}");
                }
                assert!(victim.used_ms <= oldest + 2 * R, "{what}");
            }
        } else {
            let e = &all[rng.below(all.len() as u64) as usize];
            if r < 9 {
                assert!(c.get(e.key.as_ref()).unwrap().is_some());
            } else {
                c.put(e.key.as_ref(), b"u").unwrap();
            }
        }
        assert_eq!(c.refresh_intervals()[0], R, "R stayed pinned");
    }
    assert_sound(c);
    eprintln!("{evictions} evictions, {stale_seen} with an entry unused for 2R");
    assert!(
        stale_seen > 1_000,
        "only {stale_seen} evictions met an entry unused for 2R"
    );
}

#[test]
fn an_entry_whose_promotion_found_the_lock_taken_gets_its_second_chance_at_eviction() {
    const R: u64 = 128;
    let (t, clock) = cache_with_clock("recency-late", &util::single_shard(4, 16, true));
    let c = &t.cache;
    let start = clock.load(Ordering::Relaxed);
    pin_refresh(c, R as u32, start);
    for k in 0..4u64 {
        c.put(k, b"v").unwrap();
    }
    // Key 0, the tail, read 5R after it was linked while a writer holds the lock: due for a
    // move, it stays where it is (the tail) with its use recorded.
    clock.store(start + 5 * R, Ordering::Relaxed);
    let (seg, g) = (c.segment().clone(), c.geometry());
    let mutex = util::shard_mutex(&seg, &g, 0);
    // SAFETY: the shard mutex of a validated cache that `c` keeps mapped; this thread takes
    // it and gives it back below, and the read only tries it.
    assert_eq!(unsafe { robust_mutex::lock(mutex) }.unwrap(), Locked::Clean);
    assert!(c.get(0u64).unwrap().is_some());
    // SAFETY: this thread holds it (taken just above).
    unsafe { robust_mutex::unlock(mutex) }.unwrap();
    // Long after (its use is older than R): the eviction hand gives it its second chance and
    // takes key 1, used 5R before it.
    clock.store(start + 10 * R, Ordering::Relaxed);
    assert!(c.set(100u64, b"n", &SetOptions::default()).unwrap().evicted);
    assert!(
        c.contains(0u64).unwrap(),
        "a used entry was evicted before an unused one"
    );
    assert!(!c.contains(1u64).unwrap());
    assert_eq!(c.refresh_intervals()[0], R);
    assert_sound(c);
}

//! Caches with a byte budget: values of any size up to `max_value_size` in one memory budget,
//! every operation of the fixed-record cache on them, eviction and compaction of the value
//! store, the byte counts, and the options that are refused.

use crate::util::{self, assert_sound, cache_with_clock, make_value, validate_value, Rng, TestCache};
use shm_lru::{Cache, CacheOptions, Error, Key, Order, SetMode, SetOptions, ValueKind};
use std::sync::atomic::Ordering;

/// A budget cache of `max_bytes` with the given largest entry, evicting or not.
pub fn budget_opts(max_bytes: u64, max_value: u64, evict: bool) -> CacheOptions {
    CacheOptions {
        max_value_size: max_value,
        evict_on_full: evict,
        ..CacheOptions::budget(max_bytes)
    }
}

fn budget_cache(tag: &str, max_bytes: u64, max_value: u64, evict: bool) -> TestCache {
    util::cache(tag, &budget_opts(max_bytes, max_value, evict))
}

/// A value of `len` bytes that names `n`: its first bytes, then a pattern from `n`.
fn sized_value(n: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn values_of_every_size_come_back_whole() {
    let c = budget_cache("budget-sizes", 8 << 20, 2 << 20, true);
    assert_eq!(c.record_size(), 0);
    assert_eq!(c.max_bytes(), 8 << 20);
    assert_eq!(c.max_value_size(), 2 << 20);
    assert!(
        c.segment().len() <= 8 << 20,
        "segment of {} bytes",
        c.segment().len()
    );
    let sizes = [
        0usize,
        1,
        7,
        8,
        9,
        15,
        16,
        17,
        63,
        200,
        4096,
        65_536,
        300_000,
        (2 << 20) - 40,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("key-{i}");
        c.put(key.as_bytes(), &sized_value(i as u64, len)).unwrap();
        c.put(Key::Hash(i as u64).as_ref(), &sized_value(i as u64 + 100, len))
            .unwrap();
    }
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("key-{i}");
        assert_eq!(
            c.get(key.as_bytes()).unwrap().unwrap(),
            sized_value(i as u64, len),
            "{key}"
        );
        assert_eq!(
            c.peek(Key::Hash(i as u64).as_ref()).unwrap().unwrap(),
            sized_value(i as u64 + 100, len)
        );
        let mut small = [0u8; 8];
        match c.get_into(key.as_bytes(), &mut small) {
            Ok(Some((n, _))) => assert!(n <= 8 && small[..n] == sized_value(i as u64, len)[..]),
            Err(Error::BufferTooSmall { needed }) => assert_eq!(needed, len),
            other => panic!("{other:?}"),
        }
    }
    assert_sound(&c);
    // Overwrites with other sizes, then removals.
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("key-{i}");
        let len2 = sizes[(i + 5) % sizes.len()];
        c.put(key.as_bytes(), &sized_value(i as u64 + 7, len2)).unwrap();
        assert_eq!(
            c.get(key.as_bytes()).unwrap().unwrap(),
            sized_value(i as u64 + 7, len2)
        );
        if len % 2 == 0 {
            assert!(c.remove(key.as_bytes()).unwrap());
            assert_eq!(c.get(key.as_bytes()).unwrap(), None);
        }
    }
    assert_sound(&c);
}

#[test]
fn a_value_over_the_largest_entry_is_refused_with_the_sizes() {
    let c = budget_cache("budget-too-large", 4 << 20, 100_000, true);
    let err = c.put(b"k".as_slice(), &vec![1u8; 100_000]).unwrap_err();
    match err {
        Error::ValueTooLarge { size, max } => {
            assert_eq!(size, 100_001);
            assert_eq!(max, 100_000);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(err.code(), "ERR_SHM_VALUE_TOO_LARGE");
    c.put(b"k".as_slice(), &vec![1u8; 99_999]).unwrap();
    assert_eq!(c.get(b"k".as_slice()).unwrap().unwrap().len(), 99_999);
}

#[test]
fn options_that_cannot_make_a_budget_cache_are_refused() {
    let id = util::unique_posix("budget-bad");
    let _g = util::SegGuard(id.clone());
    let both = CacheOptions {
        record_size: 256,
        ..CacheOptions::budget(1 << 20)
    };
    let e = Cache::create(&id, &both).unwrap_err().to_string();
    assert!(e.contains("record_size") && e.contains("max_bytes"), "{e}");
    let e = Cache::create(&id, &budget_opts(1 << 20, 1 << 20, true))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_bytes") && e.contains("max_value_size"), "{e}");
    // 64 MiB values fit a budget big enough for them.
    let big = budget_opts(160 << 20, 64 << 20, true);
    assert!(Cache::required_size(&big).unwrap() <= 160 << 20);
}

#[test]
fn a_full_cache_evicts_as_many_entries_as_a_value_needs_and_stays_in_its_budget() {
    let c = budget_cache("budget-evict", 2 << 20, 256 << 10, true);
    let mut rng = Rng::new(util::run_seed());
    let mut written = 0u64;
    for n in 0..5_000u64 {
        let len = match rng.below(10) {
            0 => 100_000 + rng.below(150_000) as usize,
            1..=3 => 2_000 + rng.below(20_000) as usize,
            _ => 50 + rng.below(500) as usize,
        };
        let v = make_value(n, 1, n, len);
        c.set(
            Key::Hash(n).as_ref(),
            &v,
            &SetOptions {
                mode: SetMode::Add,
                ..SetOptions::default()
            },
        )
        .unwrap();
        written += v.len() as u64;
        if n % 500 == 0 {
            assert_sound(&c);
        }
    }
    assert!(written > 20 * (2 << 20));
    let st = c.stats().unwrap();
    assert!(st.evictions > 0);
    assert_eq!(st.max_bytes, 2 << 20);
    assert!(st.bytes_live <= st.bytes_used, "{st:?}");
    // Everything present is whole and what was written under its key.
    let mut present = 0;
    for n in 0..5_000u64 {
        if let Some(v) = c.peek(Key::Hash(n).as_ref()).unwrap() {
            validate_value(n, &v).unwrap();
            present += 1;
        }
    }
    assert_eq!(present, st.len);
    // The store is mostly live: records of evicted entries are reclaimed, not leaked.
    let store = st.bytes_used + st.bytes_free;
    assert!(
        st.bytes_live * 10 >= store * 6,
        "live {} of a store of {store} bytes",
        st.bytes_live
    );
    assert_sound(&c);
}

#[test]
fn a_cache_that_does_not_evict_refuses_when_full_and_compacts_after_removals() {
    let c = budget_cache("budget-full", 1 << 20, 64 << 10, false);
    let mut n = 0u64;
    let err = loop {
        match c.put(Key::Hash(n).as_ref(), &make_value(n, 1, n, 3_000)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Full), "{err:?}");
    assert!(n > 200, "only {n} entries of 3 KB in 1 MiB");
    let held = n;
    for k in 0..held {
        validate_value(k, &c.get(Key::Hash(k).as_ref()).unwrap().unwrap()).unwrap();
    }
    // Removing every other entry leaves dead records all along the store; new entries fit
    // again, the live ones are moved past, and none is lost.
    for k in (0..held).step_by(2) {
        assert!(c.remove(Key::Hash(k).as_ref()).unwrap());
    }
    let mut added = 0;
    for k in held..held + held / 2 - 8 {
        if let Err(e) = c.put(Key::Hash(k).as_ref(), &make_value(k, 1, k, 3_000)) {
            panic!(
                "{e} after {added} of {}; held {held}; {:?}",
                held / 2 - 8,
                c.stats().unwrap()
            );
        }
        added += 1;
    }
    assert!(added > 90);
    for k in (1..held).step_by(2).chain(held..held + added) {
        validate_value(k, &c.get(Key::Hash(k).as_ref()).unwrap().unwrap()).unwrap();
    }
    assert_eq!(c.stats().unwrap().evictions, 0);
    assert_sound(&c);
}

#[test]
fn ttl_add_replace_incr_touch_and_iteration_work_on_a_budget() {
    let (c, clock) = cache_with_clock("budget-ops", &budget_opts(1 << 20, 64 << 10, true));
    let t = |ms| clock.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    let ttl = |ms| SetOptions {
        ttl_ms: Some(ms),
        ..SetOptions::default()
    };
    c.set(b"short".as_slice(), &[1; 3000], &ttl(100)).unwrap();
    c.set(b"long".as_slice(), &[2; 5000], &ttl(10_000)).unwrap();
    t(150);
    assert_eq!(c.get(b"short".as_slice()).unwrap(), None);
    assert_eq!(c.get(b"long".as_slice()).unwrap().unwrap(), vec![2; 5000]);
    let add = SetOptions {
        mode: SetMode::Add,
        ..SetOptions::default()
    };
    let replace = SetOptions {
        mode: SetMode::Replace,
        ..SetOptions::default()
    };
    assert!(matches!(
        c.set(b"long".as_slice(), b"x", &add),
        Err(Error::KeyExists)
    ));
    assert!(matches!(
        c.set(b"none".as_slice(), b"x", &replace),
        Err(Error::KeyNotFound)
    ));
    c.set(b"long".as_slice(), &[3; 70], &replace).unwrap();
    assert_eq!(c.get(b"long".as_slice()).unwrap().unwrap(), vec![3; 70]);
    assert_eq!(c.incr(b"n".as_slice(), 5, None).unwrap(), 5);
    assert_eq!(c.incr(b"n".as_slice(), -7, None).unwrap(), -2);
    assert_eq!(c.get(b"n".as_slice()).unwrap().unwrap(), b"-2");
    assert!(matches!(
        c.incr(b"long".as_slice(), 1, None),
        Err(Error::NotANumber)
    ));
    c.set(
        b"s".as_slice(),
        "text".as_bytes(),
        &SetOptions {
            kind: ValueKind::Str,
            ..SetOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        c.get_with(b"s".as_slice(), |v, k| (v.to_vec(), k))
            .unwrap()
            .unwrap(),
        (b"text".to_vec(), ValueKind::Str)
    );
    assert!(c.touch(b"s".as_slice(), Some(50)).unwrap());
    let entries = c.entries(Order::MruFirst, None, None).unwrap();
    let keys: Vec<Key> = entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        vec![
            Key::Bytes(b"s".to_vec()),
            Key::Bytes(b"n".to_vec()),
            Key::Bytes(b"long".to_vec())
        ]
    );
    assert_eq!(entries[2].value, vec![3; 70]);
    // The touch reached the expiry that lock-free readers take from the record.
    assert_sound(&c);
    t(60);
    assert_eq!(c.get(b"s".as_slice()).unwrap(), None);
    assert_eq!(c.len().unwrap(), 2);
    t(5_000);
    let old = c.evict_older_than(1_000, 10).unwrap();
    assert_eq!(old.len(), 2);
    assert!(c.is_empty().unwrap());
    assert_sound(&c);
    assert_eq!(c.stats().unwrap().bytes_live, 0);
}

// ---- real processes: lock-free readers, writers of every kind SIGKILLed mid-write ----

/// Keys the writers use: `CHURN_BASE + n` as u64 keys (even n) or `c{n}` as byte keys.
const CHURN_BASE: u64 = 1 << 40;
const CHURN: u64 = 600;

fn churn_key(n: u64) -> Key {
    if n % 2 == 0 {
        Key::Hash(CHURN_BASE + n)
    } else {
        Key::Bytes(format!("c{n}").into_bytes())
    }
}

/// The kinds of write a `budget-writer` makes, by `ID % KINDS`.
const KINDS: u64 = 5;
const KIND_NAMES: [&str; KINDS as usize] = [
    "insert",
    "value of many words",
    "rewrite",
    "eviction of several entries",
    "moves of live records",
];

/// Child role: writes to a budget cache as fast as it can until killed, one kind of write
/// (`ID % KINDS`): inserts of small new entries; large values; rewrites of present keys with
/// other sizes; a value large enough to evict many small entries; removals and writes that
/// leave dead records among live ones, so that making room moves live records.
pub fn budget_writer() {
    let c = util::open_child_cache();
    let id: u64 = util::child_var("ID").parse().unwrap();
    let mut rng = Rng::new(util::child_var("SEED").parse().unwrap());
    util::tell_parent("READY");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seq = 0u64;
    while std::time::Instant::now() < end {
        seq += 1;
        let n = rng.below(CHURN);
        let k = churn_key(n);
        let tag = CHURN_BASE + n;
        let small = 50 + rng.below(400) as usize;
        let r = match id % KINDS {
            0 => {
                let _ = c.remove(k.as_ref());
                c.put(k.as_ref(), &make_value(tag, id as u32, seq, small))
            }
            1 => c.put(
                k.as_ref(),
                &make_value(tag, id as u32, seq, 20_000 + rng.below(100_000) as usize),
            ),
            2 => {
                let len = [10, 900, 7_000, 30_000][rng.below(4) as usize];
                c.put(k.as_ref(), &make_value(tag, id as u32, seq, len))
            }
            3 => {
                if seq % 16 == 0 {
                    c.put(k.as_ref(), &make_value(tag, id as u32, seq, 200_000))
                } else {
                    c.put(k.as_ref(), &make_value(tag, id as u32, seq, small))
                }
            }
            _ => {
                if rng.below(2) == 0 {
                    c.remove(k.as_ref()).map(|_| 0)
                } else {
                    c.put(
                        k.as_ref(),
                        &make_value(tag, id as u32, seq, 100 + rng.below(5_000) as usize),
                    )
                }
            }
        };
        r.unwrap();
    }
}

/// Child role: reads churn keys without the lock until told to stop; every value found must be
/// whole and the one written under its key. With `ID` odd, reads into a buffer.
pub fn budget_reader() {
    let c = util::open_child_cache();
    let id: u64 = util::child_var("ID").parse().unwrap();
    let mut rng = Rng::new(util::child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let (mut reads, mut found) = (0u64, 0u64);
    let mut buf = vec![0u8; 256 << 10];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for _ in 0..64 {
            let n = rng.below(CHURN);
            let k = churn_key(n);
            let got = if id % 2 == 0 {
                c.get(k.as_ref()).unwrap()
            } else {
                c.get_into(k.as_ref(), &mut buf)
                    .unwrap()
                    .map(|(len, _)| buf[..len].to_vec())
            };
            if let Some(v) = got {
                if let Err(e) = validate_value(CHURN_BASE + n, &v) {
                    panic!("key {k:?}: {e}");
                }
                found += 1;
            }
            reads += 1;
        }
    }
    util::tell_parent(&format!("RESULT reads={reads} found={found}"));
}

#[test]
fn readers_see_whole_values_while_writers_of_every_kind_are_killed_mid_write() {
    let c = budget_cache("budget-kill", 4 << 20, 256 << 10, true);
    let id = c.segment().id().clone();
    for n in 0..CHURN {
        c.put(churn_key(n).as_ref(), &make_value(CHURN_BASE + n, 0, 0, 500))
            .unwrap();
    }
    let base = util::run_seed();
    let mut readers = util::spawn_roles("budget-reader", &id, 2, base);
    util::start_all(&mut readers);
    let mut rng = Rng::new(base);
    let mut kills = 0u64;
    let began_all = std::time::Instant::now();
    for kind in 0..KINDS {
        // Kills until one caught a writer of this kind holding a shard's lock (stats() takes
        // every lock, so the dead holder's shard is rebuilt and counted): a kill test that
        // kills nobody mid-write proves nothing. Bounded, so that it fails rather than hangs.
        let began = std::time::Instant::now();
        let before = c.stats().unwrap().recoveries;
        loop {
            assert!(
                began.elapsed() < std::time::Duration::from_secs(60),
                "no writer of {} died holding a lock in a minute",
                KIND_NAMES[kind as usize]
            );
            let mut w = util::spawn_role("budget-writer", &id, kind + KINDS * kills, base ^ kills);
            util::wait_for_line(&mut w.1, "READY");
            std::thread::sleep(std::time::Duration::from_millis(3 + rng.below(30)));
            util::kill_child(&mut w.0);
            kills += 1;
            let st = c.stats().unwrap();
            if st.recoveries > before {
                break;
            }
        }
        assert_sound(&c);
        eprintln!(
            "{}: recovered after {kills} kills in all",
            KIND_NAMES[kind as usize]
        );
    }
    // The readers read for three seconds at least, however fast the kills landed, so that
    // their counts below say they read throughout on a loaded machine too.
    std::thread::sleep(std::time::Duration::from_secs(3).saturating_sub(began_all.elapsed()));
    let results = util::stop_all(readers);
    for r in &results {
        assert!(util::result_u64(r, "reads") > 1_000, "{r:?}");
        assert!(util::result_u64(r, "found") > 100, "{r:?}");
    }
    // What is left reads back whole, and the store's bytes add up (check_store).
    for n in 0..CHURN {
        if let Some(v) = c.peek(churn_key(n).as_ref()).unwrap() {
            validate_value(CHURN_BASE + n, &v).unwrap();
        }
    }
    assert_sound(&c);
    let st = c.stats().unwrap();
    assert!(st.recoveries >= KINDS, "{st:?}");
}

/// Keys written once before the readers start and never removed: `s{n}`.
const STABLE: u64 = 300;

/// Child role: reads the stable keys until told to stop; each must be found, whole.
pub fn budget_stable_reader() {
    let c = util::open_child_cache();
    let mut rng = Rng::new(util::child_var("SEED").parse().unwrap());
    let stop = util::go_then_stop();
    let mut reads = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for _ in 0..64 {
            let n = rng.below(STABLE);
            let v = c
                .get(format!("s{n}").as_bytes())
                .unwrap()
                .unwrap_or_else(|| panic!("stable key s{n} was not found"));
            validate_value(n, &v).unwrap_or_else(|e| panic!("s{n}: {e}"));
            reads += 1;
        }
    }
    util::tell_parent(&format!("RESULT reads={reads}"));
}

#[test]
fn records_moved_under_readers_are_never_missed_or_torn() {
    // No eviction: removals by the writers leave dead records, and making room moves the
    // stable keys' records to the head while the readers read them.
    let c = budget_cache("budget-moves", 3 << 20, 64 << 10, false);
    let id = c.segment().id().clone();
    for n in 0..STABLE {
        c.put(
            format!("s{n}").as_bytes(),
            &make_value(n, 0, n, 100 + (n as usize * 37) % 3_000),
        )
        .unwrap();
    }
    let base = util::run_seed();
    let mut readers = util::spawn_roles("budget-stable-reader", &id, 2, base);
    util::start_all(&mut readers);
    let began = std::time::Instant::now();
    let mut kills = 0u64;
    let before = c.stats().unwrap().recoveries;
    while began.elapsed() < std::time::Duration::from_millis(2_500) || c.stats().unwrap().recoveries == before
    {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "no writer died holding a lock"
        );
        // Kind 4: removals and writes, so that making room moves live records.
        let mut w = util::spawn_role("budget-writer", &id, 4 + KINDS * kills, base ^ kills);
        util::wait_for_line(&mut w.1, "READY");
        std::thread::sleep(std::time::Duration::from_millis(20 + (kills * 7) % 40));
        util::kill_child(&mut w.0);
        kills += 1;
    }
    let results = util::stop_all(readers);
    for r in &results {
        assert!(util::result_u64(r, "reads") > 1_000, "{r:?}");
    }
    for n in 0..STABLE {
        validate_value(n, &c.peek(format!("s{n}").as_bytes()).unwrap().unwrap()).unwrap();
    }
    assert_sound(&c);
}

// ---- the model: an exact LRU over key+value bytes ----

/// An exact LRU over key plus value bytes with a budget: what the budget cache approximates.
struct ExactLru {
    budget: u64,
    bytes: u64,
    tick: u64,
    entries: std::collections::HashMap<u64, (u64, u64)>,
    order: std::collections::BTreeMap<u64, u64>,
}

impl ExactLru {
    fn new(budget: u64) -> ExactLru {
        ExactLru {
            budget,
            bytes: 0,
            tick: 0,
            entries: Default::default(),
            order: Default::default(),
        }
    }

    fn touch(&mut self, k: u64) -> bool {
        let Some(&(size, t)) = self.entries.get(&k) else {
            return false;
        };
        self.order.remove(&t);
        self.tick += 1;
        self.order.insert(self.tick, k);
        self.entries.insert(k, (size, self.tick));
        true
    }

    fn set(&mut self, k: u64, size: u64) {
        if let Some((old, t)) = self.entries.remove(&k) {
            self.order.remove(&t);
            self.bytes -= old;
        }
        while self.bytes + size > self.budget {
            let (&t, &victim) = self.order.iter().next().unwrap();
            self.order.remove(&t);
            self.bytes -= self.entries.remove(&victim).unwrap().0;
        }
        self.tick += 1;
        self.order.insert(self.tick, k);
        self.entries.insert(k, (size, self.tick));
        self.bytes += size;
    }
}

/// Sizes as trace T1's, scaled: log-normal with median `median`, sigma 1, truncated.
fn lognormal(rng: &mut Rng, median: f64, lo: f64, hi: f64) -> usize {
    let u1 = (rng.below(1 << 30) as f64 + 1.0) / (1u64 << 30) as f64;
    let u2 = rng.below(1 << 30) as f64 / (1u64 << 30) as f64;
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (median * z.exp()).clamp(lo, hi) as usize
}

/// Zipf(0.99) ranks over `n` keys, by inversion of the cumulative weights.
fn zipf_table(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|i| {
            acc += 1.0 / (i as f64).powf(0.99);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

#[test]
fn the_cache_answers_as_the_model_and_hits_within_three_percent_of_an_exact_byte_lru() {
    // One shard, a fixed seed: the same trace every run. Gets, and a set on a miss; every value
    // found must be the last one written under its key (the model keeps them all), and the hit
    // ratio after warm-up must be within 3 % of an exact LRU over key+value bytes given the
    // whole budget.
    let budget = 4u64 << 20;
    let c = util::cache(
        "budget-model",
        &CacheOptions {
            shards: Some(1),
            ..budget_opts(budget, 256 << 10, true)
        },
    );
    let keys = 8_000usize;
    let mut rng = Rng::new(0x5eed);
    let sizes: Vec<usize> = (0..keys)
        .map(|_| lognormal(&mut rng, 2048.0, 200.0, 65_536.0))
        .collect();
    let cdf = zipf_table(keys);
    let mut exact = ExactLru::new(budget);
    let mut written = vec![0u64; keys];
    let (mut hits, mut exact_hits, mut counted) = (0u64, 0u64, 0u64);
    let requests = 200_000;
    for i in 0..requests {
        let u = rng.below(1 << 40) as f64 / (1u64 << 40) as f64;
        let k = cdf.partition_point(|&c| c < u).min(keys - 1);
        let key = format!("key-{k:020}");
        let kv = (key.len() + sizes[k]) as u64;
        let hit = match c.get(key.as_bytes()).unwrap() {
            Some(v) => {
                validate_value(k as u64, &v).unwrap();
                assert_eq!(
                    crate::util::validate_value(k as u64, &v).unwrap() as u64,
                    written[k] & 0xffff_ffff,
                    "key {k} read back an older value"
                );
                true
            }
            None => {
                written[k] += 1;
                let v = make_value(
                    k as u64,
                    written[k] as u32,
                    written[k],
                    sizes[k].saturating_sub(28),
                );
                c.put(key.as_bytes(), &v).unwrap();
                false
            }
        };
        let exact_hit = exact.touch(k as u64);
        if !exact_hit {
            exact.set(k as u64, kv);
        }
        if i >= requests / 4 {
            counted += 1;
            hits += hit as u64;
            exact_hits += exact_hit as u64;
        }
        if i % 20_000 == 0 {
            assert_sound(&c);
        }
    }
    let (ratio, exact_ratio) = (hits as f64 / counted as f64, exact_hits as f64 / counted as f64);
    eprintln!("hit ratio {ratio:.4}, exact byte LRU {exact_ratio:.4}");
    assert!(
        ratio >= exact_ratio * 0.97,
        "hit ratio {ratio:.4} against {exact_ratio:.4}"
    );
    assert_sound(&c);
}

#[test]
fn with_room_for_everything_the_cache_is_the_model() {
    // Random operations of every kind on a budget that never evicts: the cache must answer
    // exactly as a map does, and stay sound.
    // 300 keys of at most 40 KB, with every replaced record dead until the tail passes it:
    // 32 MiB holds them all.
    let c = budget_cache("budget-map", 32 << 20, 64 << 10, true);
    let mut rng = Rng::new(util::run_seed());
    let mut model: std::collections::HashMap<Key, (Vec<u8>, ValueKind)> = Default::default();
    let key = |i: u64| match i % 3 {
        0 => Key::Hash(i),
        1 => Key::Hash(shm_lru::internals::fnv1a64(format!("k{i}").as_bytes())),
        _ => Key::Bytes(format!("k{}", i - 1).into_bytes()),
    };
    for step in 0..20_000u64 {
        let k = key(rng.below(300));
        let len = [0usize, 5, 8, 100, 3_000, 40_000][rng.below(6) as usize];
        let v = sized_value(step, len);
        match rng.below(7) {
            0 | 1 => {
                c.put(k.as_ref(), &v).unwrap();
                model.insert(k, (v, ValueKind::Bytes));
            }
            2 => {
                let r = c.set(
                    k.as_ref(),
                    &v,
                    &SetOptions {
                        mode: SetMode::Add,
                        kind: ValueKind::Str,
                        ..SetOptions::default()
                    },
                );
                match model.entry(k) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        assert!(matches!(r, Err(Error::KeyExists)), "{r:?}")
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        r.unwrap();
                        e.insert((v, ValueKind::Str));
                    }
                }
            }
            3 => {
                let r = c.set(
                    k.as_ref(),
                    &v,
                    &SetOptions {
                        mode: SetMode::Replace,
                        ..SetOptions::default()
                    },
                );
                match model.entry(k) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        r.unwrap();
                        e.insert((v, ValueKind::Bytes));
                    }
                    std::collections::hash_map::Entry::Vacant(_) => {
                        assert!(matches!(r, Err(Error::KeyNotFound)), "{r:?}")
                    }
                }
            }
            4 => assert_eq!(c.remove(k.as_ref()).unwrap(), model.remove(&k).is_some()),
            _ => {
                let got = c.get_with(k.as_ref(), |v, kind| (v.to_vec(), kind)).unwrap();
                assert!(
                    got.as_ref() == model.get(&k),
                    "{k:?} at step {step}: {:?} bytes",
                    got.map(|g| g.0.len())
                );
            }
        }
        if step % 2_000 == 0 {
            assert_sound(&c);
            assert_eq!(c.len().unwrap(), model.len() as u64);
        }
    }
    let entries = c.entries(Order::LruFirst, None, None).unwrap();
    assert_eq!(entries.len(), model.len());
    for e in entries {
        assert!(
            Some(&(e.value.clone(), e.kind)) == model.get(&e.key),
            "{:?}",
            e.key
        );
    }
    assert_eq!(c.stats().unwrap().evictions, 0);
    assert_sound(&c);
}

#[test]
fn expired_records_reached_by_the_tail_count_as_expirations_not_evictions() {
    let (c, clock) = cache_with_clock("budget-expire", &budget_opts(1 << 20, 64 << 10, true));
    let short = SetOptions {
        ttl_ms: Some(100),
        ..SetOptions::default()
    };
    for n in 0..100u64 {
        c.set(Key::Hash(n).as_ref(), &[7; 2000], &short).unwrap();
    }
    clock.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
    // Enough new bytes to pass the tail over every short-lived record.
    for n in 1_000..1_600u64 {
        c.put(Key::Hash(n).as_ref(), &[8; 2000]).unwrap();
    }
    let st = c.stats().unwrap();
    assert_eq!(st.expirations, 100, "{st:?}");
    assert_sound(&c);
}

#[test]
fn writers_that_meet_a_damaged_store_go_on_and_repair_mends_it() {
    let c = budget_cache("budget-damaged", 1 << 20, 64 << 10, true);
    for n in 0..200u64 {
        c.put(Key::Hash(n).as_ref(), &make_value(n, 1, n, 1_000)).unwrap();
    }
    // Random words over every shard's store, records and free bytes alike.
    let g = c.geometry();
    let mut rng = Rng::new(util::run_seed());
    let base = c.segment().as_ptr();
    for off in (g.store_off..g.store_off + g.shards as u64 * g.store_bytes).step_by(40) {
        let off = off & !7;
        // SAFETY: `off` is an 8-aligned offset inside the value stores, which the cache's
        // segment keeps mapped; no other process uses this cache, and its words are only ever
        // accessed atomically.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(base.add(off as usize).cast()) }
            .store(rng.next(), std::sync::atomic::Ordering::Relaxed);
    }
    // Reads answer a whole value or nothing; writes go on (an evicting cache starts a store it
    // cannot walk again) and what they write reads back.
    for n in 0..200u64 {
        if let Some(v) = c.get(Key::Hash(n).as_ref()).unwrap() {
            assert!(v.len() <= 64 << 10);
        }
    }
    for n in 1_000..3_000u64 {
        let v = make_value(n, 2, n, 500 + (n as usize * 13) % 4_000);
        c.put(Key::Hash(n).as_ref(), &v).unwrap();
        assert_eq!(c.get(Key::Hash(n).as_ref()).unwrap().as_deref(), Some(&v[..]));
    }
    let r = c.repair().unwrap();
    assert!(r.after.is_ok(), "{r}");
    assert_sound(&c);
}

/// A 1 MiB budget cache of one shard, whose records lie in the store in the order written
/// while nothing is evicted.
fn one_shard_budget(tag: &str, max_value: u64) -> TestCache {
    util::cache(
        tag,
        &CacheOptions {
            shards: Some(1),
            ..budget_opts(1 << 20, max_value, true)
        },
    )
}

#[test]
fn repair_drops_an_entry_whose_record_disagrees_with_its_slot() {
    // One shard, nothing evicted: key n's record is the n-th of the store.
    let c = one_shard_budget("budget-disagree", 64 << 10);
    for n in 0..10u64 {
        c.put(Key::Hash(n).as_ref(), &[n as u8; 100]).unwrap();
    }
    let (len, start) = (shm_lru::layout::record_len(0, 100), util::ring_start(&c, 0));
    let set_word = |n: u64, field: u64, v: u64| util::write_u64(c.segment(), start + n * len + field, v);
    set_word(3, 16, 0x66); // record 3's key word
    set_word(5, 24, u64::MAX - 5); // record 5's expiry, past the 48 bits a slot holds
    let report = c.check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("its record says key word 0x66")),
        "{report}"
    );
    let r = c.repair().unwrap();
    assert!(r.after.is_ok(), "{r}");
    for n in 0..10u64 {
        let want = (n != 3 && n != 5).then(|| vec![n as u8; 100]);
        assert_eq!(c.get(Key::Hash(n).as_ref()).unwrap(), want, "key {n}");
    }
    assert_sound(&c);
}

#[test]
fn an_entry_whose_record_is_damaged_is_no_entry_to_any_read() {
    // One shard, nothing evicted: key n's record is the n-th of the store. Record 3's key word
    // is overwritten: its entry names a record that no longer names it back.
    let c = one_shard_budget("budget-damaged-reads", 64 << 10);
    for n in 0..10u64 {
        c.put(Key::Hash(n).as_ref(), n.to_string().as_bytes()).unwrap();
    }
    let (len, start) = (shm_lru::layout::record_len(0, 1), util::ring_start(&c, 0));
    let slot = c.slot_of(Key::Hash(3).as_ref()).unwrap().unwrap() as u64;
    util::write_u64(c.segment(), start + 3 * len + 16, 0x66);
    // A read by key, iteration, a read by slot: none makes up a value for it.
    assert_eq!(c.get(Key::Hash(3).as_ref()).unwrap(), None);
    let all = c.entries(Order::MruFirst, None, None).unwrap();
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(all.iter().all(|e| e.key != Key::Hash(3) && !e.value.is_empty()));
    assert!(matches!(c.slot_entry(slot), Err(Error::SlotFree(s)) if s == slot));
    assert!(matches!(
        c.get_slot_with(slot, |v, _| v.to_vec()),
        Err(Error::SlotFree(_))
    ));
    // An increment starts the count again, as on a key that is not there.
    assert_eq!(c.incr(Key::Hash(3).as_ref(), 5, None).unwrap(), 5);
    assert_eq!(c.incr(Key::Hash(4).as_ref(), 5, None).unwrap(), 9);
    assert_eq!(c.get(Key::Hash(3).as_ref()).unwrap().as_deref(), Some(&b"5"[..]));
    assert_sound(&c);
}

#[test]
fn a_record_whose_value_would_overrun_the_store_reads_as_a_miss() {
    // One shard, nothing evicted: key n's record is the n-th of the store; the last one ends
    // within a record's length of the store's end.
    let c = one_shard_budget("budget-overrun", 256 << 10);
    let len = shm_lru::layout::record_len(0, 60_000);
    let g = c.geometry();
    let last = (g.store_bytes - (64 << 10)) / len - 1;
    for n in 0..=last {
        c.put(Key::Hash(n).as_ref(), &vec![n as u8; 60_000]).unwrap();
    }
    assert_eq!(c.stats().unwrap().evictions, 0);
    // The last record's value length, past the store's end but within max_value_size: a
    // reader that trusted it would copy nothing and return a made-up value.
    let at = util::ring_start(&c, 0) + last * len;
    let vlen = g.store_start(0) + g.store_bytes - at - 32 + 8;
    assert!(vlen <= 256 << 10);
    let w1 = at + 8; // the second word of its header
    util::write_u64(
        c.segment(),
        w1,
        (util::read_u64(c.segment(), w1) & !0xffff_ffff) | vlen,
    );
    let got = c.get(Key::Hash(last).as_ref()).unwrap();
    assert!(got.is_none(), "a value of {:?} bytes", got.map(|v| v.len()));
    let mut buf = vec![0u8; 256 << 10];
    assert_eq!(c.get_into(Key::Hash(last).as_ref(), &mut buf).unwrap(), None);
    // Nor is its length reported to a buffer too small for it, nor a hit counted.
    let hits = c.stats().unwrap().hits;
    assert_eq!(
        c.get_into(Key::Hash(last).as_ref(), &mut [0u8; 16]).unwrap(),
        None
    );
    assert_eq!(c.stats().unwrap().hits, hits);
    assert!(c.peek(Key::Hash(last).as_ref()).unwrap().is_none());
    assert!(!c.check().unwrap().is_ok());
    let r = c.repair().unwrap();
    assert!(r.after.is_ok(), "{r}");
    for n in 0..=last {
        let want = (n != last).then(|| vec![n as u8; 60_000]);
        assert_eq!(c.get(Key::Hash(n).as_ref()).unwrap(), want, "key {n}");
    }
    assert_sound(&c);
}

#[test]
fn a_bucket_use_word_records_each_entry_on_its_own() {
    // One shard, one bucket (an index of 8 entries), a manual clock, and a refresh interval
    // long enough that hits record their use (in grains of 256 ms) and promote nothing.
    let (t, clock) = cache_with_clock(
        "budget-useword",
        &CacheOptions {
            shards: Some(1),
            capacity: 8,
            ..budget_opts(1 << 20, 64 << 10, true)
        },
    );
    let c = &t.cache;
    let g = c.geometry();
    assert_eq!(g.buckets_per_shard, 1);
    let (a, b, d) = (1u64, 2u64, 3u64);
    util::write_u32(
        c.segment(),
        util::shard_field(&g, 0, shm_lru::layout::shard_header::REFRESH_MS),
        4096,
    );
    let used = |k: u64| {
        let slot = c.slot_of(k).unwrap().expect("present");
        c.slot_entry(slot as u64).unwrap().used_ms
    };
    let t0 = clock.load(Ordering::Relaxed);
    c.put(a, b"1").unwrap();
    c.put(b, b"2").unwrap();
    assert_eq!((used(a), used(b)), (t0, t0));
    // A hit of `a` marks it in the bucket's use word; `b`'s hit, in the same grain, is still
    // its own to record.
    clock.store(t0 + 1, Ordering::Relaxed);
    assert!(c.get(a).unwrap().is_some());
    assert!(c.get(b).unwrap().is_some());
    assert!(used(a) > t0 && used(b) > t0, "{} {}", used(a), used(b));
    // `d` takes the place `a` left: its first hit is its own to record too, though the word's
    // time is current and `a`'s mark was set.
    assert!(c.remove(a).unwrap());
    c.put(d, b"3").unwrap();
    assert_eq!(used(d), t0 + 1);
    clock.store(t0 + 2, Ordering::Relaxed);
    assert!(c.get(d).unwrap().is_some());
    assert!(used(d) > t0 + 1, "{}", used(d));
    assert_sound(c);
}

#[test]
fn an_entry_read_between_writes_survives_laps_of_larger_values() {
    // 40 MiB of 100 KB values through an 8 MiB budget: the small entry read after every write
    // must get its second chance each time the tail comes round, even when the write before
    // left no bytes free to move it into (it failed so before the store kept some free).
    let c = budget_cache("budget-keep", 8 << 20, 1 << 20, true);
    c.put(b"keep".as_slice(), b"small and used").unwrap();
    for i in 0..400u64 {
        c.put(
            format!("k{i}").as_bytes(),
            &vec![1u8; 100_000 + (i as usize % 7) * 1000],
        )
        .unwrap();
        assert_eq!(
            c.get(b"keep".as_slice()).unwrap().as_deref(),
            Some(&b"small and used"[..]),
            "after {i} writes: {:?}",
            c.stats().unwrap()
        );
    }
    assert!(c.stats().unwrap().evictions > 300);
    assert_sound(&c);
}

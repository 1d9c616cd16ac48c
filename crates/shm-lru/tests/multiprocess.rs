//! Several real processes on one cache: concurrent workers whose values check themselves, and
//! a writer killed with SIGKILL hundreds of times while two others keep working.

use crate::util::{
    self, assert_sound, child_var, kill_child, make_value, result_u64, tell_parent, validate_value,
    wait_for_line, Rng, VALUE_MIN,
};
use shm_lru::{Cache, Key, Order, SegmentId};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// u64 keys `0..VALUE_KEYS`, and byte keys `v{n}` for `n` in `VALUE_KEYS..2 * VALUE_KEYS`.
const VALUE_KEYS: u64 = 48;
/// Byte keys `ctr-{n}` that only `incr` writes.
const COUNTERS: u64 = 8;
const RECORD: u32 = 128;

fn value_key(n: u64) -> Key {
    if n < VALUE_KEYS {
        Key::Hash(n)
    } else {
        Key::Bytes(format!("v{n}").into_bytes())
    }
}

fn counter_key(n: u64) -> Key {
    Key::Bytes(format!("ctr-{n}").into_bytes())
}

enum Kind {
    Value(u64),
    Counter,
}

fn kind_of(k: &Key) -> Kind {
    match k {
        Key::Hash(n) if *n < VALUE_KEYS => Kind::Value(*n),
        Key::Bytes(b) if b.starts_with(b"ctr-") => Kind::Counter,
        Key::Bytes(b) if b.starts_with(b"v") => {
            let n: u64 = std::str::from_utf8(&b[1..]).unwrap().parse().unwrap();
            assert!((VALUE_KEYS..2 * VALUE_KEYS).contains(&n), "unknown key {k:?}");
            Kind::Value(n)
        }
        _ => panic!("a key nobody writes: {k:?}"),
    }
}

/// Asserts that a value read under `k` is one a writer wrote under `k`, whole.
fn assert_valid(k: &Key, v: &[u8]) {
    match kind_of(k) {
        Kind::Value(tag) => {
            if let Err(e) = validate_value(tag, v) {
                panic!("bad value under {k:?}: {e}");
            }
        }
        Kind::Counter => {
            let s = std::str::from_utf8(v).unwrap_or_else(|_| panic!("counter {k:?} holds {v:?}"));
            let n: i64 = s.parse().unwrap_or_else(|_| panic!("counter {k:?} holds {s:?}"));
            assert!(n > 0, "counter {k:?} holds {n}");
        }
    }
}

/// Every entry of the cache is valid.
fn assert_all_valid(c: &Cache) {
    for e in c.entries(Order::MruFirst, None, None).unwrap() {
        assert_valid(&e.key, &e.value);
    }
}

/// One process's random workload and what it measured.
struct Worker {
    cache: Cache,
    id: u32,
    rng: Rng,
    seq: u64,
    incr_sum: u64,
    ops: u64,
    reads: u64,
    max_latency: Duration,
}

impl Worker {
    fn new(id: u32) -> Worker {
        let seg: SegmentId = child_var("SEG").parse().unwrap();
        let seed: u64 = child_var("SEED").parse().unwrap();
        Worker {
            cache: Cache::open(&seg).unwrap(),
            id,
            rng: Rng::new(seed),
            seq: 0,
            incr_sum: 0,
            ops: 0,
            reads: 0,
            max_latency: Duration::ZERO,
        }
    }

    /// One random operation; `writes` in 0..100 is the share of sets among key operations.
    fn step(&mut self, writes: u64) {
        let r = self.rng.below(100);
        let n = self.rng.below(2 * VALUE_KEYS);
        let k = value_key(n);
        let start = Instant::now();
        if r < writes {
            self.seq += 1;
            let room = RECORD as usize - VALUE_MIN - key_len(&k);
            let extra = self.rng.below(room as u64 + 1) as usize;
            let v = make_value(n, self.id, self.seq, extra);
            self.cache.put(k.as_ref(), &v).unwrap();
        } else if r < writes + (100 - writes) / 2 {
            // Validate under the lock and after copying out: both must hold.
            let got = self
                .cache
                .get_with(k.as_ref(), |v, _| {
                    assert_valid(&k, v);
                    v.to_vec()
                })
                .unwrap();
            if let Some(v) = got {
                assert_valid(&k, &v);
                self.reads += 1;
            }
        } else if r < 90 {
            self.cache.remove(k.as_ref()).unwrap();
        } else {
            let c = counter_key(self.rng.below(COUNTERS));
            let d = 1 + self.rng.below(3);
            let now = self.cache.incr(c.as_ref(), d as i64, None).unwrap();
            assert!(now >= d as i64, "{c:?}: incr by {d} gave {now}");
            self.incr_sum += d;
        }
        self.max_latency = self.max_latency.max(start.elapsed());
        self.ops += 1;
    }

    fn report(&self) {
        tell_parent(&format!(
            "RESULT ops={} reads={} incr={} max_us={}",
            self.ops,
            self.reads,
            self.incr_sum,
            self.max_latency.as_micros()
        ));
    }
}

fn key_len(k: &Key) -> usize {
    match k {
        Key::Hash(_) => 0,
        Key::Bytes(b) => b.len(),
    }
}

/// Child role: works until told to stop, then reports.
pub fn mp_worker() {
    let mut w = Worker::new(child_var("ID").parse().unwrap());
    let stop = util::go_then_stop();
    while !stop.load(Ordering::Relaxed) {
        w.step(40);
    }
    w.report();
}

/// Child role: writes as fast as it can until killed.
pub fn kill_writer() {
    let mut w = Worker::new(child_var("ID").parse().unwrap());
    tell_parent("READY");
    // Bounded, so that an orphan cannot run forever if the parent dies.
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        w.step(70);
    }
}

/// Child role: works alongside the killed writers until told to stop.
pub fn kill_survivor() {
    mp_worker();
}

/// Child role: only reads (without the lock, unless a read meets a busy bucket) alongside the
/// killed writers, validating every value it finds, until told to stop.
pub fn kill_reader() {
    let mut w = Worker::new(child_var("ID").parse().unwrap());
    let stop = util::go_then_stop();
    while !stop.load(Ordering::Relaxed) {
        let n = w.rng.below(2 * VALUE_KEYS);
        let k = value_key(n);
        let start = Instant::now();
        if let Some(v) = w.cache.get(k.as_ref()).unwrap() {
            assert_valid(&k, &v);
            w.reads += 1;
        }
        w.max_latency = w.max_latency.max(start.elapsed());
        w.ops += 1;
    }
    w.report();
}

#[test]
fn four_processes_never_see_a_torn_or_foreign_value() {
    let o = util::sharded(4, 1024, RECORD, false);
    let c = util::cache("mp", &o);
    let id = c.segment().id().clone();
    let base = util::run_seed();
    let mut kids = util::spawn_roles("mp-worker", &id, 4, base);
    util::start_all(&mut kids);
    std::thread::sleep(Duration::from_millis(2_000));
    let results = util::stop_all(kids);
    assert_eq!(results.len(), 4);

    let mut incr_total = 0;
    for r in &results {
        assert!(result_u64(r, "ops") > 1_000, "{r:?}");
        assert!(result_u64(r, "reads") > 0, "{r:?}");
        assert!(result_u64(r, "max_us") < 2_000_000, "{r:?}");
        incr_total += result_u64(r, "incr");
    }
    assert_sound(&c);
    assert_all_valid(&c);
    // No increment was lost: the counters add up to what the workers added.
    let counted: u64 = (0..COUNTERS)
        .map(|n| {
            c.peek(counter_key(n).as_ref())
                .unwrap()
                .map_or(0, |v| std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(counted, incr_total);
    let st = c.stats().unwrap();
    assert_eq!(st.recoveries, 0);
    assert_eq!(st.evictions, 0);
}

#[test]
fn a_writer_killed_hundreds_of_times_never_wedges_or_tears() {
    // One small evicting shard, so that the writer holds the lock much of the time and
    // eviction runs too.
    let o = util::single_shard(64, RECORD, true);
    let c = util::cache("kill", &o);
    let id = c.segment().id().clone();
    let base = util::run_seed();
    let mut survivors = util::spawn_roles("kill-survivor", &id, 2, base);
    survivors.push(util::spawn_role("kill-reader", &id, 3, base + 3));
    util::start_all(&mut survivors);

    let mut rng = Rng::new(base);
    let began = Instant::now();
    let mut kills = 0;
    let mut parent_max = Duration::ZERO;
    while kills < 200 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "only {kills} kills in a minute"
        );
        let (mut w, mut out) = util::spawn_role("kill-writer", &id, 100 + kills, base ^ (kills + 7));
        wait_for_line(&mut out, "READY");
        std::thread::sleep(Duration::from_millis(1 + rng.below(20)));
        kill_child(&mut w);
        kills += 1;
        // The parent's own operation right after the kill may be the one that repairs.
        let k = value_key(rng.below(2 * VALUE_KEYS));
        let t = Instant::now();
        if let Some(v) = c.get(k.as_ref()).unwrap() {
            assert_valid(&k, &v);
        }
        parent_max = parent_max.max(t.elapsed());
    }
    let results = util::stop_all(survivors);
    for r in &results {
        assert!(result_u64(r, "ops") > 100, "{r:?}");
        assert!(
            result_u64(r, "max_us") < 2_000_000,
            "an operation took over 2 s: {r:?}"
        );
    }
    assert!(parent_max < Duration::from_secs(2), "{parent_max:?}");
    assert_sound(&c);
    assert_all_valid(&c);
    let st = c.stats().unwrap();
    assert!(
        st.recoveries > 0,
        "no writer died holding the lock in {kills} kills: {st:?}"
    );
    eprintln!(
        "{kills} kills, {} recoveries, {:?}",
        st.recoveries,
        began.elapsed()
    );
}

//! Benchmarks of caches with a byte budget, each beside its reference in the same run:
//!
//! * a get hit of a 64 B value among 10^5 entries (u64 keys, random among those present): a
//!   budget cache made with a capacity of 10^5 against a cache of 64-byte records holding the
//!   same keys, and beside them a budget cache made without a capacity (its index grown to
//!   them) and each layout's memory floor ([`Chain`]: the dependent reads of random lines a hit makes,
//!   over private buffers as large as the layout's parts);
//! * a get hit of a 16 KiB value among 10^4 entries: against a cache of 16 KiB records;
//! * a get hit of a 1 MiB value among 64 entries, into a buffer made beforehand: against a copy
//!   of 1 MiB (`copy_from_slice` into the same buffer from a private buffer holding 64 such
//!   values, so that both copy from memory as far away), and the target adds 1 µs to the copy;
//!   beside them a cache of 1 MiB records;
//! * two processes reading T1 (60,000 keys of 24 bytes, values log-normal around 2 KiB, the
//!   Zipf(0.99) requests of `sized.rs`, hits and misses) from a cache with a 32 MiB budget that
//!   a replay of T1 filled, gets only, against one process; and the same with nothing shared
//!   (the second process reading a cache of its own, filled alike): what this machine gives two
//!   processes running this code. This binary re-executes itself (see [`CHILD_ENV`]) as the
//!   second process.
//!
//! Each group of gets is timed by criterion (its own report) and again in alternation: rounds of
//! a batch of each in turn, the best round of each; the summary's ratios are the alternation's,
//! so that the machine's drift during the run (these are shared machines) moves all sides
//! alike. The budget caches are sized to hold every entry: nothing is evicted while they are
//! read. Without `--bench` (as under `cargo test --benches`), smaller caches run briefly.

mod trace;

mod figures;
use criterion::{BenchmarkId, Criterion, Throughput};
use figures::{present_key, record, result, splitmix};
use shm_lru::{layout, Cache, CacheOptions, SegmentId, SetOptions};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trace::{key_bytes, t1_dist, zipf_requests, Rng, KEY_LEN};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Set in the environment of the re-executed second process: the shared cache's segment.
const CHILD_ENV: &str = "SHM_LRU_BUDGET_BENCH_CHILD";
/// Keys drawn for the gets of one pair (a power of two).
const PICKS: usize = 1 << 16;
/// The two-process runs' budget.
const T1_BUDGET: u64 = 32 * MIB;
/// T1's keys.
const T1_KEYS: usize = 60_000;
/// T1 requests replayed (get, then set on a miss) to fill the two-process runs' cache.
const T1_FILL: usize = 1_000_000;

fn seg_id(tag: &str) -> SegmentId {
    format!("/shm-lru-budget-bench-{}-{tag}", std::process::id())
        .parse()
        .expect("segment name")
}

/// A cache destroyed when dropped, also on panic.
struct Bench(Cache);

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

/// A cache `tag` made with `opts`, filled with keys 0..n of `value` bytes each; every key must
/// stay (nothing evicted).
fn filled(tag: &str, opts: &CacheOptions, n: u64, value: usize) -> Bench {
    let b = Bench(Cache::create(&seg_id(tag), opts).expect("create"));
    let val = vec![0x5a; value];
    let so = SetOptions::default();
    for i in 0..n {
        b.0.set(present_key(i), &val, &so).expect("fill");
    }
    let st = b.0.stats().expect("stats");
    assert_eq!(
        (st.len, st.evictions),
        (n, 0),
        "{tag}: the cache must hold every entry"
    );
    b
}

/// A budget cache of `n` entries of `value` bytes with room for all of them: an index of `n`
/// entries, and a budget of their records with a quarter to spare plus the index.
fn budget_opts(n: u64, value: u64) -> CacheOptions {
    let record = layout::record_len(0, value);
    CacheOptions {
        capacity: n,
        max_value_size: value.max(KIB),
        ..CacheOptions::budget(n * record * 5 / 4 + n * 160 + MIB)
    }
}

fn fixed_opts(n: u64, value: u64) -> CacheOptions {
    CacheOptions {
        capacity: n,
        record_size: value as u32,
        ..CacheOptions::default()
    }
}

/// `PICKS` keys drawn at random among keys 0..n.
fn picks(n: u64, seed: u64) -> Vec<u64> {
    (0..PICKS as u64)
        .map(|j| present_key(splitmix((seed << 32) ^ j) % n))
        .collect()
}

fn size_label(n: u64, value: u64) -> String {
    let v = if value >= MIB {
        format!("{}MiB", value / MIB)
    } else if value >= KIB {
        format!("{}KiB", value / KIB)
    } else {
        format!("{value}B")
    };
    let e = (n as f64).log10().round() as u32;
    if 10u64.pow(e) == n {
        format!("1e{e}x{v}")
    } else {
        format!("{n}x{v}")
    }
}

/// Times each of `ops` in alternation: `rounds` rounds, each a batch of `batch` calls of every
/// op in turn (each call given a position that keeps counting), each batch after as many calls
/// again untimed (the ops' data, evicted from the caches by the other ops meanwhile, is read
/// back in); per op, the ns per call of each round.
fn alternate(rounds: usize, batch: usize, ops: &mut [&mut dyn FnMut(usize)]) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(rounds); ops.len()];
    for r in 0..rounds {
        for (op, t_op) in ops.iter_mut().zip(times.iter_mut()) {
            let from = 2 * r * batch;
            for i in 0..batch {
                op(from + i);
            }
            let t = Instant::now();
            for i in batch..2 * batch {
                op(from + i);
            }
            t_op.push(t.elapsed().as_nanos() as f64 / batch as f64);
        }
    }
    times
}

/// The best of an op's rounds.
fn best(rounds: &[f64]) -> f64 {
    rounds.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Keeps, for pair `label`, the median and range of the ratios of `a`'s rounds to `b`'s
/// (each round's two batches ran one after the other, so that the machine's drift moves both).
fn record_round_ratios(label: &str, a: &[f64], b: &[f64]) {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    r.sort_by(f64::total_cmp);
    record(format!("ratio_median/{label}"), r[r.len() / 2]);
    record(format!("ratio_low/{label}"), r[0]);
    record(format!("ratio_high/{label}"), r[r.len() - 1]);
}

/// The memory floor of a hit in a layout: per get (each independent of the one before),
/// dependent reads of random lines over private buffers as large as the layout's parts. With
/// fixed records: a bucket (64 bytes), then the entry's slot, reading `slot_read` bytes there
/// (header, key and value). With a byte budget: a bucket and the hints that follow it (128
/// bytes a bucket, one after the other, as both a capacity's index and a grown one lay them
/// out), then the record the hint names (`record` bytes: header, value); no slot.
struct Chain {
    /// The buckets (with a byte budget, each followed by its hints, a word per two entries
    /// here, as a record hint is half a word).
    buckets: Vec<u64>,
    slots: Vec<u64>,
    store: Vec<u64>,
    read_words: usize,
    record_words: usize,
    /// Per pick: the bucket's first word, and the slot's (an entry's slot, at random) or the
    /// hint's.
    picks: Vec<(usize, usize)>,
}

impl Chain {
    fn new(geo: &layout::Geometry, n: usize, slot_read: u64, record: u64) -> Chain {
        let nb = (geo.shards * geo.buckets_per_shard) as usize;
        let bucket_words = (geo.bucket_stride / 8) as usize;
        // Where bucket `b` starts, in words: one after the other.
        let at = move |b: usize| b * bucket_words;
        let span = nb * bucket_words;
        let slot_words = (geo.stride / 8) as usize;
        let record_words = (record / 8) as usize;
        // Not `vec![0; _]`, whose pages until written are all one page of zeros (a fixed-record
        // layout's buckets here would never be read from memory); and, as in a region, each
        // bucket starts a block of `bucket_stride` bytes.
        let mut buckets = vec![1u64; span + 16];
        buckets.fill(0);
        let base = buckets.as_ptr().align_offset(geo.bucket_stride as usize);
        if record_words > 0 {
            // Hint j of each bucket names a record of its own, in an order of their own (of two
            // entries whose hints share a word, the second's).
            let mut place: Vec<usize> = (0..nb * 14).map(|j| j % n.max(1)).collect();
            for i in (1..place.len()).rev() {
                place.swap(i, (splitmix(!(i as u64)) % (i as u64 + 1)) as usize);
            }
            for (j, p) in place.into_iter().enumerate() {
                buckets[base + at(j / 14) + 8 + j % 14 / 2] = (p * record_words) as u64;
            }
        }
        let picks = (0..PICKS as u64)
            .map(|j| {
                let h = splitmix((5 << 32) ^ j);
                let b = (h % nb as u64) as usize;
                let second = if record_words == 0 {
                    (h >> 32) as usize % n * slot_words
                } else {
                    base + at(b) + 8 + (h >> 40) as usize % 14 / 2
                };
                (base + at(b), second)
            })
            .collect();
        Chain {
            buckets,
            slots: if record_words == 0 {
                vec![1u64; n * slot_words]
            } else {
                Vec::new()
            },
            store: vec![1; (n * record_words).max(1)],
            read_words: ((slot_read / 8) as usize).clamp(1, slot_words),
            record_words,
            picks,
        }
    }

    #[inline(always)]
    fn get(&self, p: usize) -> u64 {
        let (bucket, second) = self.picks[p & (PICKS - 1)];
        // The bucket's first word is 0: what follows depends on the bucket's read, as a
        // lookup's does, without the compiler knowing it.
        let b = self.buckets[bucket] as usize;
        let mut acc = 0u64;
        if self.record_words == 0 {
            let at = second ^ b;
            for w in 0..self.read_words {
                acc = acc.wrapping_add(self.slots[at + w]);
            }
        } else {
            // The hints' line is asked for with the bucket's (a prefetch), so their read
            // waits for nothing; the record's waits for both.
            let pos = self.buckets[second] as usize ^ b;
            for w in 0..self.record_words {
                acc = acc.wrapping_add(self.store[pos + w]);
            }
        }
        acc
    }
}

struct Config {
    test_mode: bool,
    rounds: usize,
}

/// The label of `n` entries of `value` bytes, and a budget cache and a cache of fixed records
/// each filled with them.
fn pair(n: u64, value: u64) -> (String, Bench, Bench) {
    let label = size_label(n, value);
    let budget = filled(
        &format!("budget-{label}"),
        &budget_opts(n, value),
        n,
        value as usize,
    );
    let fixed = filled(
        &format!("fixed-{label}"),
        &fixed_opts(n, value),
        n,
        value as usize,
    );
    (label, budget, fixed)
}

/// Get hits of `value`-byte values among `n` entries: a budget cache against a cache of
/// `value`-byte records, the same keys.
fn against_fixed(c: &mut Criterion, cfg: &Config, n: u64, value: u64) {
    let (label, budget, fixed) = pair(n, value);
    let keys = picks(n, 1);
    let mask = PICKS - 1;
    let mut buf = vec![0u8; value as usize];
    let mut g = c.benchmark_group("budget");
    g.throughput(Throughput::Elements(1));
    for (name, cache) in [("budget", &budget.0), ("fixed", &fixed.0)] {
        g.bench_function(BenchmarkId::new(format!("get_hit_{name}"), &label), |b| {
            let mut p = 0usize;
            b.iter(|| {
                p = p.wrapping_add(1);
                black_box(cache.get_into(keys[p & mask], &mut buf).expect("get"))
            })
        });
    }
    g.finish();
    if cfg.test_mode {
        return;
    }
    let batch = ((64 * MIB) / value.max(256)).clamp(1 << 10, 1 << 18) as usize;
    let mut b2 = buf.clone();
    let mut budget_op = |p: usize| {
        black_box(budget.0.get_into(keys[p & mask], &mut buf).expect("get"));
    };
    let mut fixed_op = |p: usize| {
        black_box(fixed.0.get_into(keys[p & mask], &mut b2).expect("get"));
    };
    if value > KIB {
        // Larger values are a copy above all: no floor of lines.
        let t = alternate(cfg.rounds, batch, &mut [&mut budget_op, &mut fixed_op]);
        record(format!("get_hit_budget/{label}"), best(&t[0]));
        record(format!("get_hit_fixed/{label}"), best(&t[1]));
        record_round_ratios(&label, &t[0], &t[1]);
        return;
    }
    // Beside them, a budget cache made without a capacity, whose index grew to hold the keys.
    let grown = filled(
        &format!("grown-{label}"),
        &CacheOptions {
            capacity: 0,
            ..budget_opts(n, value)
        },
        n,
        value as usize,
    );
    let mut b3 = vec![0u8; value as usize];
    let record_len = layout::record_len(0, value);
    let floor_fixed = Chain::new(&fixed.0.geometry(), n as usize, 40 + value, 0);
    let floor_budget = Chain::new(&budget.0.geometry(), n as usize, 0, record_len);
    let t = alternate(
        cfg.rounds,
        batch,
        &mut [
            &mut budget_op,
            &mut fixed_op,
            &mut |p| {
                black_box(floor_fixed.get(p));
            },
            &mut |p| {
                black_box(floor_budget.get(p));
            },
            &mut |p| {
                black_box(grown.0.get_into(keys[p & mask], &mut b3).expect("get"));
            },
        ],
    );
    record(format!("get_hit_grown/{label}"), best(&t[4]));
    record_round_ratios(&format!("grown/{label}"), &t[4], &t[1]);
    record(format!("get_hit_budget/{label}"), best(&t[0]));
    record(format!("get_hit_fixed/{label}"), best(&t[1]));
    record(format!("floor_fixed/{label}"), best(&t[2]));
    record(format!("floor_budget/{label}"), best(&t[3]));
    record_round_ratios(&label, &t[0], &t[1]);
    record_round_ratios(&format!("floor/{label}"), &t[3], &t[2]);
}

/// Get hits of 1 MiB values against a copy of 1 MiB from memory as far away.
fn against_memcpy(c: &mut Criterion, cfg: &Config, n: u64) {
    let value = MIB;
    let (label, budget, fixed) = pair(n, value);
    let keys = picks(n, 2);
    let mask = PICKS - 1;
    // The reference's values, in private memory, touched before they are read, and which of
    // them each copy reads.
    let src: Vec<u8> = (0..n * value).map(|i| (i % 251) as u8).collect();
    let which: Vec<usize> = (0..PICKS as u64)
        .map(|j| (splitmix((3 << 32) ^ j) % n) as usize)
        .collect();
    let mut buf = vec![0u8; value as usize];
    let mut g = c.benchmark_group("budget");
    g.throughput(Throughput::Bytes(value));
    g.bench_function(BenchmarkId::new("get_hit_budget", &label), |b| {
        let mut p = 0usize;
        b.iter(|| {
            p = p.wrapping_add(1);
            black_box(budget.0.get_into(keys[p & mask], &mut buf).expect("get"))
        })
    });
    g.bench_function(BenchmarkId::new("get_hit_fixed", &label), |b| {
        let mut p = 0usize;
        b.iter(|| {
            p = p.wrapping_add(1);
            black_box(fixed.0.get_into(keys[p & mask], &mut buf).expect("get"))
        })
    });
    g.bench_function(BenchmarkId::new("memcpy", &label), |b| {
        let mut p = 0usize;
        b.iter(|| {
            p = p.wrapping_add(1);
            let at = which[p & mask] * value as usize;
            buf.copy_from_slice(&src[at..at + value as usize]);
            black_box(&buf);
        })
    });
    g.finish();
    if cfg.test_mode {
        return;
    }
    let (mut b2, mut b3) = (buf.clone(), buf.clone());
    let t = alternate(
        cfg.rounds,
        256,
        &mut [
            &mut |p| {
                black_box(budget.0.get_into(keys[p & mask], &mut buf).expect("get"));
            },
            &mut |p| {
                let at = which[p & mask] * value as usize;
                b2.copy_from_slice(&src[at..at + value as usize]);
                black_box(&b2);
            },
            &mut |p| {
                black_box(fixed.0.get_into(keys[p & mask], &mut b3).expect("get"));
            },
        ],
    );
    record(format!("get_hit_budget/{label}"), best(&t[0]));
    record(format!("memcpy/{label}"), best(&t[1]));
    record(format!("get_hit_fixed/{label}"), best(&t[2]));
}

// ---------------------------------------------------------------------------------------------
// Two processes

/// T1: each key's 24 bytes and value size, and the request sequence (as `sized.rs` makes it
/// with seed 1).
struct T1 {
    keys: Vec<[u8; KEY_LEN as usize]>,
    sizes: Vec<u32>,
    requests: Vec<u32>,
}

fn t1(requests: usize) -> T1 {
    let mut rng = Rng(1 ^ 0x5eed_0000);
    let d = t1_dist(2048.0);
    let sizes = (0..T1_KEYS).map(|_| d.draw(&mut rng)).collect();
    let requests = zipf_requests(&mut rng, T1_KEYS, 0.99, requests);
    T1 {
        keys: (0..T1_KEYS as u32).map(key_bytes).collect(),
        sizes,
        requests,
    }
}

/// A cache with T1's budget, filled by replaying `fill` of T1's requests (get, then set on a
/// miss).
fn t1_cache(id: &SegmentId, t: &T1, fill: usize) -> Bench {
    let b = Bench(Cache::create(id, &CacheOptions::budget(T1_BUDGET)).expect("create"));
    let value = vec![0x77; 64 * KIB as usize];
    let mut buf = vec![0u8; 64 * KIB as usize];
    let so = SetOptions::default();
    for &r in t.requests.iter().take(fill) {
        let k = &t.keys[r as usize][..];
        if b.0.get_into(k, &mut buf).expect("get").is_none() {
            b.0.set(k, &value[..t.sizes[r as usize] as usize], &so)
                .expect("set");
        }
    }
    b
}

/// Gets of T1's requests from position `from` on, for `dur`; returns how many.
fn reads(cache: &Cache, t: &T1, from: usize, dur: Duration) -> u64 {
    let mut buf = vec![0u8; 64 * KIB as usize];
    let start = Instant::now();
    let mut at = from;
    let mut ops = 0u64;
    loop {
        for _ in 0..256 {
            at = if at + 1 < t.requests.len() { at + 1 } else { 0 };
            let k = &t.keys[t.requests[at] as usize][..];
            black_box(cache.get_into(k, &mut buf).expect("get"));
        }
        ops += 256;
        if start.elapsed() >= dur {
            return ops;
        }
    }
}

/// The second process: opens the shared cache, fills one of its own alike, says `ready`, then
/// for each line `reads MS` or `privreads MS` reads the shared cache or its own for MS ms and
/// prints how many gets it made.
fn child(name: &str, fill: usize) {
    let id: SegmentId = name.parse().expect("segment name");
    let shared = Cache::open(&id).expect("open the shared cache");
    let t = t1(T1_FILL);
    let own = t1_cache(&seg_id("own"), &t, fill);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    let from = t.requests.len() / 2;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let mut w = line.split_whitespace();
        let (what, ms) = (w.next(), w.next().and_then(|m| m.parse().ok()));
        let dur = Duration::from_millis(ms.expect("a duration in ms"));
        let ops = match what {
            Some("reads") => reads(&shared, &t, from, dur),
            Some("privreads") => reads(&own.0, &t, from, dur),
            other => panic!("unknown order {other:?}"),
        };
        writeln!(out, "{ops}").expect("stdout");
        out.flush().expect("stdout");
    }
}

/// Aggregate gets per second of two processes against one, on one shared cache and on a cache
/// each: each two-process round set against one process just before and just after it, the
/// median of those ratios.
fn two_processes(cfg: &Config) {
    let fill = if cfg.test_mode { 20_000 } else { T1_FILL };
    let (dur, rounds) = if cfg.test_mode {
        (Duration::from_millis(20), 1)
    } else {
        (Duration::from_millis(300), 11)
    };
    let t = t1(T1_FILL);
    let id = seg_id("t1");
    let b = t1_cache(&id, &t, fill);
    let st = b.0.stats().expect("stats");
    println!(
        "two_processes: T1 in a {} MiB budget: {} entries, {:.1} MiB of records live",
        T1_BUDGET / MIB,
        st.len,
        st.bytes_live as f64 / MIB as f64
    );
    let exe = std::env::current_exe().expect("current_exe");
    let mut kid = Command::new(exe)
        .env(CHILD_ENV, id.to_string())
        .env("SHM_LRU_BUDGET_BENCH_FILL", fill.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the second process");
    let mut to_kid = kid.stdin.take().expect("stdin");
    let mut from_kid = BufReader::new(kid.stdout.take().expect("stdout"));
    let mut line = String::new();
    from_kid.read_line(&mut line).expect("child ready");
    assert_eq!(line.trim(), "ready", "the second process did not start");
    let secs = dur.as_secs_f64();
    for tag in ["reads", "privreads"] {
        let ours = |d| reads(&b.0, &t, 0, d) as f64 / secs;
        let mut ratios = Vec::new();
        let (mut one, mut two) = (0f64, 0f64);
        let mut before = ours(dur);
        for _ in 0..rounds {
            writeln!(to_kid, "{tag} {}", dur.as_millis()).expect("to child");
            to_kid.flush().expect("to child");
            let mine = reads(&b.0, &t, 0, dur);
            line.clear();
            from_kid.read_line(&mut line).expect("from child");
            let theirs: u64 = line.trim().parse().expect("child's count");
            let both = (mine + theirs) as f64 / secs;
            let after = ours(dur);
            ratios.push(both / ((before + after) / 2.0));
            one = one.max(before).max(after);
            two = two.max(both);
            before = after;
        }
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        println!(
            "two_processes/{tag}: best 1 process {:.2} Mgets/s, best 2 processes {:.2} Mgets/s; \
             median ratio of a round to one process around it {ratio:.2} (of {} rounds: {:.2}..{:.2})",
            one / 1e6,
            two / 1e6,
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
        record(format!("{tag}_1proc_ns"), 1e9 / one);
        record(format!("{tag}_2proc_ratio"), ratio);
    }
    drop(to_kid);
    let _ = kid.wait();
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn summary(cfg: &Config, sizes: &[(u64, u64)], big: u64) {
    if cfg.test_mode {
        println!("(test mode: every benchmark ran once; no figures)");
        return;
    }
    println!(
        "\n==== byte budgets: ratios of times measured in alternation in this run ({} rounds) ====",
        cfg.rounds
    );
    for &(n, value) in sizes {
        let l = size_label(n, value);
        if let (Some(b), Some(f), Some(m), Some(lo), Some(hi)) = (
            result(&format!("get_hit_budget/{l}")),
            result(&format!("get_hit_fixed/{l}")),
            result(&format!("ratio_median/{l}")),
            result(&format!("ratio_low/{l}")),
            result(&format!("ratio_high/{l}")),
        ) {
            println!(
                "get hit {l}: budget {b:.1} ns, fixed records {f:.1} ns (best rounds: {:.2}x); \
                 a round's ratio: median {m:.2}x, {lo:.2}..{hi:.2} (target <= 1.2): {}",
                b / f,
                met(m <= 1.2)
            );
        }
        if let (Some(g), Some(m), Some(lo), Some(hi)) = (
            result(&format!("get_hit_grown/{l}")),
            result(&format!("ratio_median/grown/{l}")),
            result(&format!("ratio_low/grown/{l}")),
            result(&format!("ratio_high/grown/{l}")),
        ) {
            println!(
                "  the same keys in a budget cache made without a capacity (its index grown to \
                 them): {g:.1} ns; a round's ratio to fixed records: median {m:.2}x, {lo:.2}..{hi:.2}"
            );
        }
        if let (Some(b), Some(f), Some(m)) = (
            result(&format!("floor_budget/{l}")),
            result(&format!("floor_fixed/{l}")),
            result(&format!("ratio_median/floor/{l}")),
        ) {
            println!(
                "  floor: dependent reads of random lines as each layout makes them (bucket and its \
                 hints, record; bucket, slot), over private buffers as large: {b:.1} ns against \
                 {f:.1} ns: {:.2}x; a round's ratio: median {m:.2}x",
                b / f
            );
        }
    }
    let l = size_label(big, MIB);
    if let (Some(b), Some(m)) = (
        result(&format!("get_hit_budget/{l}")),
        result(&format!("memcpy/{l}")),
    ) {
        let r = b / (m + 1000.0);
        println!(
            "get hit {l}: budget {:.1} µs, memcpy {:.1} µs: {r:.2}x (memcpy + 1 µs) (target <= 1.3), {:.2}x the memcpy: {}",
            b / 1e3,
            m / 1e3,
            b / m,
            met(r <= 1.3)
        );
        if let Some(f) = result(&format!("get_hit_fixed/{l}")) {
            println!(
                "  beside it, a hit on a cache of 1 MiB records: {:.1} µs ({:.2}x the memcpy; the budget's {:.2}x it)",
                f / 1e3,
                f / m,
                b / f
            );
        }
    }
    if let Some(r) = result("reads_2proc_ratio") {
        println!(
            "2 processes / 1 process, gets of T1 on a 32 MiB budget: {r:.2} (target >= 1.8): {}",
            met(r >= 1.8)
        );
    }
    if let Some(r) = result("privreads_2proc_ratio") {
        println!("  floor: the same with nothing shared (a cache each, filled alike): {r:.2}");
    }
}

fn main() {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        let fill = std::env::var("SHM_LRU_BUDGET_BENCH_FILL")
            .ok()
            .and_then(|f| f.parse().ok())
            .unwrap_or(T1_FILL);
        child(&name, fill);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // As criterion does: without `--bench` (as under `cargo test`), each benchmark runs once.
    let test_mode = !args.iter().any(|a| a == "--bench");
    let cfg = Config {
        test_mode,
        rounds: 31,
    };
    let (sizes, big): (Vec<(u64, u64)>, u64) = if test_mode {
        (vec![(1_000, 64), (100, 16 * KIB)], 4)
    } else {
        (vec![(100_000, 64), (10_000, 16 * KIB)], 64)
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    for &(n, value) in &sizes {
        against_fixed(&mut c, &cfg, n, value);
    }
    against_memcpy(&mut c, &cfg, big);
    c.final_summary();
    two_processes(&cfg);
    summary(&cfg, &sizes, big);
}

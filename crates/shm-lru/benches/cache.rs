//! Benchmarks of the engine.
//!
//! * get hit, get miss, set update and set insert (with eviction) at 10^3, 10^5 and 10^7
//!   entries of 64 B and 1 KiB values, u64 keys drawn from precomputed arrays of random keys;
//! * a reference in-process LRU (`lru::LruCache` behind a `std::sync::Mutex`) for get hit and
//!   set update at 10^5 × 64 B;
//! * two processes running a read-mostly mix (90 % get, 10 % set) against one cache, against
//!   one process alone: this binary re-executes itself (see [`CHILD_ENV`]) as the second one.
//!
//! Besides criterion's own report, a summary with the targets' figures and ratios is printed at
//! the end. `SHM_LRU_BENCH_MAX_N` caps the entry counts (e.g. `100000` for a quick run).
//! Without `--bench` (e.g. under `cargo test --benches`, criterion's test mode) only the smallest
//! size runs, briefly.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use shm_lru::{layout, Cache, CacheOptions, SegmentId, SetOptions};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroUsize;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set in the environment of the re-executed child: the segment to open.
const CHILD_ENV: &str = "SHM_LRU_BENCH_CHILD";
/// The child's entry count (to derive the same keys).
const CHILD_N_ENV: &str = "SHM_LRU_BENCH_CHILD_N";
/// Length of each precomputed key array (a power of two).
const PICKS: usize = 1 << 20;
const SIZES: [u64; 3] = [1_000, 100_000, 10_000_000];
const VALUES: [u32; 2] = [64, 1024];
/// Entry count and value size of the reference comparison and the two-process mix.
const REF_N: u64 = 100_000;
const REF_V: u32 = 64;

/// Figures gathered for the summary: (benchmark name, ns per op).
static RESULTS: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

fn record(name: String, ns: f64) {
    RESULTS.lock().unwrap_or_else(|e| e.into_inner()).push((name, ns));
}

fn result(name: &str) -> Option<f64> {
    RESULTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(n, _)| n == name)
        .map(|&(_, ns)| ns)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The i-th key stored by the fill (top bit clear).
fn present_key(i: u64) -> u64 {
    splitmix(i) & !(1 << 63)
}

/// `PICKS` random keys among those the fill stored and the cache still holds.
fn hit_keys(cache: &Cache, n: u64, seed: u64) -> Vec<u64> {
    let mut v = Vec::with_capacity(PICKS);
    let mut j = 0u64;
    while v.len() < PICKS {
        let k = present_key(splitmix(seed ^ j) % n);
        j += 1;
        if cache.contains(k).expect("contains") {
            v.push(k);
        }
    }
    v
}

/// `PICKS` random keys that were never stored (top bit set).
fn miss_keys(seed: u64) -> Vec<u64> {
    (0..PICKS as u64)
        .map(|j| splitmix(seed ^ (j << 20)) | (1 << 63))
        .collect()
}

fn seg_id(tag: &str) -> SegmentId {
    format!("/shm-lru-bench-{}-{tag}", std::process::id())
        .parse()
        .expect("segment name")
}

/// A cache destroyed when dropped, also on panic.
struct Bench {
    cache: Cache,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.cache.destroy();
    }
}

fn options(n: u64, value: u32) -> CacheOptions {
    CacheOptions {
        capacity: n,
        record_size: value,
        ..CacheOptions::default()
    }
}

/// A cache of capacity `n` filled with `n` keys (a few may have been evicted by shards that
/// received more than their share).
fn filled(n: u64, value: u32) -> Bench {
    let id = seg_id(&format!("{n}-{value}"));
    let cache = Cache::create(&id, &options(n, value)).expect("create");
    let b = Bench { cache };
    let val = vec![0x5a; value as usize];
    let opts = SetOptions::default();
    for i in 0..n {
        b.cache.set(present_key(i), &val, &opts).expect("fill");
    }
    b
}

/// Free bytes of the file system holding POSIX shared memory.
fn shm_free() -> u64 {
    // SAFETY: statvfs writes only into `st`, a valid, writable struct; the path is a valid C
    // string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c"/dev/shm".as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

/// Runs `op(position)` under criterion with a position that keeps counting across calls, and
/// records the mean ns/op of the measured samples for the summary.
fn run<F: FnMut(usize)>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    samples: usize,
    op: &str,
    param: &str,
    mut f: F,
) {
    let mut seen: Vec<(u64, Duration)> = Vec::new();
    let mut pos = 0usize;
    g.bench_function(BenchmarkId::new(op, param), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f(pos);
                pos = pos.wrapping_add(1);
            }
            let e = start.elapsed();
            seen.push((iters, e));
            e
        })
    });
    // The last `samples` calls are the measurement; earlier ones were the warm-up.
    let tail = &seen[seen.len().saturating_sub(samples)..];
    let iters: u64 = tail.iter().map(|s| s.0).sum();
    if iters > 0 {
        let ns: f64 = tail.iter().map(|s| s.1.as_nanos() as f64).sum();
        record(format!("{op}/{param}"), ns / iters as f64);
    }
}

fn label(n: u64, value: u32) -> String {
    let v = if value >= 1024 {
        format!("{}KiB", value / 1024)
    } else {
        format!("{value}B")
    };
    format!("{}x{v}", exp10(n))
}

fn exp10(n: u64) -> String {
    let e = (n as f64).log10().round() as u32;
    if 10u64.pow(e) == n {
        format!("1e{e}")
    } else {
        n.to_string()
    }
}

struct Config {
    samples: usize,
    test_mode: bool,
    max_n: u64,
    /// Criterion's name filter, if a plain string (matched here as a substring, to skip fills
    /// that no benchmark would use).
    filter: Option<String>,
    /// Whether the non-criterion part (two processes) should run under the given filter.
    run_procs: bool,
}

fn engine(c: &mut Criterion, cfg: &Config) {
    for &n in SIZES.iter().filter(|&&n| n <= cfg.max_n) {
        for &value in &VALUES {
            let need = Cache::required_size(&options(n, value)).expect("size");
            if need + (1 << 30) > shm_free() {
                println!(
                    "skipping {}: needs {:.1} GB of /dev/shm, {:.1} GB free",
                    label(n, value),
                    need as f64 / 1e9,
                    shm_free() as f64 / 1e9
                );
                continue;
            }
            let param = label(n, value);
            let wanted = ["get_hit", "get_miss", "set_update", "set_insert_evict"]
                .iter()
                .any(|op| {
                    cfg.filter
                        .as_ref()
                        .is_none_or(|f| format!("shm_lru/{op}/{param}").contains(f.as_str()))
                });
            if !wanted {
                continue;
            }
            let b = filled(n, value);
            let cache = &b.cache;
            let hits = hit_keys(cache, n, 1);
            let misses = miss_keys(2);
            let val = vec![0xa5; value as usize];
            let mut buf = vec![0u8; value as usize];
            let opts = SetOptions::default();
            let mask = PICKS - 1;
            let mut g = c.benchmark_group("shm_lru");
            g.throughput(Throughput::Elements(1));
            run(&mut g, cfg.samples, "get_hit", &param, |p| {
                let r = cache.get_into(hits[p & mask], &mut buf).expect("get");
                black_box(r);
            });
            run(&mut g, cfg.samples, "get_miss", &param, |p| {
                let r = cache.get_into(misses[p & mask], &mut buf).expect("get");
                black_box(r);
            });
            run(&mut g, cfg.samples, "set_update", &param, |p| {
                let r = cache.set(hits[p & mask], &val, &opts).expect("set");
                black_box(r);
            });
            // New keys (a fresh salt on each pass over the array), each evicting the LRU entry
            // of its shard once the shard is full.
            run(&mut g, cfg.samples, "set_insert_evict", &param, |p| {
                let salt = ((p / PICKS) as u64) << 40;
                let r = cache.set(misses[p & mask] ^ salt, &val, &opts).expect("set");
                black_box(r);
            });
            g.finish();
            if n == REF_N && value == REF_V {
                let geo = cache.geometry();
                let per = (geo.total - layout::HEADER_SIZE) as f64 / geo.capacity() as f64;
                record("overhead_bytes".into(), per - (8 + value) as f64);
            }
            drop(b);
        }
        if cfg.test_mode {
            break;
        }
    }
}

/// The in-process reference beside the engine, at 10^5 × 64 B.
fn reference(c: &mut Criterion, cfg: &Config) {
    let n = if cfg.test_mode { 1_000 } else { REF_N };
    let param = label(n, REF_V);
    let cap = NonZeroUsize::new(n as usize).expect("non-zero");
    let lru = Mutex::new(lru::LruCache::<u64, [u8; REF_V as usize]>::new(cap));
    let val = [0x5a; REF_V as usize];
    for i in 0..n {
        lru.lock().expect("lock").put(present_key(i), val);
    }
    let mut hits = Vec::with_capacity(PICKS);
    let mut j = 0u64;
    while hits.len() < PICKS {
        hits.push(present_key(splitmix(1 ^ j) % n));
        j += 1;
    }
    let mask = PICKS - 1;
    let mut buf = [0u8; REF_V as usize];
    let mut g = c.benchmark_group("reference");
    g.throughput(Throughput::Elements(1));
    run(&mut g, cfg.samples, "lru_mutex_get_hit", &param, |p| {
        let mut l = lru.lock().expect("lock");
        if let Some(v) = l.get(&hits[p & mask]) {
            buf.copy_from_slice(v);
        }
        drop(l);
        black_box(&buf);
    });
    run(&mut g, cfg.samples, "lru_mutex_set_update", &param, |p| {
        let r = lru.lock().expect("lock").put(hits[p & mask], val);
        black_box(r);
    });
    g.finish();
}

/// One process's share of the read-mostly mix: 9 gets then 1 set, over `keys`, for `dur`.
fn mix(cache: &Cache, keys: &[u64], dur: Duration) -> u64 {
    let val = [0x3c; REF_V as usize];
    let mut buf = [0u8; REF_V as usize];
    let opts = SetOptions::default();
    let mask = keys.len() - 1;
    let start = Instant::now();
    let mut ops = 0usize;
    loop {
        for _ in 0..1024 {
            let k = keys[ops & mask];
            if ops % 10 == 9 {
                black_box(cache.set(k, &val, &opts).expect("set"));
            } else {
                black_box(cache.get_into(k, &mut buf).expect("get"));
            }
            ops += 1;
        }
        if start.elapsed() >= dur {
            return ops as u64;
        }
    }
}

/// The re-executed second process: opens the cache, says "ready", then runs the mix for each
/// "run <ms>" line read and answers with its op count, until stdin closes.
fn child(name: &str) {
    let id: SegmentId = name.parse().expect("segment name");
    let n: u64 = std::env::var(CHILD_N_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("entry count");
    let cache = Cache::open(&id).expect("open");
    let keys = hit_keys(&cache, n, 77);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let Some(ms) = line.strip_prefix("run ").and_then(|s| s.parse().ok()) else {
            break;
        };
        let ops = mix(&cache, &keys, Duration::from_millis(ms));
        writeln!(out, "{ops}").expect("stdout");
        out.flush().expect("stdout");
    }
}

/// Aggregate throughput of the mix in one process and in two at once; records Mops/s.
fn two_processes(cfg: &Config) {
    let n = if cfg.test_mode { 1_000 } else { REF_N };
    let (dur, rounds) = if cfg.test_mode {
        (Duration::from_millis(20), 1)
    } else {
        (Duration::from_millis(1500), 3)
    };
    let id = seg_id("procs");
    let b = {
        let cache = Cache::create(&id, &options(n, REF_V)).expect("create");
        let b = Bench { cache };
        let val = [0u8; REF_V as usize];
        for i in 0..n {
            b.cache
                .set(present_key(i), &val, &SetOptions::default())
                .expect("fill");
        }
        b
    };
    let keys = hit_keys(&b.cache, n, 78);
    let name = match &id {
        SegmentId::Posix(s) => s.clone(),
        SegmentId::SysV(k) => k.to_string(),
    };
    let exe = std::env::current_exe().expect("current_exe");
    let mut kid = Command::new(exe)
        .env(CHILD_ENV, &name)
        .env(CHILD_N_ENV, n.to_string())
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
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..rounds {
        one.push(mix(&b.cache, &keys, dur) as f64 / secs);
        writeln!(to_kid, "run {}", dur.as_millis()).expect("to child");
        to_kid.flush().expect("to child");
        let mine = mix(&b.cache, &keys, dur);
        line.clear();
        from_kid.read_line(&mut line).expect("from child");
        let theirs: u64 = line.trim().parse().expect("child's count");
        two.push((mine + theirs) as f64 / secs);
    }
    drop(to_kid);
    let _ = kid.wait();
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (one, two) = (best(&one), best(&two));
    println!(
        "two_processes/{}: 1 process {:.2} Mops/s, 2 processes {:.2} Mops/s aggregate, ratio {:.2}",
        label(n, REF_V),
        one / 1e6,
        two / 1e6,
        two / one
    );
    record("mix_1proc_ns".into(), 1e9 / one);
    record("mix_2proc_ns".into(), 1e9 / two);
}

fn summary(cfg: &Config) {
    let ref_l = label(if cfg.test_mode { 1_000 } else { REF_N }, REF_V);
    println!("\n==== summary (mean of criterion's samples; Mops/s = 1000 / ns) ====");
    println!("{:<36} {:>10} {:>10}", "benchmark", "ns/op", "Mops/s");
    for (name, ns) in RESULTS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        if name.ends_with("_ns") || name == "overhead_bytes" {
            continue;
        }
        println!("{name:<36} {ns:>10.1} {:>10.2}", 1e3 / ns);
    }
    if cfg.test_mode {
        println!("(test mode: every benchmark ran once; these are not measurements)");
        return;
    }
    let ratio = |a: &str, b: &str| Some(result(a)? / result(b)?);
    println!("---- targets ----");
    if let Some(ns) = result(&format!("get_hit/{ref_l}")) {
        let m = 1e3 / ns;
        println!(
            "get hit {ref_l}: {m:.2} Mops/s (target >= 20): {}",
            met(m >= 20.0)
        );
    }
    for v in ["64B", "1KiB"] {
        for op in ["get_hit", "get_miss", "set_update", "set_insert_evict"] {
            if let Some(r) = ratio(&format!("{op}/1e7x{v}"), &format!("{op}/1e3x{v}")) {
                println!(
                    "{op} {v}: cost 1e7 / 1e3 = {r:.2} (target <= 3): {}",
                    met(r <= 3.0)
                );
            }
        }
    }
    if let Some(r) = ratio("mix_1proc_ns", "mix_2proc_ns") {
        println!(
            "2 processes / 1 process, 90/10 mix: {r:.2} (target >= 1.7): {}",
            met(r >= 1.7)
        );
    }
    if let Some(b) = result("overhead_bytes") {
        println!(
            "per-entry overhead beyond key + value: {b:.1} B (target <= 32): {}",
            met(b <= 32.0)
        );
    }
    println!("---- reference: lru::LruCache in a std Mutex, {ref_l} (shm-lru time / reference time) ----");
    for (ours, theirs) in [
        ("get_hit", "lru_mutex_get_hit"),
        ("set_update", "lru_mutex_set_update"),
    ] {
        if let Some(r) = ratio(&format!("{ours}/{ref_l}"), &format!("{theirs}/{ref_l}")) {
            println!("{ours}: {r:.2}x the reference's time per op");
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn main() {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        child(&name);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // As criterion does: without `--bench` (as under `cargo test`), each benchmark runs once.
    let test_mode = !args.iter().any(|a| a == "--bench");
    // Criterion's positional filter: the first argument that is neither an option nor the
    // value of one.
    const WITH_VALUE: [&str; 18] = [
        "--profile-time",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--color",
        "-c",
        "--format",
        "--plotting-backend",
    ];
    let filter = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with('-') && (*i == 0 || !WITH_VALUE.contains(&args[i - 1].as_str())))
        .map(|(_, a)| a);
    let cfg = Config {
        samples: 10,
        test_mode,
        max_n: std::env::var("SHM_LRU_BENCH_MAX_N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX),
        run_procs: filter.is_none_or(|f| "two_processes".contains(f.as_str())),
        // A regular expression is left to criterion alone.
        filter: filter
            .filter(|f| !f.contains(['.', '*', '+', '?', '(', '|', '[', '^', '$', '\\']))
            .cloned(),
    };
    let mut c = Criterion::default()
        .sample_size(cfg.samples)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    engine(&mut c, &cfg);
    reference(&mut c, &cfg);
    c.final_summary();
    if cfg.run_procs {
        two_processes(&cfg);
    }
    summary(&cfg);
}

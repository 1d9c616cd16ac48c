//! Benchmarks of the engine, each beside its reference in the same run:
//!
//! * get hit, get miss, set update and set insert (with eviction) at 10^3, 10^5 and 10^6
//!   entries of 64-byte values (and 1 KiB at 10^5), u64 keys drawn from precomputed arrays of
//!   random keys;
//! * the reference: an in-process `lru::LruCache` behind a `std::sync::Mutex`, get hit and set
//!   update on the same keys at the same sizes;
//! * the memory floor: dependent random 8-byte reads over a buffer as large as the cache's
//!   region, one per cache line (what any lookup that misses the caches must pay at least);
//! * the lock floor: a robust process-shared mutex (the shard lock's kind) and a
//!   `std::sync::Mutex` (the reference's), each locked and unlocked;
//! * the engine and the reference once more in alternation, best of 11 rounds (a paired
//!   measurement, so that the machine's drift during the run moves both alike);
//! * two processes against one cache, reads only and a 90/10 read/write mix, against one
//!   process alone: this binary re-executes itself (see [`CHILD_ENV`]) as the second one; the
//!   same two runs with nothing shared (the second process on a cache of its own, filled
//!   alike: what this machine gives two processes running this code); and as their floor, two
//!   processes each walking a private buffer as large as the region (what the machine gives
//!   two processes that share nothing), the same walks taking one of a few shared robust
//!   mutexes every tenth step, and both processes walking one shared buffer, every tenth step
//!   taking one of the mutexes and writing a record as long as the cache's slot where it is
//!   (what a 90/10 mix whose writers hold a shard's lock to write a record must pay at least);
//!   and the time one cache line takes to move from one process's core to the other's (a
//!   ping-pong of one word).
//!
//! Besides criterion's own report, a summary with the targets' figures and ratios is printed at
//! the end. `SHM_LRU_BENCH_MAX_N` caps the entry counts (e.g. `100000` for a quick run; `10000000`
//! adds 10^7). Without `--bench` (e.g. under `cargo test --benches`, criterion's test mode) only
//! the smallest size runs, briefly.

mod figures;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use figures::{present_key, record, result, splitmix};
use shm_lru::internals::robust_mutex;
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
const SIZES: [u64; 4] = [1_000, 100_000, 1_000_000, 10_000_000];
/// Entry counts measured unless `SHM_LRU_BENCH_MAX_N` says otherwise.
const DEFAULT_MAX_N: u64 = 1_000_000;
/// Entry count of the two-process runs.
const REF_N: u64 = 100_000;
/// Value size of every run but the 1 KiB one.
const REF_V: u32 = 64;

/// The `j`-th random draw of the sequence named `seed`. The seed goes in the high half, so that
/// sequences of different seeds share no draws (mixed into the low half, as `seed ^ j`, seeds
/// that differ in a few low bits would draw the same values in nearly the same places, and two
/// processes so seeded would walk the same keys almost in step).
fn draw(seed: u64, j: u64) -> u64 {
    splitmix((seed << 32) ^ j)
}

/// `PICKS` random keys among those the fill stored and the cache still holds.
fn hit_keys(cache: &Cache, n: u64, seed: u64) -> Vec<u64> {
    let mut v = Vec::with_capacity(PICKS);
    let mut j = 0u64;
    while v.len() < PICKS {
        let k = present_key(draw(seed, j) % n);
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

/// A cache of capacity `n` filled with `n` keys.
fn filled(n: u64, value: u32) -> Bench {
    filled_as(
        &seg_id(&format!("{n}-{value}")),
        n,
        value,
        &vec![0x5a; value as usize],
    )
}

/// A cache `id` of capacity `n` and records of `value` bytes, filled with `n` keys, each
/// holding `val`.
fn filled_as(id: &SegmentId, n: u64, value: u32, val: &[u8]) -> Bench {
    let cache = Cache::create(id, &options(n, value)).expect("create");
    let b = Bench { cache };
    let opts = SetOptions::default();
    for i in 0..n {
        b.cache.set(present_key(i), val, &opts).expect("fill");
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

impl Config {
    fn wants(&self, name: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| name.contains(f.as_str()))
    }
}

fn engine(c: &mut Criterion, cfg: &Config) {
    for &n in SIZES.iter().filter(|&&n| n <= cfg.max_n) {
        let values: &[u32] = if n == REF_N { &[REF_V, 1024] } else { &[REF_V] };
        for &value in values {
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
            let ops = ["get_hit", "get_miss", "set_update", "set_insert_evict"];
            let wanted_ref = value == REF_V;
            let any = ops.iter().any(|op| cfg.wants(&format!("shm_lru/{op}/{param}")))
                || (wanted_ref && cfg.wants(&format!("reference/lru_mutex_get_hit/{param}")))
                || (wanted_ref && cfg.wants(&format!("floor/dependent_read/{param}")));
            if !any {
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
            if wanted_ref && !cfg.test_mode {
                // Before the inserts below evict some of the keys it reads.
                paired(cache, n, &hits);
            }
            // New keys (a fresh salt on each pass over the array), each evicting the LRU entry
            // of its shard once the shard is full.
            run(&mut g, cfg.samples, "set_insert_evict", &param, |p| {
                let salt = ((p / PICKS) as u64) << 40;
                let r = cache.set(misses[p & mask] ^ salt, &val, &opts).expect("set");
                black_box(r);
            });
            g.finish();
            let geo = cache.geometry();
            let per = (geo.total - layout::HEADER_SIZE) as f64 / cache.capacity() as f64;
            record(format!("overhead_bytes/{param}"), per - (8 + value) as f64);
            let region = cache.region_size();
            drop(b);
            if wanted_ref {
                reference(c, cfg, n);
                floor(c, cfg, n, region);
                if n == SIZES[0] {
                    lock_floor(c, cfg);
                }
            }
        }
        if cfg.test_mode {
            break;
        }
    }
}

/// The reference holding the same `n` keys as [`filled`].
fn filled_reference(n: u64) -> Mutex<lru::LruCache<u64, [u8; REF_V as usize]>> {
    let cap = NonZeroUsize::new(n as usize).expect("non-zero");
    let mut lru = lru::LruCache::new(cap);
    for i in 0..n {
        lru.put(present_key(i), [0x5a; REF_V as usize]);
    }
    Mutex::new(lru)
}

/// The engine and the reference timed in alternation, so that a machine whose speed drifts
/// during the run (these are shared machines) moves both alike: rounds of a batch of get hits
/// and of updates on each, on the same keys; the best round of each is recorded as
/// `paired_*` for the summary's ratios.
fn paired(cache: &Cache, n: u64, hits: &[u64]) {
    const ROUNDS: usize = 11;
    const BATCH: usize = 1 << 18;
    let param = label(n, REF_V);
    let lru = filled_reference(n);
    let val = [0x5a; REF_V as usize];
    let opts = SetOptions::default();
    let mut buf = [0u8; REF_V as usize];
    assert!(
        hits.iter().all(|&k| cache.contains(k).expect("contains")),
        "paired: every key read must be a hit"
    );
    let mut best = [f64::MAX; 4];
    let mut at = 0usize;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / BATCH as f64
    };
    for _ in 0..ROUNDS {
        let keys: Vec<u64> = (0..BATCH).map(|i| hits[(at + i) % hits.len()]).collect();
        at += BATCH;
        let times = [
            time(&mut || {
                for &k in &keys {
                    black_box(cache.get_into(k, &mut buf).expect("get"));
                }
            }),
            time(&mut || {
                for k in &keys {
                    let mut l = lru.lock().expect("lock");
                    if let Some(v) = l.get(k) {
                        buf.copy_from_slice(v);
                    }
                    drop(l);
                    black_box(&buf);
                }
            }),
            time(&mut || {
                for &k in &keys {
                    black_box(cache.set(k, &val, &opts).expect("set"));
                }
            }),
            time(&mut || {
                for &k in &keys {
                    black_box(lru.lock().expect("lock").put(k, val));
                }
            }),
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
    }
    for (name, ns) in ["get_hit", "ref_get_hit", "set_update", "ref_set_update"]
        .iter()
        .zip(best)
    {
        record(format!("paired_{name}/{param}"), ns);
    }
}

/// The in-process reference beside the engine: the same keys, the same value size.
fn reference(c: &mut Criterion, cfg: &Config, n: u64) {
    let param = label(n, REF_V);
    let lru = filled_reference(n);
    let val = [0x5a; REF_V as usize];
    let mut hits = Vec::with_capacity(PICKS);
    let mut j = 0u64;
    while hits.len() < PICKS {
        hits.push(present_key(draw(1, j) % n));
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

/// The memory floor: a random cyclic walk over one 8-byte word per 64-byte line of a buffer as
/// large as the cache's region, each read's address depending on the one before. Measured twice:
/// over process memory (which the kernel may back with huge pages) and over a shared memory
/// segment like the cache's own (the same pages, so the same TLB misses).
fn floor(c: &mut Criterion, cfg: &Config, n: u64, region: u64) {
    let param = label(n, REF_V);
    let buf = walk_buffer(region, 0xf1007);
    let lines = buf.len() / 8;
    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(1));
    let mut at = 0usize;
    run(&mut g, cfg.samples, "dependent_read", &param, |_| {
        at = buf[at] as usize;
        black_box(at);
    });
    let seg = shm_lru::Segment::create(&seg_id("floor"), lines as u64 * 64, 0o600).expect("floor segment");
    let words = seg.as_ptr().cast::<u64>();
    for (w, &v) in buf.iter().enumerate().filter(|(_, &v)| v != 0 || lines == 1) {
        // SAFETY: w < lines * 8, so the word lies inside the segment of lines * 64 bytes, which
        // only this process maps; `seg` outlives the writes.
        unsafe { words.add(w).write(v) };
    }
    drop(buf);
    let mut at = 0usize;
    run(&mut g, cfg.samples, "dependent_read_shm", &param, |_| {
        // SAFETY: every stored word is the index of another line's first word, < lines * 8;
        // the segment stays mapped until `seg` is dropped below.
        at = unsafe { words.add(at).read() } as usize;
        black_box(at);
    });
    g.finish();
    let _ = seg.destroy_self(true);
}

/// The floor of every write: one lock and unlock of the shard lock's kind of mutex (robust,
/// process-shared, in shared memory), beside one of the `std::sync::Mutex` the reference uses.
fn lock_floor(c: &mut Criterion, cfg: &Config) {
    let seg = lock_segment(1);
    let m = seg.as_ptr().cast::<libc::pthread_mutex_t>();
    let std_mutex = Mutex::new(0u64);
    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(1));
    run(&mut g, cfg.samples, "robust_mutex_lock_unlock", "shared", |_| {
        // SAFETY: `m` was initialised above and stays mapped; this thread takes and releases it.
        unsafe {
            black_box(robust_mutex::lock(m).expect("lock"));
            robust_mutex::unlock(m).expect("unlock");
        }
    });
    run(&mut g, cfg.samples, "std_mutex_lock_unlock", "private", |_| {
        *std_mutex.lock().expect("lock") += 1;
    });
    g.finish();
    black_box(*std_mutex.lock().expect("lock"));
    let _ = seg.destroy_self(true);
}

/// One process's share of a mix: `writes_per_10` sets in every 10 operations, gets otherwise,
/// over `keys`, for `dur`.
fn mix(cache: &Cache, keys: &[u64], writes_per_10: usize, dur: Duration) -> u64 {
    let val = [0x3c; REF_V as usize];
    let mut buf = [0u8; REF_V as usize];
    let opts = SetOptions::default();
    let mask = keys.len() - 1;
    let start = Instant::now();
    let mut ops = 0usize;
    loop {
        for _ in 0..1024 {
            let k = keys[ops & mask];
            if ops % 10 < writes_per_10 {
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

/// A random cyclic walk over one 8-byte word per 64-byte line of a buffer of `bytes`, as the
/// memory floor makes (each word holds the index of the next line's word).
fn walk_buffer(bytes: u64, seed: u64) -> Vec<u64> {
    let lines = (bytes / 64).max(2) as usize;
    let mut order: Vec<usize> = (0..lines).collect();
    // Fisher-Yates with splitmix: one cycle through every line in random order.
    for i in (1..lines).rev() {
        let j = (splitmix(i as u64 ^ seed) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut buf = vec![0u64; lines * 8];
    for w in 0..lines {
        buf[order[w] * 8] = (order[(w + 1) % lines] * 8) as u64;
    }
    buf
}

/// Dependent reads along `buf` (from [`walk_buffer`]) for `dur`; returns how many.
fn walk(buf: &[u64], dur: Duration) -> u64 {
    let start = Instant::now();
    let (mut at, mut reads) = (0usize, 0u64);
    loop {
        for _ in 0..1024 {
            at = buf[at] as usize;
        }
        reads += 1024;
        if start.elapsed() >= dur {
            black_box(at);
            return reads;
        }
    }
}

/// The mix's floor: like [`walk`], but every tenth step locks and unlocks one of the `locks`
/// robust mutexes at `mutexes` (64 bytes apart, shared with the other process) instead of
/// reading, as a 90/10 mix's writes each take one shard lock; returns the steps taken.
fn walk_locking(buf: &[u64], mutexes: *mut u8, locks: usize, dur: Duration) -> u64 {
    let start = Instant::now();
    let (mut at, mut steps) = (0usize, 0u64);
    loop {
        for i in 0..1024u64 {
            let n = steps + i;
            if n % 10 == 0 {
                let which = (splitmix(n) as usize) % locks;
                let m = mutexes.wrapping_add(which * 64).cast::<libc::pthread_mutex_t>();
                // SAFETY: `which` < locks, and the segment holds `locks` mutexes initialised
                // by the first process, 64 bytes apart, mapped for this whole call.
                unsafe {
                    black_box(robust_mutex::lock(m).expect("lock"));
                    robust_mutex::unlock(m).expect("unlock");
                }
            } else {
                at = buf[at] as usize;
            }
        }
        steps += 1024;
        if start.elapsed() >= dur {
            black_box(at);
            return steps;
        }
    }
}

/// The mix's floor with shared data: [`walk`] over a walk that both processes share (at `buf`,
/// `lines` lines, from [`walk_buffer`]), starting at line `from`; like [`walk_locking`], every
/// tenth step (when `record` > 0) writes a record of `record` bytes (the cache's slot stride:
/// its header and value) from the line it is at, under the mutex, keeping the walk's words as
/// they are. Returns the steps taken. (The two processes start half the walk apart, so
/// that one reads what the other wrote a while ago, as readers of a cache's random keys do, not
/// just now.)
///
/// # Safety
/// `buf` must address `lines` 64-byte lines holding a walk (each line's first word the index of
/// the next line's first word, `< lines * 8`), `lines * 64` at least `record`, and `mutexes`
/// `locks` initialised robust mutexes 64 bytes apart, all mapped (and shared with the other
/// process) for this whole call.
#[allow(clippy::too_many_arguments)]
unsafe fn walk_shared(
    buf: *mut u64,
    lines: usize,
    from: usize,
    record: usize,
    mutexes: *mut u8,
    locks: usize,
    dur: Duration,
) -> u64 {
    let words = lines * 8;
    let record_words = record.div_ceil(8);
    let start = Instant::now();
    let (mut at, mut steps) = ((from % lines) * 8, 0u64);
    loop {
        for i in 0..1024u64 {
            let n = steps + i;
            if record > 0 && n % 10 == 0 {
                let which = (splitmix(n) as usize) % locks;
                let m = mutexes.wrapping_add(which * 64).cast::<libc::pthread_mutex_t>();
                // SAFETY: as the caller guarantees: `which` < locks, and every word index is
                // taken modulo the walk's length.
                unsafe {
                    black_box(robust_mutex::lock(m).expect("lock"));
                    for w in 0..record_words {
                        let p = buf.add((at + w) % words);
                        // A line's first word is the walk's: written back as it is.
                        let v = if (at + w) % 8 == 0 {
                            std::ptr::read_volatile(p)
                        } else {
                            n
                        };
                        std::ptr::write_volatile(p, v);
                    }
                    robust_mutex::unlock(m).expect("unlock");
                }
            } else {
                // SAFETY: `at` < lines * 8, inside the walk.
                at = unsafe { std::ptr::read_volatile(buf.add(at)) } as usize % words;
            }
        }
        steps += 1024;
        if start.elapsed() >= dur {
            black_box(at);
            return steps;
        }
    }
}

/// A new shared memory segment holding `locks` robust mutexes, 64 bytes apart, then (from
/// offset `64 * locks`) a walk of `bytes` as [`walk_buffer`] makes it; returns the segment and
/// the walk's line count.
fn shared_walk_segment(locks: usize, bytes: u64) -> (shm_lru::Segment, usize) {
    let walk = walk_buffer(bytes, 0x5ea7);
    let size = locks as u64 * 64 + walk.len() as u64 * 8;
    let seg = shm_lru::Segment::create(&seg_id("shared-walk"), size, 0o600).expect("walk segment");
    for i in 0..locks {
        // SAFETY: as in `lock_segment`: each mutex lies inside the new, page-aligned segment.
        unsafe { robust_mutex::init(seg.as_ptr().add(i * 64).cast()) }.expect("mutex");
    }
    // SAFETY: the walk's words fit after the mutexes (the segment's size was made so), and no
    // one else uses the new segment yet.
    unsafe {
        std::ptr::copy_nonoverlapping(
            walk.as_ptr(),
            seg.as_ptr().add(locks * 64).cast::<u64>(),
            walk.len(),
        )
    };
    (seg, walk.len() / 8)
}

/// One side of a ping-pong of one cache line between two processes: the word at `w` goes
/// 1, 2, 3, ... up to `2 * rounds`; the first side (`first`) stores the odd values, each once it
/// sees the even one before it, the other side the even ones. Returns how long it took, or
/// `None` if the other side stopped answering for a second.
fn ping_pong(w: &std::sync::atomic::AtomicU64, first: bool, rounds: u64) -> Option<Duration> {
    use std::sync::atomic::Ordering::{Acquire, Release};
    let start = Instant::now();
    let mine = if first { 1 } else { 2 };
    let mut next = mine;
    while next <= 2 * rounds {
        let mut spins = 0u32;
        while w.load(Acquire) != next - 1 {
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 && start.elapsed() > Duration::from_secs(1) + Duration::from_micros(rounds) {
                return None;
            }
            std::hint::spin_loop();
        }
        w.store(next, Release);
        next += 2;
    }
    Some(start.elapsed())
}

/// `locks` robust mutexes, 64 bytes apart, in a new shared memory segment.
fn lock_segment(locks: usize) -> shm_lru::Segment {
    let seg = shm_lru::Segment::create(&seg_id("locks"), (locks as u64 * 64).max(4096), 0o600)
        .expect("lock segment");
    for i in 0..locks {
        // SAFETY: the mutex's 40 bytes lie inside the segment (i < locks, 64 apart), which is
        // page-aligned and mapped until `seg` is dropped; no one uses them yet.
        unsafe { robust_mutex::init(seg.as_ptr().add(i * 64).cast()) }.expect("mutex");
    }
    seg
}

/// The re-executed second process: opens the cache, makes and fills one of its own, says
/// "ready", then for each line read runs one order and answers with its op count, until stdin
/// closes:
/// - "run <ms> <writes per 10>": the mix over the first process's cache ("privrun": over its
///   own);
/// - "walk <ms> <bytes>": the walk of a private buffer of `<bytes>` ("lockwalk <ms> <bytes>
///   <segment> <locks>": the locking walk over the first process's mutexes);
/// - "sharedwalk <ms> <lines> <segment> <locks> <record>": the walk writing records over the
///   first process's shared buffer, from half its walk away;
/// - "pingpong <rounds> 0 <segment>": the even side of the ping-pong.
fn child(name: &str) {
    let id: SegmentId = name.parse().expect("segment name");
    let n: u64 = std::env::var(CHILD_N_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("entry count");
    let cache = Cache::open(&id).expect("open");
    let keys = hit_keys(&cache, n, 77);
    // For "privrun": a cache of this process's own, made and filled as the first one's was.
    let own = filled_as(&seg_id("private"), n, REF_V, &[0u8; REF_V as usize]);
    let own_keys = hit_keys(&own.cache, n, 77);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    let mut private: Vec<u64> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let mut words = line.split_whitespace();
        let what = words.next();
        if !matches!(
            what,
            Some("run" | "privrun" | "walk" | "lockwalk" | "sharedwalk" | "pingpong")
        ) {
            break;
        }
        let ms: u64 = words.next().and_then(|w| w.parse().ok()).expect("duration");
        let arg: u64 = words.next().and_then(|w| w.parse().ok()).expect("argument");
        let dur = Duration::from_millis(ms);
        if matches!(what, Some("walk" | "lockwalk")) && private.is_empty() {
            private = walk_buffer(arg, 0xc41d);
        }
        let ops = match what {
            Some("pingpong") => {
                // `ms` is the round count here.
                let seg: SegmentId = words.next().expect("segment").parse().expect("segment name");
                let seg = shm_lru::Segment::open(&seg).expect("open the ping-pong segment");
                // SAFETY: the segment's first 8 bytes, page-aligned, are only ever accessed
                // atomically, by both processes, and stay mapped for this call.
                let w = unsafe { std::sync::atomic::AtomicU64::from_ptr(seg.as_ptr().cast()) };
                ping_pong(w, false, ms).map_or(0, |_| ms)
            }
            Some("lockwalk") => {
                let seg: SegmentId = words.next().expect("segment").parse().expect("segment name");
                let locks: usize = words.next().and_then(|w| w.parse().ok()).expect("locks");
                let seg = shm_lru::Segment::open(&seg).expect("open the lock segment");
                walk_locking(&private, seg.as_ptr(), locks, dur)
            }
            Some("sharedwalk") => {
                let seg: SegmentId = words.next().expect("segment").parse().expect("segment name");
                let lines = arg as usize;
                let locks: usize = words.next().and_then(|w| w.parse().ok()).expect("locks");
                let record: usize = words.next().and_then(|w| w.parse().ok()).expect("record");
                let seg = shm_lru::Segment::open(&seg).expect("open the walk segment");
                // SAFETY: the first process made the segment with `shared_walk_segment`: `locks`
                // mutexes, then a walk of `lines` lines; it stays mapped for this call.
                unsafe {
                    walk_shared(
                        seg.as_ptr().add(locks * 64).cast(),
                        lines,
                        lines / 2,
                        record,
                        seg.as_ptr(),
                        locks,
                        dur,
                    )
                }
            }
            Some("walk") => walk(&private, dur),
            Some("privrun") => mix(&own.cache, &own_keys, arg as usize, dur),
            _ => mix(&cache, &keys, arg as usize, dur),
        };
        writeln!(out, "{ops}").expect("stdout");
        out.flush().expect("stdout");
    }
}

/// Aggregate throughput of reads only and of the 90/10 mix, in one process and in two at once;
/// records ns/op of each.
fn two_processes(cfg: &Config) {
    let n = if cfg.test_mode { 1_000 } else { REF_N };
    let (dur, rounds) = if cfg.test_mode {
        (Duration::from_millis(20), 1)
    } else {
        // Short rounds, many of them: each two-process round is set against one process just
        // before and just after it, and the median of those ratios is the figure, so a burst
        // of load from another tenant of the machine spoils a round, not the figure.
        (Duration::from_millis(300), 11)
    };
    let id = seg_id("procs");
    let b = filled_as(&id, n, REF_V, &[0u8; REF_V as usize]);
    let keys = hit_keys(&b.cache, n, 78);
    let name = id.to_string();
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
    let region = b.cache.region_size();
    let private = walk_buffer(region, 0xf1007);
    let locks = b.cache.geometry().shards as usize;
    let lock_seg = lock_segment(locks);
    let lock_name = lock_seg.id().to_string();
    let (shared_seg, shared_lines) = shared_walk_segment(locks, region);
    let record_len = b.cache.geometry().stride as usize;
    let shared_name = shared_seg.id().to_string();
    let shared_walk = shared_seg.as_ptr().wrapping_add(locks * 64).cast::<u64>();
    for (tag, writes) in [
        ("reads", 0usize),
        ("mix", 1),
        ("privreads", 0),
        ("privmix", 1),
        ("floor", 0),
        ("lockfloor", 1),
        ("writefloor", 1),
    ] {
        let mut one = Vec::new();
        let mut two = Vec::new();
        let ours = |dur| match tag {
            "floor" => walk(&private, dur),
            "lockfloor" => walk_locking(&private, lock_seg.as_ptr(), locks, dur),
            // SAFETY: `shared_seg` holds `locks` mutexes, then a walk of `shared_lines` lines,
            // and stays mapped until the end of this function.
            "writefloor" => unsafe {
                walk_shared(
                    shared_walk,
                    shared_lines,
                    0,
                    record_len,
                    shared_seg.as_ptr(),
                    locks,
                    dur,
                )
            },
            _ => mix(&b.cache, &keys, writes, dur),
        };
        let ms = dur.as_millis();
        let order = match tag {
            "floor" => format!("walk {ms} {region}"),
            "privreads" | "privmix" => format!("privrun {ms} {writes}"),
            "lockfloor" => format!("lockwalk {ms} {region} {lock_name} {locks}"),
            "writefloor" => format!("sharedwalk {ms} {shared_lines} {shared_name} {locks} {record_len}"),
            _ => format!("run {ms} {writes}"),
        };
        let mut ratios = Vec::new();
        let mut before = ours(dur) as f64 / secs;
        for _ in 0..rounds {
            writeln!(to_kid, "{order}").expect("to child");
            to_kid.flush().expect("to child");
            let mine = ours(dur);
            line.clear();
            from_kid.read_line(&mut line).expect("from child");
            let theirs: u64 = line.trim().parse().expect("child's count");
            let both = (mine + theirs) as f64 / secs;
            let after = ours(dur) as f64 / secs;
            // Against one process just before and just after: drift moves both sides alike.
            ratios.push(both / ((before + after) / 2.0));
            one.push(before);
            two.push(both);
            before = after;
        }
        one.push(before);
        let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let (one, two) = (best(&one), best(&two));
        println!(
            "two_processes/{tag}/{}: best 1 process {:.2} Mops/s, best 2 processes {:.2} Mops/s aggregate; \
             median ratio of a round to one process around it {ratio:.2} (of {} rounds: {:.2}..{:.2})",
            label(n, REF_V),
            one / 1e6,
            two / 1e6,
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
        record(format!("{tag}_1proc_ns"), 1e9 / one);
        record(format!("{tag}_2proc_ns"), 1e9 / two);
        record(format!("{tag}_2proc_ratio"), ratio);
    }
    // What moving one line from one process's core to the other's costs, as the mix's writes
    // and the other process's reads of them do: best of 5 ping-pongs.
    let rounds: u64 = if cfg.test_mode { 1_000 } else { 200_000 };
    let pp = shm_lru::Segment::create(&seg_id("ping-pong"), 4096, 0o600).expect("ping-pong segment");
    // SAFETY: the new segment's first 8 bytes, page-aligned, are only ever accessed atomically,
    // by both processes, and stay mapped until `pp` is dropped below.
    let w = unsafe { std::sync::atomic::AtomicU64::from_ptr(pp.as_ptr().cast()) };
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        w.store(0, std::sync::atomic::Ordering::Release);
        writeln!(to_kid, "pingpong {rounds} 0 {}", pp.id()).expect("to child");
        to_kid.flush().expect("to child");
        let took = ping_pong(w, true, rounds);
        line.clear();
        from_kid.read_line(&mut line).expect("from child");
        if let Some(t) = took {
            best = best.min(t.as_nanos() as f64 / (2 * rounds) as f64);
        }
    }
    if best.is_finite() {
        println!("two_processes/line_transfer: one cache line from one process to the other, best of 5: {best:.1} ns one way");
        record("line_transfer_ns".to_string(), best);
    }
    drop(to_kid);
    let _ = kid.wait();
    let _ = lock_seg.destroy_self(true);
    let _ = shared_seg.destroy_self(true);
    let _ = pp.destroy_self(true);
}

fn summary(cfg: &Config) {
    println!("\n==== summary (mean of criterion's samples; Mops/s = 1000 / ns) ====");
    println!("{:<40} {:>10} {:>10}", "benchmark", "ns/op", "Mops/s");
    for (name, ns) in figures::all().iter() {
        if name.ends_with("_ns") || name.ends_with("_ratio") || name.starts_with("overhead_bytes") {
            continue;
        }
        println!("{name:<40} {ns:>10.1} {:>10.2}", 1e3 / ns);
    }
    if cfg.test_mode {
        println!("(test mode: every benchmark ran once; these are not measurements)");
        return;
    }
    let ratio = |a: &str, b: &str| Some(result(a)? / result(b)?);
    println!("---- targets (ratios of times measured in this run) ----");
    for &n in SIZES.iter().filter(|&&n| n <= cfg.max_n) {
        let l = label(n, REF_V);
        if let Some(r) = ratio(&format!("get_hit/{l}"), &format!("lru_mutex_get_hit/{l}")) {
            println!(
                "get hit {l}: {r:.2}x the in-process reference's time (target <= 1.0, moonshot 0.7): {}",
                met(r <= 1.0)
            );
        }
        if let Some(r) = ratio(&format!("set_update/{l}"), &format!("lru_mutex_set_update/{l}")) {
            println!(
                "set update {l}: {r:.2}x the reference's time (target <= 1.5): {}",
                met(r <= 1.5)
            );
            let (lock, std_lock) = (
                result("robust_mutex_lock_unlock/shared"),
                result("std_mutex_lock_unlock/private"),
            );
            if let (Some(lock), Some(std_lock), Some(reference), Some(ours)) = (
                lock,
                std_lock,
                result(&format!("lru_mutex_set_update/{l}")),
                result(&format!("set_update/{l}")),
            ) {
                println!(
                    "  floor: the robust lock + unlock alone is {lock:.1} ns, {:.2}x the reference's whole update \
                     ({:.2}x its target); past their locks, {:.1} ns here against {:.1} ns there",
                    lock / reference,
                    lock / (1.5 * reference),
                    ours - lock,
                    reference - std_lock
                );
            }
        }
        if n >= 1_000_000 {
            for (floor, what) in [
                ("dependent_read", "process memory"),
                ("dependent_read_shm", "shared memory like the cache's"),
            ] {
                if let Some(r) = ratio(&format!("get_hit/{l}"), &format!("{floor}/{l}")) {
                    println!(
                        "get hit {l}: {r:.2}x one dependent read over {what} as large as the region (target <= 2.5): {}",
                        met(r <= 2.5)
                    );
                }
            }
        }
        if let (Some(g), Some(u)) = (
            ratio(&format!("paired_get_hit/{l}"), &format!("paired_ref_get_hit/{l}")),
            ratio(
                &format!("paired_set_update/{l}"),
                &format!("paired_ref_set_update/{l}"),
            ),
        ) {
            println!(
                "  paired (engine and reference in alternation, best of 11 rounds): get hit {g:.2}x ({}), set update {u:.2}x ({})",
                met(g <= 1.0),
                met(u <= 1.5)
            );
        }
        if let Some(b) = result(&format!("overhead_bytes/{l}")) {
            println!(
                "per-entry overhead beyond key + value, {l}: {b:.1} B (target <= 40): {}",
                met(b <= 40.0)
            );
        }
    }
    let floor2 = result("floor_2proc_ratio");
    for (tag, target) in [("reads", 1.9), ("mix", 1.7)] {
        if let Some(r) = result(&format!("{tag}_2proc_ratio")) {
            println!(
                "2 processes / 1 process, {tag}: {r:.2} (target >= {target}): {}",
                met(r >= target)
            );
        }
        if let Some(f) = result(&format!("priv{tag}_2proc_ratio")) {
            println!(
                "  the same {tag} with nothing shared: the second process on a cache of its own, \
                 filled alike: {f:.2}"
            );
        }
    }
    if let Some(f) = floor2 {
        println!(
            "  floor: 2 processes / 1, each walking its own private buffer as large as the region \
             (no sharing at all): {f:.2}"
        );
    }
    if let Some(t) = result("line_transfer_ns") {
        println!("  a cache line moved from one process's core to the other's: {t:.1} ns one way");
    }
    if let Some(f) = result("lockfloor_2proc_ratio") {
        println!(
            "  floor of the mix: the same walks, every tenth step a lock and unlock of one of the \
             shard locks' kind of mutexes, as many as the cache has shards, shared by both: {f:.2}"
        );
    }
    if let Some(f) = result("writefloor_2proc_ratio") {
        println!(
            "  floor of the mix with shared data: both walking one shared buffer as large as the \
             region from lines half the walk apart, every tenth step taking one of those mutexes \
             and writing a record as long as the cache's slot where it is: {f:.2}"
        );
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
            .unwrap_or(DEFAULT_MAX_N),
        run_procs: filter.is_none_or(|f| "two_processes".contains(f.as_str())),
        // A regular expression is left to criterion alone.
        filter: filter
            .filter(|f| !f.contains(['.', '*', '+', '?', '(', '|', '[', '^', '$', '\\']))
            .cloned(),
    };
    let mut c = Criterion::default()
        .sample_size(cfg.samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    engine(&mut c, &cfg);
    c.final_summary();
    if cfg.run_procs {
        two_processes(&cfg);
    }
    summary(&cfg);
}

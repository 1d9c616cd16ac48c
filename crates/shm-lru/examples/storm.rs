//! A long storm of real processes and real kills against two caches, reporting what survived.
//!
//! ```sh
//! cargo run --release -p shm-lru --example storm -- [seconds] [workers] [budget|grows]
//! ```
//!
//! With `budget`, both caches have a byte budget instead of fixed records, and the churned
//! values are of any length up to 24 KiB, so that the storm also kills writers that append,
//! move and reclaim records of the value store. With `grows`, the same, but the churned cache
//! is made without a capacity: its index grows (and is cleared now and then, so that it grows
//! again), and the storm kills writers in its splits too.
//!
//! - **Counters** (`/shmlru-storm-counters-<pid>`): workers `incr` a handful of counters and
//!   record each acknowledged increment in a file of their own (one `u64` per counter, written
//!   after `incr` returns). A counter must end at least at the sum of its acknowledged
//!   increments, and at most one more per kill that can have landed inside an `incr`.
//! - **Churn** (`/shmlru-storm-churn-<pid>`): workers set, get, remove, `incr`, pop, evict by
//!   age, purge and clear, all at once, on an evicting cache that is kept full.
//!
//! The parent SIGKILLs a random worker every few milliseconds and starts another, SIGSTOPs and
//! SIGCONTs others, and runs `check()` on both caches every second and at the end. Every value
//! read is checked against the key it was stored under. Prints one line of figures.

use shm_lru::{Cache, CacheOptions, SegmentId};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COUNTERS: usize = 8;

fn ids(parent: u32) -> (SegmentId, SegmentId) {
    let c = format!("/shmlru-storm-counters-{parent}").parse().unwrap();
    let d = format!("/shmlru-storm-churn-{parent}").parse().unwrap();
    (c, d)
}

fn acked_path(parent: u32, worker: u64) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("shmlru-storm-{parent}-{worker}.acked"))
}

/// A small xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A value that names its key, so that a read can tell a foreign or torn value.
/// Whether the storm runs on caches with a byte budget (set by the parent for its workers).
fn budget() -> bool {
    std::env::var_os(BUDGET_ENV).is_some()
}

const BUDGET_ENV: &str = "SHM_LRU_STORM_BUDGET";

fn value_for(key: u64, salt: u64) -> Vec<u8> {
    let len = if budget() {
        8 + (salt % (24 << 10)) as usize
    } else {
        8 + (salt % 40) as usize
    };
    let mut v = key.to_le_bytes().to_vec();
    v.extend((0..len - 8).map(|i| (key as u8).wrapping_add(i as u8)));
    v
}

fn value_ok(key: u64, v: &[u8]) -> bool {
    v.len() >= 8
        && v[..8] == key.to_le_bytes()
        && v[8..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (key as u8).wrapping_add(i as u8))
}

fn worker(parent: u32, n: u64) -> ! {
    let (cid, did) = ids(parent);
    let counters = Cache::open(&cid).expect("open counters");
    let churn = Cache::open(&did).expect("open churn");
    let mut acked = [0u64; COUNTERS];
    let path = acked_path(parent, n);
    if let Ok(mut f) = std::fs::File::open(&path) {
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        for (i, c) in b.chunks_exact(8).take(COUNTERS).enumerate() {
            acked[i] = u64::from_le_bytes(c.try_into().unwrap());
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n << 20) ^ std::process::id() as u64);
    let mut ops = 0u64;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .unwrap();
    loop {
        let r = rng.below(1000);
        if r < 300 {
            let c = rng.below(COUNTERS as u64) as usize;
            counters
                .incr(format!("counter-{c}").as_str(), 1, None)
                .expect("incr");
            acked[c] += 1;
            // Recorded after the increment is acknowledged: a kill between the two leaves the
            // cache one ahead of the record, never behind.
            let bytes: Vec<u8> = acked.iter().flat_map(|a| a.to_le_bytes()).collect();
            file.write_all_at(&bytes, 0).unwrap();
        } else if r < 650 {
            let k = rng.below(20_000);
            if let Some(v) = churn.get(k).expect("get") {
                assert!(value_ok(k, &v), "key {k}: a foreign or torn value {v:?}");
            }
        } else if r < 930 {
            let k = rng.below(20_000);
            churn.put(k, &value_for(k, rng.next())).expect("set");
        } else if r < 960 {
            churn.remove(rng.below(20_000)).expect("remove");
        } else if r < 975 {
            churn.incr("churn-counter", 1, None).expect("incr");
        } else if r < 990 {
            for e in churn.evict_used_before(u64::MAX, 1).expect("pop") {
                if let shm_lru::Key::Hash(k) = e.key {
                    assert!(value_ok(k, &e.value) || e.value.iter().all(u8::is_ascii_digit));
                }
            }
        } else if r < 997 {
            churn.evict_older_than(rng.below(50), 200).expect("evict by age");
        } else if r < 999 {
            churn.purge_expired().expect("purge");
        } else {
            churn.clear().expect("clear");
        }
        ops += 1;
        if ops % 4096 == 0 {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ops {ops}");
            let _ = out.flush();
        }
    }
}

fn spawn(parent: u32, n: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--worker", &parent.to_string(), &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

/// Ops the worker reported before it ended.
fn reap(mut child: Child) -> u64 {
    let _ = child.kill();
    let _ = child.wait();
    let mut s = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut s);
    s.lines()
        .rev()
        .find_map(|l| l.strip_prefix("ops ")?.parse::<u64>().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        worker(args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    let secs: u64 = args.get(1).map_or(60, |s| s.parse().expect("seconds"));
    let workers: usize = args.get(2).map_or(8, |s| s.parse().expect("workers"));
    let parent = std::process::id();
    let (cid, did) = ids(parent);
    let _ = shm_lru::Segment::destroy(&cid, true);
    let _ = shm_lru::Segment::destroy(&did, true);
    if args.get(3).is_some_and(|a| a == "budget" || a == "grows") {
        // Inherited by every worker.
        std::env::set_var(BUDGET_ENV, "1");
    }
    let grows = args.get(3).is_some_and(|a| a == "grows");
    let (counter_opts, churn_opts) = if budget() {
        (
            CacheOptions {
                capacity: 64,
                max_value_size: 4 << 10,
                evict_on_full: false,
                ..CacheOptions::budget(1 << 20)
            },
            CacheOptions {
                capacity: if grows { 0 } else { 8_192 },
                max_value_size: 64 << 10,
                shards: Some(4),
                ..CacheOptions::budget(8 << 20)
            },
        )
    } else {
        (
            CacheOptions {
                capacity: 64,
                record_size: 32,
                evict_on_full: false,
                ..Default::default()
            },
            CacheOptions {
                capacity: 8_192,
                record_size: 64,
                evict_on_full: true,
                shards: Some(4),
                ..Default::default()
            },
        )
    };
    let counters = Cache::create(&cid, &counter_opts).expect("create counters");
    let churn = Cache::create(&did, &churn_opts).expect("create churn");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ parent as u64);
    let mut next = 0u64;
    let mut live: Vec<(u64, Child)> = (0..workers)
        .map(|_| {
            next += 1;
            (next, spawn(parent, next))
        })
        .collect();
    let (mut kills, mut stops, mut checks, mut failures, mut ops) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut last_check = Instant::now();
    let mut check = |what: &str| {
        for (name, c) in [("counters", &counters), ("churn", &churn)] {
            let r = c.check().expect("check");
            checks += 1;
            if !r.is_ok() {
                failures += 1;
                eprintln!("{what}: check of {name} failed:\n{r}");
            }
        }
    };
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(2 + rng.below(20)));
        let i = rng.below(live.len() as u64) as usize;
        if rng.below(10) == 0 {
            // A stopped process holds whatever lock it had; the others wait, then it goes on.
            let pid = live[i].1.id() as i32;
            // SAFETY: kill(2) with a pid of a child we started and have not reaped.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_millis(1 + rng.below(5)));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            stops += 1;
        } else {
            let (n, child) = live.swap_remove(i);
            ops += reap(child);
            kills += 1;
            // The same worker number comes back, with its record of acknowledged increments.
            live.push((n, spawn(parent, n)));
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            check("during the storm");
            last_check = Instant::now();
        }
    }
    for (_, child) in live.drain(..) {
        ops += reap(child);
    }
    check("at the end");
    let mut lost = 0i64;
    let mut ahead = 0i64;
    for c in 0..COUNTERS {
        let acked: u64 = (1..=next)
            .map(|n| {
                let b = std::fs::read(acked_path(parent, n)).unwrap_or_default();
                b.chunks_exact(8)
                    .nth(c)
                    .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap()))
            })
            .sum();
        let have = counters
            .get(format!("counter-{c}").as_str())
            .expect("get counter")
            .map_or(0, |v| String::from_utf8(v).unwrap().parse::<i64>().unwrap());
        let diff = have - acked as i64;
        if diff < 0 {
            lost += -diff;
        } else {
            ahead += diff;
        }
    }
    let st = counters.stats().unwrap();
    let sc = churn.stats().unwrap();
    println!(
        "storm: {workers} processes for {:.1} min: {kills} SIGKILLs, {stops} SIGSTOP/SIGCONTs, {ops} ops \
         reported, recoveries {} (counters) + {} (churn); lost acknowledged increments {lost}, \
         increments done but not yet recorded when killed {ahead}; check() runs {checks}, failures {failures}",
        start.elapsed().as_secs_f64() / 60.0,
        st.recoveries,
        sc.recoveries,
    );
    for n in 1..=next {
        let _ = std::fs::remove_file(acked_path(parent, n));
    }
    let _ = counters.destroy();
    let _ = churn.destroy();
    if lost > 0 || failures > 0 {
        std::process::exit(1);
    }
}

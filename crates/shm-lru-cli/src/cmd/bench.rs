//! `shm-lru bench`: set and get throughput on a temporary cache made for the run, with a
//! progress line on stderr. The cache's segment is removed when the run ends, whether it ends
//! well, with an error, or with Ctrl-C.

use super::{segment_error, Outcome};
use crate::{interrupt, inventory, sigbus};
use anyhow::{anyhow, bail};
use serde::Serialize;
use shm_lru::internals::mix64;
use shm_lru::{Cache, CacheOptions, SegmentId, SetOptions};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `bench`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Entries the temporary cache holds.
    #[arg(long, default_value_t = 100_000)]
    capacity: u64,
    /// Data bytes per record.
    #[arg(long, default_value_t = 64)]
    record_size: u32,
    /// Bytes of each value written (at most the record size).
    #[arg(long, default_value_t = 32)]
    value_size: u32,
    /// Distinct keys used (default: the capacity, so that gets hit).
    #[arg(long)]
    keys: Option<u64>,
    /// Operations in each phase (set, then get), over all threads.
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Threads running operations at once.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        if self.capacity == 0 {
            bail!("--capacity must be at least 1");
        }
        if self.value_size > self.record_size {
            bail!(
                "--value-size {} exceeds --record-size {}",
                self.value_size,
                self.record_size
            );
        }
        if self.ops == 0 {
            bail!("--ops must be at least 1");
        }
        if self.threads == 0 || self.threads > 256 {
            bail!("--threads must be between 1 and 256");
        }
        let keys = self.keys.unwrap_or(self.capacity);
        if keys == 0 {
            bail!("--keys must be at least 1");
        }
        Ok(Config {
            capacity: self.capacity,
            record_size: self.record_size,
            value_size: self.value_size,
            keys,
            ops: self.ops,
            threads: self.threads,
            json: self.json,
        })
    }
}

/// Validated `bench` options.
#[derive(Debug)]
pub struct Config {
    /// Entries the temporary cache holds.
    pub capacity: u64,
    /// Data bytes per record.
    pub record_size: u32,
    /// Bytes per value written.
    pub value_size: u32,
    /// Distinct keys.
    pub keys: u64,
    /// Operations per phase.
    pub ops: u64,
    /// Threads.
    pub threads: u32,
    /// Print JSON.
    pub json: bool,
}

/// Owns the temporary cache and removes its segment when dropped.
struct TempCache {
    cache: Cache,
}

impl Drop for TempCache {
    fn drop(&mut self) {
        if let Err(e) = self.cache.destroy() {
            eprintln!(
                "shm-lru: could not remove bench segment {}: {e}",
                self.cache.segment().id()
            );
        }
    }
}

#[derive(Debug, Serialize)]
struct PhaseResult {
    ops: u64,
    secs: f64,
    mops_per_sec: f64,
    /// Gets that found their key, 0 to 1 (gets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    hit_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    segment: String,
    capacity: u64,
    record_size: u32,
    shards: u32,
    value_size: u32,
    keys: u64,
    threads: u32,
    set: PhaseResult,
    get: PhaseResult,
}

/// Runs `bench`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    interrupt::install();
    let id = SegmentId::posix(&format!("/shm-lru-bench-{}", std::process::id()))?;
    let opts = CacheOptions {
        capacity: cfg.capacity,
        record_size: cfg.record_size,
        evict_on_full: true,
        ..CacheOptions::default()
    };
    let temp = TempCache {
        cache: Cache::create(&id, &opts).map_err(|e| segment_error(&id, e))?,
    };
    let cache = &temp.cache;
    // Truncated underneath, the segment could not be removed by `rm` any more: the handler
    // removes it.
    sigbus::guard(cache, Some(&format!("{}{id}", inventory::DEV_SHM)));
    let value = vec![b'v'; cfg.value_size as usize];
    let set_opts = SetOptions::default();
    let keys = cfg.keys;
    let set = phase("set", cfg, cache, |c, i| {
        c.set(i % keys, &value, &set_opts).map(|_| true)
    })?;
    let get = phase("get", cfg, cache, |c, i| {
        c.get_with(mix64(i) % keys, |v, _| v.len()).map(|o| o.is_some())
    })?;
    let report = Report {
        segment: id.to_string(),
        capacity: cache.capacity(),
        record_size: cache.record_size(),
        shards: cache.shards(),
        value_size: cfg.value_size,
        keys,
        threads: cfg.threads,
        set,
        get,
    };
    drop(temp);
    if cfg.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "segment  {} (removed)", report.segment)?;
        writeln!(
            out,
            "cache    {} records of {} bytes in {} shard(s); {}-byte values, {} keys, {} thread(s)",
            report.capacity, report.record_size, report.shards, report.value_size, keys, report.threads
        )?;
        for (name, p) in [("set", &report.set), ("get", &report.get)] {
            write!(
                out,
                "{name}      {} ops in {:.3} s: {:.2} Mops/s",
                p.ops, p.secs, p.mops_per_sec
            )?;
            if let Some(h) = p.hit_rate {
                write!(out, " ({:.1}% hits)", h * 100.0)?;
            }
            writeln!(out)?;
        }
    }
    Ok(Outcome::Done)
}

/// Runs `op(cache, i)` for `i` in `0..cfg.ops`, split over the threads, showing progress.
fn phase<F>(name: &str, cfg: &Config, cache: &Cache, op: F) -> anyhow::Result<PhaseResult>
where
    F: Fn(&Cache, u64) -> shm_lru::Result<bool> + Sync,
{
    const BATCH: u64 = 4096;
    let done = AtomicU64::new(0);
    let hits = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let tty = io::stderr().is_terminal();
    if !tty {
        eprintln!("bench: {name}: {} ops on {} thread(s)...", cfg.ops, cfg.threads);
    }
    let start = Instant::now();
    let results: Vec<shm_lru::Result<Instant>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.threads as u64)
            .map(|t| {
                let (done, hits, stop, op) = (&done, &hits, &stop, &op);
                let from = cfg.ops * t / cfg.threads as u64;
                let to = cfg.ops * (t + 1) / cfg.threads as u64;
                s.spawn(move || -> shm_lru::Result<Instant> {
                    let mut i = from;
                    while i < to {
                        if stop.load(Ordering::Relaxed) || interrupt::interrupted() {
                            return Ok(Instant::now());
                        }
                        let end = (i + BATCH).min(to);
                        let mut h = 0;
                        for j in i..end {
                            match op(cache, j) {
                                Ok(hit) => h += hit as u64,
                                Err(e) => {
                                    stop.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            }
                        }
                        hits.fetch_add(h, Ordering::Relaxed);
                        done.fetch_add(end - i, Ordering::Relaxed);
                        i = end;
                    }
                    Ok(Instant::now())
                })
            })
            .collect();
        let mut shown = Instant::now() - Duration::from_secs(1);
        while !workers.iter().all(|w| w.is_finished()) {
            if tty && shown.elapsed() >= Duration::from_millis(100) {
                shown = Instant::now();
                let d = done.load(Ordering::Relaxed);
                eprint!(
                    "\rbench: {name}: {d}/{} ops ({:.0}%)   ",
                    cfg.ops,
                    d as f64 * 100.0 / cfg.ops as f64
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut finished = start;
    for r in results {
        finished = finished.max(r.map_err(|e| anyhow!("bench {name} failed: {e}"))?);
    }
    let secs = finished.duration_since(start).as_secs_f64();
    if tty {
        eprintln!(
            "\rbench: {name}: {} ops done in {secs:.3} s          ",
            done.load(Ordering::Relaxed)
        );
    }
    if interrupt::interrupted() {
        bail!("interrupted; the bench segment was removed");
    }
    let ops = done.load(Ordering::Relaxed);
    Ok(PhaseResult {
        ops,
        secs,
        mops_per_sec: ops as f64 / secs.max(1e-9) / 1e6,
        hit_rate: (name == "get").then(|| hits.load(Ordering::Relaxed) as f64 / ops.max(1) as f64),
    })
}

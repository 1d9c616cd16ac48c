//! `shm-lru bench`: set and get throughput on a temporary cache made for the run, with a
//! progress line on stderr. The cache's segment is removed when the run ends, whether it ends
//! well, with an error, or with Ctrl-C.
//!
//! The cache has records of one size, or with `--max-bytes` a byte budget. Values are all
//! `--value-size` bytes, or with `--sizes mixed` of sizes drawn from a log-normal distribution
//! (median 2 KiB, sigma 1, truncated to 200 B..64 KiB), each key's size always the same: the
//! shape of a cache of rendered pages or JSON documents, which only a byte budget holds well.

use super::{segment_error, Outcome};
use crate::{interrupt, inventory, render, sigbus};
use anyhow::{anyhow, bail};
use serde::Serialize;
use shm_lru::internals::mix64;
use shm_lru::{layout, Cache, CacheOptions, SegmentId, SetOptions};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `bench`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Entries the temporary cache holds [default: 100000; with a byte budget, one per 2.5
    /// KiB of it].
    #[arg(long)]
    capacity: Option<u64>,
    /// Data bytes per record [default: 64]. Not with --max-bytes.
    #[arg(long, conflicts_with = "max_bytes")]
    record_size: Option<u32>,
    /// Make the cache one with a byte budget of this many bytes instead of fixed records (the
    /// default with --sizes mixed: 64 MiB).
    #[arg(long)]
    max_bytes: Option<u64>,
    /// With a byte budget, the most bytes of key plus value an entry holds [default: the
    /// engine's, 1 MiB or an eighth of the budget].
    #[arg(long, requires = "max_bytes")]
    max_value_size: Option<u64>,
    /// Value sizes: `fixed` (every value --value-size bytes) or `mixed` (log-normal, median 2
    /// KiB, sigma 1, truncated to 200 B..64 KiB; needs a byte budget).
    #[arg(long, value_enum, default_value_t = Sizes::Fixed)]
    sizes: Sizes,
    /// Bytes of each value written with --sizes fixed (at most the record size) [default: 32].
    #[arg(long)]
    value_size: Option<u32>,
    /// Distinct keys used (default: the capacity, so that gets hit; with a byte budget, a
    /// fifth more than the budget holds of the values written, so that most do).
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

/// How big the values written are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizes {
    /// Every value `--value-size` bytes.
    Fixed,
    /// Log-normal sizes, median 2 KiB, sigma 1, truncated to 200 B..64 KiB.
    Mixed,
}

/// The byte budget `--sizes mixed` gets when none is given.
const MIXED_MAX_BYTES: u64 = 64 << 20;

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        if self.capacity == Some(0) {
            bail!("--capacity must be at least 1");
        }
        let max_bytes = match (self.sizes, self.max_bytes, self.record_size) {
            (_, Some(0), _) => bail!("--max-bytes must be at least 1"),
            (_, Some(b), _) => Some(b),
            (Sizes::Mixed, None, Some(_)) => bail!(
                "--sizes mixed needs a cache with a byte budget (--max-bytes), not fixed records \
                 (--record-size)"
            ),
            (Sizes::Mixed, None, None) => Some(MIXED_MAX_BYTES),
            (Sizes::Fixed, None, _) => None,
        };
        if self.max_value_size == Some(0) {
            bail!("--max-value-size must be at least 1");
        }
        if self.sizes == Sizes::Mixed && self.value_size.is_some() {
            bail!("--value-size sets the size of every value: not with --sizes mixed");
        }
        let value_size = self.value_size.unwrap_or(32);
        let geometry = match max_bytes {
            None => {
                let record_size = self.record_size.unwrap_or(64);
                if value_size > record_size {
                    bail!("--value-size {value_size} exceeds --record-size {record_size}");
                }
                CacheOptions {
                    capacity: self.capacity.unwrap_or(100_000),
                    record_size,
                    ..CacheOptions::default()
                }
            }
            Some(b) => CacheOptions {
                capacity: self.capacity.unwrap_or(0),
                max_value_size: self.max_value_size.unwrap_or(0),
                ..CacheOptions::budget(b)
            },
        };
        if self.ops == 0 {
            bail!("--ops must be at least 1");
        }
        if self.threads == 0 || self.threads > 256 {
            bail!("--threads must be between 1 and 256");
        }
        if self.keys == Some(0) {
            bail!("--keys must be at least 1");
        }
        Ok(Config {
            geometry,
            sizes: self.sizes,
            value_size,
            keys: self.keys,
            ops: self.ops,
            threads: self.threads,
            json: self.json,
        })
    }
}

/// Validated `bench` options.
#[derive(Debug)]
pub struct Config {
    /// How the temporary cache is made: records of one size, or a byte budget.
    pub geometry: CacheOptions,
    /// How big the values are.
    pub sizes: Sizes,
    /// Bytes per value written, with [`Sizes::Fixed`].
    pub value_size: u32,
    /// Distinct keys (default: the cache's capacity).
    pub keys: Option<u64>,
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
    /// Bytes per record; 0 with a byte budget.
    record_size: u32,
    /// The byte budget; 0 for fixed records.
    max_bytes: u64,
    /// The most bytes of key plus value an entry holds.
    max_value_size: u64,
    shards: u32,
    /// `fixed` or `mixed`.
    sizes: Sizes,
    /// Bytes of each value with fixed sizes; with mixed sizes, their mean over the keys.
    value_size: u32,
    /// The smallest, median and largest value written.
    value_size_min: u32,
    value_size_median: u32,
    value_size_max: u32,
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
        evict_on_full: true,
        ..cfg.geometry.clone()
    };
    let temp = TempCache {
        cache: Cache::create(&id, &opts).map_err(|e| segment_error(&id, e))?,
    };
    let cache = &temp.cache;
    // Truncated underneath, the segment could not be removed by `rm` any more: the handler
    // removes it.
    sigbus::guard(cache, Some(&format!("{}{id}", inventory::DEV_SHM)));
    let sizes = match cfg.sizes {
        Sizes::Fixed => vec![cfg.value_size],
        Sizes::Mixed => mixed_sizes(),
    };
    let largest = *sizes.iter().max().unwrap_or(&0);
    if largest as u64 > cache.max_value_size() {
        bail!(
            "values of up to {largest} bytes do not fit in entries of at most {} bytes: give a \
             larger --max-value-size (or --max-bytes)",
            cache.max_value_size()
        );
    }
    let value = vec![b'v'; largest as usize];
    let size_of = |k: u64| sizes[(mix64(k) % sizes.len() as u64) as usize] as usize;
    let set_opts = SetOptions::default();
    let keys = cfg.keys.unwrap_or_else(|| default_keys(cache, &sizes));
    let set = phase("set", cfg, cache, |c, i| {
        let k = i % keys;
        c.set(k, &value[..size_of(k)], &set_opts).map(|_| true)
    })?;
    let get = phase("get", cfg, cache, |c, i| {
        c.get_with(mix64(i) % keys, |v, _| v.len()).map(|o| o.is_some())
    })?;
    // The mean size of the values the keys have.
    let mean = (0..keys.min(1 << 20)).map(|k| size_of(k) as u64).sum::<u64>() / keys.min(1 << 20);
    let report = Report {
        segment: id.to_string(),
        capacity: cache.capacity(),
        record_size: cache.record_size(),
        max_bytes: cache.max_bytes(),
        max_value_size: cache.max_value_size(),
        shards: cache.shards(),
        sizes: cfg.sizes,
        value_size: mean as u32,
        value_size_min: *sizes.iter().min().unwrap_or(&0),
        value_size_median: median(&sizes),
        value_size_max: largest,
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
        let cache = if report.max_bytes == 0 {
            format!(
                "{} records of {} bytes in {} shard(s)",
                report.capacity, report.record_size, report.shards
            )
        } else {
            format!(
                "up to {} entries in {} shard(s) within a budget of {} (entries up to {})",
                report.capacity,
                report.shards,
                render::size(report.max_bytes),
                render::size(report.max_value_size)
            )
        };
        let values = match report.sizes {
            Sizes::Fixed => format!("{}-byte values", report.value_size),
            Sizes::Mixed => format!(
                "mixed values (log-normal, median 2 KiB, {} to {}, mean {})",
                render::size(report.value_size_min as u64),
                render::size(report.value_size_max as u64),
                render::size(report.value_size as u64)
            ),
        };
        writeln!(
            out,
            "cache    {cache}; {values}, {keys} keys, {} thread(s)",
            report.threads
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

/// How many value sizes `--sizes mixed` draws; each key takes one by its hash.
const MIXED_TABLE: usize = 4096;

/// The keys a bench uses unless told: the cache's capacity; with a byte budget, a fifth more
/// than the budget holds of values of `sizes` (each with its record header, an 8-byte key and
/// an index entry), at most the capacity.
fn default_keys(cache: &Cache, sizes: &[u32]) -> u64 {
    if cache.max_bytes() == 0 || sizes.is_empty() {
        return cache.capacity();
    }
    let mean = sizes.iter().map(|&s| s as u64).sum::<u64>() / sizes.len() as u64;
    let per = mean + layout::RECORD_HEADER + 8 + layout::UNIT_SIZE / layout::UNIT_SLOTS as u64;
    (cache.max_bytes() * 6 / 5 / per).clamp(1, cache.capacity())
}

/// Value sizes drawn from a log-normal distribution of median 2 KiB and sigma 1, truncated to
/// 200 B..64 KiB (a draw outside is drawn again), by a fixed seed so that every run writes the
/// same sizes.
fn mixed_sizes() -> Vec<u32> {
    const MEDIAN: f64 = 2048.0;
    const SIGMA: f64 = 1.0;
    const MIN: f64 = 200.0;
    const MAX: f64 = 65_536.0;
    let mut n = 0u64;
    // A uniform draw in (0, 1]: the top 53 bits of a mixed counter.
    let mut uniform = move || {
        n += 1;
        ((mix64(n) >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(MIXED_TABLE);
    while out.len() < MIXED_TABLE {
        // Box-Muller: a standard normal draw from two uniform ones.
        let z = (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
        let size = MEDIAN * (SIGMA * z).exp();
        if (MIN..=MAX).contains(&size) {
            out.push(size.round() as u32);
        }
    }
    out
}

/// The middle of `sizes` in order.
fn median(sizes: &[u32]) -> u32 {
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
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

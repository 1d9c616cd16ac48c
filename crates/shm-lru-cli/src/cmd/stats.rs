//! `shm-lru stats`: a cache's counters once, or with `--watch` the change per interval until
//! Ctrl-C (or `--count` intervals). Counters live in the segment, so they cover every process.

use super::{open_cache, segment_error, Outcome};
use crate::{interrupt, render};
use serde::Serialize;
use shm_lru::{Cache, SegmentId, Stats};
use std::io::Write;
use std::time::{Duration, Instant};

/// Validated `stats` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// Interval between lines, if watching.
    pub watch: Option<Duration>,
    /// Intervals to print before stopping (only with `watch`).
    pub count: Option<u64>,
    /// Print JSON.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Snapshot {
    segment: String,
    capacity: u64,
    record_size: u32,
    shards: u32,
    region_size: u64,
    evict_on_full: bool,
    default_ttl_ms: u64,
    entries: u64,
    /// Entries over capacity, 0 to 1.
    fill: f64,
    hits: u64,
    misses: u64,
    /// Hits over lookups, 0 to 1; null before any lookup.
    hit_rate: Option<f64>,
    inserts: u64,
    updates: u64,
    removes: u64,
    evictions: u64,
    expirations: u64,
    recoveries: u64,
}

#[derive(Debug, Serialize)]
struct Interval {
    segment: String,
    /// End of the interval, epoch ms.
    time_ms: u64,
    /// Length of the interval actually measured, ms.
    interval_ms: u64,
    entries: u64,
    fill: f64,
    hits: u64,
    misses: u64,
    hit_rate: Option<f64>,
    inserts: u64,
    updates: u64,
    removes: u64,
    evictions: u64,
    expirations: u64,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Runs `stats`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    let read = |c: &Cache| c.stats().map_err(|e| segment_error(&cfg.id, e));
    let Some(every) = cfg.watch else {
        return once(cfg, &cache, read(&cache)?, out);
    };
    interrupt::install();
    if !cfg.json {
        writeln!(
            out,
            "{:>8}  {:>10}  {:>6}  {:>10}  {:>10}  {:>8}  {:>10}  {:>10}",
            "TIME", "ENTRIES", "FILL", "HITS/S", "MISSES/S", "HIT-RATE", "SETS/S", "EVICTIONS"
        )?;
        out.flush()?;
    }
    let mut prev = read(&cache)?;
    let mut at = Instant::now();
    let mut n = 0u64;
    while cfg.count.is_none_or(|c| n < c) {
        if !interrupt::sleep(every) {
            break;
        }
        let now = read(&cache)?;
        let dt = at.elapsed();
        at = Instant::now();
        n += 1;
        let iv = interval(cfg, &prev, &now, dt, cache.now_ms());
        if cfg.json {
            serde_json::to_writer(&mut *out, &iv)?;
            writeln!(out)?;
        } else {
            let per_s = |v: u64| format!("{:.0}", v as f64 / dt.as_secs_f64().max(1e-9));
            let clock = (iv.time_ms / 1000) % 86_400;
            writeln!(
                out,
                "{:>8}  {:>10}  {:>6}  {:>10}  {:>10}  {:>8}  {:>10}  {:>10}",
                format!("{:02}:{:02}:{:02}", clock / 3600, (clock / 60) % 60, clock % 60),
                iv.entries,
                render::percent(now.len, now.capacity),
                per_s(iv.hits),
                per_s(iv.misses),
                render::percent(iv.hits, iv.hits + iv.misses),
                per_s(iv.inserts + iv.updates),
                iv.evictions + iv.expirations,
            )?;
        }
        out.flush()?;
        prev = now;
    }
    Ok(Outcome::Done)
}

fn interval(cfg: &Config, a: &Stats, b: &Stats, dt: Duration, time_ms: u64) -> Interval {
    let d = |x: u64, y: u64| y.saturating_sub(x);
    let (hits, misses) = (d(a.hits, b.hits), d(a.misses, b.misses));
    Interval {
        segment: cfg.id.to_string(),
        time_ms,
        interval_ms: dt.as_millis() as u64,
        entries: b.len,
        fill: ratio(b.len, b.capacity).unwrap_or(0.0),
        hits,
        misses,
        hit_rate: ratio(hits, hits + misses),
        inserts: d(a.inserts, b.inserts),
        updates: d(a.updates, b.updates),
        removes: d(a.removes, b.removes),
        evictions: d(a.evictions, b.evictions),
        expirations: d(a.expirations, b.expirations),
    }
}

fn once(cfg: &Config, cache: &Cache, st: Stats, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let snap = Snapshot {
        segment: cfg.id.to_string(),
        capacity: st.capacity,
        record_size: cache.record_size(),
        shards: cache.shards(),
        region_size: cache.region_size(),
        evict_on_full: cache.evict_on_full(),
        default_ttl_ms: cache.default_ttl_ms(),
        entries: st.len,
        fill: ratio(st.len, st.capacity).unwrap_or(0.0),
        hits: st.hits,
        misses: st.misses,
        hit_rate: ratio(st.hits, st.hits + st.misses),
        inserts: st.inserts,
        updates: st.updates,
        removes: st.removes,
        evictions: st.evictions,
        expirations: st.expirations,
        recoveries: st.recoveries,
    };
    if cfg.json {
        serde_json::to_writer_pretty(&mut *out, &snap)?;
        writeln!(out)?;
        return Ok(Outcome::Done);
    }
    let ttl = match snap.default_ttl_ms {
        0 => "none".to_string(),
        ms => format!("{ms} ms"),
    };
    let lines: Vec<(&str, String)> = vec![
        ("segment", snap.segment.clone()),
        (
            "capacity",
            format!(
                "{} records of {} bytes in {} shard(s), {}",
                snap.capacity,
                snap.record_size,
                snap.shards,
                render::size(snap.region_size)
            ),
        ),
        (
            "when full",
            if snap.evict_on_full {
                "evicts the least recently used"
            } else {
                "refuses new keys"
            }
            .into(),
        ),
        ("default ttl", ttl),
        (
            "entries",
            format!("{} ({} full)", snap.entries, render::percent(st.len, st.capacity)),
        ),
        ("hits", snap.hits.to_string()),
        ("misses", snap.misses.to_string()),
        ("hit rate", render::percent(st.hits, st.hits + st.misses)),
        ("inserts", snap.inserts.to_string()),
        ("updates", snap.updates.to_string()),
        ("removes", snap.removes.to_string()),
        ("evictions", snap.evictions.to_string()),
        ("expirations", snap.expirations.to_string()),
        ("recoveries", snap.recoveries.to_string()),
    ];
    for (k, v) in &lines {
        writeln!(out, "{k:<12} {v}")?;
    }
    Ok(Outcome::Done)
}

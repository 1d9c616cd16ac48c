//! `shm-lru stats`: a cache's counters once, or with `--watch` the change per interval until
//! Ctrl-C (or `--count` intervals). Counters live in the segment, so they cover every process.
//! `--format prometheus` prints them once as OpenMetrics text, for a Prometheus scrape (through
//! node_exporter's textfile collector, or any exporter that runs a command).

use super::{open_cache, segment_error, Outcome, SegmentArg};
use crate::{interrupt, render};
use anyhow::bail;
use serde::Serialize;
use shm_lru::{layout, Cache, SegmentId, Stats};
use std::io::Write;
use std::time::{Duration, Instant};

/// `stats`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    segment: SegmentArg,
    /// Print one line per interval of this many seconds (fractions allowed) until Ctrl-C.
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
    /// With --watch: stop after this many intervals.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print JSON (with --watch, one object per line); the same as `--format json`.
    #[arg(long)]
    json: bool,
    /// How to print: text (the default), json, or prometheus (OpenMetrics text, once; not with
    /// --watch).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
}

/// What `stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for a person.
    Text,
    /// JSON.
    Json,
    /// OpenMetrics text, as Prometheus scrapes it.
    Prometheus,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        let id = self.segment.id()?;
        let watch = match self.watch {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => bail!("--watch {s}: the interval must be more than 0 and at most 86400 seconds"),
        };
        if self.count.is_some() && watch.is_none() {
            bail!("--count needs --watch");
        }
        if self.count == Some(0) {
            bail!("--count must be at least 1");
        }
        let format = match (self.json, self.format) {
            (true, Some(f)) if f != Format::Json => {
                bail!("--json asks for JSON, --format for another format")
            }
            (true, _) => Format::Json,
            (false, f) => f.unwrap_or(Format::Text),
        };
        if format == Format::Prometheus && watch.is_some() {
            bail!("--format prometheus prints once: a scrape reads the counters, not their changes");
        }
        Ok(Config {
            id,
            watch,
            count: self.count,
            json: format == Format::Json,
            prometheus: format == Format::Prometheus,
        })
    }
}

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
    /// Print OpenMetrics text.
    pub prometheus: bool,
}

/// What both reports print of a [`Stats`]: the entries and bytes now, and the counters as given
/// (totals, or changes over an interval).
#[derive(Debug, Serialize)]
struct Counters {
    entries: u64,
    /// Entries over capacity, 0 to 1.
    fill: f64,
    /// Bytes the entries occupy (with a byte budget: their records in the value store, headers
    /// included; else their fixed records).
    bytes_live: u64,
    /// Bytes not free: live, and those of removed or replaced entries not yet reclaimed.
    bytes_used: u64,
    /// Bytes free for new entries.
    bytes_free: u64,
    hits: u64,
    misses: u64,
    /// Hits over lookups, 0 to 1; null before any lookup.
    hit_rate: Option<f64>,
    inserts: u64,
    updates: u64,
    removes: u64,
    evictions: u64,
    expirations: u64,
}

impl From<&Stats> for Counters {
    fn from(st: &Stats) -> Counters {
        Counters {
            entries: st.len,
            fill: ratio(st.len, st.capacity).unwrap_or(0.0),
            bytes_live: st.bytes_live,
            bytes_used: st.bytes_used,
            bytes_free: st.bytes_free,
            hits: st.hits,
            misses: st.misses,
            hit_rate: ratio(st.hits, st.hits + st.misses),
            inserts: st.inserts,
            updates: st.updates,
            removes: st.removes,
            evictions: st.evictions,
            expirations: st.expirations,
        }
    }
}

#[derive(Debug, Serialize)]
struct Snapshot {
    segment: String,
    capacity: u64,
    /// Bytes per record; 0 in a cache with a byte budget.
    record_size: u32,
    /// The byte budget; 0 in a cache of fixed records.
    max_bytes: u64,
    /// The most bytes of key plus value an entry holds (a fixed cache's record size).
    max_value_size: u64,
    shards: u32,
    region_size: u64,
    evict_on_full: bool,
    default_ttl_ms: u64,
    #[serde(flatten)]
    counters: Counters,
    recoveries: u64,
}

#[derive(Debug, Serialize)]
struct Interval {
    segment: String,
    /// End of the interval, epoch ms.
    time_ms: u64,
    /// Length of the interval actually measured, ms.
    interval_ms: u64,
    #[serde(flatten)]
    counters: Counters,
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
    // A cache with a byte budget has one more column: the share of its value store in use.
    let budget = cache.max_bytes() > 0;
    if !cfg.json {
        write!(
            out,
            "{:>8}  {:>10}  {:>6}  {:>10}  {:>10}  {:>8}  {:>10}  {:>10}",
            "TIME", "ENTRIES", "FILL", "HITS/S", "MISSES/S", "HIT-RATE", "SETS/S", "EVICTIONS"
        )?;
        if budget {
            write!(out, "  {:>6}", "BYTES")?;
        }
        writeln!(out)?;
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
            let c = &iv.counters;
            write!(
                out,
                "{:>8}  {:>10}  {:>6}  {:>10}  {:>10}  {:>8}  {:>10}  {:>10}",
                format!("{:02}:{:02}:{:02}", clock / 3600, (clock / 60) % 60, clock % 60),
                c.entries,
                render::percent(now.len, now.capacity),
                per_s(c.hits),
                per_s(c.misses),
                render::percent(c.hits, c.hits + c.misses),
                per_s(c.inserts + c.updates),
                c.evictions + c.expirations,
            )?;
            if budget {
                write!(
                    out,
                    "  {:>6}",
                    render::percent(now.bytes_used, now.bytes_used + now.bytes_free)
                )?;
            }
            writeln!(out)?;
        }
        out.flush()?;
        prev = now;
    }
    Ok(Outcome::Done)
}

fn interval(cfg: &Config, a: &Stats, b: &Stats, dt: Duration, time_ms: u64) -> Interval {
    let d = |x: u64, y: u64| y.saturating_sub(x);
    // The counters' changes; entries, capacity and bytes as they are at the end.
    let change = Stats {
        hits: d(a.hits, b.hits),
        misses: d(a.misses, b.misses),
        inserts: d(a.inserts, b.inserts),
        updates: d(a.updates, b.updates),
        removes: d(a.removes, b.removes),
        evictions: d(a.evictions, b.evictions),
        expirations: d(a.expirations, b.expirations),
        recoveries: d(a.recoveries, b.recoveries),
        ..*b
    };
    Interval {
        segment: cfg.id.to_string(),
        time_ms,
        interval_ms: dt.as_millis() as u64,
        counters: Counters::from(&change),
    }
}

fn once(cfg: &Config, cache: &Cache, st: Stats, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let snap = Snapshot {
        segment: cfg.id.to_string(),
        capacity: st.capacity,
        record_size: cache.record_size(),
        max_bytes: cache.max_bytes(),
        max_value_size: cache.max_value_size(),
        shards: cache.shards(),
        region_size: cache.region_size(),
        evict_on_full: cache.evict_on_full(),
        default_ttl_ms: cache.default_ttl_ms(),
        counters: Counters::from(&st),
        recoveries: st.recoveries,
    };
    if cfg.json {
        serde_json::to_writer_pretty(&mut *out, &snap)?;
        writeln!(out)?;
        return Ok(Outcome::Done);
    }
    if cfg.prometheus {
        openmetrics(&snap.segment, &st, out)?;
        return Ok(Outcome::Done);
    }
    let c = &snap.counters;
    let ttl = match snap.default_ttl_ms {
        0 => "none".to_string(),
        ms => format!("{ms} ms"),
    };
    let capacity = if snap.max_bytes == 0 {
        format!(
            "{} records of {} bytes in {} shard(s), {}",
            snap.capacity,
            snap.record_size,
            snap.shards,
            render::size(snap.region_size)
        )
    } else {
        format!(
            "{} entries in {} shard(s), values up to {}, within a budget of {} (a segment of {})",
            snap.capacity,
            snap.shards,
            render::size(snap.max_value_size),
            render::size(snap.max_bytes),
            render::size(snap.region_size)
        )
    };
    let mut lines: Vec<(&str, String)> = vec![("segment", snap.segment.clone()), ("capacity", capacity)];
    if snap.max_bytes > 0 {
        lines.push((
            "bytes",
            format!(
                "{} used ({} live), {} free ({} of the value store used)",
                render::size(c.bytes_used),
                render::size(c.bytes_live),
                render::size(c.bytes_free),
                render::percent(c.bytes_used, c.bytes_used + c.bytes_free)
            ),
        ));
    }
    lines.extend([
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
            format!("{} ({} full)", c.entries, render::percent(st.len, st.capacity)),
        ),
        ("hits", c.hits.to_string()),
        ("misses", c.misses.to_string()),
        ("hit rate", render::percent(st.hits, st.hits + st.misses)),
        ("inserts", c.inserts.to_string()),
        ("updates", c.updates.to_string()),
        ("removes", c.removes.to_string()),
        ("evictions", c.evictions.to_string()),
        ("expirations", c.expirations.to_string()),
        ("recoveries", snap.recoveries.to_string()),
    ]);
    if let Some(note) = index_note(&st) {
        lines.push(("note", note));
    }
    for (k, v) in &lines {
        writeln!(out, "{k:<12} {v}")?;
    }
    Ok(Outcome::Done)
}

/// For a cache with a byte budget whose index, not its budget, limits it (every entry its
/// capacity allows taken, evictions made, and under half its value store holding live entries:
/// values smaller than the capacity was chosen for), what it says: that a cache made without a
/// capacity grows its index, or the `capacity` that would let values of the size held fill the
/// budget (each entry then costs its record's bytes and an index entry's).
fn index_note(st: &Stats) -> Option<String> {
    let store = st.bytes_used + st.bytes_free;
    let limited = st.max_bytes > 0
        && st.len > 0
        && st.len * 100 >= st.capacity * 98
        && st.evictions > 0
        && st.bytes_live * 2 < store;
    if !limited {
        return None;
    }
    // A slot, and a bucket's share (with its hints) at the load an index of a capacity has.
    let index_entry = layout::SLOT_HEADER
        + layout::REF_SIZE as u64
        + layout::BUDGET_BUCKET_STRIDE / layout::SLOTS_PER_BUCKET as u64;
    let per_entry = st.bytes_live / st.len + index_entry;
    Some(format!(
        "the index is full while its entries take {} of the value store: entries of {} want a \
         cache created without a capacity (its index then grows) or with one near {}",
        render::percent(st.bytes_live, store),
        render::size(st.bytes_live / st.len),
        st.max_bytes / per_entry
    ))
}

/// Writes `st` as OpenMetrics text: counters as `shm_lru_<name>_total`, the entries held and the
/// capacity as gauges (with a byte budget, the budget and the bytes live, used and free too),
/// each with a `cache` label naming the segment; then `# EOF`.
fn openmetrics(segment: &str, st: &Stats, out: &mut dyn Write) -> anyhow::Result<()> {
    let label = openmetrics_label(segment);
    let counters = [
        ("hits", "Lookups that found their key, by every process", st.hits),
        (
            "misses",
            "Lookups that did not find their key, by every process",
            st.misses,
        ),
        ("inserts", "Entries stored under a new key", st.inserts),
        ("updates", "Entries overwritten", st.updates),
        ("removes", "Entries removed by a delete", st.removes),
        ("evictions", "Entries evicted to make room", st.evictions),
        (
            "expirations",
            "Entries reclaimed after their time to live",
            st.expirations,
        ),
        (
            "recoveries",
            "Shards rebuilt after a process died holding their lock",
            st.recoveries,
        ),
    ];
    for (name, help, n) in counters {
        writeln!(out, "# TYPE shm_lru_{name} counter")?;
        writeln!(out, "# HELP shm_lru_{name} {help}.")?;
        writeln!(out, "shm_lru_{name}_total{{cache=\"{label}\"}} {n}")?;
    }
    let mut gauges = vec![
        ("entries", "Entries held now", st.len),
        ("capacity", "The most entries the cache holds", st.capacity),
    ];
    if st.max_bytes > 0 {
        gauges.extend([
            (
                "max_bytes",
                "The byte budget: the most bytes the cache's segment takes",
                st.max_bytes,
            ),
            ("bytes_live", "Bytes the entries held now occupy", st.bytes_live),
            (
                "bytes_used",
                "Bytes of the value store not free: live, and not yet reclaimed",
                st.bytes_used,
            ),
            (
                "bytes_free",
                "Bytes of the value store free for new entries",
                st.bytes_free,
            ),
        ]);
    }
    for (name, help, n) in gauges {
        writeln!(out, "# TYPE shm_lru_{name} gauge")?;
        writeln!(out, "# HELP shm_lru_{name} {help}.")?;
        writeln!(out, "shm_lru_{name}{{cache=\"{label}\"}} {n}")?;
    }
    writeln!(out, "# EOF")?;
    Ok(())
}

/// `s` as an OpenMetrics label value: backslash, double quote and newline escaped.
fn openmetrics_label(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

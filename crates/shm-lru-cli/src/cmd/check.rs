//! `shm-lru check`: the engine's invariant checker, with exit status 1 when it finds problems;
//! `--repair` rebuilds the damaged shards from their slots and reports what was dropped. A sound
//! cache's bytes are shown too (with a byte budget, in the text as well as in JSON).

use super::{open_cache, segment_error, Outcome, SegmentArg};
use crate::render;
use serde::Serialize;
use shm_lru::{Cache, SegmentId};
use std::io::Write;

/// `check`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    segment: SegmentArg,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
    /// Rebuild each damaged shard from its slots (as recovery after a crash does), dropping the
    /// entries that cannot be trusted; exit status 0 when the cache is sound afterwards.
    #[arg(long)]
    repair: bool,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        Ok(Config {
            id: self.segment.id()?,
            json: self.json,
            repair: self.repair,
        })
    }
}

/// Validated `check` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// Print JSON.
    pub json: bool,
    /// Repair what is damaged.
    pub repair: bool,
}

#[derive(Debug, Serialize)]
struct JsonCheck<'a> {
    segment: String,
    ok: bool,
    shards: u32,
    entries: u64,
    free: u64,
    /// The byte budget; 0 in a cache of fixed records.
    max_bytes: u64,
    /// A sound cache's bytes: those its entries occupy, those not free, and those free (of the
    /// value store with a budget, else of the records); null when problems were found (with
    /// `--repair`: when problems are left after it).
    bytes_live: Option<u64>,
    bytes_used: Option<u64>,
    bytes_free: Option<u64>,
    problems: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    repaired: Option<JsonRepair<'a>>,
}

#[derive(Debug, Serialize)]
struct JsonRepair<'a> {
    rebuilt_shards: u32,
    kept: u64,
    dropped: u64,
    ok_after: bool,
    problems_after: &'a [String],
}

/// Runs `check`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    if cfg.repair {
        return repair(cfg, &cache, out);
    }
    let report = cache.check().map_err(|e| segment_error(&cfg.id, e))?;
    let bytes = bytes_of(cfg, &cache, report.is_ok())?;
    if cfg.json {
        let j = JsonCheck {
            segment: cfg.id.to_string(),
            ok: report.is_ok(),
            shards: report.shards,
            entries: report.entries,
            free: report.free,
            max_bytes: cache.max_bytes(),
            bytes_live: bytes.map(|b| b.live),
            bytes_used: bytes.map(|b| b.used),
            bytes_free: bytes.map(|b| b.free),
            problems: &report.problems,
            repaired: None,
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        write!(out, "segment {}: {report}", cfg.id)?;
        budget_line(&cache, bytes, out)?;
        if !report.is_ok() {
            writeln!(
                out,
                "{} problem(s) found; the cache's structure is damaged",
                report.problems.len()
            )?;
        }
    }
    Ok(if report.is_ok() {
        Outcome::Done
    } else {
        Outcome::No
    })
}

/// A cache's bytes, as its stats count them.
#[derive(Debug, Clone, Copy)]
struct Bytes {
    live: u64,
    used: u64,
    free: u64,
}

/// The bytes of `cache` if it is `sound`: a damaged one's counts are not to be trusted, and
/// reading them would walk what the check found wrong.
fn bytes_of(cfg: &Config, cache: &Cache, sound: bool) -> anyhow::Result<Option<Bytes>> {
    if !sound {
        return Ok(None);
    }
    let st = cache.stats().map_err(|e| segment_error(&cfg.id, e))?;
    Ok(Some(Bytes {
        live: st.bytes_live,
        used: st.bytes_used,
        free: st.bytes_free,
    }))
}

/// With a byte budget, a line on how much of it is used.
fn budget_line(cache: &Cache, bytes: Option<Bytes>, out: &mut dyn Write) -> anyhow::Result<()> {
    let (max, Some(b)) = (cache.max_bytes(), bytes) else {
        return Ok(());
    };
    if max > 0 {
        writeln!(
            out,
            "value store: {} used ({} live), {} free, within a budget of {}",
            render::size(b.used),
            render::size(b.live),
            render::size(b.free),
            render::size(max)
        )?;
    }
    Ok(())
}

fn repair(cfg: &Config, cache: &Cache, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let r = cache.repair().map_err(|e| segment_error(&cfg.id, e))?;
    let bytes = bytes_of(cfg, cache, r.after.is_ok())?;
    if cfg.json {
        let j = JsonCheck {
            segment: cfg.id.to_string(),
            ok: r.before.is_ok(),
            shards: r.before.shards,
            entries: r.before.entries,
            free: r.before.free,
            max_bytes: cache.max_bytes(),
            bytes_live: bytes.map(|b| b.live),
            bytes_used: bytes.map(|b| b.used),
            bytes_free: bytes.map(|b| b.free),
            problems: &r.before.problems,
            repaired: Some(JsonRepair {
                rebuilt_shards: r.rebuilt,
                kept: r.kept,
                dropped: r.dropped,
                ok_after: r.after.is_ok(),
                problems_after: &r.after.problems,
            }),
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        write!(out, "segment {}: {}", cfg.id, r.before)?;
        if r.rebuilt == 0 {
            writeln!(out, "nothing to repair")?;
        } else {
            writeln!(
                out,
                "repaired: rebuilt {} shard(s), kept {} entries, dropped {} untrustworthy slot(s)",
                r.rebuilt, r.kept, r.dropped
            )?;
            write!(out, "after: {}", r.after)?;
        }
        budget_line(cache, bytes, out)?;
    }
    Ok(if r.after.is_ok() {
        Outcome::Done
    } else {
        Outcome::No
    })
}

//! `shm-lru check`: the engine's invariant checker, with exit status 1 when it finds problems;
//! `--repair` rebuilds the damaged shards from their slots and reports what was dropped.

use super::{open_cache, segment_error, Outcome, SegmentArg};
use serde::Serialize;
use shm_lru::SegmentId;
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
    if cfg.json {
        let j = JsonCheck {
            segment: cfg.id.to_string(),
            ok: report.is_ok(),
            shards: report.shards,
            entries: report.entries,
            free: report.free,
            problems: &report.problems,
            repaired: None,
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        write!(out, "segment {}: {report}", cfg.id)?;
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

fn repair(cfg: &Config, cache: &shm_lru::Cache, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let r = cache.repair().map_err(|e| segment_error(&cfg.id, e))?;
    if cfg.json {
        let j = JsonCheck {
            segment: cfg.id.to_string(),
            ok: r.before.is_ok(),
            shards: r.before.shards,
            entries: r.before.entries,
            free: r.before.free,
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
    }
    Ok(if r.after.is_ok() {
        Outcome::Done
    } else {
        Outcome::No
    })
}

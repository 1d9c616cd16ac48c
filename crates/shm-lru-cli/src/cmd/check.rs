//! `shm-lru check`: the engine's invariant checker, with exit status 1 when it finds problems.

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
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        Ok(Config {
            id: self.segment.id()?,
            json: self.json,
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
}

#[derive(Debug, Serialize)]
struct JsonCheck<'a> {
    segment: String,
    ok: bool,
    shards: u32,
    entries: u64,
    free: u64,
    problems: &'a [String],
}

/// Runs `check`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    let report = cache.check().map_err(|e| segment_error(&cfg.id, e))?;
    if cfg.json {
        let j = JsonCheck {
            segment: cfg.id.to_string(),
            ok: report.is_ok(),
            shards: report.shards,
            entries: report.entries,
            free: report.free,
            problems: &report.problems,
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

//! `shm-lru ls`: every segment on the machine that holds a shm-lru cache. Candidates come from
//! `/proc/sysvipc/shm` and `/dev/shm`; each is probed without waiting, and anything not in our
//! format is skipped without being written.

use super::{probe, Outcome, Probed};
use crate::inventory::{self, Facts};
use crate::render;
use anyhow::Context;
use serde::Serialize;
use shm_lru::{Error, SegmentId};
use std::io::Write;

/// `ls`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Validated `ls` options.
#[derive(Debug)]
pub struct Config {
    /// Print JSON.
    pub json: bool,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        Ok(Config { json: self.json })
    }
}

/// One listed segment.
#[derive(Debug, Serialize)]
struct Row {
    /// System V key (decimal) or POSIX `/name`.
    id: String,
    /// `sysv` or `posix`.
    r#type: &'static str,
    size: u64,
    record_size: Option<u32>,
    capacity: Option<u64>,
    entries: Option<u64>,
    shards: Option<u32>,
    /// Processes attached (POSIX: best effort from /proc/*/maps).
    attached: u64,
    uid: u32,
    owner: String,
    /// Permission bits in octal, e.g. `0600`.
    mode: String,
    /// `ok`, `busy`, `not-ready` (initialisation under way), `half-made` (its creator died
    /// before laying the cache out) or `other-format`.
    status: &'static str,
}

/// Runs `ls`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut found = inventory::sysv_segments().context("cannot read /proc/sysvipc/shm")?;
    match inventory::posix_objects() {
        Ok(p) => found.extend(p),
        // A system without /dev/shm has no POSIX objects to list.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", inventory::DEV_SHM)),
    }
    let users = inventory::user_names();
    let mut rows = Vec::new();
    let mut unreadable = 0u64;
    for f in found {
        match row(&f, &users) {
            Ok(Some(r)) => rows.push(r),
            Ok(None) => {}
            // Removed while we looked: nothing to list.
            Err(Error::SegmentNotFound(_)) => {}
            Err(_) => unreadable += 1,
        }
    }
    if cfg.json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
    } else if rows.is_empty() {
        writeln!(out, "no shm-lru caches found")?;
    } else {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.r#type.to_string(),
                    render::size(r.size),
                    opt(r.record_size.map(|v| v.to_string())),
                    opt(r.capacity.map(|v| v.to_string())),
                    opt(r.entries.map(|v| v.to_string())),
                    r.attached.to_string(),
                    r.owner.clone(),
                    r.mode.clone(),
                    r.status.to_string(),
                ]
            })
            .collect();
        render::table(
            out,
            &[
                "SEGMENT", "TYPE", "SIZE", "RECORD", "CAPACITY", "ENTRIES", "ATTACHED", "OWNER", "MODE",
                "STATUS",
            ],
            &cells,
        )?;
    }
    if unreadable > 0 {
        eprintln!(
            "shm-lru: {unreadable} segment(s) could not be opened (permission denied or similar) \
             and are not listed; run as their owner or as root to see them"
        );
    }
    Ok(Outcome::Done)
}

fn row(f: &Facts, users: &std::collections::HashMap<u32, String>) -> Result<Option<Row>, Error> {
    let probed = probe(&f.id)?;
    let mut r = Row {
        id: f.id.to_string(),
        r#type: match f.id {
            SegmentId::SysV(_) => "sysv",
            SegmentId::Posix(_) => "posix",
        },
        size: f.size,
        record_size: None,
        capacity: None,
        entries: None,
        shards: None,
        attached: f.attached,
        uid: f.uid,
        owner: users.get(&f.uid).cloned().unwrap_or_else(|| f.uid.to_string()),
        mode: format!("{:04o}", f.mode),
        status: "ok",
    };
    match probed {
        Probed::Cache(c) => {
            r.record_size = Some(c.record_size());
            r.capacity = Some(c.capacity());
            r.shards = Some(c.shards());
            match c.len() {
                Ok(n) => r.entries = Some(n),
                // A live process holds a lock for longer than it should: list it anyway.
                Err(shm_lru::Error::LockTimeout(_)) => r.status = "busy",
                Err(e) => return Err(e),
            }
        }
        Probed::NotReady => r.status = "not-ready",
        Probed::HalfMade => r.status = "half-made",
        Probed::OtherFormat(_) => r.status = "other-format",
        Probed::Foreign(_) => return Ok(None),
    }
    Ok(Some(r))
}

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
    /// Bytes per record; 0 in a cache with a byte budget.
    record_size: Option<u32>,
    /// The byte budget; 0 in a cache of fixed records.
    max_bytes: Option<u64>,
    /// The most bytes of key plus value an entry holds (a fixed cache's record size).
    max_value_size: Option<u64>,
    capacity: Option<u64>,
    entries: Option<u64>,
    /// Bytes the entries occupy, those not free, and those free (of the value store with a
    /// budget, else of the records).
    bytes_live: Option<u64>,
    bytes_used: Option<u64>,
    bytes_free: Option<u64>,
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
        table(&rows, out)?;
    }
    if unreadable > 0 {
        eprintln!(
            "shm-lru: {unreadable} segment(s) could not be opened (permission denied or similar) \
             and are not listed; run as their owner or as root to see them"
        );
    }
    Ok(Outcome::Done)
}

/// The rows as a table. The columns of a byte budget (BUDGET, USED) are shown only when a cache
/// listed has one.
fn table(rows: &[Row], out: &mut dyn Write) -> anyhow::Result<()> {
    let budgets = rows.iter().any(|r| r.max_bytes.is_some_and(|b| b > 0));
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let budget = r.max_bytes.filter(|&b| b > 0);
            let mut cells = vec![
                r.id.clone(),
                r.r#type.to_string(),
                render::size(r.size),
                opt(r.record_size.filter(|&s| s > 0).map(|v| v.to_string())),
            ];
            if budgets {
                cells.push(opt(budget.map(render::size)));
                cells.push(opt(budget.and(r.bytes_used).map(render::size)));
            }
            cells.extend([
                opt(r.capacity.map(|v| v.to_string())),
                opt(r.entries.map(|v| v.to_string())),
                r.attached.to_string(),
                r.owner.clone(),
                r.mode.clone(),
                r.status.to_string(),
            ]);
            cells
        })
        .collect();
    let mut header = vec!["SEGMENT", "TYPE", "SIZE", "RECORD"];
    if budgets {
        header.extend(["BUDGET", "USED"]);
    }
    header.extend(["CAPACITY", "ENTRIES", "ATTACHED", "OWNER", "MODE", "STATUS"]);
    render::table(out, &header, &cells)?;
    Ok(())
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
        max_bytes: None,
        max_value_size: None,
        capacity: None,
        entries: None,
        bytes_live: None,
        bytes_used: None,
        bytes_free: None,
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
            r.max_bytes = Some(c.max_bytes());
            r.max_value_size = Some(c.max_value_size());
            r.capacity = Some(c.capacity());
            r.shards = Some(c.shards());
            // The counts and the bytes in one pass over the shards.
            match c.stats() {
                Ok(st) => {
                    r.entries = Some(st.len);
                    r.bytes_live = Some(st.bytes_live);
                    r.bytes_used = Some(st.bytes_used);
                    r.bytes_free = Some(st.bytes_free);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, record_size: u32, max_bytes: u64, bytes_used: u64) -> Row {
        Row {
            id: id.into(),
            r#type: "posix",
            size: 1 << 20,
            record_size: Some(record_size),
            max_bytes: Some(max_bytes),
            max_value_size: Some(if max_bytes == 0 {
                record_size as u64
            } else {
                1 << 17
            }),
            capacity: Some(1024),
            entries: Some(3),
            bytes_live: Some(bytes_used),
            bytes_used: Some(bytes_used),
            bytes_free: Some(1000),
            shards: Some(1),
            attached: 0,
            uid: 0,
            owner: "root".into(),
            mode: "0600".into(),
            status: "ok",
        }
    }

    fn lines(rows: &[Row]) -> Vec<String> {
        let mut out = Vec::new();
        table(rows, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn columns(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn the_budget_columns_show_only_when_a_cache_has_a_budget() {
        let fixed = lines(&[row("/a", 64, 0, 0)]);
        assert_eq!(
            columns(&fixed[0]),
            [
                "SEGMENT", "TYPE", "SIZE", "RECORD", "CAPACITY", "ENTRIES", "ATTACHED", "OWNER", "MODE",
                "STATUS"
            ]
        );
        assert_eq!(
            columns(&fixed[1]),
            ["/a", "posix", "1.0", "MiB", "64", "1024", "3", "0", "root", "0600", "ok"]
        );

        let both = lines(&[row("/a", 64, 0, 0), row("/b", 0, 8 << 20, 3 << 19)]);
        assert_eq!(
            columns(&both[0]),
            [
                "SEGMENT", "TYPE", "SIZE", "RECORD", "BUDGET", "USED", "CAPACITY", "ENTRIES", "ATTACHED",
                "OWNER", "MODE", "STATUS"
            ]
        );
        assert_eq!(
            columns(&both[1]),
            ["/a", "posix", "1.0", "MiB", "64", "-", "-", "1024", "3", "0", "root", "0600", "ok"]
        );
        assert_eq!(
            columns(&both[2]),
            [
                "/b", "posix", "1.0", "MiB", "-", "8.0", "MiB", "1.5", "MiB", "1024", "3", "0", "root",
                "0600", "ok"
            ]
        );
    }
}

//! `shm-lru del`: removes a key.

use super::{open_cache, segment_error, Outcome, OwnedKey};
use shm_lru::SegmentId;
use std::io::Write;

/// Validated `del` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// The key.
    pub key: OwnedKey,
}

/// Runs `del`: exit status 1 when the key was not there.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    let removed = cache
        .remove(cfg.key.as_key())
        .map_err(|e| segment_error(&cfg.id, e))?;
    if removed {
        writeln!(out, "removed {}", cfg.key.shown())?;
        Ok(Outcome::Done)
    } else {
        eprintln!("shm-lru: key {} not found in segment {}", cfg.key.shown(), cfg.id);
        Ok(Outcome::No)
    }
}

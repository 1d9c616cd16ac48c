//! `shm-lru del`: removes a key.

use super::{open_cache, segment_error, KeyArgs, Outcome, OwnedKey};
use shm_lru::SegmentId;
use std::io::Write;

/// `del`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        let (id, key) = self.key.parse()?;
        Ok(Config { id, key })
    }
}

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

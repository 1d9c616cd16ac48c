//! `shm-lru set`: stores a string value under a key, as an operator's fix or test.

use super::{open_cache, segment_error, KeyArgs, Outcome, OwnedKey};
use shm_lru::{SegmentId, SetOptions, ValueKind};
use std::io::Write;

/// `set`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,
    /// The value, stored as a string.
    value: String,
    /// Time to live in milliseconds (0: forever; default: the cache's default).
    #[arg(long, value_name = "MS")]
    ttl: Option<u64>,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        let (id, key) = self.key.parse()?;
        Ok(Config {
            id,
            key,
            value: self.value,
            ttl_ms: self.ttl,
        })
    }
}

/// Validated `set` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// The key.
    pub key: OwnedKey,
    /// The value, stored as a string.
    pub value: String,
    /// Time to live in ms (`None`: the cache's default; 0: forever).
    pub ttl_ms: Option<u64>,
}

/// Runs `set`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let cache = open_cache(&cfg.id)?;
    let opts = SetOptions {
        ttl_ms: cfg.ttl_ms,
        kind: ValueKind::Str,
        ..SetOptions::default()
    };
    let r = cache
        .set(cfg.key.as_key(), cfg.value.as_bytes(), &opts)
        .map_err(|e| segment_error(&cfg.id, e))?;
    writeln!(
        out,
        "{} {} in slot {}{}",
        if r.inserted { "inserted" } else { "updated" },
        cfg.key.shown(),
        r.slot,
        if r.evicted {
            " (evicted the least recently used entry)"
        } else {
            ""
        }
    )?;
    Ok(Outcome::Done)
}

//! `shm-lru set`: stores a string value under a key, as an operator's fix or test.

use super::{open_cache, segment_error, KeyArgs, Keyed, Outcome};
use shm_lru::{SetOptions, ValueKind};
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
        Ok(Config {
            target: self.key.parse()?,
            value: self.value,
            ttl_ms: self.ttl,
        })
    }
}

/// Validated `set` options.
#[derive(Debug)]
pub struct Config {
    /// The entry's segment and key.
    pub target: Keyed,
    /// The value, stored as a string.
    pub value: String,
    /// Time to live in ms (`None`: the cache's default; 0: forever).
    pub ttl_ms: Option<u64>,
}

/// Runs `set`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let Keyed { id, key } = &cfg.target;
    let cache = open_cache(id)?;
    let opts = SetOptions {
        ttl_ms: cfg.ttl_ms,
        kind: ValueKind::Str,
        ..SetOptions::default()
    };
    let r = cache
        .set(key.as_key(), cfg.value.as_bytes(), &opts)
        .map_err(|e| segment_error(id, e))?;
    writeln!(
        out,
        "{} {} in slot {}{}",
        if r.inserted { "inserted" } else { "updated" },
        key.shown(),
        r.slot,
        if r.evicted {
            " (evicted the least recently used entry)"
        } else {
            ""
        }
    )?;
    Ok(Outcome::Done)
}

//! `shm-lru set`: stores a string value under a key, as an operator's fix or test.

use super::{open_cache, segment_error, Outcome, OwnedKey};
use shm_lru::{SegmentId, SetOptions, ValueKind};
use std::io::Write;

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

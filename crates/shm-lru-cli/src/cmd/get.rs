//! `shm-lru get`: one value, read without marking the entry used or counting a hit, so that
//! looking does not disturb the cache.

use super::{open_cache, segment_error, KeyArgs, Keyed, Outcome};
use crate::{notation, render};
use serde::Serialize;
use std::io::Write;

/// `get`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,
    /// Write the value's bytes exactly as stored, with no newline. Without it, the value is
    /// printed as text where that is unambiguous, else "quoted" with escapes, else as 0x hex.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        Ok(Config {
            target: self.key.parse()?,
            raw: self.raw,
            json: self.json,
        })
    }
}

/// Validated `get` options.
#[derive(Debug)]
pub struct Config {
    /// The entry's segment and key.
    pub target: Keyed,
    /// Write the bytes as they are.
    pub raw: bool,
    /// Print JSON.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct JsonGet {
    segment: String,
    key: String,
    key_encoding: &'static str,
    found: bool,
    value: Option<String>,
    value_encoding: Option<&'static str>,
    kind: Option<&'static str>,
    size: Option<usize>,
}

/// Runs `get`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let Keyed { id, key } = &cfg.target;
    let cache = open_cache(id)?;
    let found = cache
        .peek_with(key.as_key(), |v, kind| (v.to_vec(), kind))
        .map_err(|e| segment_error(id, e))?;
    if cfg.json {
        let k = render::json_key(&key.as_key().to_owned());
        let mut j = JsonGet {
            segment: id.to_string(),
            key: k.value,
            key_encoding: k.encoding,
            found: found.is_some(),
            value: None,
            value_encoding: None,
            kind: None,
            size: None,
        };
        if let Some((v, kind)) = &found {
            let b = render::json_bytes(v);
            j.value = Some(b.value);
            j.value_encoding = Some(b.encoding);
            j.kind = Some(render::kind(*kind));
            j.size = Some(v.len());
        }
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else if let Some((v, _)) = &found {
        if cfg.raw {
            out.write_all(v)?;
        } else {
            writeln!(out, "{}", notation::shown(v))?;
        }
    } else {
        cfg.target.report_absent();
    }
    Ok(if found.is_some() {
        Outcome::Done
    } else {
        Outcome::No
    })
}

//! `shm-lru del`: removes a key.

use super::{open_cache, segment_error, KeyArgs, Keyed, Outcome};
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
        Ok(Config {
            target: self.key.parse()?,
        })
    }
}

/// Validated `del` options.
#[derive(Debug)]
pub struct Config {
    /// The entry's segment and key.
    pub target: Keyed,
}

/// Runs `del`: exit status 1 when the key was not there.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let Keyed { id, key } = &cfg.target;
    let cache = open_cache(id)?;
    let removed = cache.remove(key.as_key()).map_err(|e| segment_error(id, e))?;
    if removed {
        writeln!(out, "removed {}", key.shown())?;
        Ok(Outcome::Done)
    } else {
        cfg.target.report_absent();
        Ok(Outcome::No)
    }
}

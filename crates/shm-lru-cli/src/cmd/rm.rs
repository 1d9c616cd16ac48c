//! `shm-lru rm`: destroys a segment that holds a shm-lru cache. Segments in any other format
//! are refused and left untouched; so are segments that processes still have attached, unless
//! forced.

use super::{foreign, half_made, not_ready, probe, segment_error, Outcome, Probed, SegmentArg};
use crate::inventory;
use anyhow::bail;
use shm_lru::{Segment, SegmentId};
use std::io::Write;

/// `rm`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    segment: SegmentArg,
    /// Remove even while processes are attached (their mappings stay valid until they detach),
    /// or while the cache's initialisation never finished (half-made by a creator that died).
    #[arg(long)]
    force: bool,
}

impl Args {
    /// Checks the arguments.
    pub fn config(self) -> anyhow::Result<Config> {
        Ok(Config {
            id: self.segment.id()?,
            force: self.force,
        })
    }
}

/// Validated `rm` options.
#[derive(Debug)]
pub struct Config {
    /// The segment.
    pub id: SegmentId,
    /// Remove even while attached, or while its initialisation never finished.
    pub force: bool,
}

/// Runs `rm`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let id = &cfg.id;
    match probe(id).map_err(|e| segment_error(id, e))? {
        Probed::Foreign(e) => return Err(foreign(id, &e)),
        Probed::NotReady if !cfg.force => return Err(not_ready(id)),
        Probed::HalfMade if !cfg.force => return Err(half_made(id)),
        // Our own mapping ends here, so that it is not counted below.
        Probed::Cache(_) | Probed::NotReady | Probed::HalfMade | Probed::OtherFormat(_) => {}
    }
    let attached = inventory::lookup(id).map_err(|e| segment_error(id, e))?.attached;
    if attached > 0 && !cfg.force {
        bail!(
            "segment {id} has {attached} attached process(es); stop them first, or pass --force \
             to remove it anyway (their mappings stay valid until they detach)"
        );
    }
    if !Segment::destroy(id, true).map_err(|e| segment_error(id, e))? {
        bail!("segment {id} does not exist");
    }
    write!(out, "removed segment {id}")?;
    if attached > 0 {
        write!(
            out,
            " ({attached} process(es) still attached; the memory is freed when the last detaches)"
        )?;
    }
    writeln!(out)?;
    Ok(Outcome::Done)
}

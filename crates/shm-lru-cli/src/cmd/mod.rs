//! The commands, one module each (its arguments, their checks, and the run), and what they
//! share: the segment and key arguments, opening a segment without waiting on it, telling our
//! caches from foreign segments, and wording the engine's errors for an operator (always
//! naming the segment).

pub mod bench;
pub mod check;
pub mod del;
pub mod dump;
pub mod get;
pub mod ls;
pub mod rm;
pub mod set;
pub mod stats;

use crate::{notation, render, sigbus};
use anyhow::{anyhow, Context};
use shm_lru::{Cache, Error, KeyRef, Segment, SegmentId};
use std::sync::Arc;

/// The segment argument every command but `ls` and `bench` takes.
#[derive(Debug, clap::Args)]
pub struct SegmentArg {
    /// Segment: System V key (decimal or 0x-hex) or POSIX /name.
    segment: String,
}

impl SegmentArg {
    /// The segment named.
    pub fn id(&self) -> anyhow::Result<SegmentId> {
        self.segment
            .parse::<SegmentId>()
            .with_context(|| format!("bad segment {:?}", self.segment))
    }
}

/// The arguments of the commands that name one entry: `get`, `set`, `del`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(flatten)]
    segment: SegmentArg,
    /// The entry's key as `dump` shows it, or with --hash a u64.
    ///
    /// 0x… is binary: hex bytes, as `dump` shows keys that are not text (0xfffe). "…" is text
    /// with backslash escapes, as `dump` shows text keys (\t, \n, \r, \\, \", \u{1b}); in
    /// the shell, put it in single quotes: '"a\tb"'. Anything else is the text as typed. So a
    /// text key that starts with 0x or with a double quote is written quoted ('"0x10"'), or
    /// given with --text.
    key: String,
    /// Take the key as the text exactly as typed: no 0x or quoted forms.
    #[arg(long, conflicts_with = "hash")]
    text: bool,
    /// Treat the key as a u64 (decimal or 0x-hex), like the original package's hashes.
    #[arg(long)]
    hash: bool,
}

/// A key in a segment: what `get`, `set` and `del` act on.
#[derive(Debug)]
pub struct Keyed {
    /// The segment.
    pub id: SegmentId,
    /// The key.
    pub key: OwnedKey,
}

impl Keyed {
    /// Tells the operator that the key is not in the segment.
    pub fn report_absent(&self) {
        eprintln!(
            "shm-lru: key {} not found in segment {}",
            self.key.shown(),
            self.id
        );
    }
}

impl KeyArgs {
    /// The segment and the key named.
    pub fn parse(self) -> anyhow::Result<Keyed> {
        let id = self.segment.id()?;
        let key = if self.hash {
            OwnedKey::Hash(parse_u64(&self.key).with_context(|| format!("bad --hash key {:?}", self.key))?)
        } else if self.text {
            OwnedKey::Bytes(self.key.into_bytes())
        } else {
            OwnedKey::Bytes(notation::parse_key(&self.key)?)
        };
        Ok(Keyed { id, key })
    }
}

/// A u64 in decimal or `0x` hex.
pub fn parse_u64(s: &str) -> anyhow::Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    r.map_err(|_| anyhow!("expected an unsigned 64-bit integer, decimal or 0x-hex"))
}

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (exit status 0).
    Done,
    /// It ran, and the answer is no: problems found, key absent (exit status 1).
    No,
}

/// A key given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedKey {
    /// A byte key: a string's UTF-8 bytes, or bytes given in hex.
    Bytes(Vec<u8>),
    /// A u64 key (`--hash`).
    Hash(u64),
}

impl OwnedKey {
    /// The key for an engine call.
    pub fn as_key(&self) -> KeyRef<'_> {
        match self {
            OwnedKey::Bytes(b) => KeyRef::Bytes(b),
            OwnedKey::Hash(h) => KeyRef::Hash(*h),
        }
    }

    /// The key for messages, as `dump` shows it.
    pub fn shown(&self) -> String {
        match self {
            OwnedKey::Bytes(b) => render::cell_bytes(b, None),
            OwnedKey::Hash(h) => format!("{h} (hash)"),
        }
    }
}

/// What is found in a segment.
#[derive(Debug)]
pub enum Probed {
    /// A usable cache of ours (boxed: a handle is much larger than the other variants).
    Cache(Box<Cache>),
    /// Our header, but its initialisation has not finished.
    NotReady,
    /// Left half-made: the process creating it died before the cache was laid out.
    HalfMade,
    /// Our magic, but another format version or platform.
    OtherFormat(Error),
    /// Not a shm-lru cache; the reason.
    Foreign(Error),
}

/// How long a command waits for a shard lock before reporting the cache as busy.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Maps a segment and looks at its header without waiting and without writing to it.
/// Errors: the segment does not exist, or could not be mapped.
pub fn probe(id: &SegmentId) -> Result<Probed, Error> {
    let seg = Arc::new(Segment::open(id)?);
    Ok(match Cache::probe(seg) {
        Ok(mut c) => {
            // An operator's tool must not hang on a process that is stopped holding a lock.
            c.set_lock_timeout(Some(LOCK_WAIT));
            Probed::Cache(Box::new(c))
        }
        Err(Error::NotReady(_)) => Probed::NotReady,
        Err(Error::Abandoned(_)) => Probed::HalfMade,
        Err(e @ Error::VersionMismatch { .. }) => Probed::OtherFormat(e),
        Err(e @ (Error::BadFormat(_) | Error::RegionTooSmall { .. })) => Probed::Foreign(e),
        Err(e) => return Err(e),
    })
}

/// The cache in segment `id`, or an error that names the segment and says what is wrong. From
/// then on, the segment shrinking underneath ends the command with a message (see [`sigbus`]).
pub fn open_cache(id: &SegmentId) -> anyhow::Result<Cache> {
    match probe(id).map_err(|e| segment_error(id, e))? {
        Probed::Cache(c) => {
            sigbus::guard(&c, None);
            Ok(*c)
        }
        Probed::NotReady => Err(not_ready(id)),
        Probed::HalfMade => Err(half_made(id)),
        Probed::OtherFormat(e) => Err(anyhow!("segment {id}: {e}")),
        Probed::Foreign(e) => Err(foreign(id, &e)),
    }
}

/// The error for a cache whose creator died before laying it out.
pub fn half_made(id: &SegmentId) -> anyhow::Error {
    anyhow!(
        "segment {id} is half-made: the process creating it died before the cache was laid out          (the next openOrCreate makes it again; `shm-lru rm --force {id}` removes it)"
    )
}

/// The error for a segment that does not hold our format.
pub fn foreign(id: &SegmentId, e: &Error) -> anyhow::Error {
    let why = match e {
        Error::BadFormat(detail) => detail.clone(),
        other => other.to_string(),
    };
    anyhow!("segment {id} is not a shm-lru cache ({why}); left untouched")
}

/// The error for a cache whose initialisation has not finished.
pub fn not_ready(id: &SegmentId) -> anyhow::Error {
    anyhow!(
        "segment {id} is not ready: its cache is being initialised, or its initialiser died \
         (if no process is creating it, remove it with `shm-lru rm --force {id}`)"
    )
}

/// An engine error, worded for an operator with the segment named once.
pub fn segment_error(id: &SegmentId, e: Error) -> anyhow::Error {
    match e {
        Error::SegmentNotFound(_) => anyhow!("segment {id} does not exist"),
        // The engine's message names the segment and the system call.
        e @ Error::Io { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("segment {id}")),
    }
}

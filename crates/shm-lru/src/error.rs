//! The crate's one error type, and how its messages show byte counts.

use std::fmt;
use std::io;

/// Everything that can go wrong in this crate.
///
/// Each variant has a stable [`code`](Error::code) that bindings hand on to their users.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Io {
        /// What was being done, e.g. "shmat".
        op: &'static str,
        /// The segment concerned.
        segment: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// `create` found a segment with that key or name already.
    SegmentExists(String),
    /// No segment with that key or name exists.
    SegmentNotFound(String),
    /// No unused System V key was found for an anonymous segment.
    NoFreeKey,
    /// A segment key or name is not acceptable.
    InvalidName(String),
    /// An argument is out of range or malformed.
    InvalidArgument(String),
    /// The region does not hold a cache in this format (wrong magic, or inconsistent geometry).
    BadFormat(String),
    /// The region holds a cache of another format version or built for another platform.
    VersionMismatch {
        /// Format word found in the segment.
        found: u32,
        /// Format word this build reads.
        expected: u32,
    },
    /// The region is too small for the requested cache, or for the header it claims.
    RegionTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// Another process is still initialising the cache, or died while doing so.
    NotReady(String),
    /// The segment was left half-made by a creator that died (`open_or_create` makes it again).
    Abandoned(String),
    /// Key bytes and value together exceed the record size.
    ValueTooLarge {
        /// Bytes that were to be stored (key bytes plus value bytes).
        size: u64,
        /// Bytes a record holds.
        max: u64,
    },
    /// A byte key is longer than 65,535 bytes.
    KeyTooLarge(usize),
    /// The cache is full and does not evict.
    Full,
    /// `add` found the key present.
    KeyExists,
    /// `replace` or `incr` on an absent key, or an id-based call on a slot that holds nothing.
    KeyNotFound,
    /// A slot id is 0 or beyond the capacity.
    NoSuchSlot(u64),
    /// The slot id is in range but the slot is free.
    SlotFree(u64),
    /// `incr` on a value that is not a decimal integer.
    NotANumber,
    /// `incr` would overflow an `i64`.
    Overflow,
    /// A caller's buffer is too small for the value.
    BufferTooSmall {
        /// Bytes the value has.
        needed: usize,
    },
    /// `destroy` refused: processes are attached.
    Busy {
        /// The segment.
        segment: String,
        /// How many processes are attached.
        attached: u64,
    },
    /// A lock could not be taken, or its state could not be repaired after its owner died.
    Unrecoverable {
        /// What was being done, e.g. "pthread_mutex_lock".
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// An unlock by a thread that does not hold the lock.
    NotLockOwner(io::Error),
    /// A shard stayed locked longer than the handle's lock timeout (see
    /// [`Cache::set_lock_timeout`](crate::Cache::set_lock_timeout)).
    LockTimeout(std::time::Duration),
    /// A lock could not be taken in time and its bytes are not in a valid state: no live thread
    /// holds it. Code `ERR_SHM_LOCK_TIMEOUT`, like a timeout, since callers treat both alike.
    LockDamaged {
        /// How long the caller waited.
        waited: std::time::Duration,
        /// What is wrong with it.
        why: String,
    },
    /// Not enough shared memory to back a new segment: creating it would let a later write die
    /// of `SIGBUS` (full tmpfs) or wake the OOM killer, so it is refused up front.
    NoSpace {
        /// Bytes the segment needs.
        needed: u64,
        /// Bytes free under the limit that refused it.
        available: u64,
        /// Which limit that was, e.g. "free space on /dev/shm".
        limit: &'static str,
    },
    /// The segment's owner or permission bits are not ones this caller trusts (see
    /// [`OpenOptions`](crate::OpenOptions)), or the system refused access (`EACCES`, `EPERM`).
    Permission {
        /// The segment.
        segment: String,
        /// Why, in words.
        reason: String,
    },
    /// The object behind a mapping is now smaller than the mapping: another process truncated
    /// it, and touching the missing pages would raise `SIGBUS`.
    Truncated {
        /// The segment.
        segment: String,
        /// Its size now.
        size: u64,
        /// Bytes mapped.
        mapped: u64,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable identifier for the kind of error, e.g. `ERR_SHM_VALUE_TOO_LARGE`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "ERR_SHM_IO",
            Error::SegmentExists(_) => "ERR_SHM_EXISTS",
            Error::SegmentNotFound(_) => "ERR_SHM_NOT_FOUND",
            Error::NoFreeKey => "ERR_SHM_NO_FREE_KEY",
            Error::NotLockOwner(_) => "ERR_SHM_NOT_LOCK_OWNER",
            Error::InvalidName(_) => "ERR_SHM_INVALID_NAME",
            Error::InvalidArgument(_) => "ERR_SHM_INVALID_ARGUMENT",
            Error::BadFormat(_) => "ERR_SHM_BAD_FORMAT",
            Error::VersionMismatch { .. } => "ERR_SHM_VERSION_MISMATCH",
            Error::RegionTooSmall { .. } => "ERR_SHM_REGION_TOO_SMALL",
            Error::NotReady(_) | Error::Abandoned(_) => "ERR_SHM_NOT_READY",
            Error::ValueTooLarge { .. } => "ERR_SHM_VALUE_TOO_LARGE",
            Error::KeyTooLarge(_) => "ERR_SHM_KEY_TOO_LARGE",
            Error::Full => "ERR_SHM_FULL",
            Error::KeyExists => "ERR_SHM_KEY_EXISTS",
            Error::KeyNotFound => "ERR_SHM_KEY_NOT_FOUND",
            Error::NoSuchSlot(_) => "ERR_SHM_NO_SUCH_SLOT",
            Error::SlotFree(_) => "ERR_SHM_SLOT_FREE",
            Error::NotANumber => "ERR_SHM_NOT_A_NUMBER",
            Error::Overflow => "ERR_SHM_OVERFLOW",
            Error::BufferTooSmall { .. } => "ERR_SHM_BUFFER_TOO_SMALL",
            Error::Busy { .. } => "ERR_SHM_BUSY",
            Error::Unrecoverable { .. } => "ERR_SHM_UNRECOVERABLE",
            Error::LockTimeout(_) => "ERR_SHM_LOCK_TIMEOUT",
            Error::LockDamaged { .. } => "ERR_SHM_LOCK_DAMAGED",
            Error::NoSpace { .. } => "ERR_SHM_NO_SPACE",
            Error::Permission { .. } => "ERR_SHM_PERMISSION",
            Error::Truncated { .. } => "ERR_SHM_TRUNCATED",
        }
    }

    pub(crate) fn io(op: &'static str, segment: impl fmt::Display, source: io::Error) -> Error {
        Error::Io {
            op,
            segment: segment.to_string(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, segment, source } => write!(f, "{op} failed for segment {segment}: {source}"),
            Error::SegmentExists(s) => write!(f, "segment {s} already exists"),
            Error::SegmentNotFound(s) => write!(f, "segment {s} does not exist"),
            Error::NoFreeKey => write!(f, "no unused System V key could be found for a new segment"),
            Error::NotLockOwner(e) => write!(f, "unlock refused: this thread does not hold the lock ({e})"),
            Error::InvalidName(s) => write!(f, "invalid segment name: {s}"),
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::BadFormat(s) => write!(f, "not a shm-lru cache: {s}"),
            Error::VersionMismatch { found, expected } => write!(
                f,
                "cache format {found:#010x} is not the format this build reads ({expected:#010x}); \
                 recreate the cache or use a matching version"
            ),
            Error::RegionTooSmall { needed, available } => write!(
                f,
                "region too small: {needed} bytes needed, {available} available"
            ),
            Error::NotReady(s) => write!(f, "cache not ready: {s}"),
            Error::Abandoned(id) => write!(
                f,
                "segment {id} was left half-made by a creator that died: openOrCreate makes it \
                 again, or remove it (shm-lru rm --force)"
            ),
            Error::ValueTooLarge { size, max } => write!(
                f,
                "value too large: {size} bytes of key and value exceed the record size of {max} bytes"
            ),
            Error::KeyTooLarge(n) => write!(f, "key too large: {n} bytes (at most 65535)"),
            Error::Full => write!(f, "out of free memory: the cache is full and does not evict"),
            Error::KeyExists => write!(f, "key already present"),
            Error::KeyNotFound => write!(f, "key not found"),
            Error::NoSuchSlot(i) => write!(
                f,
                "no such slot: {i} (slot ids start at 1 and end at the capacity)"
            ),
            Error::SlotFree(i) => write!(f, "slot {i} is free"),
            Error::NotANumber => write!(f, "value is not a decimal integer"),
            Error::Overflow => write!(f, "increment overflows a 64-bit integer"),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small: the value has {needed} bytes"),
            Error::Busy { segment, attached } => write!(
                f,
                "segment {segment} has {attached} attached process(es); detach them or force"
            ),
            Error::Unrecoverable { op, source } => write!(f, "lock unusable: {op} failed: {source}"),
            Error::LockDamaged { waited, why } => write!(
                f,
                "a shard's lock could not be taken in {waited:?}, and {why}; the cache must be \
                 made again (destroy it and create it)"
            ),
            Error::LockTimeout(t) => write!(
                f,
                "a shard stayed locked for more than {t:?}: a live process holds its lock \
                 (is one stopped, or stuck in a debugger?)"
            ),
            Error::NoSpace {
                needed,
                available,
                limit,
            } => write!(
                f,
                "not enough shared memory: the segment needs {needed} bytes ({}), \
                 {available} bytes ({}) are free ({limit})",
                human_bytes(*needed),
                human_bytes(*available)
            ),
            Error::Permission { segment, reason } => {
                write!(f, "permission denied for segment {segment}: {reason}")
            }
            Error::Truncated {
                segment,
                size,
                mapped,
            } => write!(
                f,
                "segment {segment} was truncated to {size} bytes while {mapped} bytes are mapped \
                 (another process with write access shrank it)"
            ),
        }
    }
}

/// A byte count in binary units, as messages show it: `512 B`, `1.5 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Unrecoverable { source, .. } | Error::NotLockOwner(source) => {
                Some(source)
            }
            _ => None,
        }
    }
}

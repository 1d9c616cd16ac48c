//! What callers pass in and get back: cache and per-call options, outcomes, entries, counters.

use crate::key::Key;

/// How a cache is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Entries the cache must hold (with a byte budget: the most it may hold, whose index is
    /// taken when the cache is made; 0, the default there, gives an index that grows inside
    /// the budget as entries need it). A cache of several shards gets a little more room per shard
    /// than an even share, so that `capacity` keys fit however the hash spreads them (see
    /// [`Cache::slots`](crate::Cache::slots)); a one-shard cache holds exactly this many.
    pub capacity: u64,
    /// Data bytes per record: key bytes (for byte keys) plus value bytes must fit. Must be 0 in
    /// a cache with a byte budget ([`max_bytes`](Self::max_bytes)), which has no records of one
    /// size: [`CacheOptions::budget`] sets it so.
    pub record_size: u32,
    /// The byte budget: when not 0, the cache holds values of any size up to
    /// [`max_value_size`](Self::max_value_size) and the whole segment (index, headers, values)
    /// is at most this many bytes. 0 (the default) makes a cache of fixed-size records.
    pub max_bytes: u64,
    /// In a cache with a byte budget, the most bytes of key plus value one entry may hold; 0
    /// picks 1 MiB, or an eighth of the budget when that is less. Ignored without a budget.
    pub max_value_size: u64,
    /// When a shard is full: evict its least recently used entry (`true`) or refuse with
    /// [`Error::Full`](crate::Error::Full) (`false`).
    pub evict_on_full: bool,
    /// Shard count (a power of two up to 1024). `None` picks one: 1 for a cache that does not
    /// evict, so that its capacity is exact; up to 16 for larger evicting caches.
    pub shards: Option<u32>,
    /// Time to live given to entries set without one, in ms (0 = forever).
    pub default_ttl_ms: u64,
    /// Permission bits of a created segment.
    pub mode: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            capacity: 1024,
            record_size: 256,
            max_bytes: 0,
            max_value_size: 0,
            evict_on_full: true,
            shards: None,
            default_ttl_ms: 0,
            mode: 0o600,
        }
    }
}

impl CacheOptions {
    /// Options for a cache with a byte budget of `max_bytes` (see
    /// [`max_bytes`](Self::max_bytes)): no record size, an index sized from the budget.
    pub fn budget(max_bytes: u64) -> CacheOptions {
        CacheOptions {
            capacity: 0,
            record_size: 0,
            max_bytes,
            ..CacheOptions::default()
        }
    }
}

/// What `set` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetMode {
    /// Insert or overwrite.
    #[default]
    Upsert,
    /// Insert only; [`Error::KeyExists`](crate::Error::KeyExists) if present.
    Add,
    /// Overwrite only; [`Error::KeyNotFound`](crate::Error::KeyNotFound) if absent.
    Replace,
}

/// How a value was stored, so that it can be handed back as the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueKind {
    /// Raw bytes.
    #[default]
    Bytes,
    /// A UTF-8 string.
    Str,
}

/// Per-call options of [`Cache::set`](crate::Cache::set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// Time to live in ms; `None` uses the cache's default, `Some(0)` means forever.
    pub ttl_ms: Option<u64>,
    /// Insert, overwrite, or either.
    pub mode: SetMode,
    /// How the value should come back.
    pub kind: ValueKind,
    /// When overwriting, keep the entry's current expiry instead of setting a new one from
    /// `ttl_ms` (which then applies to inserts only): lru-cache's `noUpdateTTL`.
    pub keep_ttl: bool,
}

/// What [`Cache::set`](crate::Cache::set) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOutcome {
    /// The entry's slot id (1-based).
    pub slot: u32,
    /// `true` for a new entry, `false` for an overwrite.
    pub inserted: bool,
    /// Whether a least recently used entry was evicted to make room.
    pub evicted: bool,
}

/// What to do when [`Cache::init_in`](crate::Cache::init_in) finds the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// Use the cache that is there; fail if there is none.
    Attach,
    /// Use the cache that is there if it has the requested record size, else lay a new one out
    /// (over whatever bytes the region holds, unless they are a cache of ours).
    AttachOrInit,
    /// Lay a new, empty cache out, discarding what the region holds.
    Reset,
}

/// Iteration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Most recently used first.
    MruFirst,
    /// Least recently used first.
    LruFirst,
}

/// One entry, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Slot id.
    pub slot: u32,
    /// Key.
    pub key: Key,
    /// Value bytes.
    pub value: Vec<u8>,
    /// How the value was stored.
    pub kind: ValueKind,
    /// Time of last use, epoch ms.
    pub used_ms: u64,
    /// Expiry, epoch ms, if any.
    pub expires_ms: Option<u64>,
    /// The entry's share key.
    pub share_key: u32,
}

/// Counters and sizes, summed over shards and processes. Counters live in the segment, so they
/// count what every process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// `get`s that found their key.
    pub hits: u64,
    /// `get`s that did not.
    pub misses: u64,
    /// New entries.
    pub inserts: u64,
    /// Overwrites (including `incr`).
    pub updates: u64,
    /// Explicit removals.
    pub removes: u64,
    /// Entries evicted for room or by age.
    pub evictions: u64,
    /// Expired entries reclaimed.
    pub expirations: u64,
    /// Times a shard was rebuilt after a process died holding its lock.
    pub recoveries: u64,
    /// Entries now (expired ones not counted).
    pub len: u64,
    /// Entries the cache was made to hold.
    pub capacity: u64,
    /// The byte budget of a cache made with one, else 0.
    pub max_bytes: u64,
    /// Bytes the cache's entries occupy: with a budget, their records in the value store
    /// (key, value and a 32-byte header each, rounded to 8); else their fixed records.
    pub bytes_live: u64,
    /// Bytes of the value store (or of the records) not free: live records, and those of
    /// removed or replaced entries not yet reclaimed.
    pub bytes_used: u64,
    /// Bytes of the value store (or of the records) free for new entries.
    pub bytes_free: u64,
}

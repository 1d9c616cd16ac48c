//! An LRU cache that lives in shared memory, shared by every process on a machine that maps it:
//! of fixed-size records, or of values of any size in a byte budget.
//!
//! # Design
//!
//! A cache occupies a *region* (the start of a System V segment or POSIX shared memory object).
//! The region holds a header (magic, format version, geometry), counter lanes, one header per
//! *shard* (a robust mutex, the recency list's ends, the free list, counters), then each shard's
//! index buckets, then its slots. A key's hash picks the shard and a home bucket in it. Links
//! are 32-bit slot ids, never pointers, so every process can map the region anywhere. The index
//! lives in the region: a change made by any process is seen by all at once.
//!
//! # Reads take no lock
//!
//! A read finds the key through its bucket (one cache line of slot ids and hash tags), copies
//! key and value with word-sized atomic loads and checks the bucket's sequence number: writers
//! make it odd while they change the bucket or a slot indexed in it. A read that overlapped a
//! write retries, and after a few tries takes the lock. A hit records its time of use with one
//! store into the slot's header (none if one was recorded in the same millisecond) and moves the
//! entry in the recency list only when it was placed there more than the shard's refresh
//! interval R ago, and only if the lock is free at once. Eviction gives recently used entries a
//! second chance. So the recency order is exact for uses more than 2R apart; R adapts to the
//! promotion rate (1 ms for a quiet cache; longer under heavy read load). See
//! [`Cache::refresh_intervals`].
//!
//! # Values of any size: a byte budget
//!
//! A cache made with [`CacheOptions::budget`] holds values of any size up to
//! [`max_value_size`](CacheOptions::max_value_size) (1 MiB unless given) in a segment of at most
//! [`max_bytes`](CacheOptions::max_bytes). Each shard keeps its entries' keys and values as
//! records in a ring, its *value store*; a slot holds its record's position. A write that needs
//! room reclaims records at the ring's tail, giving a record whose entry was used since it was
//! written a second chance (CLOCK over bytes). Reads stay lock-free: what a reader copies from
//! the ring is validated by the same second look at the slot as any value.
//!
//! ```
//! use shm_lru::{Cache, CacheOptions, SegmentId};
//! let id: SegmentId = format!("/lib-budget-{}", std::process::id()).parse()?;
//! let cache = Cache::create(&id, &CacheOptions::budget(8 << 20))?;
//! cache.put("small", b"x")?;
//! cache.put("large", &vec![7u8; 300_000])?;
//! assert_eq!(cache.get("large")?.map(|v| v.len()), Some(300_000));
//! assert!(cache.segment().len() <= 8 << 20);
//! let st = cache.stats()?;
//! assert!(st.bytes_live > 300_000 && st.bytes_used + st.bytes_free < 8 << 20);
//! cache.destroy()?;
//! # Ok::<(), shm_lru::Error>(())
//! ```
//!
//! # Safety model
//!
//! Other processes write the region at any time, so this crate never makes a `&` or `&mut` to
//! its plain bytes: every access to shared bytes is an atomic load or store, through an
//! `&AtomicU32` or `&AtomicU64` (which other writers cannot make undefined) or an opaque 16-byte
//! copy, and every id read back is range-checked before use. Slots and buckets are reached
//! through typed addresses that only the shard view's range-checking constructors make, so the
//! code that reads them needs no `unsafe` of its own. Writers hold the shard's mutex.
//!
//! # Recovery
//!
//! The mutexes are process-shared and robust. When a process dies holding one (even by
//! `SIGKILL`), the next locker is told so, rebuilds the shard's index and lists from its slots
//! (dropping any entry that was mid-write), and marks the mutex consistent before going on. A
//! value whose write was cut short is therefore never returned: lock-free readers see the dead
//! writer's bucket still marked busy and wait for the lock, and so for the rebuild.
//!
//! ```
//! use shm_lru::{Cache, CacheOptions, SegmentId, SetOptions};
//! let id: SegmentId = format!("/lib-example-{}", std::process::id()).parse()?;
//! let cache = Cache::create(&id, &CacheOptions { capacity: 1000, record_size: 64, ..Default::default() })?;
//! cache.set(42u64, b"answer", &SetOptions { ttl_ms: Some(60_000), ..Default::default() })?;
//! assert_eq!(cache.get(42u64)?, Some(b"answer".to_vec()));
//! assert_eq!(cache.incr("hits", 5, None)?, 5);
//! assert!(cache.check()?.is_ok());
//! cache.destroy()?;
//! # Ok::<(), shm_lru::Error>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod cache;
mod counters;
mod error;
mod hash;
mod header;
mod key;
#[doc(hidden)]
pub mod layout;
mod lock;
mod options;
mod report;
mod segment;
mod shard;
mod sys;

pub use cache::{Cache, ScanCursor};
pub use error::{Error, Result};
pub use key::{Key, KeyRef};
pub use options::{CacheOptions, Entry, InitMode, Order, SetMode, SetOptions, SetOutcome, Stats, ValueKind};
pub use report::{CheckReport, RepairReport};
pub use segment::{totals, OpenOptions, Segment, SegmentId, SegmentInfo, Totals};

/// Low-level pieces for this crate's own tests and tools (robust mutexes, the clock, process
/// checks, the hash functions). Not part of the supported API: they may change in any release,
/// as may [`layout`], the offsets of the format (docs/FORMAT.md is the format's reference).
#[doc(hidden)]
pub mod internals {
    pub use crate::hash::{fnv1a64, mix64, spread64};
    pub use crate::sys::{available_memory, euid, now_ms, page_size, pid, process_alive};
    pub use crate::sys::{posix, robust_mutex, sysv};
}

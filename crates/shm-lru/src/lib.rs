//! An LRU cache of fixed-size records that lives in shared memory, shared by every process on a
//! machine that maps it.
//!
//! # Design
//!
//! A cache occupies a *region* (the start of a System V segment or POSIX shared memory object).
//! The region holds a header (magic, format version, geometry), then one header per *shard*
//! (a robust mutex, the recency list's ends, the free list, counters), then each shard's index
//! buckets, then its slots. A key's hash picks the shard; each operation locks that shard only.
//! Links are 32-bit slot ids, never pointers, so every process can map the region anywhere.
//! The index lives in the region: a change made by any process is seen by all at once.
//!
//! # Safety model
//!
//! Other processes write the region at any time, so this crate never holds a `&` or `&mut` into
//! it beyond a locked section: shard fields are read and written through raw pointers while the
//! shard's mutex is held, and the only fields read without a lock are the header's, which are
//! written once before the `READY` state is published with release ordering.
//!
//! # Recovery
//!
//! The mutexes are process-shared and robust. When a process dies holding one (even by
//! `SIGKILL`), the next locker is told so, rebuilds the shard's index and lists from its slots
//! (dropping any entry that was mid-write), and marks the mutex consistent before going on. A
//! value whose write was cut short is therefore never returned.
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
mod check;
mod error;
mod hash;
mod index;
mod key;
pub mod layout;
mod list;
mod lock;
mod recover;
mod segment;
mod shard;
mod slots;
pub mod sys;

pub use cache::{Cache, CacheOptions, Entry, InitMode, Order, SetOptions, SetOutcome, Stats};
pub use check::CheckReport;
pub use error::{Error, Result};
pub use hash::{fnv1a64, mix64};
pub use key::{Key, KeyRef};
pub use segment::{totals, OpenOptions, Segment, SegmentId, SegmentInfo, Totals};
pub use shard::{SetMode, ValueKind};

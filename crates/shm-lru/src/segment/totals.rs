//! What this process has mapped and created, across every segment.

use std::sync::atomic::{AtomicU64, Ordering};

pub(super) static MAPPED: AtomicU64 = AtomicU64::new(0);
pub(super) static CREATED: AtomicU64 = AtomicU64::new(0);

/// Bytes this process has mapped right now, and bytes of segments it has created and not
/// destroyed, across every [`Segment`](super::Segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Bytes currently mapped by this process.
    pub mapped: u64,
    /// Bytes of segments this process created (and has not destroyed).
    pub created: u64,
}

/// Per-process totals of mapped and created bytes.
pub fn totals() -> Totals {
    Totals {
        mapped: MAPPED.load(Ordering::Relaxed),
        created: CREATED.load(Ordering::Relaxed),
    }
}

//! The shard header's fields: the recency list's ends, the free list, counts, counters, the
//! refresh interval and the earliest expiry (`layout::shard_header`).

use super::view::{a32, a64};
use super::Shard;
use crate::layout::{shard_header, SHARD_SIZE};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

impl<'a> Shard<'a> {
    /// The 4-byte field at `off` (a `layout::shard_header` offset). An offset past the header or out of
    /// alignment is clamped into it: free for the constant offsets every caller passes.
    #[inline]
    pub(super) fn hdr32(&self, off: usize) -> &'a AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= SHARD_SIZE as usize);
        let off = off.min(SHARD_SIZE as usize - 4) & !3;
        // SAFETY: the view's header pointer addresses the shard's whole, 64-aligned header in a
        // mapping that outlives 'a (`Shard::new`'s contract), and `off` is clamped to a 4-aligned
        // word inside it.
        unsafe { a32(self.hdr.wrapping_add(off)) }
    }

    /// [`hdr32`](Self::hdr32) for an 8-byte field.
    #[inline]
    pub(super) fn hdr64(&self, off: usize) -> &'a AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= SHARD_SIZE as usize);
        let off = off.min(SHARD_SIZE as usize - 8) & !7;
        // SAFETY: as in `hdr32`, for an 8-aligned word inside the header.
        unsafe { a64(self.hdr.wrapping_add(off)) }
    }

    /// A counter of the shard header (`layout::shard_header`), as last written.
    pub(crate) fn counter(&self, off: usize) -> u64 {
        self.hdr64(off).load(Relaxed)
    }

    /// Adds `n` to a counter. Lock held.
    #[inline]
    pub(super) fn add(&self, off: usize, n: u64) {
        let c = self.hdr64(off);
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Adds one to a counter. Lock held.
    #[inline]
    pub(crate) fn bump(&self, off: usize) {
        self.add(off, 1)
    }

    pub(crate) fn head(&self) -> u32 {
        self.link(self.hdr32(shard_header::HEAD).load(Relaxed))
    }

    pub(super) fn set_head(&self, v: u32) {
        self.hdr32(shard_header::HEAD).store(v, Relaxed)
    }

    pub(crate) fn tail(&self) -> u32 {
        self.link(self.hdr32(shard_header::TAIL).load(Relaxed))
    }

    pub(super) fn set_tail(&self, v: u32) {
        self.hdr32(shard_header::TAIL).store(v, Relaxed)
    }

    pub(super) fn free_head(&self) -> u32 {
        self.link(self.hdr32(shard_header::FREE).load(Relaxed))
    }

    pub(super) fn set_free_head(&self, v: u32) {
        self.hdr32(shard_header::FREE).store(v, Relaxed)
    }

    /// Entries in the shard, as last written (exact under the lock).
    pub(crate) fn len(&self) -> u32 {
        self.hdr32(shard_header::LEN).load(Relaxed)
    }

    pub(super) fn set_len(&self, v: u32) {
        self.hdr32(shard_header::LEN).store(v, Relaxed)
    }

    /// Slots `1..=handed_out` have been handed out at least once; the rest are untouched.
    pub(crate) fn handed_out(&self) -> u32 {
        self.hdr32(shard_header::HANDED_OUT)
            .load(Relaxed)
            .min(self.slot_count())
    }

    pub(super) fn set_handed_out(&self, v: u32) {
        self.hdr32(shard_header::HANDED_OUT).store(v, Relaxed)
    }

    pub(crate) fn recoveries(&self) -> u32 {
        self.hdr32(shard_header::RECOVERIES).load(Relaxed)
    }

    pub(crate) fn note_recovery(&self) {
        let r = self.hdr32(shard_header::RECOVERIES);
        r.store(r.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// The refresh interval R, ms (0: every use moves the entry to the head).
    #[inline]
    pub(crate) fn refresh_ms(&self) -> u64 {
        self.hdr32(shard_header::REFRESH_MS).load(Relaxed) as u64
    }

    pub(super) fn set_refresh_ms(&self, v: u32) {
        self.hdr32(shard_header::REFRESH_MS).store(v, Relaxed)
    }

    pub(super) fn earliest_expiry(&self) -> u64 {
        self.hdr64(shard_header::EARLIEST_EXPIRY).load(Relaxed)
    }

    pub(super) fn set_earliest_expiry(&self, v: u64) {
        self.hdr64(shard_header::EARLIEST_EXPIRY).store(v, Relaxed)
    }
}

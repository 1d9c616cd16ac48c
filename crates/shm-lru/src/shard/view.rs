//! Raw access to one shard's bytes: its header fields, its buckets and its slots, private to
//! the `shard` module.
//!
//! Every access is a word-sized atomic load or store, because lock-free readers in other
//! processes read buckets and slots while a writer changes them: the only references into shared
//! bytes are `&AtomicU32`/`&AtomicU64`, made by the unsafe [`a32`]/[`a64`] from addresses that
//! the view computed itself. Slots and buckets are reached through [`SlotPtr`](super::slot::SlotPtr)
//! and [`BucketPtr`](super::bucket::BucketPtr), which only the view's range-checking
//! constructors make, so the accessors that take them are safe to call with any value a caller
//! can hold. Atomics make every access memory-safe whatever the
//! interleaving; which values belong together is the business of the bucket sequence numbers
//! (see `cache/read.rs`) and of the shard lock. Every slot id and bucket number read back from shared
//! memory is range-checked before use, so a corrupted link can cause a wrong answer (which
//! `check` reports) but never an access outside the region.

use crate::layout::{shard_header, MAX_REACH, UNIT_BUCKETS, UNIT_SLOTS};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// One shard's bytes in a mapping that lives at least as long as `'a`.
///
/// Any thread may read through a `Shard`; changing anything but a slot's use word requires the
/// shard's lock (see `lock.rs`), which the algorithm in `shard/mod.rs` assumes its caller holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shard<'a> {
    pub(super) hdr: *mut u8,
    pub(super) buckets: *mut u8,
    pub(super) slots: *mut u8,
    /// The shard's undo record: a slot-sized area outside the slots (see `save_undo`).
    pub(super) journal: *mut u8,
    pub(super) slot_count: u32,
    pub(super) nbuckets: u32,
    pub(super) stride: usize,
    pub(super) record_size: u32,
    /// The bits of an index entry that hold the slot id, and those that hold the tag.
    pub(super) id_mask: u32,
    pub(super) tag_mask: u32,
    pub(super) max_reach: u32,
    pub(super) cache_len: *mut u8,
    pub(super) limit: u64,
    /// With a byte budget, the shard's value store (`store_bytes` bytes, 64-aligned); else
    /// unused.
    pub(super) store: *mut u8,
    /// Bytes of the value store; 0 in a cache of fixed records.
    pub(super) store_bytes: u64,
    /// With a byte budget, the most key plus value bytes of one entry.
    pub(super) max_value: u64,
    /// Bytes from one bucket to the next: 64, or with a byte budget 128 (each bucket followed
    /// by its hints, `layout::hint`).
    pub(super) bucket_stride: usize,
    /// With a byte budget, the end of the value store, below which the index's units lie
    /// (`layout::UNIT_SIZE`). Then `nbuckets` is the most buckets the index may grow to and
    /// `slot_count` the most slots.
    pub(super) top: *mut u8,
    /// With a byte budget: whether the index grows in units at the store's top (else it is
    /// arrays of `nbuckets` buckets and `slot_count` slots, fixed, as without a budget).
    pub(super) grows: bool,
    _map: PhantomData<&'a ()>,
}

/// The entry bits that hold a slot id of a shard of `cap` slots: as many as `cap` needs.
fn id_mask(cap: u32) -> u32 {
    let bits = 32 - cap.leading_zeros();
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// The word at `p` as an atomic: how every word of the region is reached.
///
/// # Safety
/// `p` must be 4-aligned and address a word inside a mapping that outlives `'a`, which every
/// process accesses only atomically.
#[inline(always)]
pub(super) unsafe fn a32<'a>(p: *mut u8) -> &'a AtomicU32 {
    // SAFETY: the caller's contract is exactly `from_ptr`'s.
    unsafe { AtomicU32::from_ptr(p.cast()) }
}

/// [`a32`] for an 8-byte word.
///
/// # Safety
/// As for [`a32`], with `p` 8-aligned (slots, buckets and header fields of u64s are: the
/// region, strides and field offsets are multiples of 8).
#[inline(always)]
pub(super) unsafe fn a64<'a>(p: *mut u8) -> &'a AtomicU64 {
    // SAFETY: the caller's contract is exactly `from_ptr`'s.
    unsafe { AtomicU64::from_ptr(p.cast()) }
}

impl<'a> Shard<'a> {
    /// # Safety
    /// The pointers must address this shard's header (`SHARD_SIZE` bytes, 64-aligned), its
    /// `nbuckets` buckets (64-aligned), its `slot_count` slots of `stride` bytes (8-aligned) and
    /// its undo record (`journal`, `stride` bytes, 8-aligned) in a mapping that outlives `'a`,
    /// as laid out by a validated [`Geometry`](crate::layout::Geometry), and every process must
    /// access those bytes only atomically (as this type does). `cache_len` must address the region's 8-aligned count of
    /// entries, and `limit` is the cache's capacity. With `store_bytes > 0`, `store` must
    /// address the shard's value store of that many bytes (64-aligned, a multiple of 64), under
    /// the same rule. Buckets are `bucket_stride` bytes apart (`BUCKET_SIZE`, or
    /// `BUDGET_BUCKET_STRIDE` with a value store: each followed by its hints). With `grows` (and
    /// a value store), they and the slots are instead in the index units at the store's top
    /// (`layout::UNIT_SIZE`), up to `nbuckets` buckets and `slot_count` slots, and `buckets`
    /// and `slots` are unused.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn new(
        hdr: *mut u8,
        buckets: *mut u8,
        slots: *mut u8,
        journal: *mut u8,
        slot_count: u32,
        nbuckets: u32,
        stride: usize,
        record_size: u32,
        cache_len: *mut u8,
        limit: u64,
        store: *mut u8,
        store_bytes: u64,
        max_value: u64,
        bucket_stride: usize,
        grows: bool,
    ) -> Shard<'a> {
        let grows = grows && store_bytes > 0;
        let top = if grows {
            store.wrapping_add(store_bytes as usize)
        } else {
            std::ptr::null_mut()
        };
        Shard {
            top,
            grows,
            hdr,
            buckets,
            slots,
            journal,
            slot_count,
            nbuckets,
            stride,
            record_size,
            id_mask: id_mask(slot_count),
            tag_mask: !id_mask(slot_count),
            max_reach: (nbuckets - 1).min(MAX_REACH),
            cache_len,
            limit,
            store,
            store_bytes,
            max_value,
            bucket_stride,
            _map: PhantomData,
        }
    }

    /// Whether the cache has a byte budget: slots name records in the shard's value store.
    #[inline(always)]
    pub(crate) fn budget(&self) -> bool {
        self.store_bytes != 0
    }

    /// Whether the cache has a byte budget and an index that grows (`shard/grow.rs`).
    #[inline(always)]
    pub(crate) fn grows(&self) -> bool {
        self.grows
    }

    /// Slots in the shard, which are numbered 1 to this: with a byte budget, the slots of the
    /// units the index has now.
    pub(crate) fn slot_count(&self) -> u32 {
        if self.grows {
            self.units() * UNIT_SLOTS
        } else {
            self.slot_count
        }
    }

    /// With a byte budget, the units of the shard's index now (`layout::shard_header::UNITS`),
    /// clamped into `1..=` the most it may have; else 0.
    #[inline(always)]
    pub(crate) fn units(&self) -> u32 {
        if !self.grows {
            return 0;
        }
        self.hdr32(shard_header::UNITS)
            .load(std::sync::atomic::Ordering::Acquire)
            .clamp(1, self.max_units())
    }

    /// The units word as the shard header holds it, unclamped (for `check`).
    pub(crate) fn units_raw(&self) -> u32 {
        self.hdr32(shard_header::UNITS)
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most units the shard's index may have (a cache with a byte budget).
    pub(crate) fn max_units(&self) -> u32 {
        self.nbuckets / UNIT_BUCKETS
    }

    /// Bytes of the value store's ring of records: the store less its index's units. Lock
    /// held (only a holder changes it).
    #[inline]
    pub(crate) fn ring(&self) -> u64 {
        self.store_bytes - crate::layout::index_bytes(self.units())
    }

    /// The offset in the store where the ring starts: past a growing index's buckets (0
    /// otherwise). Only a lock holder moves it (on), so a lock-free reader's answer may be
    /// stale, as everything it reads is until validated.
    #[inline]
    pub(crate) fn ring_start(&self) -> u64 {
        self.ring_bounds().0
    }

    /// The offset in the store where the ring ends: before a growing index's slots (the
    /// store's end otherwise). Only a lock holder moves it (back).
    #[inline]
    pub(crate) fn ring_end(&self) -> u64 {
        self.ring_bounds().1
    }

    /// [`ring_start`](Self::ring_start) and [`ring_end`](Self::ring_end), from one load of the
    /// unit count.
    #[inline]
    pub(crate) fn ring_bounds(&self) -> (u64, u64) {
        if !self.grows {
            return (0, self.store_bytes);
        }
        let units = self.units();
        let start = crate::layout::index_bucket_bytes(units);
        (
            start,
            self.store_bytes - (crate::layout::index_bytes(units) - start),
        )
    }

    /// Bytes from one slot to the next.
    #[inline(always)]
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn record_size(&self) -> u32 {
        self.record_size
    }

    /// Buckets of the index: in an index that grows, those it uses now
    /// (`layout::shard_header::BUCKETS`), clamped into `1..=` those its units have.
    pub(crate) fn nbuckets(&self) -> u32 {
        if self.grows {
            self.buckets_now()
        } else {
            self.nbuckets
        }
    }

    /// In an index that grows, the count of buckets in use as a lock-free reader takes it:
    /// loaded with acquire order (the buckets it names are initialised) and clamped into `1..=`
    /// the buckets its units have and the most the index may have (so a damaged count names
    /// only index memory, inside the store).
    #[inline(always)]
    pub(crate) fn buckets_now(&self) -> u32 {
        let n = self
            .hdr32(shard_header::BUCKETS)
            .load(std::sync::atomic::Ordering::Acquire);
        let units = self
            .hdr32(shard_header::UNITS)
            .load(std::sync::atomic::Ordering::Relaxed);
        super::buckets_within(n, units, self.nbuckets).max(1)
    }

    /// The buckets word as the shard header holds it, unclamped (for `check`).
    pub(crate) fn buckets_raw(&self) -> u32 {
        self.hdr32(shard_header::BUCKETS)
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn max_reach(&self) -> u32 {
        self.max_reach
    }

    /// Address of the shard's mutex.
    pub(crate) fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.hdr.wrapping_add(shard_header::MUTEX).cast()
    }

    /// Maps an id read from shared memory to 0 ("none") unless it is a slot of this shard.
    #[inline]
    pub(super) fn link(&self, v: u32) -> u32 {
        if v > self.slot_count {
            0
        } else {
            v
        }
    }

    /// The region's count of entries in all shards.
    #[inline]
    pub(super) fn cache_len(&self) -> &'a AtomicU64 {
        // SAFETY: `Shard::new`'s contract: `cache_len` addresses the region's 8-aligned count in a
        // mapping that outlives 'a.
        unsafe { a64(self.cache_len) }
    }

    /// The region's flag that the shared count of entries is to be set again
    /// (`layout::region_header::RECOUNT`).
    #[inline]
    pub(crate) fn recount_flag(&self) -> &'a AtomicU32 {
        let at = self
            .cache_len
            .wrapping_add(crate::layout::region_header::RECOUNT - crate::layout::region_header::LIVE);
        // SAFETY: `cache_len` addresses the region header's count (`Shard::new`'s contract), and
        // the flag lies 40 bytes after it in the same header (4-aligned), in a mapping that
        // outlives 'a, accessed only atomically.
        unsafe { a32(at) }
    }

    /// The most entries the cache may hold.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }
}

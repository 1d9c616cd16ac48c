//! The words of a shard's index buckets: the sequence number, the spill word and the 14
//! entries, each a slot id with tag bits above it (`layout::bucket`).

use super::view::a32;
use super::Shard;
use crate::layout::{bucket, BUCKET_ENTRIES, BUCKET_SIZE};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The home bucket, among `nbuckets`, of spread hash `h`: its high 32 bits scaled to the bucket
/// count, so always less than `nbuckets`.
#[inline(always)]
pub(crate) fn home_of(h: u64, nbuckets: u32) -> u32 {
    (((h >> 32) * nbuckets as u64) >> 32) as u32
}

impl<'a> Shard<'a> {
    /// The home bucket of spread hash `h`.
    #[inline]
    pub(crate) fn home(&self, h: u64) -> u32 {
        home_of(h, self.nbuckets)
    }

    /// The address of the home bucket of spread hash `h`: [`bucket`](Self::bucket)
    /// of [`home`](Self::home), without the clamp, which `home`'s range makes needless.
    #[inline(always)]
    pub(crate) fn home_bucket(&self, h: u64) -> *mut u8 {
        // (h >> 32) < 2^32, so (h >> 32) * nbuckets >> 32 < nbuckets: always a bucket of the
        // shard.
        let b = self.home(h);
        debug_assert!(b < self.nbuckets);
        self.buckets.wrapping_add(b as usize * BUCKET_SIZE as usize)
    }

    /// The bucket `d` places after `b`, wrapping around the shard.
    #[inline]
    pub(crate) fn after(&self, b: u32, d: u32) -> u32 {
        // d <= max_reach < nbuckets, so one subtraction wraps it.
        let j = b.wrapping_add(d);
        if j >= self.nbuckets {
            j.wrapping_sub(self.nbuckets)
        } else {
            j
        }
    }

    /// The tag bits an entry for spread hash `h` carries above its slot id.
    #[inline]
    pub(crate) fn tag_of(&self, h: u64) -> u32 {
        ((h >> 10) as u32) & self.tag_mask
    }

    /// The entry that indexes slot `id` under spread hash `h`.
    #[inline]
    pub(super) fn entry_for(&self, id: u32, h: u64) -> u32 {
        self.tag_of(h) | id
    }

    /// The slot id of an entry (0 for an empty one, or one that names no slot of this shard).
    #[inline]
    pub(super) fn entry_id(&self, e: u32) -> u32 {
        self.link(e & self.id_mask)
    }

    /// The address of bucket `b` (clamped into the shard), for reading several of its words
    /// or for a prefetch.
    #[inline(always)]
    pub(crate) fn bucket(&self, b: u32) -> *mut u8 {
        let b = if b < self.nbuckets { b } else { 0 };
        self.buckets.wrapping_add(b as usize * BUCKET_SIZE as usize)
    }

    /// The address just past the shard's last bucket.
    #[inline(always)]
    pub(crate) fn bucket_end(&self) -> *mut u8 {
        self.buckets
            .wrapping_add(self.nbuckets as usize * BUCKET_SIZE as usize)
    }

    /// Word `off` (a `layout::bucket` offset, or an entry's) of the bucket at `bp`, which
    /// [`bucket`](Self::bucket) gave.
    #[inline(always)]
    pub(crate) fn bucket_word(&self, bp: *mut u8, off: usize) -> &'a AtomicU32 {
        a32(bp.wrapping_add(off))
    }

    /// The slot id that entry `pos` of the bucket at `bp` names (0 for none, or for one outside
    /// the shard). `pos` comes from a match mask, one bit per entry, so it is below
    /// `BUCKET_ENTRIES`; the `min` says so cheaply.
    #[inline(always)]
    pub(crate) fn entry_id_at(&self, bp: *mut u8, pos: usize) -> u32 {
        let pos = pos.min(BUCKET_ENTRIES - 1);
        self.entry_id(self.bucket_word(bp, bucket::ENTRIES + 4 * pos).load(Relaxed))
    }

    /// Like [`matches`](Self::matches), for the bucket at `bp`.
    #[inline(always)]
    pub(crate) fn matches_at(&self, bp: *mut u8, tag: u32) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            crate::sys::simd::bucket_matches(bp, self.tag_mask, tag)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let mut m = 0u32;
            for pos in 0..BUCKET_ENTRIES {
                let e = a32(bp.wrapping_add(bucket::ENTRIES + 4 * pos)).load(Relaxed);
                m |= ((e & self.tag_mask == tag) as u32) << pos;
            }
            m
        }
    }

    #[inline]
    pub(super) fn seq(&self, b: u32) -> &'a AtomicU32 {
        a32(self.bucket(b).wrapping_add(bucket::SEQ))
    }

    #[inline]
    pub(super) fn spill_word(&self, b: u32) -> &'a AtomicU32 {
        a32(self.bucket(b).wrapping_add(bucket::SPILL))
    }

    /// Keys homed in `b` placed further on, and how far they may be.
    #[inline]
    pub(super) fn spill(&self, b: u32) -> (u32, u32) {
        let w = self.spill_word(b).load(Relaxed);
        (w & 0xffff, (w >> 16).min(self.max_reach))
    }

    pub(super) fn set_spill(&self, b: u32, count: u32, reach: u32) {
        self.spill_word(b)
            .store((count & 0xffff) | (reach.min(0xffff) << 16), Relaxed)
    }

    #[inline]
    pub(super) fn entry(&self, b: u32, i: usize) -> &'a AtomicU32 {
        debug_assert!(i < BUCKET_ENTRIES);
        let i = i % BUCKET_ENTRIES;
        a32(self.bucket(b).wrapping_add(bucket::ENTRIES + 4 * i))
    }
}

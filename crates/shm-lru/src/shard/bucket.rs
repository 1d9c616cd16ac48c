//! The words of a shard's index buckets: the sequence number, the spill word and the 14
//! entries, each a slot id with tag bits above it (`layout::bucket`).

use super::view::{a32, a64};
use super::{Shard, SlotMeta, SlotPtr};
use crate::layout::{bucket, hint, BUCKET_ENTRIES, BUCKET_SIZE, BUDGET_BUCKET_STRIDE};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// The address of one whole bucket in a mapping that lives for `'a`. Only the shard view's
/// range-checking constructors make one ([`Shard::bucket`], [`Shard::home_bucket`],
/// [`Shard::next_bucket`]), and the unsafe [`BucketPtr::new_unchecked`] for an address computed
/// elsewhere, so the accessors that take one need no `unsafe` from their callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct BucketPtr<'a> {
    at: *mut u8,
    _map: PhantomData<&'a ()>,
}

impl<'a> BucketPtr<'a> {
    /// # Safety
    /// `at` must address a whole, 64-aligned bucket of a validated geometry in a mapping that
    /// outlives `'a`, whose words every process accesses only atomically.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked(at: *mut u8) -> BucketPtr<'a> {
        BucketPtr {
            at,
            _map: PhantomData,
        }
    }

    /// The word at `off` (a `layout::bucket` offset, or an entry's). An offset past the bucket
    /// or out of alignment is clamped into it: free for constant offsets, and for an entry's,
    /// whose position is already bounded.
    #[inline(always)]
    fn word(self, off: usize) -> &'a AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= BUCKET_SIZE as usize);
        let off = off.min(BUCKET_SIZE as usize - 4) & !3;
        // SAFETY: a BucketPtr addresses a whole 64-aligned bucket in a mapping that outlives
        // 'a (its constructors' contract), and `off` is a 4-aligned word inside it.
        unsafe { a32(self.at.wrapping_add(off)) }
    }

    /// Bit `i` set for each entry `i` whose bits under `mask` equal `tag`.
    #[inline(always)]
    fn matches(self, mask: u32, tag: u32) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a BucketPtr addresses a whole 64-byte bucket in live memory.
            unsafe { crate::sys::simd::bucket_matches(self.at, mask, tag) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let mut m = 0u32;
            for pos in 0..BUCKET_ENTRIES {
                let e = self.word(bucket::ENTRIES + 4 * pos).load(Relaxed);
                m |= ((e & mask == tag) as u32) << pos;
            }
            m
        }
    }
}

/// The home bucket, among `nbuckets`, of spread hash `h`: its high 32 bits scaled to the bucket
/// count, so always less than `nbuckets`.
#[inline(always)]
pub(crate) fn home_of(h: u64, nbuckets: u32) -> u32 {
    (((h >> 32) * nbuckets as u64) >> 32) as u32
}

/// The count of buckets a growing index uses, as a shard header's `buckets` word `raw` gives
/// it, bounded by those its `units` have and by `most`, the most it may ever have: a larger
/// word is damage, which would have readers take bytes of the ring, or of another shard, for
/// buckets. (It may be 0, damage too; see `Shard::buckets_now`.)
#[inline(always)]
pub(crate) fn buckets_within(raw: u32, units: u32, most: u32) -> u32 {
    raw.min(units.wrapping_mul(crate::layout::UNIT_BUCKETS)).min(most)
}

impl<'a> Shard<'a> {
    /// The home bucket of spread hash `h`.
    #[inline]
    pub(crate) fn home(&self, h: u64) -> u32 {
        if self.grows {
            home_of(h, self.nbuckets())
        } else {
            home_of(h, self.nbuckets)
        }
    }

    /// The address of the home bucket of spread hash `h`: [`bucket`](Self::bucket)
    /// of [`home`](Self::home), without the clamp, which `home`'s range makes needless.
    #[inline(always)]
    pub(crate) fn home_bucket(&self, h: u64) -> BucketPtr<'a> {
        if self.grows {
            return self.bucket(self.home(h));
        }
        let b = self.home(h);
        debug_assert!(b < self.nbuckets);
        // SAFETY: (h >> 32) < 2^32, so (h >> 32) * nbuckets >> 32 < nbuckets: a bucket of this
        // shard, whose buckets lie `bucket_stride` apart in a mapping that outlives 'a
        // (`Shard::new`'s contract).
        unsafe { BucketPtr::new_unchecked(self.buckets.wrapping_add(b as usize * self.bucket_stride)) }
    }

    /// The bucket `d` places after `b`, wrapping around the buckets the shard uses.
    #[inline]
    pub(crate) fn after(&self, b: u32, d: u32) -> u32 {
        let n = if self.grows {
            self.nbuckets()
        } else {
            self.nbuckets
        };
        // b < n and d <= reach < n, so one subtraction wraps it (and keeps any other b below
        // 2n).
        let j = b.wrapping_add(d);
        if j >= n {
            j.wrapping_sub(n).min(n - 1)
        } else {
            j
        }
    }

    /// How far after its home a key may be placed: [`max_reach`](Self::max_reach), and in an
    /// index that grows, less than the buckets it uses now.
    #[inline]
    pub(crate) fn reach(&self) -> u32 {
        if self.grows {
            self.max_reach.min(self.nbuckets() - 1)
        } else {
            self.max_reach
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
    pub(crate) fn bucket(&self, b: u32) -> BucketPtr<'a> {
        let b = if b < self.nbuckets { b } else { 0 };
        if self.grows {
            return self.unit_bucket(b);
        }
        // SAFETY: b < nbuckets: a bucket of this shard, whose buckets lie `bucket_stride` apart
        // in a mapping that outlives 'a (`Shard::new`'s contract).
        unsafe { BucketPtr::new_unchecked(self.buckets.wrapping_add(b as usize * self.bucket_stride)) }
    }

    /// Bucket `b` (below the most buckets) of a cache with a byte budget whose index grows: in
    /// the array at the bottom of the store (`layout::bucket_in_store`).
    #[inline(always)]
    pub(crate) fn unit_bucket(&self, b: u32) -> BucketPtr<'a> {
        let at = self
            .store
            .wrapping_add(crate::layout::bucket_in_store(b) as usize);
        // SAFETY: b is below the most buckets the index may have, which lie from the start of
        // the store inside it (`Geometry::budget_index`: the index takes less than the store),
        // in a mapping that outlives 'a (`Shard::new`'s contract); each bucket is a 64-aligned
        // line followed by its line of hints.
        unsafe { BucketPtr::new_unchecked(at) }
    }

    /// The number of the bucket at `bp`, a bucket of this shard's growing index.
    #[inline(always)]
    pub(crate) fn unit_of(&self, bp: BucketPtr<'_>) -> u32 {
        ((bp.at as usize).wrapping_sub(self.store as usize) / BUDGET_BUCKET_STRIDE as usize) as u32
    }

    /// The bucket after `bp`, wrapping around the shard (a bucket of another shard goes to
    /// this one's first). In an index that grows, the bucket after the last is the first.
    #[inline(always)]
    pub(crate) fn next_bucket(&self, bp: BucketPtr<'_>) -> BucketPtr<'a> {
        if self.grows {
            let next = self.unit_of(bp).wrapping_add(1);
            return self.bucket(if next < self.buckets_now() { next } else { 0 });
        }
        let next = (bp.at as usize).wrapping_add(self.bucket_stride);
        let off = next.wrapping_sub(self.buckets as usize);
        if off < self.nbuckets as usize * self.bucket_stride {
            // SAFETY: `off` is below the span of this shard's buckets and a multiple of the
            // stride (bp is a bucket of this cache, whose shards' buckets follow each other at
            // that stride): one of them.
            unsafe { BucketPtr::new_unchecked(self.buckets.wrapping_add(off)) }
        } else {
            self.bucket(0)
        }
    }

    /// Word `off` (a `layout::bucket` offset, or an entry's) of the bucket at `bp`.
    #[inline(always)]
    pub(crate) fn bucket_word(&self, bp: BucketPtr<'a>, off: usize) -> &'a AtomicU32 {
        bp.word(off)
    }

    /// The slot id that entry `pos` of the bucket at `bp` names (0 for none, or for one outside
    /// the shard). `pos` comes from a match mask, one bit per entry, so it is below
    /// `BUCKET_ENTRIES`; the `min` says so cheaply.
    #[inline(always)]
    pub(crate) fn entry_id_at(&self, bp: BucketPtr<'a>, pos: usize) -> u32 {
        let pos = pos.min(BUCKET_ENTRIES - 1);
        self.entry_id(self.bucket_word(bp, bucket::ENTRIES + 4 * pos).load(Relaxed))
    }

    /// The entries of the bucket at `bp` that may index a key whose tag is `tag` and whose
    /// stored word is `word`: those with that tag naming a slot of this shard that stores that
    /// word, in entry order, each as (position, slot id, slot, the slot's fields as read).
    #[inline(always)]
    pub(crate) fn entries_for(
        &self,
        bp: BucketPtr<'a>,
        tag: u32,
        word: u64,
    ) -> impl Iterator<Item = (usize, u32, SlotPtr<'a>, SlotMeta)> + '_ {
        self.entries_for_in::<false>(bp, tag, word)
    }

    /// [`entries_for`](Self::entries_for) in a shard whose slots are arrays (`ARRAYS`: the
    /// caller knows that the index does not grow, as a reader of fixed records does), or in
    /// any shard.
    #[inline(always)]
    pub(crate) fn entries_for_in<const ARRAYS: bool>(
        &self,
        bp: BucketPtr<'a>,
        tag: u32,
        word: u64,
    ) -> impl Iterator<Item = (usize, u32, SlotPtr<'a>, SlotMeta)> + '_ {
        debug_assert!(!ARRAYS || !self.grows);
        let mut m = self.matches_at(bp, tag);
        std::iter::from_fn(move || {
            while m != 0 {
                let pos = m.trailing_zeros() as usize;
                m &= m - 1;
                let id = self.entry_id_at(bp, pos);
                if id == 0 {
                    continue;
                }
                let slot = if ARRAYS {
                    self.array_slot(id)
                } else {
                    self.slot(id)
                };
                let meta = self.meta_at(slot);
                if meta.key == word {
                    return Some((pos.min(BUCKET_ENTRIES - 1), id, slot, meta));
                }
            }
            None
        })
    }

    /// The record hint of entry `pos` of the bucket at `bp` (`layout::hint`): in the 64 bytes
    /// that follow the bucket. Only for a cache with a byte budget.
    #[inline(always)]
    pub(crate) fn hint_word(&self, bp: BucketPtr<'a>, pos: usize) -> &'a AtomicU32 {
        let off = 4 * pos.min(BUCKET_ENTRIES - 1);
        debug_assert!(self.bucket_stride == BUDGET_BUCKET_STRIDE as usize);
        // SAFETY: `bp` addresses a bucket of this shard (its constructors' contract), and in a
        // cache with a byte budget (the only kind that calls this) each bucket is followed by
        // its 64 bytes of hints, in the same mapping, accessed only atomically (`Shard::new`'s
        // contract). `off` is a 4-aligned word among them, before the use word.
        unsafe { a32(bp.at.wrapping_add(BUCKET_SIZE as usize + off)) }
    }

    /// The use word among the hints of the bucket at `bp` (`layout::hint`), as
    /// [`hint_word`](Self::hint_word).
    #[inline(always)]
    pub(crate) fn use_hint_word(&self, bp: BucketPtr<'a>) -> &'a AtomicU64 {
        debug_assert!(self.bucket_stride == BUDGET_BUCKET_STRIDE as usize);
        // SAFETY: as in `hint_word`; `hint::USE` is the 8-aligned last word of the hints (the
        // bucket is 64-aligned).
        unsafe { a64(bp.at.wrapping_add(BUCKET_SIZE as usize + hint::USE)) }
    }

    /// Asks for the hints of the bucket at `bp` (a cache with a byte budget), so that they
    /// arrive with the bucket.
    #[inline(always)]
    pub(crate) fn prefetch_hints(&self, bp: BucketPtr<'a>) {
        crate::sys::prefetch_read(bp.at.wrapping_add(BUCKET_SIZE as usize));
    }

    /// Bit `i` set for each entry `i` of the bucket at `bp` whose tag is `tag`.
    #[inline(always)]
    pub(crate) fn matches_at(&self, bp: BucketPtr<'a>, tag: u32) -> u32 {
        bp.matches(self.tag_mask, tag)
    }

    #[inline]
    pub(super) fn seq(&self, b: u32) -> &'a AtomicU32 {
        self.bucket(b).word(bucket::SEQ)
    }

    #[inline]
    pub(super) fn spill_word(&self, b: u32) -> &'a AtomicU32 {
        self.bucket(b).word(bucket::SPILL)
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
        self.bucket(b).word(bucket::ENTRIES + 4 * i)
    }
}

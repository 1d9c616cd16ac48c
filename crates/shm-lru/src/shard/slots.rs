//! Raw access to one shard's bytes: its header fields, its buckets and its slots, private to
//! the `shard` module.
//!
//! Every access is a word-sized atomic load or store through a raw pointer, because lock-free
//! readers in other processes read buckets and slots while a writer changes them: no `&`/`&mut`
//! into shared bytes is ever made. Atomics make every access memory-safe whatever the
//! interleaving; which values belong together is the business of the bucket sequence numbers
//! (see `cache/read.rs`) and of the shard lock. Every slot id and bucket number read back from shared
//! memory is range-checked before use, so a corrupted link can cause a wrong answer (which
//! `check` reports) but never an access outside the region.

use crate::layout::{bucket, shd, slot, BUCKET_ENTRIES, BUCKET_SIZE, FLAG_BITS, GEN_SHIFT, MAX_REACH};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, Ordering::Acquire, Ordering::Relaxed};

/// One shard's bytes in a mapping that lives at least as long as `'a`.
///
/// Any thread may read through a `Shard`; changing anything but a slot's use word requires the
/// shard's lock (see `lock.rs`), which the algorithm in `shard/mod.rs` assumes its caller holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shard<'a> {
    hdr: *mut u8,
    buckets: *mut u8,
    slots: *mut u8,
    cap: u32,
    nbuckets: u32,
    stride: usize,
    record_size: u32,
    /// The bits of an index entry that hold the slot id, and those that hold the tag.
    id_mask: u32,
    tag_mask: u32,
    max_reach: u32,
    live: *mut u8,
    limit: u64,
    _map: PhantomData<&'a ()>,
}

/// A slot's fields other than links and data, copied out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotMeta {
    pub key: u64,
    pub vlen: u32,
    /// The flags, without the rewrite generation.
    pub flags: u8,
    /// The rewrite generation (see [`GEN_SHIFT`]).
    pub gen: u8,
    pub expires: u64,
    pub klen: u16,
}

impl SlotMeta {
    /// The slot's `VLEN_FLAGS` word as these fields were read from it.
    #[inline(always)]
    pub(crate) fn vf_word(&self) -> u32 {
        vf_word(self.vlen, self.flags, self.gen)
    }
}

/// A slot's `VLEN_FLAGS` word holding `vlen`, `flags` and rewrite generation `gen`.
#[inline(always)]
pub(super) fn vf_word(vlen: u32, flags: u8, gen: u8) -> u32 {
    (vlen & 0x00ff_ffff) | (((flags & FLAG_BITS) as u32) << 24) | (((gen & 0x0f) as u32) << GEN_SHIFT)
}

/// A slot's use word, unpacked: when it was last used, whether it was used since it was linked
/// at its place in the recency list, and when it was so linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Use {
    pub used: u64,
    pub referenced: bool,
    pub linked: u64,
}

const USED_MASK: u64 = (1 << 44) - 1;
const REF_BIT: u64 = 1 << 44;
const DELTA_SHIFT: u32 = 45;
const DELTA_MAX: i64 = (1 << 18) - 1;

impl Use {
    /// An entry linked at its place by a use at `now`.
    pub(crate) fn linked_now(now: u64) -> Use {
        Use {
            used: now,
            referenced: false,
            linked: now,
        }
    }

    /// The use word after a use at `now` that does not move the entry.
    pub(crate) fn used_at(self, now: u64) -> Use {
        Use {
            used: now.max(self.used),
            referenced: true,
            linked: self.linked,
        }
    }

    pub(crate) fn pack(self) -> u64 {
        let delta = (self.used as i64 - self.linked as i64).clamp(-DELTA_MAX - 1, DELTA_MAX);
        (self.used & USED_MASK)
            | if self.referenced { REF_BIT } else { 0 }
            | (((delta as u64) & ((1 << 19) - 1)) << DELTA_SHIFT)
    }

    /// Whether use word `w` records a use at or after `now` since the entry was linked: a
    /// use at `now` has nothing to add. (Tested on the packed word, before unpacking.)
    #[inline(always)]
    pub(crate) fn recorded(w: u64, now: u64) -> bool {
        w & REF_BIT != 0 && now <= w & USED_MASK
    }

    pub(crate) fn unpack(w: u64) -> Use {
        let used = w & USED_MASK;
        // Sign-extend the 19-bit delta.
        let raw = (w >> DELTA_SHIFT) & ((1 << 19) - 1);
        let delta = ((raw as i64) << 45) >> 45;
        Use {
            used,
            referenced: w & REF_BIT != 0,
            linked: (used as i64 - delta).max(0) as u64,
        }
    }
}

/// The home bucket, among `nbuckets`, of spread hash `h`: its high 32 bits scaled to the bucket
/// count, so always less than `nbuckets`.
#[inline(always)]
pub(crate) fn home_of(h: u64, nbuckets: u32) -> u32 {
    (((h >> 32) * nbuckets as u64) >> 32) as u32
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

#[inline(always)]
fn a32<'a>(p: *mut u8) -> &'a AtomicU32 {
    // SAFETY: every caller passes a 4-aligned address inside a live mapping (the shard's
    // header, a bucket or a slot of a validated geometry) that outlives the Shard's 'a, and the
    // word is only ever accessed atomically, by every process.
    unsafe { AtomicU32::from_ptr(p.cast()) }
}

#[inline(always)]
fn a64<'a>(p: *mut u8) -> &'a AtomicU64 {
    // SAFETY: as in `a32`, for an 8-aligned word (slots, buckets and header fields of u64s are
    // 8-aligned: the region, strides and field offsets are multiples of 8).
    unsafe { AtomicU64::from_ptr(p.cast()) }
}

impl<'a> Shard<'a> {
    /// # Safety
    /// The pointers must address this shard's header (`SHARD_SIZE` bytes, 64-aligned), its
    /// `nbuckets` buckets (64-aligned) and its `cap` slots of `stride` bytes (8-aligned) in a
    /// mapping that outlives `'a`, as laid out by a validated [`Geometry`](crate::layout::Geometry),
    /// and every process must access those bytes only atomically (as this type does). `live` must
    /// address the region's 8-aligned count of entries, and `limit` is the cache's capacity.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn new(
        hdr: *mut u8,
        buckets: *mut u8,
        slots: *mut u8,
        cap: u32,
        nbuckets: u32,
        stride: usize,
        record_size: u32,
        live: *mut u8,
        limit: u64,
    ) -> Shard<'a> {
        Shard {
            hdr,
            buckets,
            slots,
            cap,
            nbuckets,
            stride,
            record_size,
            id_mask: id_mask(cap),
            tag_mask: !id_mask(cap),
            max_reach: (nbuckets - 1).min(MAX_REACH),
            live,
            limit,
            _map: PhantomData,
        }
    }

    pub(crate) fn cap(&self) -> u32 {
        self.cap
    }

    /// Bytes from one slot to the next.
    #[inline(always)]
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn record_size(&self) -> u32 {
        self.record_size
    }

    pub(crate) fn nbuckets(&self) -> u32 {
        self.nbuckets
    }

    pub(crate) fn max_reach(&self) -> u32 {
        self.max_reach
    }

    /// Address of the shard's mutex.
    pub(crate) fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.hdr.wrapping_add(shd::MUTEX).cast()
    }

    // ---- shard header ----

    #[inline]
    pub(super) fn hdr32(&self, off: usize) -> &'a AtomicU32 {
        a32(self.hdr.wrapping_add(off))
    }

    #[inline]
    pub(super) fn hdr64(&self, off: usize) -> &'a AtomicU64 {
        a64(self.hdr.wrapping_add(off))
    }

    /// A counter of the shard header (`layout::shd`), as last written.
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

    /// Maps an id read from shared memory to 0 ("none") unless it is a slot of this shard.
    #[inline]
    pub(super) fn link(&self, v: u32) -> u32 {
        if v > self.cap {
            0
        } else {
            v
        }
    }

    pub(crate) fn head(&self) -> u32 {
        self.link(self.hdr32(shd::HEAD).load(Relaxed))
    }
    pub(super) fn set_head(&self, v: u32) {
        self.hdr32(shd::HEAD).store(v, Relaxed)
    }
    pub(crate) fn tail(&self) -> u32 {
        self.link(self.hdr32(shd::TAIL).load(Relaxed))
    }
    pub(super) fn set_tail(&self, v: u32) {
        self.hdr32(shd::TAIL).store(v, Relaxed)
    }
    pub(super) fn free_head(&self) -> u32 {
        self.link(self.hdr32(shd::FREE).load(Relaxed))
    }
    pub(super) fn set_free_head(&self, v: u32) {
        self.hdr32(shd::FREE).store(v, Relaxed)
    }
    /// Entries in the shard, as last written (exact under the lock).
    pub(crate) fn len(&self) -> u32 {
        self.hdr32(shd::LEN).load(Relaxed)
    }
    pub(super) fn set_len(&self, v: u32) {
        self.hdr32(shd::LEN).store(v, Relaxed)
    }
    /// Slots `1..=handed_out` have been handed out at least once; the rest are untouched.
    pub(crate) fn handed_out(&self) -> u32 {
        self.hdr32(shd::HANDED_OUT).load(Relaxed).min(self.cap)
    }
    pub(super) fn set_handed_out(&self, v: u32) {
        self.hdr32(shd::HANDED_OUT).store(v, Relaxed)
    }
    pub(crate) fn recoveries(&self) -> u32 {
        self.hdr32(shd::RECOVERIES).load(Relaxed)
    }
    pub(crate) fn note_recovery(&self) {
        let r = self.hdr32(shd::RECOVERIES);
        r.store(r.load(Relaxed).wrapping_add(1), Relaxed);
    }
    /// The refresh interval R, ms (0: every use moves the entry to the head).
    #[inline]
    pub(crate) fn refresh_ms(&self) -> u64 {
        self.hdr32(shd::REFRESH_MS).load(Relaxed) as u64
    }
    pub(super) fn set_refresh_ms(&self, v: u32) {
        self.hdr32(shd::REFRESH_MS).store(v, Relaxed)
    }
    pub(super) fn earliest_expiry(&self) -> u64 {
        self.hdr64(shd::EARLIEST_EXPIRY).load(Relaxed)
    }
    pub(super) fn set_earliest_expiry(&self, v: u64) {
        self.hdr64(shd::EARLIEST_EXPIRY).store(v, Relaxed)
    }

    /// The region's count of entries in all shards.
    #[inline]
    pub(super) fn live(&self) -> &'a AtomicU64 {
        a64(self.live)
    }

    /// The most entries the cache may hold.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    // ---- buckets ----

    /// The home bucket of spread hash `h`.
    #[inline]
    pub(crate) fn home(&self, h: u64) -> u32 {
        home_of(h, self.nbuckets)
    }

    /// The address of the home bucket of spread hash `h`: [`bucket_at`](Self::bucket_at)
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

    #[inline]
    fn bucket_ptr(&self, b: u32) -> *mut u8 {
        let b = if b < self.nbuckets { b } else { 0 };
        self.buckets.wrapping_add(b as usize * BUCKET_SIZE as usize)
    }

    /// The address just past the shard's last bucket.
    #[inline(always)]
    pub(crate) fn bucket_end(&self) -> *mut u8 {
        self.buckets
            .wrapping_add(self.nbuckets as usize * BUCKET_SIZE as usize)
    }

    /// The address of bucket `b` (clamped into the shard), for reading several of its words
    /// or for a prefetch.
    #[inline(always)]
    pub(crate) fn bucket_at(&self, b: u32) -> *mut u8 {
        self.bucket_ptr(b)
    }

    /// Word `off` (a `layout::bucket` offset, or an entry's) of the bucket at `bp`, which
    /// [`bucket_at`](Self::bucket_at) gave.
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
        a32(self.bucket_ptr(b).wrapping_add(bucket::SEQ))
    }

    #[inline]
    pub(super) fn spill_word(&self, b: u32) -> &'a AtomicU32 {
        a32(self.bucket_ptr(b).wrapping_add(bucket::SPILL))
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
        a32(self.bucket_ptr(b).wrapping_add(bucket::ENTRIES + 4 * i))
    }

    // ---- slots ----

    /// The slot with id `id` (1..=cap). Ids read from the region go through `link`/`entry_id`
    /// and are tested against 0 before use; an out-of-range id is a bug, caught by the debug
    /// assertion in tests and clamped to slot 1 in release builds rather than panicking.
    #[inline(always)]
    fn slot(&self, id: u32) -> *mut u8 {
        debug_assert!(id >= 1 && id <= self.cap, "slot id {id} outside 1..={}", self.cap);
        let i = id.wrapping_sub(1);
        let i = if i < self.cap { i } else { 0 };
        self.slots.wrapping_add(i as usize * self.stride)
    }

    /// The address of slot `id`, for a reader that reads several of its fields (through the
    /// `_at` accessors).
    #[inline(always)]
    pub(crate) fn slot_at(&self, id: u32) -> *mut u8 {
        self.slot(id)
    }

    pub(super) fn set_key_word(&self, id: u32, k: u64) {
        a64(self.slot(id).wrapping_add(slot::KEY)).store(k, Relaxed)
    }
    #[inline]
    pub(super) fn use_word(&self, id: u32) -> &'a AtomicU64 {
        self.use_word_at(self.slot(id))
    }
    /// The use word of the slot at `sp` (from [`slot_at`](Self::slot_at)).
    #[inline(always)]
    pub(crate) fn use_word_at(&self, sp: *mut u8) -> &'a AtomicU64 {
        a64(sp.wrapping_add(slot::USE))
    }
    pub(crate) fn use_of(&self, id: u32) -> Use {
        Use::unpack(self.use_word(id).load(Relaxed))
    }
    pub(crate) fn set_use(&self, id: u32, u: Use) {
        self.use_word(id).store(u.pack(), Relaxed)
    }
    pub(crate) fn prev(&self, id: u32) -> u32 {
        self.link(a32(self.slot(id).wrapping_add(slot::PREV)).load(Relaxed))
    }
    pub(super) fn set_prev(&self, id: u32, v: u32) {
        a32(self.slot(id).wrapping_add(slot::PREV)).store(v, Relaxed)
    }
    pub(crate) fn next(&self, id: u32) -> u32 {
        self.link(a32(self.slot(id).wrapping_add(slot::NEXT)).load(Relaxed))
    }
    pub(super) fn set_next(&self, id: u32, v: u32) {
        a32(self.slot(id).wrapping_add(slot::NEXT)).store(v, Relaxed)
    }
    pub(crate) fn share(&self, id: u32) -> u32 {
        a32(self.slot(id).wrapping_add(slot::SHARE)).load(Relaxed)
    }
    pub(crate) fn set_share(&self, id: u32, v: u32) {
        a32(self.slot(id).wrapping_add(slot::SHARE)).store(v, Relaxed)
    }

    #[inline]
    fn vlen_flags(&self, id: u32) -> &'a AtomicU32 {
        a32(self.slot(id).wrapping_add(slot::VLEN_FLAGS))
    }

    pub(crate) fn flags(&self, id: u32) -> u8 {
        (self.vlen_flags(id).load(Relaxed) >> 24) as u8 & FLAG_BITS
    }

    pub(super) fn set_vlen_flags(&self, id: u32, vlen: u32, flags: u8) {
        self.set_vlen_flags_at(self.slot(id), vlen, flags)
    }

    pub(super) fn set_exp_klen(&self, id: u32, expires: u64, klen: u16) {
        self.set_exp_klen_at(self.slot(id), expires, klen)
    }

    /// [`set_vlen_flags`](Self::set_vlen_flags) on the slot at `sp`. Its rewrite generation
    /// becomes 0: for writes inside the bucket's write window.
    #[inline(always)]
    pub(super) fn set_vlen_flags_at(&self, sp: *mut u8, vlen: u32, flags: u8) {
        self.set_vf_at(sp, vf_word(vlen, flags, 0), Relaxed)
    }

    /// Stores the `VLEN_FLAGS` word of the slot at `sp` whole, with `order`.
    #[inline(always)]
    pub(super) fn set_vf_at(&self, sp: *mut u8, word: u32, order: Ordering) {
        a32(sp.wrapping_add(slot::VLEN_FLAGS)).store(word, order)
    }

    /// The `VLEN_FLAGS` word of the slot at `sp`, as a lock-free reader's second look loads it
    /// (after its acquire fence).
    #[inline(always)]
    pub(crate) fn vf_at(&self, sp: *mut u8) -> u32 {
        a32(sp.wrapping_add(slot::VLEN_FLAGS)).load(Relaxed)
    }

    /// [`set_exp_klen`](Self::set_exp_klen) on the slot at `sp`.
    #[inline(always)]
    pub(super) fn set_exp_klen_at(&self, sp: *mut u8, expires: u64, klen: u16) {
        a64(sp.wrapping_add(slot::EXP_KLEN))
            .store((expires & ((1 << 48) - 1)) | ((klen as u64) << 48), Relaxed)
    }

    #[inline]
    pub(crate) fn meta(&self, id: u32) -> SlotMeta {
        self.meta_at(self.slot(id))
    }

    /// The fields of the slot at `sp` (from [`slot_at`](Self::slot_at)).
    #[inline(always)]
    pub(crate) fn meta_at(&self, sp: *mut u8) -> SlotMeta {
        // Acquire: for a lock-free reader, the word is the slot's own sequence number against
        // rewrites in place, so nothing read after it may be read before it.
        let vf = a32(sp.wrapping_add(slot::VLEN_FLAGS)).load(Acquire);
        let ek = a64(sp.wrapping_add(slot::EXP_KLEN)).load(Relaxed);
        SlotMeta {
            key: a64(sp.wrapping_add(slot::KEY)).load(Relaxed),
            vlen: vf & 0x00ff_ffff,
            flags: (vf >> 24) as u8 & FLAG_BITS,
            gen: (vf >> GEN_SHIFT) as u8,
            expires: ek & ((1 << 48) - 1),
            klen: (ek >> 48) as u16,
        }
    }

    /// Whether a slot's lengths fit its record, as the format requires.
    #[inline]
    pub(crate) fn lengths_ok(&self, m: &SlotMeta) -> bool {
        m.klen as u64 + m.vlen as u64 <= self.record_size as u64
    }

    #[inline(always)]
    fn data_word(&self, id: u32, w: usize) -> &'a AtomicU64 {
        debug_assert!(w * 8 < self.record_size as usize + 8);
        a64(self.slot(id).wrapping_add(slot::DATA + 8 * w))
    }

    /// Copies the first `dst.len()` data bytes (at most the record size) of the slot at `sp`
    /// (from [`slot_at`](Self::slot_at)) into `dst`.
    ///
    /// A value that fills its record, the usual case in a cache of fixed-size records, is
    /// copied inline in chunks whose offsets come from the record size, which is known before
    /// the slot's lengths arrive from memory: the copy's loads then start with the slot's
    /// first load instead of waiting for it. Shorter values are copied out of line.
    #[inline(always)]
    pub(crate) fn read_words_at(&self, sp: *mut u8, dst: &mut [u8]) {
        let rs = self.record_size as usize;
        let src = sp.wrapping_add(slot::DATA);
        if dst.len() == rs {
            // Hidden from the compiler, so that it does not use the equal length, which
            // arrives later.
            let n = crate::sys::opaque(rs);
            // SAFETY: n == rs bytes from the start of the slot's data area, which a slot of a
            // validated geometry (inside the mapping) holds whole.
            unsafe { copy_words(src, &mut dst[..n]) };
        } else if !dst.is_empty() {
            let len = dst.len().min(rs);
            // SAFETY: len <= rs bytes from the start of the data area, as above.
            unsafe { copy_words_cold(src, &mut dst[..len]) };
        }
    }

    /// Copies `dst.len()` data bytes starting at data offset `off` into `dst`, a word at a
    /// time. The caller checked `off + dst.len() <= record_size`.
    #[inline]
    pub(crate) fn read_data(&self, id: u32, off: usize, dst: &mut [u8]) {
        let len = dst.len().min((self.record_size as usize).saturating_sub(off));
        if len == 0 {
            return;
        }
        let mut w = off / 8;
        let mut skip = off % 8;
        let mut out = 0;
        if skip == 0 {
            // Whole words first, each stored into `dst` as it is loaded.
            let whole = len / 8;
            let src = self.slot(id).wrapping_add(slot::DATA + off);
            let to = dst.as_mut_ptr();
            for i in 0..whole {
                let v = a64(src.wrapping_add(8 * i)).load(Relaxed);
                // SAFETY: i < len / 8 and len <= dst.len(), so the 8 bytes at 8 * i are inside
                // `dst`, which this function borrows mutably; the write has no alignment needs.
                unsafe { to.add(8 * i).cast::<u64>().write_unaligned(v.to_le()) };
            }
            out = whole * 8;
            w += whole;
        }
        while out < len {
            let bytes = self.data_word(id, w).load(Relaxed).to_le_bytes();
            let n = (8 - skip).min(len - out);
            dst[out..out + n].copy_from_slice(&bytes[skip..skip + n]);
            out += n;
            skip = 0;
            w += 1;
        }
    }

    /// Writes `value` from the start of the data area of the slot at `sp`, a word at a time (the
    /// bytes after it in the last word become 0): the value of an integer key. Lock held; the
    /// caller checked that it fits.
    #[inline(always)]
    pub(super) fn write_words_at(&self, sp: *mut u8, value: &[u8]) {
        let value = &value[..value.len().min(self.record_size as usize)];
        let to = sp.wrapping_add(slot::DATA);
        let mut i = 0;
        #[cfg(target_arch = "x86_64")]
        while i + 16 <= value.len() {
            // SAFETY: i + 16 <= value.len() <= record_size, so the 16 bytes lie inside `value`
            // and inside the slot's data area (of a validated geometry, inside the mapping).
            unsafe { crate::sys::simd::store16(to.wrapping_add(i), value.as_ptr().add(i)) };
            i += 16;
        }
        while i + 8 <= value.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&value[i..i + 8]);
            a64(to.wrapping_add(i)).store(u64::from_le_bytes(w), Relaxed);
            i += 8;
        }
        if i < value.len() {
            let mut last = [0u8; 8];
            last[..value.len() - i].copy_from_slice(&value[i..]);
            a64(to.wrapping_add(i)).store(u64::from_le_bytes(last), Relaxed);
        }
    }

    /// Whether the first `key.len()` data bytes equal `key`. The caller checked that the key
    /// fits the record.
    #[inline]
    pub(super) fn data_starts_with(&self, id: u32, key: &[u8]) -> bool {
        if key.len() > self.record_size as usize {
            return false;
        }
        let mut chunks = key.chunks_exact(8);
        let mut w = 0;
        for c in &mut chunks {
            let want = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            if self.data_word(id, w).load(Relaxed) != want {
                return false;
            }
            w += 1;
        }
        let rest = chunks.remainder();
        if rest.is_empty() {
            return true;
        }
        let got = self.data_word(id, w).load(Relaxed).to_le_bytes();
        &got[..rest.len()] == rest
    }

    /// Writes `key` then `value` from the start of the data area, a word at a time (the bytes
    /// after them in the last word become 0). Lock held; the caller checked that they fit.
    #[inline]
    pub(super) fn write_data(&self, id: u32, key: &[u8], value: &[u8]) {
        assert!(key.len() + value.len() <= self.record_size as usize);
        if key.is_empty() {
            self.write_words_at(self.slot(id), value);
            return;
        }
        let mut w = WordWriter {
            shard: self,
            id,
            word: 0,
            carry: [0; 8],
            n: 0,
        };
        w.push(key);
        w.push(value);
        w.finish();
    }
}

/// Packs a byte stream into the data area's words.
struct WordWriter<'s, 'a> {
    shard: &'s Shard<'a>,
    id: u32,
    word: usize,
    carry: [u8; 8],
    n: usize,
}

impl WordWriter<'_, '_> {
    fn store(&mut self, v: u64) {
        self.shard.data_word(self.id, self.word).store(v, Relaxed);
        self.word += 1;
    }

    fn push(&mut self, mut bytes: &[u8]) {
        if self.n > 0 {
            let take = (8 - self.n).min(bytes.len());
            self.carry[self.n..self.n + take].copy_from_slice(&bytes[..take]);
            self.n += take;
            bytes = &bytes[take..];
            if self.n < 8 {
                return;
            }
            let v = u64::from_le_bytes(self.carry);
            self.store(v);
            self.n = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.store(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    fn finish(&mut self) {
        if self.n > 0 {
            self.carry[self.n..].fill(0);
            let v = u64::from_le_bytes(self.carry);
            self.store(v);
            self.n = 0;
        }
    }
}

/// Copies `dst.len()` bytes from shared memory at `src` with word-sized (or 16-byte) loads
/// that a concurrent writer cannot make undefined.
///
/// # Safety
/// `src` must be the start of a slot's data area in a live mapping, and `dst.len()` at most
/// the record size (the area is a whole number of words, so its last word may be read whole).
#[inline(always)]
unsafe fn copy_words(src: *mut u8, dst: &mut [u8]) {
    let len = dst.len();
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if len >= 16 {
        let to = dst.as_mut_ptr();
        let copy = |at: usize| {
            // SAFETY: every call below passes at + 16 <= len, so the range lies inside the
            // data area (the function's contract) and inside `dst`, private memory borrowed
            // mutably.
            unsafe { crate::sys::simd::copy16(src.wrapping_add(at), to.add(at)) }
        };
        if len <= 32 {
            // The first and the last 16 bytes, overlapping when len < 32.
            copy(0);
            copy(len - 16);
            return;
        }
        while i + 64 < len {
            copy(i);
            copy(i + 16);
            copy(i + 32);
            copy(i + 48);
            i += 64;
        }
        // 0 < len - i <= 64 bytes are left, and len > 32: their first 32 bytes if more than
        // 32 are left, then the last 32 of all (overlapping what was copied).
        if len - i > 32 {
            copy(i);
            copy(i + 16);
        }
        copy(len - 32);
        copy(len - 16);
        return;
    }
    while i + 8 <= len {
        dst[i..i + 8].copy_from_slice(&a64(src.wrapping_add(i)).load(Relaxed).to_le_bytes());
        i += 8;
    }
    if i < len {
        // The data area is a whole number of words, so the last word is inside it.
        let last = a64(src.wrapping_add(i)).load(Relaxed).to_le_bytes();
        dst[i..].copy_from_slice(&last[..len - i]);
    }
}

/// [`copy_words`] out of line, for values shorter than their record.
///
/// # Safety
/// As for [`copy_words`].
#[cold]
#[inline(never)]
unsafe fn copy_words_cold(src: *mut u8, dst: &mut [u8]) {
    // SAFETY: the caller meets copy_words' contract, which this one repeats.
    unsafe { copy_words(src, dst) }
}

#[cfg(test)]
mod tests {
    use super::Use;

    #[test]
    fn use_word_round_trips() {
        for (used, linked, r) in [
            (1_700_000_000_000u64, 1_700_000_000_000u64, false),
            (1_700_000_000_500, 1_700_000_000_000, true),
            (1_700_000_000_000, 1_700_000_000_900, false),
            (5, 5, true),
        ] {
            let u = Use {
                used,
                referenced: r,
                linked,
            };
            assert_eq!(Use::unpack(u.pack()), u);
        }
        // A link time too far from the use saturates, keeping the sign.
        let far = Use {
            used: 10_000_000,
            referenced: false,
            linked: 1,
        };
        let back = Use::unpack(far.pack());
        assert_eq!(back.used, 10_000_000);
        assert!(back.linked < back.used && back.linked > 1);
    }
}

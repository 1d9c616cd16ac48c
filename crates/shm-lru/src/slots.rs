//! Raw access to one shard's bytes: its header fields, its bucket array and its slots.
//!
//! A [`ShardView`] is only ever reached through a held shard lock (see `lock.rs`), so the plain
//! (non-atomic) reads and writes here never race with another process: the robust mutex orders
//! them. Every slot id read back from shared memory is range-checked before use, so even a
//! corrupted link can cause a wrong answer (which `check` reports) but never an access outside
//! the region.

use crate::layout::{shd, slot, F_OCCUPIED, TIME_MASK};

/// One shard's bytes. See the module docs for the rules of use.
#[derive(Debug)]
pub(crate) struct ShardView {
    hdr: *mut u8,
    buckets: *mut u32,
    slots: *mut u8,
    cap: u32,
    nbuckets: u32,
    stride: usize,
    record_size: u32,
}

/// A slot's fields other than links and data, copied out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotMeta {
    pub key: u64,
    pub used: u64,
    pub vlen: u32,
    pub expires: u64,
    pub klen: u16,
    pub flags: u8,
}

impl ShardView {
    /// # Safety
    /// The pointers must address this shard's header (`SHARD_SIZE` bytes), its `nbuckets` u32
    /// buckets and its `cap` slots of `stride` bytes in a mapping that outlives the view, as
    /// laid out by a validated [`Geometry`](crate::layout::Geometry); and the view may only be
    /// used by a thread that holds the shard's lock.
    pub(crate) unsafe fn new(
        hdr: *mut u8,
        buckets: *mut u32,
        slots: *mut u8,
        cap: u32,
        stride: usize,
        record_size: u32,
    ) -> ShardView {
        ShardView {
            hdr,
            buckets,
            slots,
            cap,
            nbuckets: cap,
            stride,
            record_size,
        }
    }

    pub(crate) fn cap(&self) -> u32 {
        self.cap
    }

    pub(crate) fn record_size(&self) -> u32 {
        self.record_size
    }

    pub(crate) fn nbuckets(&self) -> u32 {
        self.nbuckets
    }

    // ---- shard header ----

    #[inline]
    fn hdr_u32(&self, off: usize) -> u32 {
        // SAFETY: `off` is a field offset inside the shard header (layout::shd), 4-aligned; the
        // lock is held (type invariant).
        unsafe { self.hdr.add(off).cast::<u32>().read() }
    }

    #[inline]
    fn set_hdr_u32(&self, off: usize, v: u32) {
        // SAFETY: as in `hdr_u32`.
        unsafe { self.hdr.add(off).cast::<u32>().write(v) }
    }

    #[inline]
    pub(crate) fn hdr_u64(&self, off: usize) -> u64 {
        // SAFETY: `off` is a u64 field offset inside the shard header, 8-aligned; lock held.
        unsafe { self.hdr.add(off).cast::<u64>().read() }
    }

    #[inline]
    pub(crate) fn bump(&self, off: usize) {
        self.add(off, 1)
    }

    /// Adds `n` to the counter at `off`.
    #[inline]
    pub(crate) fn add(&self, off: usize, n: u64) {
        // SAFETY: as in `hdr_u64`.
        unsafe {
            let p = self.hdr.add(off).cast::<u64>();
            p.write(p.read().wrapping_add(n));
        }
    }

    #[inline]
    fn link(&self, v: u32) -> u32 {
        if v > self.cap {
            0
        } else {
            v
        }
    }

    pub(crate) fn head(&self) -> u32 {
        self.link(self.hdr_u32(shd::HEAD))
    }
    pub(crate) fn set_head(&self, v: u32) {
        self.set_hdr_u32(shd::HEAD, v)
    }
    pub(crate) fn tail(&self) -> u32 {
        self.link(self.hdr_u32(shd::TAIL))
    }
    pub(crate) fn set_tail(&self, v: u32) {
        self.set_hdr_u32(shd::TAIL, v)
    }
    pub(crate) fn free_head(&self) -> u32 {
        self.link(self.hdr_u32(shd::FREE))
    }
    pub(crate) fn set_free_head(&self, v: u32) {
        self.set_hdr_u32(shd::FREE, v)
    }
    pub(crate) fn len(&self) -> u32 {
        self.hdr_u32(shd::LEN)
    }
    pub(crate) fn set_len(&self, v: u32) {
        self.set_hdr_u32(shd::LEN, v)
    }
    /// Slots 1..=unused have been handed out at least once; the rest are untouched zeros.
    pub(crate) fn unused(&self) -> u32 {
        self.hdr_u32(shd::UNUSED).min(self.cap)
    }
    pub(crate) fn set_unused(&self, v: u32) {
        self.set_hdr_u32(shd::UNUSED, v)
    }
    pub(crate) fn recoveries(&self) -> u32 {
        self.hdr_u32(shd::RECOVERIES)
    }
    pub(crate) fn set_recoveries(&self, v: u32) {
        self.set_hdr_u32(shd::RECOVERIES, v)
    }

    // ---- buckets ----

    #[inline]
    pub(crate) fn bucket_of(&self, h: u64) -> u32 {
        (((h >> 32) * self.nbuckets as u64) >> 32) as u32
    }

    #[inline]
    pub(crate) fn bucket(&self, b: u32) -> u32 {
        debug_assert!(b < self.nbuckets);
        // SAFETY: b < nbuckets (bucket_of's range); the array has nbuckets u32s; lock held.
        self.link(unsafe { self.buckets.add(b as usize).read() })
    }

    #[inline]
    pub(crate) fn set_bucket(&self, b: u32, id: u32) {
        debug_assert!(b < self.nbuckets);
        // SAFETY: as in `bucket`.
        unsafe { self.buckets.add(b as usize).write(id) }
    }

    pub(crate) fn zero_buckets(&self) {
        // SAFETY: the bucket array is nbuckets u32s inside the mapping; lock held.
        unsafe { std::ptr::write_bytes(self.buckets, 0, self.nbuckets as usize) }
    }

    // ---- slots ----

    /// The slot with id `id` (1..=cap). Every caller passes an id that is in range: ids read
    /// from the region go through [`link`](Self::link) (which maps anything above `cap` to 0)
    /// and are tested against 0 before use; the others come from `1..=unused()` loops, the
    /// free-list counter (`unused + 1 <= cap`) or `Cache::locate_slot` (`1..=slots_per_shard`).
    /// An out-of-range id is a bug, caught by the debug assertion in tests; release builds
    /// clamp it to slot 1 with a branch-free select instead of panicking on the hot path.
    #[inline(always)]
    fn slot(&self, id: u32) -> *mut u8 {
        debug_assert!(id >= 1 && id <= self.cap, "slot id {id} outside 1..={}", self.cap);
        let i = id.wrapping_sub(1);
        let i = if i < self.cap { i } else { 0 };
        // SAFETY: i < cap after the select above (cap >= 1 by Geometry::new), so the slot lies
        // inside this shard's slot array of cap * stride bytes.
        unsafe { self.slots.add(i as usize * self.stride) }
    }

    /// Hints the CPU to fetch the line holding slot `id`'s list links (`prev`, `next`); ids
    /// outside `1..=cap` are ignored.
    #[inline(always)]
    pub(crate) fn prefetch_links(&self, id: u32) {
        if id >= 1 && id <= self.cap {
            crate::sys::prefetch(self.slot(id).wrapping_add(slot::PREV));
        }
    }

    /// Address of bucket `b`'s word, for a prefetch made before the lock is taken (see
    /// `Cache::prefetch`); out-of-range `b` is clamped to bucket 0.
    #[inline(always)]
    pub(crate) fn bucket_ptr(&self, b: u32) -> *mut u32 {
        let b = if b < self.nbuckets { b } else { 0 };
        // SAFETY: b < nbuckets after the select; the array holds nbuckets u32s.
        unsafe { self.buckets.add(b as usize) }
    }

    #[inline]
    fn slot_u32(&self, id: u32, off: usize) -> u32 {
        // SAFETY: `off` is a 4-aligned field of the slot header; slot() checked the id.
        unsafe { self.slot(id).add(off).cast::<u32>().read() }
    }

    #[inline]
    fn set_slot_u32(&self, id: u32, off: usize, v: u32) {
        // SAFETY: as in `slot_u32`.
        unsafe { self.slot(id).add(off).cast::<u32>().write(v) }
    }

    #[inline]
    fn slot_u64(&self, id: u32, off: usize) -> u64 {
        // SAFETY: `off` is an 8-aligned field (the stride and slot array are 8-aligned).
        unsafe { self.slot(id).add(off).cast::<u64>().read() }
    }

    #[inline]
    fn set_slot_u64(&self, id: u32, off: usize, v: u64) {
        // SAFETY: as in `slot_u64`.
        unsafe { self.slot(id).add(off).cast::<u64>().write(v) }
    }

    pub(crate) fn key_word(&self, id: u32) -> u64 {
        self.slot_u64(id, slot::KEY)
    }
    pub(crate) fn set_key_word(&self, id: u32, k: u64) {
        self.set_slot_u64(id, slot::KEY, k)
    }
    pub(crate) fn prev(&self, id: u32) -> u32 {
        self.link(self.slot_u32(id, slot::PREV))
    }
    pub(crate) fn set_prev(&self, id: u32, v: u32) {
        self.set_slot_u32(id, slot::PREV, v)
    }
    pub(crate) fn next(&self, id: u32) -> u32 {
        self.link(self.slot_u32(id, slot::NEXT))
    }
    pub(crate) fn set_next(&self, id: u32, v: u32) {
        self.set_slot_u32(id, slot::NEXT, v)
    }
    pub(crate) fn chain(&self, id: u32) -> u32 {
        self.link(self.slot_u32(id, slot::CHAIN))
    }
    pub(crate) fn set_chain(&self, id: u32, v: u32) {
        self.set_slot_u32(id, slot::CHAIN, v)
    }
    pub(crate) fn share(&self, id: u32) -> u32 {
        self.slot_u32(id, slot::SHARE)
    }
    pub(crate) fn set_share(&self, id: u32, v: u32) {
        self.set_slot_u32(id, slot::SHARE, v)
    }

    pub(crate) fn flags(&self, id: u32) -> u8 {
        (self.slot_u64(id, slot::EXP_KLEN_FLAGS) >> 56) as u8
    }

    pub(crate) fn is_occupied(&self, id: u32) -> bool {
        self.flags(id) & F_OCCUPIED != 0
    }

    pub(crate) fn meta(&self, id: u32) -> SlotMeta {
        let uv = self.slot_u64(id, slot::USED_VLEN);
        let ekf = self.slot_u64(id, slot::EXP_KLEN_FLAGS);
        SlotMeta {
            key: self.key_word(id),
            used: uv & TIME_MASK,
            vlen: (uv >> 40) as u32,
            expires: ekf & TIME_MASK,
            klen: (ekf >> 40) as u16,
            flags: (ekf >> 56) as u8,
        }
    }

    pub(crate) fn set_used_vlen(&self, id: u32, used: u64, vlen: u32) {
        self.set_slot_u64(id, slot::USED_VLEN, (used & TIME_MASK) | ((vlen as u64) << 40));
    }

    pub(crate) fn set_used(&self, id: u32, used: u64) {
        let uv = self.slot_u64(id, slot::USED_VLEN);
        self.set_slot_u64(id, slot::USED_VLEN, (uv & !TIME_MASK) | (used & TIME_MASK));
    }

    pub(crate) fn set_exp_klen_flags(&self, id: u32, expires: u64, klen: u16, flags: u8) {
        self.set_slot_u64(
            id,
            slot::EXP_KLEN_FLAGS,
            (expires & TIME_MASK) | ((klen as u64) << 40) | ((flags as u64) << 56),
        );
    }

    pub(crate) fn set_flags(&self, id: u32, flags: u8) {
        let ekf = self.slot_u64(id, slot::EXP_KLEN_FLAGS);
        self.set_slot_u64(
            id,
            slot::EXP_KLEN_FLAGS,
            (ekf & !(0xff << 56)) | ((flags as u64) << 56),
        );
    }

    /// Whether a slot's lengths fit its record, as the format requires.
    pub(crate) fn lengths_ok(&self, m: &SlotMeta) -> bool {
        m.klen as u64 + m.vlen as u64 <= self.record_size as u64
    }

    /// The slot's first `klen` data bytes. The slice must not outlive the held lock, which the
    /// borrow of `self` (owned by the lock guard) ensures.
    pub(crate) fn key_bytes(&self, id: u32, klen: u16) -> &[u8] {
        let len = (klen as u32).min(self.record_size) as usize;
        // SAFETY: the data area has record_size bytes and len <= record_size; the lock is held
        // for as long as `self` is borrowed, so no process writes these bytes meanwhile.
        unsafe { std::slice::from_raw_parts(self.slot(id).add(slot::DATA), len) }
    }

    /// The value bytes, following the key bytes.
    pub(crate) fn value_bytes(&self, id: u32, klen: u16, vlen: u32) -> &[u8] {
        let k = (klen as u32).min(self.record_size);
        let len = vlen.min(self.record_size - k) as usize;
        // SAFETY: k + len <= record_size, inside the slot's data area; lock held as above.
        unsafe { std::slice::from_raw_parts(self.slot(id).add(slot::DATA + k as usize), len) }
    }

    /// Copies key bytes then value bytes into the data area. The caller checked that they fit.
    pub(crate) fn write_data(&self, id: u32, key: &[u8], value: &[u8]) {
        assert!(key.len() + value.len() <= self.record_size as usize);
        let base = self.slot(id);
        // SAFETY: both copies stay inside the slot's record_size data bytes (asserted above);
        // the sources are caller memory, which cannot overlap the shared mapping's slot while
        // the lock is held (a caller's slice into the same slot would have to come from a
        // borrow of this view, which `&self` here would conflict with only if it were `&mut`;
        // `copy` tolerates overlap regardless).
        unsafe {
            std::ptr::copy(key.as_ptr(), base.add(slot::DATA), key.len());
            std::ptr::copy(value.as_ptr(), base.add(slot::DATA + key.len()), value.len());
        }
    }

    /// Overwrites the value bytes only (the key stays).
    pub(crate) fn write_value(&self, id: u32, klen: u16, value: &[u8]) {
        assert!(klen as usize + value.len() <= self.record_size as usize);
        // SAFETY: klen + value.len() <= record_size (asserted), inside the data area.
        unsafe {
            std::ptr::copy(
                value.as_ptr(),
                self.slot(id).add(slot::DATA + klen as usize),
                value.len(),
            );
        }
    }
}

//! A slot's fields (key word, lengths and flags, expiry, links, share key, use word) and the
//! copying of its data area, a word at a time; the shard's undo record, a slot-sized area that
//! holds a slot's old contents while it is rewritten in place.

use super::view::{a32, a64};
use super::Shard;
use super::Use;
use crate::layout::{slot, FLAG_BITS, F_WRITING, GEN_SHIFT};
use std::marker::PhantomData;
use std::sync::atomic::{
    AtomicU32, AtomicU64, Ordering, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// The address of one whole slot (header and data area) of a shard in a mapping that lives for
/// `'a`. Only [`Shard::slot`], which range-checks the id, makes one, so the accessors that take
/// one need no `unsafe` from their callers. (Every view of one cache shares its geometry, so a
/// slot of one shard fits any other's accessors; no code holds the views of two caches at once.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct SlotPtr<'a> {
    at: *mut u8,
    _map: PhantomData<&'a ()>,
}

impl<'a> SlotPtr<'a> {
    /// The slot's first byte, for a prefetch; reading through it would take `unsafe`.
    #[inline(always)]
    pub(crate) fn addr(self) -> *mut u8 {
        self.at
    }

    /// The 4-byte header field at `off` (a `layout::slot` offset before the data). An offset
    /// past the header or out of alignment is clamped into it: free for the constant offsets
    /// every caller passes.
    #[inline(always)]
    fn field32(self, off: usize) -> &'a AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= slot::DATA);
        let off = off.min(slot::DATA - 4) & !3;
        // SAFETY: a SlotPtr addresses a whole 8-aligned slot in a mapping that outlives 'a
        // (`Shard::slot`), and `off` is a 4-aligned word of its header.
        unsafe { a32(self.at.wrapping_add(off)) }
    }

    /// [`field32`](Self::field32) for an 8-byte field.
    #[inline(always)]
    fn field64(self, off: usize) -> &'a AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= slot::DATA);
        let off = off.min(slot::DATA - 8) & !7;
        // SAFETY: as in `field32`, for an 8-aligned word of the header.
        unsafe { a64(self.at.wrapping_add(off)) }
    }

    /// The start of the data area, for copies whose bounds their caller checks.
    #[inline(always)]
    fn data(self) -> *mut u8 {
        self.at.wrapping_add(slot::DATA)
    }

    /// Word `w` of the data area.
    ///
    /// # Safety
    /// `8 * w + 8` must not exceed the data area: the record size rounded up to whole words.
    #[inline(always)]
    unsafe fn data_word(self, w: usize) -> &'a AtomicU64 {
        // SAFETY: the caller keeps the word inside the data area of a whole slot, 8-aligned.
        unsafe { a64(self.data().wrapping_add(8 * w)) }
    }
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
    pub(crate) fn vlen_flags_word(&self) -> u32 {
        vlen_flags_word(self.vlen, self.flags, self.gen)
    }
}

/// A slot's `VLEN_FLAGS` word holding `vlen`, `flags` and rewrite generation `gen`.
#[inline(always)]
pub(super) fn vlen_flags_word(vlen: u32, flags: u8, gen: u8) -> u32 {
    (vlen & 0x00ff_ffff) | (((flags & FLAG_BITS) as u32) << 24) | (((gen & 0x0f) as u32) << GEN_SHIFT)
}

impl<'a> Shard<'a> {
    /// The slot with id `id` (1..=cap). Ids read from the region go through `link`/`entry_id`
    /// and are tested against 0 before use; an out-of-range id is a bug, caught by the debug
    /// assertion in tests and clamped to slot 1 in release builds rather than panicking.
    #[inline(always)]
    pub(crate) fn slot(&self, id: u32) -> SlotPtr<'a> {
        debug_assert!(
            id >= 1 && id <= self.slot_count,
            "slot id {id} outside 1..={}",
            self.slot_count
        );
        let i = id.wrapping_sub(1);
        let i = if i < self.slot_count { i } else { 0 };
        if self.grows {
            return self.unit_slot(i);
        }
        SlotPtr {
            at: self.slots.wrapping_add(i as usize * self.stride),
            _map: PhantomData,
        }
    }

    /// Asks for the lines of slot `id`'s header ahead of a read of its fields.
    #[inline(always)]
    pub(crate) fn prefetch_slot(&self, id: u32) {
        let at = self.slot(id).at;
        crate::sys::prefetch_read(at);
        crate::sys::prefetch_read(at.wrapping_add(crate::layout::SLOT_HEADER as usize - 1));
    }

    /// [`slot`](Self::slot) in a shard whose slots are arrays (its index does not grow).
    #[inline(always)]
    pub(crate) fn array_slot(&self, id: u32) -> SlotPtr<'a> {
        debug_assert!(!self.grows);
        let i = id.wrapping_sub(1);
        let i = if i < self.slot_count { i } else { 0 };
        SlotPtr {
            at: self.slots.wrapping_add(i as usize * self.stride),
            _map: PhantomData,
        }
    }

    /// Slot 1, without a computation: what a lock-free hit
    /// carries in place of its slot, which it does not read.
    #[inline(always)]
    pub(crate) fn first_slot(&self) -> SlotPtr<'a> {
        if self.grows {
            // (`layout::slot_below_top(0)`: slot 1 starts the first block below the top.)
            return SlotPtr {
                at: self.top.wrapping_sub(crate::layout::GROUP_SLOT_BYTES as usize),
                _map: PhantomData,
            };
        }
        SlotPtr {
            at: self.slots,
            _map: PhantomData,
        }
    }

    /// Slot `i + 1` of a cache with a byte budget (`i` below the most slots): in its group's
    /// block of slots at the top of the store (`layout::slot_below_top`). Inside the store: the
    /// most units take less than it (`Geometry::budget_index`). Out of line: inlined, its
    /// arithmetic was computed beside a fixed-record slot's on every access and cost a
    /// fixed-record set 1 % more instructions; a budget cache's hits read no slot.
    #[inline(never)]
    fn unit_slot(&self, i: u32) -> SlotPtr<'a> {
        SlotPtr {
            at: self.top.wrapping_sub(crate::layout::slot_below_top(i) as usize),
            _map: PhantomData,
        }
    }

    pub(super) fn set_key_word(&self, id: u32, k: u64) {
        self.slot(id).field64(slot::KEY).store(k, Relaxed)
    }

    #[inline]
    pub(super) fn use_word(&self, id: u32) -> &'a AtomicU64 {
        self.use_word_at(self.slot(id))
    }

    /// The use word of the slot at `sp` (from [`slot`](Self::slot)).
    #[inline(always)]
    pub(crate) fn use_word_at(&self, sp: SlotPtr<'a>) -> &'a AtomicU64 {
        sp.field64(slot::USE)
    }

    pub(crate) fn use_of(&self, id: u32) -> Use {
        Use::unpack(self.use_word(id).load(Relaxed))
    }

    pub(crate) fn set_use(&self, id: u32, u: Use) {
        self.use_word(id).store(u.pack(), Relaxed)
    }

    pub(crate) fn prev(&self, id: u32) -> u32 {
        self.link(self.slot(id).field32(slot::PREV).load(Relaxed))
    }

    pub(super) fn set_prev(&self, id: u32, v: u32) {
        self.slot(id).field32(slot::PREV).store(v, Relaxed)
    }

    pub(crate) fn next(&self, id: u32) -> u32 {
        self.link(self.slot(id).field32(slot::NEXT).load(Relaxed))
    }

    pub(super) fn set_next(&self, id: u32, v: u32) {
        self.slot(id).field32(slot::NEXT).store(v, Relaxed)
    }

    pub(crate) fn share(&self, id: u32) -> u32 {
        self.slot(id).field32(slot::SHARE).load(Relaxed)
    }

    pub(crate) fn set_share(&self, id: u32, v: u32) {
        self.slot(id).field32(slot::SHARE).store(v, Relaxed)
    }

    #[inline]
    fn vlen_flags(&self, id: u32) -> &'a AtomicU32 {
        self.slot(id).field32(slot::VLEN_FLAGS)
    }

    pub(crate) fn flags(&self, id: u32) -> u8 {
        (self.vlen_flags(id).load(Relaxed) >> 24) as u8 & FLAG_BITS
    }

    pub(super) fn set_vlen_flags(&self, id: u32, vlen: u32, flags: u8) {
        self.set_vlen_flags_at(self.slot(id), vlen, flags)
    }

    pub(super) fn set_expiry_key_len(&self, id: u32, expires: u64, klen: u16) {
        self.set_expiry_key_len_at(self.slot(id), expires, klen)
    }

    /// [`set_vlen_flags`](Self::set_vlen_flags) on the slot at `sp`. Its rewrite generation
    /// becomes 0: for writes inside the bucket's write window.
    #[inline(always)]
    pub(super) fn set_vlen_flags_at(&self, sp: SlotPtr<'a>, vlen: u32, flags: u8) {
        self.store_vlen_flags_at(sp, vlen_flags_word(vlen, flags, 0), Relaxed)
    }

    /// Stores the `VLEN_FLAGS` word of the slot at `sp` whole, with `order`.
    #[inline(always)]
    pub(super) fn store_vlen_flags_at(&self, sp: SlotPtr<'a>, word: u32, order: Ordering) {
        sp.field32(slot::VLEN_FLAGS).store(word, order)
    }

    /// The `VLEN_FLAGS` word of the slot at `sp`, as a lock-free reader's second look loads it
    /// (after its acquire fence).
    #[inline(always)]
    pub(crate) fn vlen_flags_at(&self, sp: SlotPtr<'a>) -> u32 {
        sp.field32(slot::VLEN_FLAGS).load(Relaxed)
    }

    /// [`set_expiry_key_len`](Self::set_expiry_key_len) on the slot at `sp`.
    #[inline(always)]
    pub(super) fn set_expiry_key_len_at(&self, sp: SlotPtr<'a>, expires: u64, klen: u16) {
        sp.field64(slot::EXP_KLEN)
            .store((expires & ((1 << 48) - 1)) | ((klen as u64) << 48), Relaxed)
    }

    #[inline]
    pub(crate) fn meta(&self, id: u32) -> SlotMeta {
        self.meta_at(self.slot(id))
    }

    /// The fields of the slot at `sp` (from [`slot`](Self::slot)).
    #[inline(always)]
    pub(crate) fn meta_at(&self, sp: SlotPtr<'a>) -> SlotMeta {
        // Acquire: for a lock-free reader, the word is the slot's own sequence number against
        // rewrites in place, so nothing read after it may be read before it.
        let vf = sp.field32(slot::VLEN_FLAGS).load(Acquire);
        let ek = sp.field64(slot::EXP_KLEN).load(Relaxed);
        SlotMeta {
            key: sp.field64(slot::KEY).load(Relaxed),
            vlen: vf & 0x00ff_ffff,
            flags: (vf >> 24) as u8 & FLAG_BITS,
            gen: (vf >> GEN_SHIFT) as u8,
            expires: ek & ((1 << 48) - 1),
            klen: (ek >> 48) as u16,
        }
    }

    // ---- the undo record ----

    /// The shard's undo record: a slot-sized area after all slots, reached as a slot.
    #[inline(always)]
    fn journal(&self) -> SlotPtr<'a> {
        // `Shard::new`'s contract: `journal` addresses `stride` bytes, 8-aligned, in the
        // mapping that outlives 'a, accessed only atomically: a whole slot's worth.
        SlotPtr {
            at: self.journal,
            _map: PhantomData,
        }
    }

    /// The slot whose rewrite in place the undo record holds the old contents of (0: none).
    pub(crate) fn undo_target(&self) -> u32 {
        self.journal().field64(slot::KEY).load(Acquire) as u32
    }

    /// Saves the contents of live slot `sp` (id `id`, fields `m`) in the undo record before a
    /// rewrite in place, and names it there (with release order, after the copy): a holder
    /// that dies mid-rewrite leaves the old value for recovery to put back. Lock held.
    #[inline(always)]
    pub(super) fn save_undo(&self, id: u32, sp: SlotPtr<'a>, m: &SlotMeta) {
        let j = self.journal();
        self.copy_data_words(sp, j, m.klen as usize + m.vlen as usize);
        j.field32(slot::VLEN_FLAGS).store(m.vlen_flags_word(), Relaxed);
        j.field64(slot::EXP_KLEN)
            .store(sp.field64(slot::EXP_KLEN).load(Relaxed), Relaxed);
        j.field64(slot::KEY).store(id as u64, Release);
    }

    /// Forgets the undo record once a rewrite is whole (release order: after the rewrite's
    /// stores). Lock held.
    #[inline(always)]
    pub(super) fn drop_undo(&self) {
        self.journal().field64(slot::KEY).store(0, Release);
    }

    /// After a holder died: if the undo record names a slot still marked mid-write, puts the
    /// saved contents back (the value as it was before the rewrite). Returns the slot put back.
    /// Either way the record is forgotten. Lock held, every bucket's window open.
    pub(super) fn roll_back_rewrite(&self) -> Option<u32> {
        let id = self.undo_target();
        if id == 0 {
            return None;
        }
        let put_back = id <= self.handed_out().min(self.slot_count) && self.flags(id) & F_WRITING != 0;
        if put_back {
            let j = self.journal();
            let vf = j.field32(slot::VLEN_FLAGS).load(Relaxed);
            let ek = j.field64(slot::EXP_KLEN).load(Relaxed);
            let klen = (ek >> 48) as usize;
            let vlen = (vf & 0x00ff_ffff) as usize;
            let sp = self.slot(id);
            self.copy_data_words(j, sp, klen + vlen);
            sp.field64(slot::EXP_KLEN).store(ek, Relaxed);
            // The saved word is the one from before the rewrite, `writing` clear.
            sp.field32(slot::VLEN_FLAGS)
                .store(vf & !((F_WRITING as u32) << 24), Release);
        }
        self.drop_undo();
        put_back.then_some(id)
    }

    /// Copies the data words that hold the first `bytes` bytes (at most the record size) of
    /// the data area of `from` to that of `to`, a word at a time.
    fn copy_data_words(&self, from: SlotPtr<'a>, to: SlotPtr<'a>, bytes: usize) {
        let words = bytes.min(self.record_size as usize).div_ceil(8);
        for w in 0..words {
            // SAFETY: w < words, so 8 * w + 8 is at most the record size rounded up to whole
            // words: the data area of either slot.
            let (src, dst) = unsafe { (from.data_word(w), to.data_word(w)) };
            dst.store(src.load(Relaxed), Relaxed);
        }
    }

    /// Whether a slot's lengths fit its record, as the format requires.
    #[inline]
    pub(crate) fn lengths_ok(&self, m: &SlotMeta) -> bool {
        if self.budget() {
            // The data is the record's position; the key's length is the record's.
            return m.vlen == crate::layout::REF_SIZE;
        }
        m.klen as u64 + m.vlen as u64 <= self.record_size as u64
    }

    /// Word `w` of slot `id`'s data area.
    ///
    /// # Safety
    /// `8 * w` must be below the record size (so the word lies in the data area, whose size is
    /// the record size rounded up to whole words).
    #[inline(always)]
    unsafe fn data_word(&self, id: u32, w: usize) -> &'a AtomicU64 {
        debug_assert!(w * 8 < self.record_size as usize);
        // SAFETY: the caller's contract, for a slot of this shard.
        unsafe { self.slot(id).data_word(w) }
    }

    /// The first word of the data area of the slot at `sp`, as stored (little-endian bytes).
    #[inline(always)]
    pub(crate) fn first_data_word_at(&self, sp: SlotPtr<'a>) -> u64 {
        // SAFETY: a slot's data area is its record size (at least 1) rounded up to whole
        // words, so word 0 lies in it.
        unsafe { sp.data_word(0) }.load(Relaxed)
    }

    /// Copies the first `dst.len()` data bytes (at most the record size) of the slot at `sp`
    /// (from [`slot`](Self::slot)) into `dst`.
    ///
    /// A value that fills its record, the usual case in a cache of fixed-size records, is
    /// copied inline in chunks whose offsets come from the record size, which is known before
    /// the slot's lengths arrive from memory: the copy's loads then start with the slot's
    /// first load instead of waiting for it. Shorter values are copied out of line.
    #[inline(always)]
    pub(crate) fn read_words_at(&self, sp: SlotPtr<'a>, dst: &mut [u8]) {
        let rs = self.record_size as usize;
        let src = sp.data();
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
            let src = self.slot(id).data().wrapping_add(off);
            let to = dst.as_mut_ptr();
            for i in 0..whole {
                // SAFETY: off is a multiple of 8 and off + 8 * whole <= off + len <= the record
                // size, so the word lies in the data area of a whole slot, 8-aligned.
                let v = unsafe { a64(src.wrapping_add(8 * i)) }.load(Relaxed);
                // SAFETY: i < len / 8 and len <= dst.len(), so the 8 bytes at 8 * i are inside
                // `dst`, which this function borrows mutably; the write has no alignment needs.
                unsafe { to.add(8 * i).cast::<u64>().write_unaligned(v.to_le()) };
            }
            out = whole * 8;
            w += whole;
        }
        while out < len {
            // SAFETY: 8 * w <= off + out < off + len <= the record size.
            let bytes = unsafe { self.data_word(id, w) }.load(Relaxed).to_le_bytes();
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
    pub(super) fn write_words_at(&self, sp: SlotPtr<'a>, value: &[u8]) {
        let value = &value[..value.len().min(self.record_size as usize)];
        let to = sp.data();
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
            // SAFETY: i + 8 <= value.len() <= the record size: a word of the data area.
            unsafe { a64(to.wrapping_add(i)) }.store(u64::from_le_bytes(w), Relaxed);
            i += 8;
        }
        if i < value.len() {
            let mut last = [0u8; 8];
            last[..value.len() - i].copy_from_slice(&value[i..]);
            // SAFETY: i < value.len() <= the record size, and i is a multiple of 8: the word
            // starting at i is in the data area, a whole number of words.
            unsafe { a64(to.wrapping_add(i)) }.store(u64::from_le_bytes(last), Relaxed);
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
            // SAFETY: 8 * w + 8 <= key.len() <= the record size.
            if unsafe { self.data_word(id, w) }.load(Relaxed) != want {
                return false;
            }
            w += 1;
        }
        let rest = chunks.remainder();
        if rest.is_empty() {
            return true;
        }
        // SAFETY: 8 * w < key.len() <= the record size.
        let got = unsafe { self.data_word(id, w) }.load(Relaxed).to_le_bytes();
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
        // SAFETY: `write_data` checked that key and value fit the record, and words are
        // stored only for bytes pushed, so 8 * word < key.len() + value.len() <= the record size.
        unsafe { self.shard.data_word(self.id, self.word) }.store(v, Relaxed);
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
        // SAFETY: len >= 16, and the range lies inside the data area (the function's contract)
        // and inside `dst`, private memory borrowed mutably.
        unsafe { crate::sys::simd::copy_out(src, dst.as_mut_ptr(), len) };
        return;
    }
    while i + 8 <= len {
        // SAFETY: i + 8 <= len <= the record size: a word of the data area (the contract).
        let w = unsafe { a64(src.wrapping_add(i)) }.load(Relaxed);
        dst[i..i + 8].copy_from_slice(&w.to_le_bytes());
        i += 8;
    }
    if i < len {
        // The data area is a whole number of words, so the last word is inside it.
        // SAFETY: i < len <= the record size, i a multiple of 8: the word is in the area.
        let last = unsafe { a64(src.wrapping_add(i)) }.load(Relaxed).to_le_bytes();
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

//! The value store of a cache with a byte budget: per shard, a ring of bytes in which each
//! entry's key and value live as one record, appended at the head and reclaimed at the tail.
//! A slot of such a cache holds, instead of key and value bytes, the position of its record.
//!
//! # Records
//!
//! A record is a 32-byte header (the slot id it belongs to, the key's length, flags, a mark,
//! the value's length, the time it was written, and the entry's key word and expiry as its slot
//! has them), the key bytes, the value bytes, padding to a multiple of 8. Positions only grow;
//! a position's byte offset is the position modulo the store's size. A record never wraps: when
//! it does not fit before the ring's end, the end is filled with a pad record (or, under 32
//! bytes, left as implied padding) and the record starts at the ring's start in the next lap.
//! (With an index that grows, the ring lies between the index's buckets, at the bottom of the
//! store, and its slots, at the top; `grow.rs`.)
//!
//! A slot names its record by the record's byte offset in the store (so that a lock-free reader
//! needs no division); the live records lie within one store's length of the tail, so an offset
//! is one position among them. A record is *live* while its slot holds an entry that names it. A removed or replaced entry
//! leaves its record dead where it is; the tail walk skips it.
//!
//! # Making room
//!
//! A write that needs more bytes than are free reclaims records from the tail: a dead one is
//! passed over; a live one whose entry was used since the record was written is moved to the
//! head (a second chance: the copy counts as written then); any other live one is evicted. This
//! is the CLOCK approximation of LRU over bytes. One write moves at most four times its own
//! length (plus 64 KiB) of other records; past that, it evicts. A cache that does not evict moves every live record it meets,
//! which compacts the store, and keeps two of the largest records' worth of bytes free for
//! those moves: it refuses a write whose record would not fit beside the live ones and that.
//!
//! # Why readers need no lock, and read no slot
//!
//! Bytes of the store change in two ways only: a record is written past the head, where
//! nothing names anything, before the head moves over it; and bytes behind the tail are written
//! over once the head comes round to them. The tail passes a live record only after its entry
//! was removed or its slot made to name a copy, and either happens inside a write window on the
//! entry's bucket, together with the entry's record hint (`layout::hint`) and, for a change of
//! expiry, the record's header. So a lock-free reader follows the hint to the record, takes the
//! key word, expiry and value from it, issues an acquire fence and sees the bucket's number
//! unchanged: it read a record that was the entry's throughout, without reading the slot
//! (`cache/read.rs`, `probe_records`). Every offset a reader derives from a hint is range-checked
//! against the store, so a hint read mid-change cannot send it outside.
//!
//! # Crashes
//!
//! The head moves (release order) only after a record is whole; a slot names a record only
//! after the head is past it; the tail moves past a record only after its slot stopped naming
//! it. A holder killed anywhere leaves records recovery can walk, and slots that name a whole
//! record or one they no longer hold. Recovery keeps an entry only when its slot names a record
//! between tail and head whose header names the slot back and whose key hashes to the slot's
//! key word, gives the slot the record's expiry and value kind, and sets the hints again; it
//! then counts the live bytes again.

use super::{BucketPtr, Found, Hashed, Inserted, Put, Shard, SlotMeta, SlotPtr, Toward};
use crate::error::{Error, Result};
use crate::layout::{
    hint, record_len, shard_header, F_BYTES_KEY, F_STR_VALUE, RECORD_HEADER, RECORD_MARK, REF_SIZE, R_PAD,
};
use crate::options::{SetMode, ValueKind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::Release};

/// A record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHead {
    /// The slot whose entry the record holds (0 for padding).
    pub id: u32,
    /// Key bytes (0 for an integer key).
    pub klen: u16,
    /// `F_BYTES_KEY`, `F_STR_VALUE`, or `R_PAD`.
    pub flags: u8,
    /// Value bytes.
    pub vlen: u64,
    /// When the record was written (appended or moved), epoch ms modulo 2^32: a use of the
    /// entry after this earns it a second chance when the tail reaches it.
    pub written: u32,
    /// The entry's key word, as its slot holds it: the integer key, or the hash of the key
    /// bytes.
    pub key: u64,
    /// When the entry expires (epoch ms; 0 = never), as its slot says.
    pub expires: u64,
}

impl RecordHead {
    /// A padding record of `len` bytes in all.
    fn pad(len: u64) -> RecordHead {
        RecordHead {
            id: 0,
            klen: 0,
            flags: R_PAD,
            vlen: len - RECORD_HEADER,
            written: 0,
            key: 0,
            expires: 0,
        }
    }

    /// Whether this record can be the one of a slot whose fields are `m`: the same key length
    /// and key word, and an expiry the slot can hold (48 bits; a larger one is damage).
    pub(crate) fn fits_slot(&self, m: &SlotMeta) -> bool {
        self.klen == m.klen && self.key == m.key && self.expires < 1 << 48
    }

    /// Bytes the record takes in the store.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        record_len(self.klen as u64, self.vlen)
    }

    /// The header's first word: slot, key length, flags and mark.
    #[inline(always)]
    fn first_word(id: u32, klen: u16, flags: u8) -> u64 {
        id as u64 | (klen as u64) << 32 | (flags as u64) << 48 | (RECORD_MARK as u64) << 56
    }

    fn words(&self) -> [u64; 4] {
        [
            RecordHead::first_word(self.id, self.klen, self.flags),
            self.vlen | (self.written as u64) << 32,
            self.key,
            self.expires,
        ]
    }

    fn unpack(w: [u64; 4]) -> Option<RecordHead> {
        if (w[0] >> 56) as u8 != RECORD_MARK {
            return None;
        }
        let h = RecordHead {
            id: w[0] as u32,
            klen: (w[0] >> 32) as u16,
            flags: (w[0] >> 48) as u8,
            vlen: w[1] & 0xffff_ffff,
            written: (w[1] >> 32) as u32,
            key: w[2],
            expires: w[3],
        };
        let pad = h.flags & R_PAD != 0;
        if h.flags & !(F_BYTES_KEY | F_STR_VALUE | R_PAD) != 0 || (pad && (h.id != 0 || h.klen != 0)) {
            return None;
        }
        Some(h)
    }
}

/// What a lock-free reader found in the record an entry's hint names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hinted {
    pub key: u64,
    pub expires: u64,
    pub klen: u16,
    /// `F_BYTES_KEY` and `F_STR_VALUE`, as the record has them.
    pub flags: u8,
    pub vlen: u32,
    /// The value's byte offset in the store.
    pub at: usize,
}

/// What the store's byte budget holds, summed over shards by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreUse {
    /// Bytes of live records.
    pub live: u64,
    /// Bytes between tail and head: live records, dead ones, padding.
    pub used: u64,
    /// Bytes free.
    pub free: u64,
}

impl<'a> Shard<'a> {
    // ---- the header's fields ----

    pub(crate) fn store_head(&self) -> u64 {
        self.hdr64(shard_header::STORE_HEAD).load(Relaxed)
    }

    pub(crate) fn store_tail(&self) -> u64 {
        self.hdr64(shard_header::STORE_TAIL).load(Relaxed)
    }

    pub(crate) fn store_live(&self) -> u64 {
        self.hdr64(shard_header::STORE_LIVE).load(Relaxed)
    }

    fn set_store_head(&self, v: u64) {
        // Release: a process that finds the head past a record finds the record whole.
        self.hdr64(shard_header::STORE_HEAD).store(v, Release)
    }

    fn set_store_tail(&self, v: u64) {
        self.hdr64(shard_header::STORE_TAIL).store(v, Release)
    }

    pub(super) fn set_store_live(&self, v: u64) {
        self.hdr64(shard_header::STORE_LIVE).store(v, Relaxed)
    }

    /// Bytes of the store live, in use and free.
    pub(crate) fn store_use(&self) -> StoreUse {
        let ring = self.ring();
        let used = self.used_between(self.store_head(), self.store_tail()).min(ring);
        StoreUse {
            live: self.store_live(),
            used,
            free: ring - used,
        }
    }

    // ---- bytes of the store ----

    /// The byte offset of position `pos`: positions go round the whole store (a *lap*), of
    /// which records use the [`ring`](Self::ring) bytes from [`ring_start`](Self::ring_start);
    /// the rest of each lap, the index's units, is skipped.
    #[inline(always)]
    fn offset(&self, pos: u64) -> usize {
        (pos % self.store_bytes.max(8)) as usize
    }

    /// The position where the ring starts in the lap after the one of position `p`.
    #[inline]
    fn next_lap(&self, p: u64) -> u64 {
        p - p % self.store_bytes.max(8) + self.store_bytes.max(8) + self.ring_start()
    }

    /// Bytes of the ring in use between positions `tail` and `head`: the distance, less the
    /// skipped end of a lap when the head is in a later lap than the tail. Lock held.
    fn used_between(&self, head: u64, tail: u64) -> u64 {
        let lap = self.store_bytes.max(8);
        let d = head.wrapping_sub(tail);
        if head / lap != tail / lap {
            d.saturating_sub(lap - self.ring())
        } else {
            d
        }
    }

    /// Bytes free between the head and the tail (`head` and `tail` positions in order, at
    /// most a lap apart). Lock held.
    fn free_between(&self, head: u64, tail: u64) -> u64 {
        self.ring().saturating_sub(self.used_between(head, tail))
    }

    /// The store's word at byte offset `off`. An offset past the store or out of alignment is
    /// clamped into it (callers pass in-range, aligned offsets; a debug build asserts so).
    #[inline(always)]
    fn store_word(&self, off: usize) -> &'a AtomicU64 {
        debug_assert!(off % 8 == 0 && off as u64 + 8 <= self.store_bytes);
        let off = off.min(self.store_bytes.saturating_sub(8) as usize) & !7;
        // SAFETY: `Shard::new`'s contract: a view with a store addresses `store_bytes` bytes of
        // it, 64-aligned, in a mapping that outlives 'a, accessed only atomically; `off` is
        // clamped to an 8-aligned word inside them. (Only budget views reach here: every caller
        // is behind `budget()`, and a store of 0 bytes would clamp to its address, never read.)
        unsafe { super::view::a64(self.store.wrapping_add(off)) }
    }

    /// The header of the record at byte offset `off`, if the bytes there are one that fits the
    /// ring.
    #[inline(always)]
    fn head_at(&self, off: usize) -> Option<RecordHead> {
        let (start, end) = self.ring_bounds();
        if off % 8 != 0 || (off as u64) < start || off as u64 + RECORD_HEADER > end {
            return None;
        }
        let h = RecordHead::unpack([0, 8, 16, 24].map(|w| self.store_word(off + w).load(Relaxed)))?;
        (off as u64 + h.len() <= end).then_some(h)
    }

    /// Whether `len` bytes from offset `off` lie in the store.
    #[inline(always)]
    pub(crate) fn store_holds(&self, off: usize, len: usize) -> bool {
        off as u64 + len as u64 <= self.store_bytes
    }

    /// Copies the store's bytes from offset `off` into `dst`, if they lie in the store: else
    /// copies nothing and returns `false` (a lock-free reader's header read mid-change, or a
    /// damaged one). Safe against concurrent writers (word-sized atomic loads, or opaque
    /// 16-byte loads): what was copied is validated afterwards.
    #[inline(always)]
    #[must_use]
    pub(crate) fn store_read(&self, off: usize, dst: &mut [u8]) -> bool {
        let len = dst.len();
        if !self.store_holds(off, len) {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        if len >= 16 {
            // SAFETY: len >= 16 and off + len <= store_bytes (checked above): the bytes lie in
            // the store (a validated part of the mapping, `Shard::new`) and in `dst`, private
            // memory borrowed mutably.
            unsafe { crate::sys::simd::copy_out(self.store.wrapping_add(off), dst.as_mut_ptr(), len) };
            return true;
        }
        let mut w = off & !7;
        let mut skip = off - w;
        let mut out = 0;
        while out < len {
            let bytes = self.store_word(w).load(Relaxed).to_le_bytes();
            let n = (8 - skip).min(len - out);
            dst[out..out + n].copy_from_slice(&bytes[skip..skip + n]);
            out += n;
            skip = 0;
            w += 8;
        }
        true
    }

    /// Whether the store's bytes from offset `off` equal `want` (the caller checked that they
    /// lie in the store).
    pub(crate) fn store_eq(&self, off: usize, want: &[u8]) -> bool {
        let mut buf = [0u8; 64];
        let mut at = 0;
        while at < want.len() {
            let n = (want.len() - at).min(buf.len());
            if !self.store_read(off + at, &mut buf[..n]) || buf[..n] != want[at..at + n] {
                return false;
            }
            at += n;
        }
        true
    }

    /// Writes `parts`, one after the other, from byte offset `off` (8-aligned), a word at a
    /// time; the bytes after them in the last word become 0. Lock held; the caller checked that
    /// they fit.
    fn store_write(&self, off: usize, parts: &[&[u8]]) {
        let mut w = off;
        let mut carry = [0u8; 8];
        let mut n = 0;
        for part in parts {
            let mut p: &[u8] = part;
            if n == 0 {
                while p.len() >= 8 {
                    let word = u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
                    self.store_word(w).store(word, Relaxed);
                    w += 8;
                    p = &p[8..];
                }
            }
            for &b in p {
                carry[n] = b;
                n += 1;
                if n == 8 {
                    self.store_word(w).store(u64::from_le_bytes(carry), Relaxed);
                    w += 8;
                    n = 0;
                }
            }
        }
        if n > 0 {
            carry[n..].fill(0);
            self.store_word(w).store(u64::from_le_bytes(carry), Relaxed);
        }
    }

    // ---- records and the slots that name them ----

    /// The byte offset in the store of the record slot `sp` names (its data word): an offset,
    /// not a position, so that a lock-free reader finds the record without a division.
    #[inline(always)]
    pub(crate) fn named_at(&self, sp: SlotPtr<'a>) -> u64 {
        self.first_data_word_at(sp)
    }

    /// A slot's data naming the record at position `pos`: its byte offset.
    fn naming(&self, pos: u64) -> [u8; REF_SIZE as usize] {
        (self.offset(pos) as u64).to_le_bytes()
    }

    /// The record the entry in slot `id` names, if it is a whole one that names the slot back,
    /// between tail and head: its position and header. Lock held.
    pub(crate) fn record_of(&self, id: u32) -> Option<(u64, RecordHead)> {
        let off = self.named_at(self.slot(id));
        let (head, tail, lap) = (self.store_head(), self.store_tail(), self.store_bytes);
        let (start, end) = self.ring_bounds();
        if off % 8 != 0 || !(start..end).contains(&off) || head < tail || head - tail > lap {
            return None;
        }
        // The one position between tail and tail + a lap at that offset.
        let pos = tail + (off + lap - self.offset(tail) as u64) % lap;
        if pos >= head {
            return None;
        }
        let h = self.head_at(off as usize)?;
        (h.id == id && h.flags & R_PAD == 0 && pos + h.len() <= head).then_some((pos, h))
    }

    /// The record that the hint of entry `pos` of the bucket at `bp` names, if it is one of
    /// slot `id` that fits the store: its header's key word, expiry, key length and flags, and
    /// where its value is. Lock-free: the caller validates what it read with the bucket's
    /// sequence number.
    #[inline(always)]
    pub(crate) fn record_by_hint(&self, bp: BucketPtr<'a>, pos: usize, id: u32) -> Option<Hinted> {
        let hint = self.hint_word(bp, pos).load(Relaxed);
        let off = (hint as u64).wrapping_sub(1).wrapping_mul(8);
        if hint == hint::NONE || off + RECORD_HEADER > self.store_bytes {
            return None;
        }
        let off = off as usize;
        // The value's first bytes past the header's line are asked for now: the copy's loads
        // wait for the header (the value's length and place), which would leave the next line
        // to be fetched only once the first is in.
        crate::sys::prefetch_read(self.store.wrapping_add(off + 64));
        // SAFETY: off is a multiple of 8 and off + 32 <= store_bytes (checked above): four
        // words of the store, a validated part of the mapping (`Shard::new`), accessed only
        // atomically.
        let w: [u64; 4] = [0, 8, 16, 24]
            .map(|at| unsafe { super::view::a64(self.store.wrapping_add(off + at)) }.load(Relaxed));
        // The header names this slot and is a record's (a padding record names no slot).
        if w[0] as u32 != id || (w[0] >> 56) as u8 != RECORD_MARK {
            return None;
        }
        let klen = (w[0] >> 32) as u16;
        let vlen = w[1] & 0xffff_ffff;
        // (The copy checks that the value lies in the store; this bounds what a destination
        // grows to for a header read mid-change.)
        if vlen > self.max_value {
            return None;
        }
        let at = off as u64 + RECORD_HEADER + klen as u64;
        Some(Hinted {
            key: w[2],
            expires: w[3],
            klen,
            flags: (w[0] >> 48) as u8 & (F_BYTES_KEY | F_STR_VALUE),
            vlen: vlen as u32,
            at: at as usize,
        })
    }

    /// Sets the record hint of the entry at position `pos` of the bucket at `bp` to the record
    /// at byte offset `off`. Lock held, in a window on the bucket.
    fn set_hint(&self, bp: BucketPtr<'a>, pos: usize, off: u64) {
        self.hint_word(bp, pos).store(hint::of(off), Relaxed);
    }

    /// Sets the hints of a new entry at position `pos` of the bucket at `bp`, whose slot data
    /// is `named` (the record's offset, little-endian): the record's, and no use recorded.
    /// Lock held, in a window on the bucket.
    pub(super) fn hint_new_entry(&self, bp: BucketPtr<'a>, pos: usize, named: &[u8]) {
        let mut b = [0u8; 8];
        let n = named.len().min(8);
        b[..n].copy_from_slice(&named[..n]);
        self.set_hint(bp, pos, u64::from_le_bytes(b));
        self.use_hint_word(bp)
            .fetch_and(hint::unmarked(u64::MAX, pos), Relaxed);
    }

    /// Sets the hints of the entry at position `pos` of the bucket at `bp` that a rebuild kept
    /// (slot `id`, which names a whole record that names it back): the record's, and no use
    /// recorded. The record's header is the truth for the value's kind and the expiry, which a
    /// writer killed mid-change may have left different in the slot: the slot gets them from
    /// it. Lock held, in the bucket's window.
    /// Returns the entry's expiry.
    pub(super) fn hint_kept_entry(&self, bp: BucketPtr<'a>, pos: usize, id: u32) -> u64 {
        let m = self.meta(id);
        let Some((at, h)) = self.record_of(id) else {
            return m.expires;
        };
        self.set_expiry_key_len(id, h.expires, m.klen);
        self.set_vlen_flags(id, m.vlen, (m.flags & !(F_STR_VALUE | F_BYTES_KEY)) | h.flags);
        self.hint_new_entry(bp, pos, &(self.offset(at) as u64).to_le_bytes());
        h.expires
    }

    /// Makes the entry at `f` name the record at position `pos`, whose value is of kind
    /// `flags` and which expires at `expires`: slot and record hint change in one window on
    /// the entry's bucket. Lock held.
    fn rename(&self, f: Found, pos: u64, flags: u8, expires: u64) {
        let bp = self.bucket(f.bucket);
        let sp = self.slot(f.id);
        let m = self.meta_at(sp);
        let odd = self.begin_write_at(bp);
        self.write_words_at(sp, &self.naming(pos));
        self.set_expiry_key_len_at(sp, expires, m.klen);
        self.set_vlen_flags_at(sp, m.vlen, flags);
        self.set_hint(bp, f.pos, self.offset(pos) as u64);
        self.end_write_at(bp, odd);
        if expires != 0 && expires < self.earliest_expiry() {
            self.set_earliest_expiry(expires);
        }
    }

    /// Sets the expiry in the header of the record of slot `id`, whose entry's bucket window
    /// is open. Lock held.
    pub(super) fn set_record_expiry(&self, id: u32, expires: u64) {
        if let Some((pos, _)) = self.record_of(id) {
            self.store_word(self.offset(pos) + 24).store(expires, Relaxed);
        }
    }

    /// Whether the record slot `id` names holds the byte key `key` (lock-free: validated by the
    /// caller).
    pub(crate) fn store_holds_key(&self, id: u32, key: &[u8]) -> bool {
        let off = self.named_at(self.slot(id)).min(self.store_bytes) as usize;
        match self.head_at(off) {
            Some(h) => {
                h.id == id
                    && h.flags & F_BYTES_KEY != 0
                    && h.klen as usize == key.len()
                    && self.store_eq(off + RECORD_HEADER as usize, key)
            }
            None => false,
        }
    }

    /// The key bytes of the record of slot `id` (lock held); empty if it names none.
    pub(crate) fn store_key(&self, id: u32) -> Vec<u8> {
        let Some((pos, h)) = self.record_of(id) else {
            return Vec::new();
        };
        let mut b = vec![0u8; h.klen as usize];
        // `record_of` found the whole record in the store.
        let whole = self.store_read(self.offset(pos) + RECORD_HEADER as usize, &mut b);
        debug_assert!(whole);
        b
    }

    /// The value bytes of the record of slot `id` (lock held), if it names a whole record in
    /// the store that agrees with the slot (`None` only in a damaged shard, which `check`
    /// reports).
    pub(crate) fn store_value_of(&self, id: u32) -> Option<Vec<u8>> {
        let (pos, h) = self.record_of(id)?;
        // A record whose key disagrees with its slot's is damage, which a read by key takes
        // for a miss (the record names another key): so does every read.
        if !h.fits_slot(&self.meta(id)) {
            return None;
        }
        let mut v = vec![0u8; h.vlen as usize];
        self.store_read(
            self.offset(pos) + RECORD_HEADER as usize + h.klen as usize,
            &mut v,
        )
        .then_some(v)
    }

    /// Forgets the bytes of the record of slot `id`, whose entry is being removed. Lock held.
    pub(super) fn forget_record(&self, id: u32) {
        if let Some((_, h)) = self.record_of(id) {
            self.set_store_live(self.store_live().saturating_sub(h.len()));
        }
    }

    /// Whether slot `id` holds an entry that names the record at `pos`. Lock held.
    fn names(&self, id: u32, pos: u64) -> bool {
        id >= 1
            && id <= self.slot_count
            && self.holds_entry(id)
            && self.named_at(self.slot(id)) == self.offset(pos) as u64
    }

    /// Bytes left unused at the end of the ring if a record of `len` bytes went at `head`.
    fn wrap_waste(&self, head: u64, len: u64) -> u64 {
        let room = self.ring_end().saturating_sub(self.offset(head) as u64);
        if room < len {
            room
        } else {
            0
        }
    }

    /// Moves the head past the end of the ring if a record of `len` bytes does not fit before
    /// it, marking the end as padding. Returns the position the record goes at. Lock held; the
    /// caller made room.
    fn head_for(&self, len: u64) -> u64 {
        let head = self.store_head();
        let room = self.ring_end().saturating_sub(self.offset(head) as u64);
        if room >= len {
            return head;
        }
        if room >= RECORD_HEADER {
            self.write_head(self.offset(head), &RecordHead::pad(room));
        }
        // On to the ring's start in the next lap, past the index's units.
        let next = self.next_lap(head);
        self.set_store_head(next);
        next
    }

    /// Writes header `h` at byte offset `off` (the caller checked that it fits). Lock held.
    fn write_head(&self, off: usize, h: &RecordHead) {
        for (i, w) in h.words().into_iter().enumerate() {
            self.store_word(off + 8 * i).store(w, Relaxed);
        }
    }

    /// Appends a record of header `h` and bytes `key` and `value`; returns its position. Lock
    /// held; the caller made room for it.
    fn append(&self, h: RecordHead, key: &[u8], value: &[u8]) -> u64 {
        let pos = self.head_for(h.len());
        let off = self.offset(pos);
        self.write_head(off, &h);
        self.store_write(off + RECORD_HEADER as usize, &[key, value]);
        self.set_store_head(pos + h.len());
        pos
    }

    /// Copies the live record at `from` (header `h`) to the head, as written just before `now`,
    /// and makes its slot name the copy. Lock held; the caller made room.
    fn move_record(&self, from: u64, h: RecordHead, now: u64) {
        let to = self.head_for(h.len());
        let (src, dst) = (self.offset(from), self.offset(to));
        // The copy counts as written a millisecond before the move: times of use are in whole
        // milliseconds, and a use in the millisecond of the move (it may well follow it) must
        // count, or an entry read on every request would be evicted on the next lap whenever
        // the tail comes round within the millisecond. (A fresh record counts from its write,
        // whose own use is recorded in the same millisecond.)
        let copy = RecordHead {
            written: now.wrapping_sub(1) as u32,
            ..h
        };
        self.write_head(dst, &copy);
        for w in (RECORD_HEADER as usize..h.len() as usize).step_by(8) {
            self.store_word(dst + w)
                .store(self.store_word(src + w).load(Relaxed), Relaxed);
        }
        self.set_store_head(to + h.len());
        let id = h.id;
        let Some(f) = self.entry_of(id, self.stored_hash(id)) else {
            // Not indexed (damage `check` reports): the copy stays unnamed.
            return;
        };
        let m = self.meta(id);
        self.rename(f, to, m.flags, m.expires);
    }

    /// Whether the entry of slot `id`, whose record was written at `written`, was used since.
    fn used_since(&self, id: u32, written: u32) -> bool {
        (self.use_of(id).used as u32).wrapping_sub(written) as i32 > 0
    }

    /// The bytes the largest record takes.
    pub(super) fn biggest(&self) -> u64 {
        record_len(0, self.max_value)
    }

    /// Passes the tail over the record at `tail` (header `h`) if nothing holds it: padding, a
    /// record no entry names, or an expired entry's (reclaimed as such, in any cache). Whether
    /// it did. Lock held.
    fn pass_unheld(&self, tail: u64, h: &RecordHead, now: u64) -> bool {
        if h.flags & R_PAD == 0 && self.names(h.id, tail) {
            if !super::expired(self.meta(h.id).expires, now) {
                return false;
            }
            self.remove_slot(h.id);
            self.bump(shard_header::EXPIRATIONS);
        }
        self.set_store_tail(tail + h.len());
        true
    }

    /// Frees store bytes until a record of `len` bytes can be appended (see the module docs).
    /// Returns whether an entry was evicted. Lock held.
    fn make_room(&self, len: u64, evict: bool, now: u64) -> Result<bool> {
        self.make_room_until(len, evict, false, now)
    }

    /// [`make_room`](Self::make_room), and with `one_lap`, on until the tail is in the head's
    /// lap (so that the index can grow, `grow.rs`).
    fn make_room_until(&self, len: u64, evict: bool, one_lap: bool, now: u64) -> Result<bool> {
        let (size, lap) = (self.ring(), self.store_bytes);
        // (Making room takes no units: the ring's end stays where it is.)
        let end = self.ring_end();
        // A cache that does not evict keeps two of the largest records' worth free, so that a
        // live record at the tail can always be moved (with the end of the store to pad).
        //
        // An evicting cache keeps a little free (64 KiB, or a sixteenth of a small store) for the
        // same reason: a used record at the tail moves only if the free bytes hold it, and a
        // write that left none free would evict the next used record it meets instead.
        let reserve = if evict {
            (64 << 10).min(size / 16)
        } else {
            2 * self.biggest()
        };
        let fits = || self.store_live() + 2 * len + reserve <= size;
        if !evict && !fits() {
            self.purge_expired(now);
            if !fits() {
                return Err(Error::Full);
            }
        }
        let mut evicted = false;
        // Second chances copy bytes under the lock: a write moves at most a few times its own
        // length (and 64 KiB) of other records, so that one write into a store whose every
        // record was used lately does not copy the whole store.
        let mut movable_bytes = 4 * len + (64 << 10);
        // Each step passes the tail over a record or moves one; a lap is at most size / 8
        // records, and moves only repeat on a second lap for a cache that does not evict.
        let mut steps = 0u64;
        loop {
            let (head, tail) = (self.store_head(), self.store_tail());
            if head < tail || head - tail > lap || steps > 2 * (size / 8) + 2 {
                // Damaged beyond walking: start the store again.
                self.clear();
                steps = 0;
                continue;
            }
            steps += 1;
            let free = self.free_between(head, tail);
            if free >= len + self.wrap_waste(head, len) + reserve && (!one_lap || head / lap == tail / lap) {
                return Ok(evicted);
            }
            let off = self.offset(tail);
            if end.saturating_sub(off as u64) < RECORD_HEADER {
                self.set_store_tail(self.next_lap(tail));
                continue;
            }
            let Some(h) = self.head_at(off).filter(|h| tail + h.len() <= head) else {
                self.clear();
                steps = 0;
                continue;
            };
            if self.pass_unheld(tail, &h, now) {
                continue;
            }
            let movable = free >= h.len() + self.wrap_waste(head, h.len());
            if movable && !evict {
                self.move_record(tail, h, now);
            } else if movable && h.len() <= movable_bytes && self.used_since(h.id, h.written) {
                movable_bytes -= h.len();
                self.move_record(tail, h, now);
            } else if evict {
                self.remove_slot(h.id);
                self.bump(shard_header::EVICTIONS);
                evicted = true;
            } else {
                return Err(Error::Full);
            }
            self.set_store_tail(tail + h.len());
        }
    }

    /// Before a growing index takes more units: whether the ring can start at offset `start`
    /// and end at offset `end` (`start` at or past its start now, `end` at or before its end),
    /// leaving room for a record of `len` bytes at the head. Head and tail must be in one lap,
    /// the head (with `len`) short of `end`; the tail is then walked on until it is at or past
    /// `start`: a dead record or padding is passed over, an expired entry reclaimed, and a live
    /// record moved to the head, if that stays short of `end` (else it answers `false`, and the
    /// index waits for a later write). An empty store's positions move on to `start` (head,
    /// then tail: killed between, the span between them is never-written bytes, which the
    /// rebuild pads); a store it cannot walk starts again, empty, as
    /// [`make_room`](Self::make_room) starts it. Every other step is one `make_room` takes, in
    /// the same order, so a holder killed in the walk leaves what recovery repairs. Lock held.
    pub(super) fn free_ring_start(&self, start: u64, end: u64, len: u64, now: u64) -> bool {
        let lap = self.store_bytes.max(8);
        let (head0, tail0) = (self.store_head(), self.store_tail());
        // Each step moves the tail on by a record; the walk passes at most the bytes from the
        // tail to `start` and those it moves past them, all within the lap.
        let mut steps = (lap / RECORD_HEADER) + 2;
        loop {
            let (head, tail) = (self.store_head(), self.store_tail());
            if tail > head || head / lap != tail / lap || head % lap + len > end || steps == 0 {
                return false;
            }
            steps -= 1;
            if tail % lap >= start {
                return true;
            }
            if tail == head {
                let at = tail - tail % lap + start;
                self.set_store_head(at);
                self.set_store_tail(at);
                return true;
            }
            let Some(h) = self.head_at(self.offset(tail)).filter(|h| tail + h.len() <= head) else {
                // Damaged beyond walking: start the store again, as making room does.
                self.clear();
                continue;
            };
            if self.pass_unheld(tail, &h, now) {
                continue;
            }
            if head % lap + h.len() + len > end {
                return false;
            }
            self.move_record(tail, h, now);
            self.set_store_tail(tail + h.len());
            debug_assert!(self.store_tail() - tail0 <= lap && self.store_head() - head0 <= lap);
        }
    }

    /// [`Shard::set`] in a cache with a byte budget: the key and value go to a new record, and
    /// the entry's slot names it.
    pub(super) fn set_in_store(&self, k: &Hashed<'_>, p: Put<'_>) -> Result<Inserted> {
        let (value, now) = (p.value, p.now);
        let kb = k.key.bytes();
        let size = kb.len() as u64 + value.len() as u64;
        if size > self.max_value {
            return Err(Error::ValueTooLarge {
                size,
                max: self.max_value,
            });
        }
        let found = self.find_live(k, now);
        match (p.mode, found) {
            (SetMode::Add, Some(_)) => return Err(Error::KeyExists),
            (SetMode::Replace, None) => return Err(Error::KeyNotFound),
            _ => {}
        }
        let flags = super::flags_for(&k.key, p.kind);
        let mut h = RecordHead {
            id: 0,
            klen: kb.len() as u16,
            flags: flags & (F_BYTES_KEY | F_STR_VALUE),
            vlen: value.len() as u64,
            written: now as u32,
            key: k.word,
            expires: p.expires,
        };
        if found.is_none()
            && self.grows()
            && !self.grow_for(h.len(), false, p.evict, now)
            && !p.evict
            && self.wants_units()
        {
            // A new key, no slot for it, and a cache that may not evict one: the tail walks on
            // (moving every live record) until the ring can spare units for the index. If it
            // cannot, the write is refused below as before.
            if self.make_room_until(h.len(), false, true, now).is_ok() {
                self.grow_for(h.len(), false, p.evict, now);
            }
        }
        let mut evicted = self.make_room(h.len(), p.evict, now)?;
        // Looked up again: making room may have moved or evicted the entry.
        if let Some(f) = self.lookup(k) {
            let old = self.record_of(f.id).map_or(0, |(_, r)| r.len());
            h.id = f.id;
            if p.keep_ttl {
                h.expires = self.meta(f.id).expires;
            }
            let pos = self.append(h, kb, value);
            self.rename(f, pos, flags, h.expires);
            self.record_use(f.id, now);
            self.set_store_live((self.store_live() + h.len()).saturating_sub(old));
            self.bump(shard_header::UPDATES);
            return Ok(Inserted {
                id: f.id,
                inserted: false,
                evicted,
            });
        }
        let placed = !self.grows()
            || self.has_place(k.hash)
            || (self.grow_for(h.len(), true, p.evict, now) && self.has_place(k.hash));
        if !placed {
            // The key's home and the buckets after it, to the index's last, are full.
            if !p.evict {
                return Err(Error::Full);
            }
            self.evict_near(k.hash);
            evicted = true;
        }
        // Taking a slot may evict by the recency list, which frees store bytes, never takes them.
        let (id, ev) = self.take_slot(p.evict, now)?;
        evicted |= ev;
        h.id = id;
        let pos = self.append(h, kb, value);
        let done = self.insert(
            id,
            evicted,
            k,
            kb.len() as u16,
            &[],
            &self.naming(pos),
            flags,
            p.expires,
            now,
        )?;
        self.set_store_live(self.store_live() + h.len());
        Ok(done)
    }

    /// Empties the store: every record dead, all bytes free, and positions from the ring's
    /// start in lap 0 again (so that the head is in the tail's lap and short of the ring's end,
    /// where the index may take slots; the buckets it takes at the start walk the tail on past
    /// them first). Lock held, every entry forgotten. (Killed between the two stores, it leaves the
    /// head behind the tail, which the rebuild clears again.)
    pub(super) fn clear_store(&self) {
        self.set_store_tail(self.store_head());
        self.set_store_live(0);
        let start = self.ring_start();
        self.set_store_head(start);
        self.set_store_tail(start);
    }

    /// After a rebuild kept the entries whose records are whole: makes the store walkable from
    /// tail to head again by writing pad records over every span between live records (whatever
    /// bytes a damaged store holds there), dropping an entry whose record overlaps another's or
    /// leaves a span too short to pad. Lock held.
    pub(super) fn repair_store(&self) {
        let mut live: Vec<(u64, u64, u32)> = self
            .walk(self.head(), Toward::Tail)
            .filter_map(|id| self.record_of(id).map(|(pos, h)| (pos, h.len(), id)))
            .collect();
        live.sort_unstable();
        let mut pos = self.store_tail();
        for (at, len, id) in live {
            if at < pos || !self.paddable(pos, at) {
                self.remove_slot(id);
                continue;
            }
            self.pad(pos, at);
            pos = at + len;
        }
        let head = self.store_head();
        if self.paddable(pos, head) {
            self.pad(pos, head);
        } else {
            // A span of 8 bytes before the head: the head moves back over it (nothing follows).
            self.set_store_head(pos);
        }
    }

    /// Whether the span `from..to` can be covered by pad records: every piece of it before the
    /// store's end is empty, at least a header long, or ends at the store's end.
    fn paddable(&self, from: u64, to: u64) -> bool {
        let mut p = from;
        while p < to {
            let room = self.ring_end().saturating_sub(self.offset(p) as u64);
            if room == 0 {
                p = self.next_lap(p);
                continue;
            }
            let n = (to - p).min(room);
            if n < RECORD_HEADER && n != room {
                return false;
            }
            p += n;
        }
        true
    }

    /// Covers the span `from..to` (see [`paddable`](Self::paddable)) with pad records.
    fn pad(&self, from: u64, to: u64) {
        let mut p = from;
        while p < to {
            let off = self.offset(p);
            let room = self.ring_end().saturating_sub(off as u64);
            if room == 0 {
                p = self.next_lap(p);
                continue;
            }
            let n = (to - p).min(room);
            if n >= RECORD_HEADER {
                self.write_head(off, &RecordHead::pad(n));
            }
            p += n;
        }
    }

    /// After a rebuild kept the entries whose records are whole, counts their bytes again.
    /// Lock held.
    pub(super) fn recount_store(&self) {
        let live = self
            .walk(self.head(), Toward::Tail)
            .filter_map(|id| self.record_of(id))
            .map(|(_, h)| h.len())
            .sum();
        self.set_store_live(live);
    }

    /// For `check`: whether what lock-free readers take from the record of slot `id` (at
    /// position `pos`, header `h`) and from the entry's record hint agrees with the slot
    /// (fields `m`): a description of the first disagreement.
    pub(crate) fn check_hints_of(&self, id: u32, m: &SlotMeta, pos: u64, h: &RecordHead) -> Option<String> {
        if h.key != m.key || h.expires != m.expires || (h.flags ^ m.flags) & F_STR_VALUE != 0 {
            return Some(format!(
                "slot {id}: its record says key word {:#x}, expiry {} and flags {:#x}; the slot {:#x}, {} and {:#x}",
                h.key, h.expires, h.flags, m.key, m.expires, m.flags
            ));
        }
        let f = self.entry_of(id, self.stored_hash(id))?;
        let hint = self.hint_word(self.bucket(f.bucket), f.pos).load(Relaxed);
        let want = hint::of(self.offset(pos) as u64);
        (hint != want).then(|| format!("slot {id}: its record hint is {hint}, not {want}"))
    }

    /// Checks the store for `check`: head and tail in order, every record from tail to head
    /// whole, the live ones named by exactly the entries listed, and the live bytes as counted.
    pub(crate) fn check_store(&self, listed: u64, mut problem: impl FnMut(String)) {
        let (size, lap) = (self.ring(), self.store_bytes);
        let (head, tail) = (self.store_head(), self.store_tail());
        if head < tail || head - tail > lap {
            problem(format!(
                "value store head {head} and tail {tail} are more than {lap} bytes apart"
            ));
            return;
        }
        let (mut pos, mut live, mut named) = (tail, 0u64, 0u64);
        let (start, end) = (self.ring_start(), self.ring_end());
        for (what, p) in [("head", head), ("tail", tail)] {
            let off = self.offset(p) as u64;
            if off < start || off > end {
                problem(format!(
                    "value store {what} {p} is at offset {off}, outside the ring ({start} to {end})"
                ));
                return;
            }
        }
        while pos < head {
            let off = self.offset(pos);
            if end.saturating_sub(off as u64) < RECORD_HEADER {
                pos = self.next_lap(pos);
                continue;
            }
            let Some(h) = self.head_at(off).filter(|h| pos + h.len() <= head) else {
                problem(format!("value store: no whole record at position {pos}"));
                return;
            };
            if h.flags & R_PAD == 0 && self.names(h.id, pos) {
                live += h.len();
                named += 1;
            }
            pos += h.len();
        }
        if pos != head {
            problem(format!("value store: records end at {pos}, past the head {head}"));
        }
        if named != listed {
            problem(format!("value store: {named} live records for {listed} entries"));
        }
        if live != self.store_live() {
            problem(format!(
                "value store: live records take {live} bytes, counted as {}",
                self.store_live()
            ));
        }
        let u = self.store_use();
        if u.used + u.free != size {
            problem(format!(
                "value store: {} used and {} free of {size} bytes",
                u.used, u.free
            ));
        }
    }

    /// [`Shard::incr`] of the live entry `f` in a cache with a byte budget: the sum goes to a
    /// new record, the expiry stays (`expires` is for a new entry: one whose record is damaged
    /// is taken for none).
    pub(super) fn incr_stored(
        &self,
        k: &Hashed<'_>,
        f: Found,
        delta: i64,
        expires: u64,
        evict: bool,
        now: u64,
    ) -> Result<i64> {
        // An entry whose record is damaged is no entry, as for a read: the sum starts again.
        let Some(value) = self.store_value_of(f.id) else {
            self.remove_found(f, k.hash);
            return self.incr(k, delta, expires, evict, now);
        };
        let cur = super::parse_i64(&value).ok_or(Error::NotANumber)?;
        let next = cur.checked_add(delta).ok_or(Error::Overflow)?;
        let text = next.to_string();
        let put = Put {
            keep_ttl: true,
            ..Put::new(text.as_bytes(), ValueKind::Str, 0, SetMode::Upsert, evict, now)
        };
        self.set_in_store(k, put)?;
        Ok(next)
    }
}

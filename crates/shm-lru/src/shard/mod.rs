//! The cache algorithm on one shard: lookups with lazy expiry, insert/update/remove, lazy
//! promotion and eviction with second chances, expiry, eviction by age. Nothing here locks, maps
//! or calls the system; every function that changes the shard assumes its caller holds the
//! shard's lock, except the one store a lock-free reader makes (`cache/read.rs`).
//!
//! # Recency
//!
//! The recency list is ordered by the time each entry was *linked* at its place (inserted or
//! promoted). A use records its time in the slot's use word (a lock-free hit: the end of the
//! shard's grain, see `grain_mask` in `cache/read.rs`) and marks the entry "used since linked"; it
//! moves the entry to the head only when the entry was linked at least R ms ago (R = the shard's
//! refresh interval), and then only if the shard's lock is free at once. R adapts: it grows (at
//! least doubling, up to 64-fold in one window) while promotions exceed [`PROMOTIONS_PER_SEC`] and
//! halves while they are well below, from 0 (a strict LRU) up to [`MAX_REFRESH_MS`]. Eviction takes
//! the tail unless it was used since linked and either recently (within R) or long after it was
//! linked (a promotion that found the lock taken): such an entry gets a second chance at the head
//! instead.
//!
//! What follows (docs/DESIGN.md has the argument): eviction by age never takes an entry used at
//! or after the cutoff and takes entries oldest-used first; of two entries whose last uses are
//! more than 2R apart, a full shard evicts the older first; entries listed in recency order are
//! sorted by their real last-use times.
//!
//! # Write order
//!
//! So that a process killed at any instruction leaves slots that recovery can classify, a slot's
//! flags get `writing` before its key, lengths or data change and lose it only after (a rewrite
//! in place clears it with the slot's rewrite generation moved on), and a slot's flags are
//! cleared (in the same bucket write window that empties its entry) before it joins the free
//! list.
//!
//! # Where each step is
//!
//! - this file: the algorithm: find, set, update in place, remove, promote, evict, purge;
//! - `index.rs`: lookups in the index, and the bucket write windows that change it;
//! - `list.rs`: the recency and free lists, and the bounded walk along them;
//! - `recover.rs`: the rebuild from the slots after a lock holder died;
//! - `invariants.rs`: the invariant checker;
//! - `view.rs`: the view of one shard's bytes, and the primitives that reach them atomically;
//! - `header.rs`: the shard header's fields: list ends, counts, counters, refresh interval;
//! - `bucket.rs`: the bucket words, through [`BucketPtr`];
//! - `slot.rs`: a slot's fields and the copying of its data, through [`SlotPtr`], and the
//!   shard's undo record for a rewrite in place;
//! - `use_word.rs`: the packing of a slot's use word.
//!
//! The lock-free read of a shard is with the rest of the read, in `cache/read.rs`.

mod bucket;
mod grow;
mod header;
mod index;
mod invariants;
mod list;
mod recover;
mod slot;
mod store;
mod use_word;
mod view;

pub(crate) use bucket::{buckets_within, home_of, BucketPtr};
pub(crate) use index::Found;
use index::Home;
pub(crate) use invariants::check_shard;
pub(crate) use list::Toward;
use slot::vlen_flags_word;
pub(crate) use slot::{SlotMeta, SlotPtr};
pub(crate) use use_word::Use;
pub(crate) use view::Shard;

use crate::error::{Error, Result};
use crate::key::{spread_stored, Key, KeyRef};
use crate::layout::{shard_header, F_BYTES_KEY, F_OCCUPIED, F_STR_VALUE, F_WRITING};
use crate::options::{SetMode, ValueKind};
use std::collections::BinaryHeap;
use std::sync::atomic::{fence, Ordering::Relaxed, Ordering::Release};

/// Promotions a shard allows itself per second before it lengthens its refresh interval.
pub const PROMOTIONS_PER_SEC: u64 = 20_000;
/// The longest refresh interval, ms.
pub const MAX_REFRESH_MS: u32 = 120_000;
/// Length of the window over which the promotion rate is measured, ms.
const WINDOW_MS: u64 = 100;
/// Promotions a window allows: once they are spent the window closes early, so that a busy
/// shard (a new one, whose interval starts at 0) lengthens its interval within a few
/// milliseconds instead of promoting on every read for whole windows.
const WINDOW_BUDGET: u64 = PROMOTIONS_PER_SEC * WINDOW_MS / 1000;

impl ValueKind {
    pub(crate) fn from_flags(flags: u8) -> ValueKind {
        if flags & F_STR_VALUE != 0 {
            ValueKind::Str
        } else {
            ValueKind::Bytes
        }
    }
}

/// A located key: its stored word and spread hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hashed<'a> {
    pub key: KeyRef<'a>,
    pub word: u64,
    pub hash: u64,
}

impl<'a> Hashed<'a> {
    #[inline]
    pub(crate) fn new(key: KeyRef<'a>) -> Hashed<'a> {
        let word = key.word();
        let hash = key.spread(word);
        Hashed { key, word, hash }
    }
}

/// What a write stores, and how: the arguments of [`Shard::set`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Put<'v> {
    pub value: &'v [u8],
    pub kind: ValueKind,
    /// Expiry of an inserted entry (and of an overwritten one unless `keep_ttl`), epoch ms;
    /// 0 = never.
    pub expires: u64,
    pub mode: SetMode,
    /// Whether a full shard evicts (else the write is refused with `Full`).
    pub evict: bool,
    pub now: u64,
    /// An overwrite keeps the entry's expiry (lru-cache's `noUpdateTTL`).
    pub keep_ttl: bool,
}

impl<'v> Put<'v> {
    /// A write of `value` that sets the expiry of an overwritten entry too.
    pub(crate) fn new(
        value: &'v [u8],
        kind: ValueKind,
        expires: u64,
        mode: SetMode,
        evict: bool,
        now: u64,
    ) -> Put<'v> {
        Put {
            value,
            kind,
            expires,
            mode,
            evict,
            now,
            keep_ttl: false,
        }
    }
}

/// What `set` did.
pub(crate) struct Inserted {
    pub id: u32,
    pub inserted: bool,
    pub evicted: bool,
}

/// An entry of this shard, copied out.
pub(crate) struct CopiedEntry {
    pub id: u32,
    pub key: Key,
    pub value: Vec<u8>,
    pub kind: ValueKind,
    pub used: u64,
    pub expires: u64,
    pub share: u32,
}

/// The flags of a whole entry of `key` holding a value of `kind`.
#[inline]
fn flags_for(key: &KeyRef<'_>, kind: ValueKind) -> u8 {
    let mut flags = F_OCCUPIED;
    if key.is_bytes() {
        flags |= F_BYTES_KEY;
    }
    if kind == ValueKind::Str {
        flags |= F_STR_VALUE;
    }
    flags
}

/// Whether an entry with expiry `expires` (0 = never) has expired at `now`.
#[inline]
pub(crate) fn expired(expires: u64, now: u64) -> bool {
    expires != 0 && expires <= now
}

impl Shard<'_> {
    /// Whether slot `id` holds an entry now: handed out since the shard was last cleared, and
    /// occupied. (`clear` forgets slots by lowering the handed-out mark and leaves their flags
    /// as they were, so the flag alone does not say.)
    pub(crate) fn holds_entry(&self, id: u32) -> bool {
        id != 0 && id <= self.handed_out() && self.flags(id) & F_OCCUPIED != 0
    }

    /// Spread hash of what slot `id` stores.
    pub(crate) fn stored_hash(&self, id: u32) -> u64 {
        let m = self.meta(id);
        spread_stored(m.key, m.flags & F_BYTES_KEY != 0)
    }

    /// The live entry of `k`; an expired one is reclaimed and reported absent.
    pub(crate) fn find_live(&self, k: &Hashed<'_>, now: u64) -> Option<Found> {
        let f = self.lookup(k)?;
        if expired(self.meta(f.id).expires, now) {
            self.remove_found(f, k.hash);
            self.bump(shard_header::EXPIRATIONS);
            return None;
        }
        Some(f)
    }

    /// Takes an entry out of the index and the recency list and frees its slot.
    pub(crate) fn remove_found(&self, f: Found, h: u64) {
        if self.budget() {
            self.forget_record(f.id);
        }
        let odd = self.begin_write(f.bucket);
        self.entry(f.bucket, f.pos).store(0, Relaxed);
        self.set_vlen_flags(f.id, 0, 0);
        self.end_write(f.bucket, odd);
        self.unspill(h, f.dist);
        self.unlink(f.id);
        self.push_free(f.id);
        self.set_len(self.len().saturating_sub(1));
        self.cache_len().fetch_sub(1, Relaxed);
    }

    /// Removes the entry in slot `id` (which must be listed), wherever the index has it.
    pub(crate) fn remove_slot(&self, id: u32) {
        let h = self.stored_hash(id);
        match self.entry_of(id, h) {
            Some(f) => self.remove_found(f, h),
            None => {
                // The index lost it (damage `check` reports): free the slot all the same.
                if self.budget() {
                    self.forget_record(id);
                }
                self.set_vlen_flags(id, 0, 0);
                self.unlink(id);
                self.push_free(id);
                self.set_len(self.len().saturating_sub(1));
                self.cache_len().fetch_sub(1, Relaxed);
            }
        }
    }

    /// Moves `id` to the head as used now, and keeps the refresh interval in step with the
    /// promotion rate.
    pub(crate) fn promote(&self, id: u32, now: u64) {
        self.move_to_front(id);
        self.set_use(id, Use::linked_now(now));
        self.bump(shard_header::PROMOTIONS);
        let start = self.hdr64(shard_header::WINDOW_START).load(Relaxed);
        let n = self.hdr32(shard_header::WINDOW_PROMOTIONS);
        let count = n.load(Relaxed) as u64 + 1;
        if now < start || now - start >= WINDOW_MS || count > WINDOW_BUDGET {
            let elapsed = now.saturating_sub(start).max(1);
            let rate = count * 1000 / elapsed;
            let r = self.refresh_ms() as u32;
            if now >= start && rate > PROMOTIONS_PER_SEC {
                // Grow in proportion to the excess (at least doubling), so that a cache that
                // turns busy stops moving entries on most reads within a few windows.
                let factor = (rate / PROMOTIONS_PER_SEC).clamp(2, 64) as u32;
                self.set_refresh_ms(r.max(1).saturating_mul(factor).clamp(1, MAX_REFRESH_MS));
            } else if rate < PROMOTIONS_PER_SEC / 4 && r > 0 {
                self.set_refresh_ms(r / 2);
            }
            self.hdr64(shard_header::WINDOW_START).store(now, Relaxed);
            n.store(0, Relaxed);
        } else {
            n.store(count as u32, Relaxed);
        }
    }

    /// Records a use of listed entry `id` at `now` by a holder of the lock (a writer, or a get
    /// that took the lock): nothing if one is recorded for this millisecond already, else a
    /// promotion if it was linked at least R ago, else the use stored.
    #[inline]
    pub(crate) fn record_use(&self, id: u32, now: u64) {
        let raw = self.use_word(id).load(Relaxed);
        if Use::recorded(raw, now) {
            // Used this millisecond already: nothing to add (an entry due for a move then is
            // left to eviction's second chance, as a reader's would be).
            return;
        }
        let u = Use::unpack(raw);
        if now >= u.linked.saturating_add(self.refresh_ms()) {
            self.promote(id, now);
        } else {
            self.set_use(id, u.used_at(now));
        }
    }

    /// Evicts one entry to make room: the tail, after giving a second chance (a move to the
    /// head) to tail entries used since they were linked, recently or long after their link.
    /// Returns the freed slot id.
    pub(crate) fn evict_one(&self, now: u64) -> Option<u32> {
        let r = self.refresh_ms();
        let mut chances = self.len();
        loop {
            let t = self.tail();
            if t == 0 {
                return None;
            }
            let u = self.use_of(t);
            let recent = now < u.used.saturating_add(r);
            let late = u.used >= u.linked.saturating_add(r);
            if chances > 0 && u.referenced && (recent || late) {
                chances -= 1;
                self.move_to_front(t);
                self.set_use(
                    t,
                    Use {
                        used: u.used,
                        referenced: false,
                        linked: now.max(u.used),
                    },
                );
                continue;
            }
            self.remove_slot(t);
            self.bump(shard_header::EVICTIONS);
            return Some(t);
        }
    }

    /// Reclaims every expired entry; returns how many.
    pub(crate) fn purge_expired(&self, now: u64) -> u64 {
        if now < self.earliest_expiry() {
            return 0;
        }
        let mut n = 0;
        let mut earliest = u64::MAX;
        for id in self.walk(self.head(), Toward::Tail) {
            let e = self.meta(id).expires;
            if expired(e, now) {
                self.remove_slot(id);
                self.bump(shard_header::EXPIRATIONS);
                n += 1;
            } else if e != 0 {
                earliest = earliest.min(e);
            }
        }
        self.set_earliest_expiry(earliest);
        n
    }

    /// Forgets every entry; returns how many there were.
    pub(crate) fn clear(&self) -> u64 {
        let len = self.len() as u64;
        let windows: Vec<u32> = (0..self.nbuckets()).map(|b| self.begin_write(b)).collect();
        // Forget every slot first, so that a crash part-way leaves an empty shard.
        self.set_handed_out(0);
        self.set_len(0);
        self.set_head(0);
        self.set_tail(0);
        self.set_free_head(0);
        self.clear_buckets();
        self.set_earliest_expiry(u64::MAX);
        if self.budget() {
            self.clear_store();
        }
        for (b, odd) in windows.into_iter().enumerate() {
            self.end_write(b as u32, odd);
        }
        self.cache_len().fetch_sub(len, Relaxed);
        self.add(shard_header::REMOVES, len);
        len
    }

    /// A slot for a new entry while the cache holds fewer than its capacity: a free one, else
    /// one freed by reclaiming expired entries, else (if `evict`) one freed by eviction.
    fn take_slot(&self, evict: bool, now: u64) -> Result<(u32, bool)> {
        let full = || self.cache_len().load(Relaxed) >= self.limit();
        if !full() {
            if let Some(id) = self.pop_free() {
                return Ok((id, false));
            }
        }
        if self.purge_expired(now) > 0 && !full() {
            if let Some(id) = self.pop_free() {
                return Ok((id, false));
            }
        }
        if !evict {
            return Err(Error::Full);
        }
        if self.evict_one(now).is_none() {
            // The other shards hold every entry the capacity allows and this one holds none:
            // go over the capacity rather than refuse in an evicting cache.
            return self.pop_free().map(|id| (id, false)).ok_or(Error::Full);
        }
        Ok((self.pop_free().ok_or(Error::Full)?, true))
    }

    /// Inserts or overwrites `k` as `p` says.
    pub(crate) fn set(&self, k: &Hashed<'_>, p: Put<'_>) -> Result<Inserted> {
        if self.budget() {
            return self.set_in_store(k, p);
        }
        let (value, expires, now) = (p.value, p.expires, p.now);
        let kb = k.key.bytes();
        let size = kb.len() as u64 + value.len() as u64;
        if size > self.record_size() as u64 {
            return Err(Error::ValueTooLarge {
                size,
                max: self.record_size() as u64,
            });
        }
        let flags = flags_for(&k.key, p.kind);
        if let Some(f) = self.find_live(k, now) {
            if p.mode == SetMode::Add {
                return Err(Error::KeyExists);
            }
            self.overwrite(f, kb, value, flags, (!p.keep_ttl).then_some(expires), now);
            self.bump(shard_header::UPDATES);
            return Ok(Inserted {
                id: f.id,
                inserted: false,
                evicted: false,
            });
        }
        if p.mode == SetMode::Replace {
            return Err(Error::KeyNotFound);
        }
        let (id, evicted) = self.take_slot(p.evict, now)?;
        self.insert(id, evicted, k, kb.len() as u16, kb, value, flags, expires, now)
    }

    /// Makes free slot `id` the entry of `k`: key length `klen`, data `kb` then `value` (in a
    /// cache with a byte budget, no key bytes and the record's position), indexed and at the
    /// head of the recency list. Lock held.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        id: u32,
        evicted: bool,
        k: &Hashed<'_>,
        klen: u16,
        kb: &[u8],
        value: &[u8],
        flags: u8,
        expires: u64,
        now: u64,
    ) -> Result<Inserted> {
        let Some((b, pos, _)) = self.place(k.hash) else {
            self.push_free(id);
            return Err(Error::Full);
        };
        let odd = self.begin_write(b);
        self.set_vlen_flags(id, value.len() as u32, flags | F_WRITING);
        self.set_expiry_key_len(id, expires, klen);
        self.set_key_word(id, k.word);
        self.set_share(id, 0);
        self.write_data(id, kb, value);
        self.set_use(id, Use::linked_now(now));
        self.set_vlen_flags(id, value.len() as u32, flags);
        if self.budget() {
            self.hint_new_entry(self.bucket(b), pos, value);
        }
        self.entry(b, pos).store(self.entry_for(id, k.hash), Relaxed);
        self.end_write(b, odd);
        self.push_front(id);
        self.set_len(self.len() + 1);
        self.cache_len().fetch_add(1, Relaxed);
        if expires != 0 && expires < self.earliest_expiry() {
            self.set_earliest_expiry(expires);
        }
        self.bump(shard_header::INSERTS);
        Ok(Inserted {
            id,
            inserted: true,
            evicted,
        })
    }

    /// The common update, without the general path's second looks: a key whose entry is in
    /// its home bucket and live gets `value` in place and is marked used. `expires: None` keeps
    /// the current expiry. Returns the slot id, or `None` when the general path
    /// ([`set`](Self::set)) must decide. Lock held.
    #[inline]
    pub(crate) fn update_in_place(
        &self,
        k: &Hashed<'_>,
        value: &[u8],
        kind: ValueKind,
        expires: Option<u64>,
        now: u64,
    ) -> Option<u32> {
        let kb = k.key.bytes();
        if self.budget() || kb.len() + value.len() > self.record_size() as usize {
            return None;
        }
        let f = self.find_home(k)?;
        // A byte key's length was matched by the lookup; an integer key takes no data bytes.
        if f.meta.klen as usize != kb.len() || expired(f.meta.expires, now) {
            return None;
        }
        self.rewrite(&f, kb, value, flags_for(&k.key, kind), expires, now);
        self.bump(shard_header::UPDATES);
        Some(f.id)
    }

    /// Rewrites the value of a live entry in place and marks it used. `expires: None` keeps the
    /// current expiry.
    fn overwrite(&self, f: Found, kb: &[u8], value: &[u8], flags: u8, expires: Option<u64>, now: u64) {
        self.rewrite(&self.home_of(f), kb, value, flags, expires, now);
    }

    /// The addresses and fields of the entry at `f`, for a rewrite.
    fn home_of(&self, f: Found) -> Home<'_> {
        let slot = self.slot(f.id);
        Home {
            bucket: self.bucket(f.bucket),
            pos: f.pos,
            id: f.id,
            slot,
            meta: self.meta_at(slot),
        }
    }

    /// [`overwrite`](Self::overwrite) of the entry at `f`, whose addresses and fields the
    /// lookup gave.
    #[inline(always)]
    fn rewrite(&self, f: &Home<'_>, kb: &[u8], value: &[u8], flags: u8, expires: Option<u64>, now: u64) {
        self.rewrite_fields(f, kb, value, flags, expires);
        self.record_use(f.id, now);
    }

    /// The stores of [`rewrite`](Self::rewrite).
    #[inline(always)]
    fn rewrite_fields(&self, f: &Home<'_>, kb: &[u8], value: &[u8], flags: u8, expires: Option<u64>) {
        let exp = expires.unwrap_or(f.meta.expires);
        // The slot's own window: `writing` set, then the fields and data, then `writing`
        // cleared with the generation moved on. Readers compare the word before and after
        // their copy; when the generation wraps to 0 (every 16th rewrite of the slot), the
        // bucket's window is opened too, so that 16 rewrites cannot pass for none.
        let gen = f.meta.gen.wrapping_add(1) & 0x0f;
        let odd = (gen == 0).then(|| self.begin_write_at(f.bucket));
        // The old contents first, so that a holder killed mid-rewrite leaves the old value to
        // recovery rather than no entry.
        self.save_undo(f.id, f.slot, &f.meta);
        let open = vlen_flags_word(f.meta.vlen, f.meta.flags | F_WRITING, f.meta.gen);
        self.store_vlen_flags_at(f.slot, open, Relaxed);
        // Readers that see any store below also see `writing` (or a later word).
        fence(Release);
        if kb.is_empty() {
            self.write_words_at(f.slot, value);
        } else {
            self.write_data(f.id, kb, value);
        }
        self.set_expiry_key_len_at(f.slot, exp, f.meta.klen);
        self.store_vlen_flags_at(f.slot, vlen_flags_word(value.len() as u32, flags, gen), Release);
        self.drop_undo();
        if let Some(odd) = odd {
            self.end_write_at(f.bucket, odd);
        }
        if exp != 0 && exp < self.earliest_expiry() {
            self.set_earliest_expiry(exp);
        }
    }

    /// Sets a live entry's expiry (0 = never), keeping its value. Lock held.
    pub(crate) fn set_expiry(&self, f: Found, expires: u64) {
        let m = self.meta(f.id);
        let odd = self.begin_write(f.bucket);
        self.set_expiry_key_len(f.id, expires, m.klen);
        if self.budget() {
            // Readers take the expiry from the record's header.
            self.set_record_expiry(f.id, expires);
        }
        self.end_write(f.bucket, odd);
        if expires != 0 && expires < self.earliest_expiry() {
            self.set_earliest_expiry(expires);
        }
    }

    /// Adds `delta` to a decimal integer value, creating it as `delta` when absent.
    pub(crate) fn incr(
        &self,
        k: &Hashed<'_>,
        delta: i64,
        expires: u64,
        evict: bool,
        now: u64,
    ) -> Result<i64> {
        if let Some(f) = self.find_live(k, now) {
            if self.budget() {
                return self.incr_stored(k, f, delta, expires, evict, now);
            }
            let m = self.meta(f.id);
            let mut cur = vec![0u8; m.vlen as usize];
            self.read_data(f.id, m.klen as usize, &mut cur);
            let cur = parse_i64(&cur).ok_or(Error::NotANumber)?;
            let next = cur.checked_add(delta).ok_or(Error::Overflow)?;
            let text = next.to_string();
            let size = m.klen as u64 + text.len() as u64;
            if size > self.record_size() as u64 {
                return Err(Error::ValueTooLarge {
                    size,
                    max: self.record_size() as u64,
                });
            }
            let flags = (m.flags & F_BYTES_KEY) | F_OCCUPIED | F_STR_VALUE;
            self.overwrite(f, k.key.bytes(), text.as_bytes(), flags, None, now);
            self.bump(shard_header::UPDATES);
            return Ok(next);
        }
        let text = delta.to_string();
        let put = Put::new(text.as_bytes(), ValueKind::Str, expires, SetMode::Add, evict, now);
        self.set(k, put)?;
        Ok(delta)
    }

    /// The value bytes of listed slot `id`, whose fields are `m`; `None` for a budget entry
    /// whose record is not whole in the store or disagrees with the slot (a damaged shard,
    /// which `check` reports and `repair` drops), which every read takes for no entry rather
    /// than make up a value.
    pub(crate) fn value_of(&self, id: u32, m: &SlotMeta) -> Option<Vec<u8>> {
        if self.budget() {
            return self.store_value_of(id);
        }
        let room = (self.record_size() as usize).saturating_sub(m.klen as usize);
        let mut v = vec![0u8; (m.vlen as usize).min(room)];
        self.read_data(id, m.klen as usize, &mut v);
        Some(v)
    }

    /// The key of listed slot `id`.
    pub(crate) fn key_of(&self, id: u32, m: &SlotMeta) -> Key {
        if m.flags & F_BYTES_KEY != 0 && self.budget() {
            Key::Bytes(self.store_key(id))
        } else if m.flags & F_BYTES_KEY != 0 {
            let mut b = vec![0u8; (m.klen as usize).min(self.record_size() as usize)];
            self.read_data(id, 0, &mut b);
            Key::Bytes(b)
        } else {
            Key::Hash(m.key)
        }
    }

    /// Slot `id`'s entry, copied out; `None` for a budget entry whose record is damaged
    /// ([`value_of`](Self::value_of)).
    pub(crate) fn copy(&self, id: u32) -> Option<CopiedEntry> {
        let m = self.meta(id);
        Some(CopiedEntry {
            id,
            value: self.value_of(id, &m)?,
            key: self.key_of(id, &m),
            kind: ValueKind::from_flags(m.flags),
            used: self.use_of(id).used,
            expires: m.expires,
            share: self.share(id),
        })
    }

    /// The live entries (optionally only those with `share`), in list order from the head.
    pub(crate) fn live_entries(&self, now: u64, share: Option<u32>) -> Vec<CopiedEntry> {
        let mut out = Vec::new();
        for id in self.walk(self.head(), Toward::Tail) {
            let m = self.meta(id);
            if !expired(m.expires, now) && share.is_none_or(|s| self.share(id) == s) {
                out.extend(self.copy(id));
            }
        }
        out
    }

    /// Up to `max` entries used before `cutoff`, oldest-used first, as (time of last use, slot
    /// id). Walks from the tail only as far as an older-used entry can still be.
    pub(crate) fn used_before(&self, cutoff: u64, max: usize) -> Vec<(u64, u32)> {
        if max == 0 {
            return Vec::new();
        }
        let r = self.refresh_ms();
        let mut heap: BinaryHeap<(u64, u32)> = BinaryHeap::new();
        for id in self.walk(self.tail(), Toward::Head) {
            let u = self.use_of(id);
            // Every entry nearer the head was linked later and was used no earlier than R
            // before it was linked.
            let floor = u.linked.saturating_sub(r);
            if floor >= cutoff {
                break;
            }
            if heap.len() == max && heap.peek().is_some_and(|&(worst, _)| floor >= worst) {
                break;
            }
            if u.used < cutoff {
                heap.push((u.used, id));
                if heap.len() > max {
                    heap.pop();
                }
            }
        }
        let mut v = heap.into_vec();
        v.sort_unstable();
        v
    }
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse::<i64>().ok()
}

//! The cache algorithm on one shard whose lock the caller holds: lookups with lazy expiry,
//! insert/update/evict, counters. Nothing here locks, maps or calls the system.
//!
//! Writes follow one order so that a process killed at any instruction leaves slots that
//! recovery (`recover.rs`) can classify: a slot's flags are set to "occupied | writing" before
//! its key or value bytes change and lose "writing" only after, and a slot is marked free
//! (flags 0) before it is threaded onto the free list.

use crate::error::{Error, Result};
use crate::key::{spread_stored, KeyRef};
use crate::layout::{shd, F_BYTES_KEY, F_OCCUPIED, F_STR_VALUE, F_WRITING};
use crate::slots::ShardView;

/// What `set` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetMode {
    /// Insert or overwrite.
    #[default]
    Upsert,
    /// Insert only; [`Error::KeyExists`] if present.
    Add,
    /// Overwrite only; [`Error::KeyNotFound`] if absent.
    Replace,
}

/// How a value was stored, so that it can be handed back as the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueKind {
    /// Raw bytes.
    #[default]
    Bytes,
    /// A UTF-8 string.
    Str,
}

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
#[derive(Clone, Copy)]
pub(crate) struct Hashed<'a> {
    pub key: KeyRef<'a>,
    pub word: u64,
    pub h: u64,
}

impl<'a> Hashed<'a> {
    #[inline]
    pub(crate) fn new(key: KeyRef<'a>) -> Hashed<'a> {
        let word = key.word();
        let h = key.spread(word);
        Hashed { key, word, h }
    }
}

pub(crate) struct Inserted {
    pub id: u32,
    pub inserted: bool,
    pub evicted: bool,
}

impl ShardView {
    /// Spread hash of what slot `id` stores.
    pub(crate) fn stored_hash(&self, id: u32) -> u64 {
        let m = self.meta(id);
        spread_stored(m.key, m.flags & F_BYTES_KEY != 0)
    }

    /// The live slot for `k`; an expired entry is reclaimed and reported absent.
    #[inline]
    pub(crate) fn find_live(&self, k: &Hashed<'_>, now: u64) -> Option<u32> {
        let id = self.lookup(&k.key, k.word, k.h)?;
        if self.expired(id, now) {
            self.remove_entry(id, k.h);
            self.bump(shd::EXPIRATIONS);
            return None;
        }
        Some(id)
    }

    #[inline]
    pub(crate) fn expired(&self, id: u32, now: u64) -> bool {
        let e = self.meta(id).expires;
        e != 0 && e <= now
    }

    /// Marks `id` used now.
    #[inline]
    pub(crate) fn touch(&self, id: u32, now: u64) {
        self.prefetch_neighbours(id);
        self.set_used(id, now);
        self.move_to_front(id);
    }

    /// Starts fetching the list neighbours that moving `id` to the front will write, so that
    /// those misses overlap the work done before the move (nothing when `id` is the head).
    #[inline]
    fn prefetch_neighbours(&self, id: u32) {
        if self.head() != id {
            self.prefetch_links(self.prev(id));
            self.prefetch_links(self.next(id));
        }
    }

    /// Takes an entry out of the index and the recency list and frees its slot.
    pub(crate) fn remove_entry(&self, id: u32, h: u64) {
        // The bucket chain walk and the two list neighbours are independent cache misses in a
        // large shard: start them together rather than one after the other.
        crate::sys::prefetch(self.bucket_ptr(self.bucket_of(h)));
        self.prefetch_links(self.prev(id));
        self.prefetch_links(self.next(id));
        self.index_remove(id, h);
        self.unlink(id);
        self.push_free(id);
        self.set_len(self.len().saturating_sub(1));
    }

    /// Evicts the least recently used entry; returns its (now free) slot id.
    pub(crate) fn evict_lru(&self) -> Option<u32> {
        let t = self.tail();
        if t == 0 {
            return None;
        }
        let h = self.stored_hash(t);
        self.remove_entry(t, h);
        self.bump(shd::EVICTIONS);
        Some(t)
    }

    /// Inserts or overwrites. `expires` is a relative time (0 = never).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set(
        &self,
        k: &Hashed<'_>,
        value: &[u8],
        kind: ValueKind,
        expires: u64,
        mode: SetMode,
        evict: bool,
        now: u64,
    ) -> Result<Inserted> {
        let kb = k.key.bytes();
        let size = kb.len() as u64 + value.len() as u64;
        if size > self.record_size() as u64 {
            return Err(Error::ValueTooLarge {
                size,
                max: self.record_size() as u64,
            });
        }
        let mut flags = F_OCCUPIED;
        if k.key.is_bytes() {
            flags |= F_BYTES_KEY;
        }
        if kind == ValueKind::Str {
            flags |= F_STR_VALUE;
        }
        if let Some(id) = self.find_live(k, now) {
            if mode == SetMode::Add {
                return Err(Error::KeyExists);
            }
            self.overwrite(id, value, flags, Some(expires), now);
            self.bump(shd::UPDATES);
            return Ok(Inserted {
                id,
                inserted: false,
                evicted: false,
            });
        }
        if mode == SetMode::Replace {
            return Err(Error::KeyNotFound);
        }
        let mut evicted = false;
        let id = match self.pop_free() {
            Some(id) => id,
            None if evict => {
                self.evict_lru().ok_or(Error::Full)?;
                evicted = true;
                self.pop_free().ok_or(Error::Full)?
            }
            None => return Err(Error::Full),
        };
        self.set_exp_klen_flags(id, expires, kb.len() as u16, flags | F_WRITING);
        self.set_key_word(id, k.word);
        self.set_share(id, 0);
        self.write_data(id, kb, value);
        self.set_used_vlen(id, now, value.len() as u32);
        self.set_flags(id, flags);
        self.index_insert(id, k.h);
        self.push_front(id);
        self.set_len(self.len() + 1);
        self.bump(shd::INSERTS);
        Ok(Inserted {
            id,
            inserted: true,
            evicted,
        })
    }

    /// Rewrites the value of a live slot in place and marks it used. `expires: None` keeps the
    /// current expiry.
    pub(crate) fn overwrite(&self, id: u32, value: &[u8], flags: u8, expires: Option<u64>, now: u64) {
        self.prefetch_neighbours(id);
        let m = self.meta(id);
        let exp = expires.unwrap_or(m.expires);
        self.set_exp_klen_flags(id, exp, m.klen, flags | F_WRITING);
        self.write_value(id, m.klen, value);
        self.set_used_vlen(id, now, value.len() as u32);
        self.set_flags(id, flags);
        self.move_to_front(id);
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
        if let Some(id) = self.find_live(k, now) {
            let m = self.meta(id);
            let cur = parse_i64(self.value_bytes(id, m.klen, m.vlen)).ok_or(Error::NotANumber)?;
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
            self.overwrite(id, text.as_bytes(), flags, None, now);
            self.bump(shd::UPDATES);
            return Ok(next);
        }
        let text = delta.to_string();
        self.set(
            k,
            text.as_bytes(),
            ValueKind::Str,
            expires,
            SetMode::Add,
            evict,
            now,
        )?;
        Ok(delta)
    }
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse::<i64>().ok()
}

//! Writes: set (an update in place under the lock, else the general path), incr, touch,
//! expiry and remove.

use super::Cache;
use crate::error::{Error, Result};
use crate::key::KeyRef;
use crate::layout::shard_header;
use crate::lock::ShardGuard;
use crate::options::{SetMode, SetOptions, SetOutcome};
use crate::shard::{BucketPtr, Hashed, Put, Shard};
use crate::sys;
use std::sync::atomic::Ordering;

impl Cache {
    /// Stores `value` under `key` as `opts` says.
    #[inline]
    pub fn set<'k>(&self, key: impl Into<KeyRef<'k>>, value: &[u8], opts: &SetOptions) -> Result<SetOutcome> {
        let key = key.into();
        if key.bytes().len() > u16::MAX as usize {
            return Err(Error::KeyTooLarge(key.bytes().len()));
        }
        let k = Hashed::new(key);
        let s = self.shard_of(k.hash);
        let shard = self.shard(s);
        sys::prefetch_write(shard.mutex());
        shard.prefetch_for_write(self.home_bucket(s, k.hash), &k);
        let now = self.now_ms();
        let expires = self.expires_for(opts.ttl_ms, now);
        let g = self.lock(s)?;
        if opts.mode != SetMode::Add {
            let new_expiry = (!opts.keep_ttl).then_some(expires);
            if let Some(id) = g.update_in_place(&k, value, opts.kind, new_expiry, now) {
                return Ok(SetOutcome {
                    slot: self.global(s, id),
                    inserted: false,
                    evicted: false,
                });
            }
        }
        self.set_general(g, &k, s, value, opts, expires, now)
    }

    /// The rest of [`set`](Self::set) when the key is not live in its home bucket, or the
    /// mode is `Add`: insert, evict or refuse, under the lock `g` of shard `s`.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn set_general(
        &self,
        g: ShardGuard<'_>,
        k: &Hashed<'_>,
        s: u32,
        value: &[u8],
        opts: &SetOptions,
        expires: u64,
        now: u64,
    ) -> Result<SetOutcome> {
        let evict = self.params.evict();
        let put = Put {
            keep_ttl: opts.keep_ttl,
            ..Put::new(value, opts.kind, expires, opts.mode, evict, now)
        };
        let set = |g: &ShardGuard<'_>| g.set(k, put);
        let mut r = set(&g);
        drop(g);
        if matches!(r, Err(Error::Full)) && !evict && self.resync_live() {
            // The shared count had drifted (a process died between a shard's count and it).
            r = set(&self.lock(s)?);
        }
        let r = r?;
        Ok(SetOutcome {
            slot: self.global(s, r.id),
            inserted: r.inserted,
            evicted: r.evicted,
        })
    }

    /// Sets the shared count of entries to the sum of the shards' counts, which a process that
    /// died between updating one and the other leaves apart; returns whether there is room.
    fn resync_live(&self) -> bool {
        let sum: u64 = (0..self.params.geo.shards)
            .map(|s| self.shard(s).len() as u64)
            .sum();
        let was = self.live_count().swap(sum, Ordering::Relaxed);
        was != sum && sum < self.params.capacity
    }

    /// Stores bytes under `key` with default options; returns the slot id.
    pub fn put<'k>(&self, key: impl Into<KeyRef<'k>>, value: &[u8]) -> Result<u32> {
        self.set(key, value, &SetOptions::default()).map(|o| o.slot)
    }

    /// Adds `delta` to the decimal integer stored under `key` and returns the result; an absent
    /// key starts from 0. The value is stored as a string. [`Error::NotANumber`] if the value is
    /// not a decimal integer, [`Error::Overflow`] past `i64`.
    pub fn incr<'k>(&self, key: impl Into<KeyRef<'k>>, delta: i64, ttl_ms: Option<u64>) -> Result<i64> {
        let key = key.into();
        if key.bytes().len() > u16::MAX as usize {
            return Err(Error::KeyTooLarge(key.bytes().len()));
        }
        let k = Hashed::new(key);
        let now = self.now_ms();
        let expires = self.expires_for(ttl_ms, now);
        let s = self.shard_of(k.hash);
        let r = self.lock(s)?.incr(&k, delta, expires, self.params.evict(), now);
        if matches!(r, Err(Error::Full)) && !self.params.evict() && self.resync_live() {
            return self.lock(s)?.incr(&k, delta, expires, self.params.evict(), now);
        }
        r
    }

    /// When `key` expires: `None` if absent, `Some(None)` if it never does, else the epoch-ms
    /// time. Does not mark it used.
    pub fn expiry_of<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Option<u64>>> {
        let k = Hashed::new(key.into());
        let now = self.now_ms();
        let g = self.lock(self.shard_of(k.hash))?;
        Ok(g.find_live(&k, now).map(|f| {
            let e = g.meta(f.id).expires;
            (e != 0).then_some(e)
        }))
    }

    /// Marks `key` used and, with `ttl_ms`, gives it a new time to live from now (`Some(0)`:
    /// forever): lru-cache's `updateAgeOnGet`. Returns whether the key was present.
    pub fn touch<'k>(&self, key: impl Into<KeyRef<'k>>, ttl_ms: Option<u64>) -> Result<bool> {
        let k = Hashed::new(key.into());
        let now = self.now_ms();
        let g = self.lock(self.shard_of(k.hash))?;
        let Some(f) = g.find_live(&k, now) else {
            return Ok(false);
        };
        if let Some(t) = ttl_ms {
            g.set_expiry(f, self.expires_for(Some(t), now));
        }
        g.record_use(f.id, now);
        Ok(true)
    }

    /// Removes `key`. Returns whether it was present.
    pub fn remove<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        let k = Hashed::new(key.into());
        let now = self.now_ms();
        let g = self.lock(self.shard_of(k.hash))?;
        match g.find_live(&k, now) {
            Some(f) => {
                g.remove_found(f, k.hash);
                g.bump(shard_header::REMOVES);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl<'a> Shard<'a> {
    /// A hint before a write of `k` (whose home bucket is at `bp`), without the lock: asks for
    /// the lines of the slot its home bucket names under its tag (up to 256 bytes of it) in a
    /// state this core can write, so that an update finds them here once it holds the lock
    /// instead of fetching them, one after the other, while it holds it. Reads the bucket's
    /// entries only; a wrong guess costs a few prefetches.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self, bp: BucketPtr<'a>, k: &Hashed<'_>) {
        let m = self.matches_at(bp, self.tag_of(k.hash));
        if m == 0 {
            return;
        }
        let id = self.entry_id_at(bp, m.trailing_zeros() as usize);
        if id == 0 {
            return;
        }
        let slot = self.slot(id);
        let span = self.stride().min(256);
        let mut off = 0;
        while off < span {
            crate::sys::prefetch_write(slot.addr().wrapping_add(off));
            off += 64;
        }
        crate::sys::prefetch_write(slot.addr().wrapping_add(span - 1));
    }
}

//! The lock-free reader: finds a key through the index and validates what it copied with the
//! sequence number of the bucket that indexes it and the slot's own, as a seqlock reader does.
//!
//! A writer makes a bucket's sequence number odd before it changes the bucket's entries or the
//! key, lengths, flags or data of a slot indexed there, and even again after (`index.rs`). A
//! rewrite of a value in place leaves the bucket alone: it sets the slot's `writing` flag, and
//! clears it with the slot's rewrite generation moved on (and opens the bucket's window too
//! when that generation wraps to 0). A reader loads the bucket's number (acquire), then the
//! slot's `VLEN_FLAGS` word (acquire), reads with word-sized relaxed atomic loads, issues an
//! acquire fence and loads both again: if neither changed, nothing it read was being written
//! meanwhile, so the entry it copied was whole and indexed under that key at that moment. (The
//! same generation after a rewrite means 16 of them, one of which moved the bucket's number.)
//! Entries never move while their key stays, so a key present throughout a read is always
//! found. An odd number, a changed one, or a slot of the key mid-write makes the reader report
//! [`Probe::Unsure`]; the caller retries a few times, then takes the lock (which also repairs
//! the shard if a writer died mid-write). Every id read is range-checked and every loop is
//! bounded, so a reader never faults or spins, whatever bytes the region holds.
//!
//! A cache with a byte budget reads no slot: it follows the entry's record hint to the record
//! and validates with the bucket's number alone, because every change a reader could see there
//! happens inside the bucket's window (`probe_records`, `layout::hint`). The two kinds of cache
//! have their read path compiled apart (the `STORE` parameter).
//!
//! `Cache::read` tries once inline and hands anything unusual to `read_again`, out of line;
//! a hit counts itself and records its use, and may hand a promotion to the lock.

use super::Cache;
use crate::counters::Counter;
use crate::error::{Error, Result};
use crate::key::KeyRef;
use crate::layout::{bucket, hint, F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use crate::options::ValueKind;
use crate::shard::{expired, home_of, Hashed, Shard};
use crate::shard::{BucketPtr, SlotMeta, SlotPtr, Use};
use std::sync::atomic::Ordering;
use std::sync::atomic::{fence, AtomicU64, Ordering::Relaxed};

/// What a read does besides copying the value: a get counts a hit or a miss and records the
/// use; a peek does neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Get,
    Peek,
}

/// Optimistic attempts a read makes before it takes the lock.
const READ_TRIES: u32 = 4;

/// Where a read puts the value. Each kind of destination is its own type, so that every read
/// path is compiled for the one it serves.
trait Out {
    /// Room for `len` bytes, or `None` if the destination cannot hold them.
    fn room(&mut self, len: usize) -> Option<&mut [u8]>;
}

impl Out for Vec<u8> {
    #[inline]
    fn room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.clear();
        self.resize(len, 0);
        Some(&mut self[..])
    }
}

impl Out for [u8] {
    #[inline]
    fn room(&mut self, len: usize) -> Option<&mut [u8]> {
        self.get_mut(..len)
    }
}

/// Copy nothing (the caller wants only to know where the entry is).
struct Skip;

/// What taking a found entry gave.
enum Taken {
    /// The value's length and kind, and the entry's slot: the copy is valid.
    Copied(usize, ValueKind, u32),
    /// The destination has no room for the value's length (nothing copied).
    TooSmall(usize),
    /// A writer changed the bucket meanwhile: look again.
    Changed,
}

impl Out for Skip {
    #[inline]
    fn room(&mut self, _len: usize) -> Option<&mut [u8]> {
        Some(&mut [])
    }
}

impl Cache {
    /// The value of `key`, copied out; marks it used.
    pub fn get<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        let mut v = Vec::new();
        Ok(self.read(key.into(), Access::Get, &mut v)?.map(|_| v))
    }

    /// The value of `key` without marking it used.
    pub fn peek<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        let mut v = Vec::new();
        Ok(self.read(key.into(), Access::Peek, &mut v)?.map(|_| v))
    }

    /// Copies the value of `key` into `buf` and returns its length; marks it used.
    /// [`Error::BufferTooSmall`] (nothing copied) if it does not fit.
    #[inline(always)]
    pub fn get_into<'k>(
        &self,
        key: impl Into<KeyRef<'k>>,
        buf: &mut [u8],
    ) -> Result<Option<(usize, ValueKind)>> {
        Ok(self
            .read(key.into(), Access::Get, buf)?
            .map(|(n, kind, _)| (n, kind)))
    }

    /// Calls `f` with a copy of the value of `key`, and marks the entry used. Counts a hit or a
    /// miss.
    #[inline]
    pub fn get_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.with_copy(key.into(), Access::Get, f)
    }

    /// Like [`get_with`](Self::get_with) but neither marks the entry used nor counts.
    pub fn peek_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.with_copy(key.into(), Access::Peek, f)
    }

    /// Calls `f` with a validated copy of the value.
    fn with_copy<R>(
        &self,
        key: KeyRef<'_>,
        access: Access,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        let mut v = Vec::new();
        Ok(self.read(key, access, &mut v)?.map(|(_, kind, _)| f(&v, kind)))
    }

    /// Whether `key` is present (and not expired). Does not mark it used.
    pub fn contains<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        self.slot_of(key).map(|s| s.is_some())
    }

    /// The slot id holding `key`, if present.
    pub fn slot_of<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<u32>> {
        Ok(self
            .read(key.into(), Access::Peek, &mut Skip)?
            .map(|(_, _, slot)| slot))
    }

    /// Finds `key` and copies its value into `out`, without the lock when it can; a get
    /// also counts a hit or miss and records the use.
    ///
    /// The first lock-free attempt is inline; anything unusual (a writer busy on the bucket, a key
    /// that may be past its home bucket, an expired entry) goes to
    /// [`read_again`](Self::read_again), out of line.
    #[inline(always)]
    fn read<O: Out + ?Sized>(
        &self,
        key: KeyRef<'_>,
        access: Access,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let k = Hashed::new(key);
        let s = self.shard_of(k.hash);
        let shard = self.shard(s);
        // Every step is compiled for one kind of cache: the budget test is made once.
        if shard.budget() {
            if self.grows {
                self.read_in::<O, true, true>(k, s, shard, access, out)
            } else {
                self.read_in::<O, true, false>(k, s, shard, access, out)
            }
        } else {
            self.read_in::<O, false, false>(k, s, shard, access, out)
        }
    }

    /// [`read`](Self::read) in a shard with a value store (`STORE`) or without, whose index grows
    /// (`GROWS`, with a store) or not.
    #[inline(always)]
    fn read_in<O: Out + ?Sized, const STORE: bool, const GROWS: bool>(
        &self,
        k: Hashed<'_>,
        s: u32,
        shard: &Shard<'_>,
        access: Access,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        // In an index that grows, `seen` is the count of buckets in use the home was computed
        // with; what the look finds `stands` only if the shard header's count, loaded before
        // the bucket, is the same (and within its units), as if it had been loaded first and
        // used.
        let (bp, seen, stands) = if GROWS {
            self.home_in_store(s, k.hash)
        } else {
            (self.home_bucket_in::<STORE>(s, k.hash), 0, true)
        };
        if STORE {
            // The bucket's hint line is fetched beside it: a hit then fetches the record at
            // once, and no slot.
            shard.prefetch_hints(bp);
        }
        match shard.probe_home::<STORE>(bp, &k) {
            // A miss in an index that grew meanwhile (or before, unseen) may be a key that moved,
            // and a hit under a count other than the header's is not trusted: look again.
            Probe::Absent if GROWS && (!stands || shard.buckets_now() != seen) => {
                self.seen_buckets_moved(s, shard);
            }
            Probe::Found(_) if GROWS && !stands => self.seen_buckets_moved(s, shard),
            Probe::Absent => {
                if access == Access::Get {
                    self.lanes.bump(Counter::Misses);
                }
                return Ok(None);
            }
            Probe::Found(hit) => {
                // The clock is read only on a hit, for expiry and the time of use.
                let now = self.now_ms();
                if !expired(hit.meta.expires, now) {
                    match self.take_hit::<O, STORE>(s, shard, &hit, access, now, out) {
                        Taken::Copied(len, kind, slot) => return Ok(Some((len, kind, slot))),
                        Taken::TooSmall(needed) => return Err(Error::BufferTooSmall { needed }),
                        Taken::Changed => {}
                    }
                }
            }
            Probe::Unsure => {
                if GROWS && !stands {
                    self.seen_buckets_moved(s, shard);
                }
            }
        }
        self.read_again::<O, STORE>(k.key, s, access, out)
    }

    /// Copies the value of an entry a lock-free lookup found into `out` and validates the copy;
    /// once it is valid, counts the hit and records the use (a get).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn take_hit<O: Out + ?Sized, const STORE: bool>(
        &self,
        s: u32,
        shard: &Shard<'_>,
        hit: &Hit<'_>,
        access: Access,
        now: u64,
        out: &mut O,
    ) -> Taken {
        // In a cache with a byte budget the value is in the record the entry's hint names,
        // whose header the lookup read.
        let len = hit.meta.vlen as usize;
        let Some(dst) = out.room(len) else {
            // (A value that would not lie in the store is not one to report the length of.)
            if !shard.still::<STORE>(hit) || (STORE && !shard.store_holds(hit.at, len)) {
                return Taken::Changed;
            }
            if access == Access::Get {
                self.count_hit::<STORE>(s, shard, hit, now);
            }
            return Taken::TooSmall(len);
        };
        if STORE {
            // A value that does not lie in the store is a header read mid-change (the bucket's
            // number tells), or damage: the lock decides.
            if !shard.store_read(hit.at, dst) {
                return Taken::Changed;
            }
        } else {
            shard.copy_value_of(hit, dst);
        }
        if !shard.still::<STORE>(hit) {
            return Taken::Changed;
        }
        if access == Access::Get {
            self.count_hit::<STORE>(s, shard, hit, now);
        }
        Taken::Copied(len, ValueKind::from_flags(hit.meta.flags), self.global(s, hit.id))
    }

    /// Counts a hit found by a lock-free read and records the use; promotes the entry if it is
    /// due and the lock is free at once.
    #[inline(always)]
    fn count_hit<const STORE: bool>(&self, s: u32, shard: &Shard<'_>, hit: &Hit<'_>, now: u64) {
        self.lanes.bump(Counter::Hits);
        let promote = if STORE {
            shard.record_use_hinted(hit, now)
        } else {
            shard.record_use_unlocked(hit, now)
        };
        if !promote {
            return;
        }
        self.try_promote(s, shard, hit.id, hit.stamp(), now);
    }

    /// Moves a found entry to the head if the shard's lock is free at once and its bucket has
    /// not changed since the read (so the slot still holds the key read).
    #[inline(never)]
    fn try_promote(&self, s: u32, shard: &Shard<'_>, id: u32, read: Stamp<'_>, now: u64) {
        match self.try_lock(s) {
            Ok(Some(g)) => {
                if g.unchanged(read) {
                    g.promote(id, now);
                }
            }
            _ => shard.record_use_unmoved(id, now),
        }
    }

    /// The rest of [`read`](Self::read) after a first attempt that did not settle it: more
    /// lock-free attempts, then the lock.
    #[inline(never)]
    fn read_again<O: Out + ?Sized, const STORE: bool>(
        &self,
        key: KeyRef<'_>,
        s: u32,
        access: Access,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let k = &Hashed::new(key);
        let shard = self.shard(s);
        for _ in 1..READ_TRIES {
            match shard.probe::<STORE>(k) {
                Probe::Absent => {
                    if access == Access::Get {
                        self.lanes.bump(Counter::Misses);
                    }
                    return Ok(None);
                }
                Probe::Unsure => std::hint::spin_loop(),
                Probe::Found(hit) => {
                    let now = self.now_ms();
                    if expired(hit.meta.expires, now) {
                        // Rare: let the locked path reclaim it and count the expiry.
                        break;
                    }
                    match self.take_hit::<O, STORE>(s, shard, &hit, access, now, out) {
                        Taken::Copied(len, kind, slot) => return Ok(Some((len, kind, slot))),
                        Taken::TooSmall(needed) => return Err(Error::BufferTooSmall { needed }),
                        Taken::Changed => std::hint::spin_loop(),
                    }
                }
            }
        }
        self.read_locked(k, s, access, self.now_ms(), out)
    }

    #[cold]
    fn read_locked<O: Out + ?Sized>(
        &self,
        k: &Hashed<'_>,
        s: u32,
        access: Access,
        now: u64,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let g = self.lock(s)?;
        let Some(f) = g.find_live(k, now) else {
            if access == Access::Get {
                self.lanes.bump(Counter::Misses);
            }
            return Ok(None);
        };
        let meta = g.meta(f.id);
        // A budget entry whose record is not whole in the store (a damaged shard, which `check`
        // reports and `repair` drops) is a miss, not a value made up.
        let value = if g.budget() {
            g.store_value_of(f.id)
        } else {
            Some(Vec::new())
        };
        let Some(v) = value else {
            if access == Access::Get {
                self.lanes.bump(Counter::Misses);
            }
            return Ok(None);
        };
        if access == Access::Get {
            self.lanes.bump(Counter::Hits);
            g.record_use(f.id, now);
        }
        if g.budget() {
            // The copy is made once the destination has room: values of a budget cache vary.
            let Some(dst) = out.room(v.len()) else {
                return Err(Error::BufferTooSmall { needed: v.len() });
            };
            // A destination that takes no bytes (a lookup) gets none.
            let n = dst.len().min(v.len());
            dst[..n].copy_from_slice(&v[..n]);
            return Ok(Some((
                v.len(),
                ValueKind::from_flags(meta.flags),
                self.global(s, f.id),
            )));
        }
        let len = meta.vlen as usize;
        let Some(dst) = out.room(len) else {
            return Err(Error::BufferTooSmall { needed: len });
        };
        g.copy_value(f.id, &meta, dst);
        Ok(Some((
            len,
            ValueKind::from_flags(meta.flags),
            self.global(s, f.id),
        )))
    }
}

/// A key found by a lock-free lookup: where, and the slot's fields as read then. Copy what is
/// needed, then [`Shard::still`] must confirm it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'a> {
    /// The slot's id in its shard.
    pub id: u32,
    /// The slot's fields.
    pub meta: SlotMeta,
    /// The bucket that indexes the slot, and its sequence number when the lookup read it.
    bucket: BucketPtr<'a>,
    seq: u32,
    /// The entry's position in the bucket.
    pos: u32,
    /// The slot's address.
    slot: SlotPtr<'a>,
    /// In a cache with a byte budget, the value's byte offset in the store (the slot is not
    /// read: `meta` holds what the record's header says); else 0.
    at: usize,
}

/// A bucket and its sequence number when a lock-free lookup read it: enough to tell later,
/// under the lock, that nothing in the bucket changed since (see [`Shard::unchanged`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    bucket: BucketPtr<'a>,
    seq: u32,
}

impl<'a> Hit<'a> {
    /// The bucket and sequence number this hit was read under.
    #[inline(always)]
    pub(crate) fn stamp(&self) -> Stamp<'a> {
        Stamp {
            bucket: self.bucket,
            seq: self.seq,
        }
    }
}

/// What an optimistic lookup found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Probe<'a> {
    /// The key is indexed (see [`Hit`]).
    Found(Hit<'a>),
    /// The key was not indexed at some instant during the lookup.
    Absent,
    /// A writer was busy where the key could be, or (for [`Shard::probe_home`]) the key may
    /// be in a bucket after its home: try again, or take the lock.
    Unsure,
}

impl<'a> Shard<'a> {
    /// Looks `k` up without the lock: its home bucket, then the buckets after it where a key
    /// homed there may have been placed.
    #[inline]
    pub(crate) fn probe<const STORE: bool>(&self, k: &Hashed<'_>) -> Probe<'a> {
        if STORE && self.grows() {
            return self.probe_in_store(k, self.buckets_now());
        }
        let bp = self.home_bucket(k.hash);
        let (p, reach, seq) = self.probe_home_bucket::<STORE>(bp, k);
        match p {
            Probe::Absent if reach > 0 => {
                let p = self.probe_spilled::<STORE>(self.home(k.hash), reach, k);
                self.miss_stands(p, bp, seq)
            }
            p => p,
        }
    }

    /// `p`, the answer of a look that went past the home bucket at `bp`, whose sequence number
    /// was `seq` when the look began: a miss stands only if that number did not move. Every
    /// entry stays where it is while its key stays, but for a rebuild (or a growing index's
    /// move to more buckets), which may place a key spilled past its home back in it: a look
    /// that read the home before it and the buckets after it once it ended would miss the key,
    /// and each bucket's own number would not say so. The rebuild opens every window, the
    /// home's among them.
    #[inline(always)]
    fn miss_stands(&self, p: Probe<'a>, bp: BucketPtr<'a>, seq: u32) -> Probe<'a> {
        match p {
            Probe::Absent => {
                // Ordered after the reads of the buckets looked in (each closed by an acquire
                // fence before its own number's second load).
                fence(Ordering::Acquire);
                if self.bucket_word(bp, bucket::SEQ).load(Ordering::Relaxed) == seq {
                    Probe::Absent
                } else {
                    Probe::Unsure
                }
            }
            p => p,
        }
    }

    /// [`probe`](Self::probe) in a cache with a byte budget whose index used `n` buckets when
    /// the reader loaded the count: the home is computed with them, and a miss stands only if
    /// the count did not move meanwhile (the index's keys may have moved, `shard/grow.rs`).
    #[inline]
    pub(crate) fn probe_in_store(&self, k: &Hashed<'_>, n: u32) -> Probe<'a> {
        let home = home_of(k.hash, n);
        let bp = self.bucket(home);
        let p = match self.probe_home_bucket::<true>(bp, k) {
            (Probe::Absent, reach, seq) if reach > 0 => {
                let p = self.probe_spilled::<true>(home, reach.min(n - 1), k);
                self.miss_stands(p, bp, seq)
            }
            (p, _, _) => p,
        };
        match p {
            Probe::Absent if self.buckets_now() != n => Probe::Unsure,
            p => p,
        }
    }

    /// Like [`probe`](Self::probe) but only the home bucket and the one after it, whose
    /// address the caller computed (it must be [`home_bucket`](Self::home_bucket) of the key's
    /// hash): [`Probe::Unsure`] if the key was in neither and may be further on. What a read
    /// tries first, inline: a key that did not fit in its home bucket is mostly in the next
    /// one.
    #[inline(always)]
    pub(crate) fn probe_home<const STORE: bool>(&self, bp: BucketPtr<'a>, k: &Hashed<'_>) -> Probe<'a> {
        debug_assert!(STORE || bp == self.home_bucket(k.hash));
        let (reach, seq) = match self.probe_home_bucket::<STORE>(bp, k) {
            (Probe::Absent, reach, seq) if reach > 0 => (reach, seq),
            (p, _, _) => return p,
        };
        match self.probe_one::<STORE>(self.next_bucket(bp), k) {
            Probe::Absent if reach > 1 => Probe::Unsure,
            p => self.miss_stands(p, bp, seq),
        }
    }

    /// Looks for `k` in the bucket at `bp` alone (not as its home): found, absent, or a writer
    /// busy there.
    #[inline(always)]
    fn probe_one<const STORE: bool>(&self, bp: BucketPtr<'a>, k: &Hashed<'_>) -> Probe<'a> {
        self.probe_at::<false, STORE>(bp, k).0
    }

    /// The home bucket's answer, how far after it keys homed there may be, and the sequence
    /// number it had (for [`miss_stands`](Self::miss_stands)).
    #[inline(always)]
    fn probe_home_bucket<const STORE: bool>(
        &self,
        bp: BucketPtr<'a>,
        k: &Hashed<'_>,
    ) -> (Probe<'a>, u32, u32) {
        self.probe_at::<true, STORE>(bp, k)
    }

    /// Looks for `k` in the bucket at `bp`, validated by the bucket's sequence number; with
    /// `REACH`, also reads (under the same validation) how far after it keys homed there may
    /// be, reported with [`Probe::Absent`] (0 otherwise), and the number.
    #[inline(always)]
    fn probe_at<const REACH: bool, const STORE: bool>(
        &self,
        bp: BucketPtr<'a>,
        k: &Hashed<'_>,
    ) -> (Probe<'a>, u32, u32) {
        let seq_word = self.bucket_word(bp, bucket::SEQ);
        let seq = seq_word.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return (Probe::Unsure, 0, seq);
        }
        let found = if STORE {
            self.probe_records(bp, seq, self.tag_of(k.hash), k)
        } else {
            self.probe_bucket(bp, seq, self.tag_of(k.hash), k)
        };
        if let Some(p) = found {
            return (p, 0, seq);
        }
        let reach = if REACH {
            (self.bucket_word(bp, bucket::SPILL).load(Ordering::Relaxed) >> 16).min(self.max_reach())
        } else {
            0
        };
        fence(Ordering::Acquire);
        if seq_word.load(Ordering::Relaxed) != seq {
            return (Probe::Unsure, 0, seq);
        }
        (Probe::Absent, reach, seq)
    }

    /// The buckets after `home`, up to `reach` away, where a key homed there may have been
    /// placed.
    #[inline(never)]
    fn probe_spilled<const STORE: bool>(&self, home: u32, reach: u32, k: &Hashed<'_>) -> Probe<'a> {
        for dist in 1..=reach {
            match self.probe_one::<STORE>(self.bucket(self.after(home, dist)), k) {
                Probe::Absent => {}
                p => return p,
            }
        }
        Probe::Absent
    }

    /// Looks for `k` among the entries of the bucket at `bp` (sequence number `seq`) whose tag
    /// is `tag`, in a cache of fixed records: `None` if it is not there.
    #[inline(always)]
    fn probe_bucket(&self, bp: BucketPtr<'a>, seq: u32, tag: u32, k: &Hashed<'_>) -> Option<Probe<'a>> {
        for (pos, id, slot, meta) in self.entries_for_in::<true>(bp, tag, k.word) {
            // A slot of the key mid-write: a rewrite in place (whose bucket stays even), or a
            // writer that died in one. The lock settles it.
            if meta.flags & F_WRITING != 0 {
                return Some(Probe::Unsure);
            }
            if self.holds(id, &meta, &k.key) {
                return Some(Probe::Found(Hit {
                    id,
                    meta,
                    bucket: bp,
                    seq,
                    pos: pos as u32,
                    slot,
                    at: 0,
                }));
            }
        }
        None
    }

    /// [`probe_bucket`](Self::probe_bucket) in a cache with a byte budget: each entry of the
    /// bucket at `bp` whose tag is `tag` is checked against the record its hint names, without
    /// reading its slot. The bucket's sequence number (`seq`, read before) validates it all:
    /// outside a write window on the bucket, each entry's hint names its slot's record, whose
    /// bytes change only in such a window (`layout::hint`). A hint that names no record of the
    /// entry's slot is a writer's doing, or a dead one's: [`Probe::Unsure`].
    #[inline(always)]
    pub(crate) fn probe_records(
        &self,
        bp: BucketPtr<'a>,
        seq: u32,
        tag: u32,
        k: &Hashed<'_>,
    ) -> Option<Probe<'a>> {
        let mut m = self.matches_at(bp, tag);
        while m != 0 {
            let pos = m.trailing_zeros() as usize;
            m &= m - 1;
            let id = self.entry_id_at(bp, pos);
            if id == 0 {
                continue;
            }
            let Some(r) = self.record_by_hint(bp, pos, id) else {
                return Some(Probe::Unsure);
            };
            let holds = r.key == k.word
                && match &k.key {
                    KeyRef::Hash(_) => r.flags & F_BYTES_KEY == 0 && r.klen == 0,
                    KeyRef::Bytes(b) => {
                        r.flags & F_BYTES_KEY != 0
                            && r.klen as usize == b.len()
                            && self.store_eq(r.at - b.len(), b)
                    }
                };
            if holds {
                return Some(Probe::Found(Hit {
                    id,
                    meta: SlotMeta {
                        key: r.key,
                        vlen: r.vlen,
                        flags: r.flags | F_OCCUPIED,
                        gen: 0,
                        expires: r.expires,
                        klen: r.klen,
                    },
                    bucket: bp,
                    seq,
                    pos: pos as u32,
                    // Not read, nor needed on a hit: the slow path of recording a use finds it.
                    slot: self.first_slot(),
                    at: r.at,
                }));
            }
        }
        None
    }

    /// [`record_use_unlocked`](Self::record_use_unlocked) for a hit in a cache with a byte
    /// budget: nothing to do (and no slot read) while the bucket's use word says the entry's
    /// use is recorded until now or later; else the use goes to the slot as in any cache, and
    /// the use word learns until when it is recorded there.
    #[inline(always)]
    pub(crate) fn record_use_hinted(&self, hit: &Hit<'a>, now: u64) -> bool {
        let w = self.use_hint_word(hit.bucket);
        if hint::use_recorded(w.load(Relaxed), hit.pos as usize, now) {
            return false;
        }
        // The hit's fields by value: a reference would keep the whole hit in memory on the
        // fast path too.
        self.record_use_slow(hit.id, hit.pos as usize, now, w)
    }

    #[inline(never)]
    fn record_use_slow(&self, id: u32, pos: usize, now: u64, w: &AtomicU64) -> bool {
        let slot = self.slot(id);
        let promote = self.record_use_at(id, slot, now);
        let u = Use::unpack(self.use_word_at(slot).load(Relaxed));
        let old = w.load(Relaxed);
        if let Some(new) = hint::marked(old, pos, hint::until(u.used, u.referenced), now) {
            // Another reader's word in between is as good as this one's: no retry.
            let _ = w.compare_exchange(old, new, Relaxed, Relaxed);
        }
        promote
    }

    /// Whether nothing read since the lookup that found `hit` was being changed meanwhile: the
    /// slot's `VLEN_FLAGS` word (its rewrite generation) and the bucket's number are as they
    /// were.
    #[inline(always)]
    pub(crate) fn still<const STORE: bool>(&self, hit: &Hit<'a>) -> bool {
        fence(Ordering::Acquire);
        if STORE {
            // Nothing was read from the slot (see `probe_records`).
            return self.unchanged(hit.stamp());
        }
        self.vlen_flags_at(hit.slot) == hit.meta.vlen_flags_word() && self.unchanged(hit.stamp())
    }

    /// Whether the bucket of `st` still has the sequence number it had then. Under the lock,
    /// `true` means no writer changed the bucket, or a slot it indexes, since; a lock-free
    /// reader issues an acquire fence first (see [`still`](Self::still)).
    #[inline(always)]
    pub(crate) fn unchanged(&self, st: Stamp<'a>) -> bool {
        self.bucket_word(st.bucket, bucket::SEQ).load(Ordering::Relaxed) == st.seq
    }

    /// Copies `dst.len()` value bytes of a found entry (the caller bounds the length by the
    /// record size).
    #[inline(always)]
    pub(crate) fn copy_value_of(&self, hit: &Hit<'a>, dst: &mut [u8]) {
        if hit.meta.klen == 0 {
            // Integer keys: the value starts the data area, word-aligned.
            self.read_words_at(hit.slot, dst);
        } else {
            self.read_data(hit.id, hit.meta.klen as usize, dst);
        }
    }

    /// Copies `dst.len()` value bytes of slot `id`, whose fields are `meta` (lock held, or
    /// validated by the caller).
    #[inline]
    pub(crate) fn copy_value(&self, id: u32, meta: &SlotMeta, dst: &mut [u8]) {
        self.read_data(id, meta.klen as usize, dst);
    }
}

/// The longest grain of a lock-free reader's record of a use, ms (see [`grain_mask`]).
pub const MAX_GRAIN_MS: u64 = 256;

/// The grain of the times of use that lock-free readers record in a shard whose refresh
/// interval is `r` ms, less one: the largest power of two at most `r / 16` (1 ms when `r` is
/// under 32 ms, at most [`MAX_GRAIN_MS`]). A reader records a use at `now` as `now | mask`, the
/// last millisecond of its grain, and the hits until then store nothing: a busy shard's hot
/// entries are written once per grain instead of once per millisecond. A recorded time is never
/// before the real last use and less than a grain after it, so an eviction by age never takes an
/// entry used after its cutoff, and uses more than R apart keep their order.
#[inline(always)]
pub(crate) fn grain_mask(r: u64) -> u64 {
    let q = (r >> 4).clamp(1, MAX_GRAIN_MS);
    (1u64 << (63 - q.leading_zeros())) - 1
}

impl<'a> Shard<'a> {
    /// The one change a lock-free reader makes: records a use of the entry `hit` found at `now`
    /// unless one is recorded for this millisecond already. Returns `true` when the entry should
    /// be promoted (linked at least R ago), which the caller does if it gets the lock at once.
    #[inline(always)]
    pub(crate) fn record_use_unlocked(&self, hit: &Hit<'a>, now: u64) -> bool {
        self.record_use_at(hit.id, hit.slot, now)
    }

    /// [`record_use_unlocked`](Self::record_use_unlocked) of slot `id` at `slot`.
    #[inline(always)]
    fn record_use_at(&self, id: u32, slot: SlotPtr<'a>, now: u64) -> bool {
        let w = self.use_word_at(slot);
        let raw = w.load(Relaxed);
        if Use::recorded(raw, now) {
            return false;
        }
        let u = Use::unpack(raw);
        let r = self.refresh_ms();
        if now >= u.linked.saturating_add(r) {
            if self.head() != id {
                return true;
            }
            // Due for a move, but it is the head already (a racy read, as a hint): record it
            // as moved now, which keeps the list in order of link times.
            w.store(Use::linked_now(now.max(u.used)).pack(), Relaxed);
            return false;
        }
        // The last millisecond of the grain `now` falls in (the uses until then have nothing
        // to add), but short of the time the entry is due for a move: a use recorded past it
        // would pass for a promotion that found the lock taken and earn a second chance.
        w.store(
            u.used_at((now | grain_mask(r)).min(u.linked.saturating_add(r) - 1))
                .pack(),
            Relaxed,
        );
        false
    }

    /// Like [`record_use_unlocked`](Self::record_use_unlocked) for a reader that wanted to
    /// promote but found the lock taken: stores the use without moving the entry.
    pub(crate) fn record_use_unmoved(&self, id: u32, now: u64) {
        let u = self.use_of(id);
        self.set_use(id, u.used_at(now));
    }
}

#[cfg(test)]
mod tests {
    use super::Probe;
    use crate::key::KeyRef;
    use crate::layout::{self, shard_header, BUCKET_SIZE};
    use crate::options::{SetMode, ValueKind};
    use crate::shard::{home_of, Hashed, Put, Shard};

    /// Bytes of the value store of [`budget_shard`]'s shard.
    const STORE_BYTES: usize = 1 << 20;
    /// Units its index may grow to (they take less than the store).
    const MOST_UNITS: u32 = 512;

    /// Zeroed memory for [`budget_shard`]: header, alignment, store, undo record and count.
    fn budget_memory() -> Vec<u64> {
        vec![0u64; (256 + 4096 + STORE_BYTES + 48 + 8) / 8]
    }

    /// One shard of a cache with a byte budget over `mem` (from [`budget_memory`]): header (256
    /// bytes), a store of 1 MiB (4096-aligned) whose index may grow to 512 units, the undo record
    /// and the count of live entries; its index has `units` units and uses as many buckets.
    fn budget_shard(mem: &mut [u64], units: u32) -> Shard<'_> {
        let base = mem.as_mut_ptr().cast::<u8>();
        let hdr = base;
        let store = base.wrapping_add(256 + (4096 - (base as usize + 256) % 4096) % 4096);
        let journal = store.wrapping_add(STORE_BYTES);
        let live = journal.wrapping_add(48);
        // SAFETY: the units, buckets and store position words lie inside the header, in `mem`,
        // which no view reads yet.
        unsafe {
            hdr.add(shard_header::UNITS).cast::<u32>().write(units);
            hdr.add(shard_header::BUCKETS)
                .cast::<u32>()
                .write(units * layout::UNIT_BUCKETS);
            // The ring starts past the buckets.
            let start = layout::index_bucket_bytes(units);
            hdr.add(shard_header::STORE_HEAD).cast::<u64>().write(start);
            hdr.add(shard_header::STORE_TAIL).cast::<u64>().write(start);
        }
        // SAFETY: every part lies inside `mem`, aligned as the format requires (the index's
        // units take less than the store), which the view borrows; this thread alone uses it.
        unsafe {
            Shard::new(
                hdr,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                journal,
                MOST_UNITS * layout::UNIT_SLOTS,
                MOST_UNITS * layout::UNIT_BUCKETS,
                48,
                layout::REF_SIZE,
                live,
                u64::MAX,
                store,
                STORE_BYTES as u64,
                64 << 10,
                layout::BUDGET_BUCKET_STRIDE as usize,
                true,
            )
        }
    }

    #[test]
    fn a_miss_under_a_bucket_count_that_moved_since_is_not_taken_for_one() {
        // One shard of a cache with a byte budget (`budget_shard`), from one unit. Keys go in
        // until the index has grown several times; at
        // each growth, a reader that loaded the count of buckets before it and looks for a key
        // the growth moved must not report a miss.
        let mut mem = budget_memory();
        let s = budget_shard(&mut mem, 1);
        let (mut moved, mut growths) = (0, 0);
        let mut k = 0u64;
        while s.nbuckets() < 40 {
            let n0 = s.nbuckets();
            let key = Hashed::new(KeyRef::Hash(k));
            let put = Put::new(&[7; 40], ValueKind::Bytes, 0, SetMode::Upsert, true, 1_000);
            s.set(&key, put).unwrap();
            k += 1;
            let n1 = s.nbuckets();
            if n1 == n0 {
                continue;
            }
            growths += 1;
            for j in 0..k {
                let key = Hashed::new(KeyRef::Hash(j));
                if home_of(key.hash, n0) != home_of(key.hash, n1) {
                    moved += 1;
                    assert!(
                        !matches!(s.probe_in_store(&key, n0), Probe::Absent),
                        "key {j}, moved by the growth to {n1} buckets, was missed by a reader of {n0}"
                    );
                    assert!(matches!(s.probe::<true>(&key), Probe::Found(_)), "key {j}");
                }
            }
        }
        assert!(
            moved > 100 && growths >= 4,
            "{moved} keys moved in {growths} growths"
        );
    }

    #[test]
    fn a_miss_across_a_rebuild_that_moved_the_key_home_is_not_taken_for_one() {
        // One shard of a cache with a byte budget (`budget_shard`) using two buckets: fifteen
        // keys homed at bucket 0, the last spilled to bucket 1. One of the
        // others goes; a rebuild then places the spilled key in its home. A reader that read
        // the home before the rebuild and the next bucket after it found the key in neither,
        // under an unchanged bucket count: its miss must not stand.
        let mut mem = budget_memory();
        let s = budget_shard(&mut mem, 2);
        let keys: Vec<u64> = (0u64..)
            .filter(|&j| home_of(Hashed::new(KeyRef::Hash(j)).hash, 2) == 0)
            .take(15)
            .collect();
        for &j in &keys {
            let put = Put::new(&[7; 40], ValueKind::Bytes, 0, SetMode::Upsert, true, 1_000);
            s.set(&Hashed::new(KeyRef::Hash(j)), put).unwrap();
        }
        let k = Hashed::new(KeyRef::Hash(keys[14]));
        assert_eq!(s.lookup(&k).unwrap().bucket, 1);
        let gone = Hashed::new(KeyRef::Hash(keys[2]));
        s.remove_found(s.lookup(&gone).unwrap(), gone.hash);
        let n = s.buckets_now();
        let bp = s.bucket(home_of(k.hash, n));
        let (p, reach, seq) = s.probe_home_bucket::<true>(bp, &k);
        assert!(matches!(p, Probe::Absent) && reach == 1);
        // The reader stops here; the rebuild runs.
        s.rebuild(|_| true);
        assert_eq!(s.lookup(&k).unwrap().bucket, 0);
        assert_eq!(s.buckets_now(), n);
        let p = s.probe_spilled::<true>(0, reach, &k);
        assert!(matches!(p, Probe::Absent));
        assert!(
            !matches!(s.miss_stands(p, bp, seq), Probe::Absent),
            "key {} present throughout was reported missing",
            keys[14]
        );
        // And a whole look now finds it.
        assert!(matches!(s.probe::<true>(&k), Probe::Found(_)));
    }

    #[test]
    fn a_read_overlapping_any_number_of_rewrites_in_place_is_not_taken_as_whole() {
        // One shard of 16 slots of 64-byte records over 4 buckets, in zeroed memory: header
        // (256 bytes), buckets (64-aligned), slots, the undo record and the count of live
        // entries.
        let (cap, nb, stride) = (16u32, 4u32, 104usize);
        let mut mem = vec![0u64; (256 + 64 + nb as usize * 64 + (cap as usize + 1) * stride + 8) / 8];
        let base = mem.as_mut_ptr().cast::<u8>();
        let hdr = base;
        let buckets = base.wrapping_add(256 + (64 - (base as usize + 256) % 64) % 64);
        let slots = buckets.wrapping_add(nb as usize * 64);
        let journal = slots.wrapping_add(cap as usize * stride);
        let live = journal.wrapping_add(stride);
        // SAFETY: every part lies inside `mem`, aligned as the format requires, which outlives
        // the view; this thread alone uses it.
        let s = unsafe {
            Shard::new(
                hdr,
                buckets,
                slots,
                journal,
                cap,
                nb,
                stride,
                64,
                live,
                cap as u64,
                std::ptr::null_mut(),
                0,
                0,
                64,
                false,
            )
        };
        let k = Hashed::new(KeyRef::Hash(7));
        let set = |fill: u8, now: u64| {
            s.set(
                &k,
                Put::new(&[fill; 64], ValueKind::Bytes, 0, SetMode::Upsert, false, now),
            )
        };
        assert!(set(0, 1_000).unwrap().inserted);
        // A read that took its first look, then `n` rewrites of the value before its second: the
        // slot's generation tells 1 to 15 of them, the bucket's number every 16th.
        let (mut now, mut last) = (1_000, 0u8);
        for n in 0..50u64 {
            let Probe::Found(hit) = s.probe::<false>(&k) else {
                panic!("key 7 not found");
            };
            for _ in 0..n {
                now += 1;
                assert!(s
                    .update_in_place(&k, &[n as u8; 64], ValueKind::Bytes, None, now)
                    .is_some());
            }
            assert_eq!(s.still::<false>(&hit), n == 0, "a read across {n} rewrites");
            if n > 0 {
                last = n as u8;
            }
            let mut v = [0u8; 64];
            let Probe::Found(hit) = s.probe::<false>(&k) else {
                panic!("key 7 not found");
            };
            s.copy_value_of(&hit, &mut v);
            assert!(s.still::<false>(&hit));
            assert_eq!(v, [last; 64], "the value after {n} rewrites");
        }
    }

    #[test]
    fn the_bucket_after_the_last_is_the_first() {
        // Four buckets' worth of bytes; the view only computes addresses here.
        let mut mem = vec![0u64; 4 * BUCKET_SIZE as usize / 8 + 64];
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: the view is used only to compute bucket addresses, never to access memory.
        let s = unsafe {
            Shard::new(
                base, base, base, base, 8, 4, 64, 16, base, 8, base, 0, 0, 64, false,
            )
        };
        for b in 0..4u32 {
            assert_eq!(s.next_bucket(s.bucket(b)), s.bucket((b + 1) % 4), "after {b}");
        }
    }
}

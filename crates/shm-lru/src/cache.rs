//! The public cache: hashes the key, picks the shard, reads it optimistically or takes its lock,
//! and calls the algorithm of `shard/`. Creating and attaching go through `header.rs`.

mod prefix;

use crate::check::{CheckReport, RepairReport};
use crate::counters::{Counter, Lanes};
use crate::error::{Error, Result};
use crate::header::{self, Layout, Params};
use crate::key::KeyRef;
use crate::layout::{self, shd, Geometry, SHARD_SIZE};
use crate::lock::{Membership, ShardGuard};
use crate::options::{
    CacheOptions, Entry, InitMode, Order, SetMode, SetOptions, SetOutcome, Stats, ValueKind,
};
use crate::segment::{OpenOptions, Segment, SegmentId};
use crate::shard::{check_shard, expired, home_of, Copied, Hashed, Hit, Probe, Shard, Stamp};
use crate::sys::{self, robust_mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a [`Cache::scan`] stands: opaque, but plain data, so that a binding can hand it to its
/// caller and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    /// The shard being walked.
    pub shard: u32,
    /// The slot (within the shard) to go on from.
    pub next: u32,
    /// Its link time when the last batch ended, to tell whether it is still in place.
    pub linked: u64,
}

#[derive(Debug, Clone)]
enum Clock {
    System,
    Manual(Arc<AtomicU64>),
}

/// A shared-memory LRU cache attached to one region of one segment.
///
/// Every method takes `&self` and is safe to call from many threads and many processes at once.
/// Reads (`get`, `get_into`, `get_with`, `peek`, `contains`) take no lock: they find the key
/// through the index, copy the value and check that no writer changed it meanwhile, retrying or
/// falling back to the lock when one did. Writes lock only the shard their key maps to.
///
/// ```
/// use shm_lru::{Cache, CacheOptions, SegmentId};
/// let id: SegmentId = format!("/doc-example-{}", std::process::id()).parse()?;
/// let cache = Cache::create(&id, &CacheOptions { capacity: 100, record_size: 64, ..Default::default() })?;
/// cache.put("greeting", b"hello")?;
/// assert_eq!(cache.get("greeting")?.as_deref(), Some(&b"hello"[..]));
/// cache.destroy()?;
/// # Ok::<(), shm_lru::Error>(())
/// ```
#[derive(Debug)]
pub struct Cache {
    seg: Arc<Segment>,
    region: *mut u8,
    p: Params,
    shard_mask: u32,
    clock: Clock,
    /// The word that holds the current time by `clock` (0: ask `clock`): the ticked system
    /// clock's, or the manual clock's, which `clock` keeps alive.
    now_word: *const AtomicU64,
    lock_timeout: Option<Duration>,
    lanes: Lanes,
    /// Shard 0's buckets, the distance from one shard's buckets to the next's, and the bucket
    /// count of each: the home bucket of a key from the hash alone, without a load that waits
    /// for it (see [`home_bucket`](Self::home_bucket)).
    buckets0: *mut u8,
    buckets_stride: usize,
    buckets_per_shard: u32,
    /// Each shard's view, made once. Their lifetime stands for "as long as `seg` is mapped":
    /// they are only ever handed out borrowed from `&self`.
    views: Box<[Shard<'static>]>,
}

// SAFETY: the raw pointer addresses a mapping owned by `seg` (kept alive by the Arc); all access
// to shared bytes is atomic, and writes go through shard locks.
unsafe impl Send for Cache {}
// SAFETY: as above; `&Cache` methods synchronise through the shard locks and sequence numbers.
unsafe impl Sync for Cache {}

const ATTACH_WAIT: Duration = Duration::from_secs(5);
/// How long an attach waits for a POSIX object of size 0 to be sized by its creator.
const SIZE_WAIT: Duration = Duration::from_secs(1);
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
    /// Creates a new segment sized for `opts` and lays a cache out in it. Fails with
    /// [`Error::SegmentExists`] if the segment exists.
    pub fn create(id: &SegmentId, opts: &CacheOptions) -> Result<Cache> {
        let geo = Cache::geometry_for(opts)?;
        let seg = Arc::new(Segment::create(id, geo.total, opts.mode)?);
        let l = Layout {
            geo,
            region_size: geo.total,
            capacity: opts.capacity,
            evict: opts.evict_on_full,
            default_ttl: opts.default_ttl_ms,
            fresh: true,
        };
        let made = match header::init(&seg, &l) {
            Ok(Some(p)) => {
                seg.creation_done();
                Ok(Cache::from_params(seg, p))
            }
            Ok(None) => Cache::attach(seg, Some(geo.total)),
            Err(e) => Err(e),
        };
        if made.is_err() {
            let _ = Segment::destroy(id, true);
        }
        made
    }

    /// Attaches to the cache in an existing segment made by [`Cache::create`]. A cache that
    /// another process is creating at that moment is waited for: up to a second for its POSIX
    /// object to be sized, up to five for its header to be written.
    pub fn open(id: &SegmentId) -> Result<Cache> {
        Cache::open_with(id, &OpenOptions::default())
    }

    /// Opens the cache if the segment exists, else creates it.
    ///
    /// A segment left half-made by a creator that died (killed while it sized or laid it out)
    /// is noticed within a second or so, removed and made again.
    pub fn open_or_create(id: &SegmentId, opts: &CacheOptions) -> Result<Cache> {
        Cache::open_or_create_with(id, opts, &OpenOptions::default())
    }

    /// Bytes a segment needs for `opts` (see [`Cache::create`]).
    pub fn required_size(opts: &CacheOptions) -> Result<u64> {
        Ok(Cache::geometry_for(opts)?.total)
    }

    fn geometry_for(opts: &CacheOptions) -> Result<Geometry> {
        if opts.capacity == 0 {
            return Err(Error::InvalidArgument("capacity must be at least 1".into()));
        }
        let shards = opts
            .shards
            .unwrap_or_else(|| layout::default_shards(opts.evict_on_full, opts.capacity));
        let per = layout::slots_per_shard(opts.capacity, shards.max(1));
        let per = u32::try_from(per)
            .map_err(|_| Error::InvalidArgument(format!("capacity {} too large", opts.capacity)))?;
        Geometry::new(opts.record_size, shards, per, layout::lanes_for(opts.capacity))
    }

    /// Lays out or attaches a cache in the first `region_size` bytes of `seg`, as the original
    /// package's `initLRU` did. Capacity follows from the region.
    pub fn init_in(
        seg: Arc<Segment>,
        region_size: u64,
        opts: &CacheOptions,
        mode: InitMode,
    ) -> Result<Cache> {
        if region_size > seg.len() {
            return Err(Error::RegionTooSmall {
                needed: region_size,
                available: seg.len(),
            });
        }
        if mode == InitMode::Attach {
            return Cache::attach(seg, Some(region_size));
        }
        let lanes = if region_size < 1 << 20 {
            layout::SMALL_LANES
        } else {
            layout::DEFAULT_LANES
        };
        let shards = match opts.shards {
            Some(s) => s,
            None => {
                let approx = Geometry::fit(opts.record_size, 1, region_size, lanes)?.slots();
                layout::default_shards(opts.evict_on_full, approx)
            }
        };
        let geo = Geometry::fit(opts.record_size, shards, region_size, lanes)?;
        if mode == InitMode::AttachOrInit && header::looks_initialised(&seg) {
            let c = Cache::attach(seg.clone(), Some(region_size))?;
            if c.p.geo.record_size != opts.record_size {
                return Err(Error::InvalidArgument(format!(
                    "the region already holds a cache with record size {}, not {}",
                    c.p.geo.record_size, opts.record_size
                )));
            }
            return Ok(c);
        }
        let l = Layout {
            geo,
            region_size,
            capacity: geo.slots(),
            evict: opts.evict_on_full,
            default_ttl: opts.default_ttl_ms,
            fresh: false,
        };
        match header::init(&seg, &l)? {
            Some(p) => Ok(Cache::from_params(seg, p)),
            // Somebody else is laying it out: use theirs.
            None => Cache::attach(seg, Some(region_size)),
        }
    }

    /// Attaches to a cache laid out at the start of `seg`, validating its header. The region
    /// the header claims must lie within the segment; `region_size`, when given, only bounds
    /// where the header itself may be read (the cache's own size comes from its header).
    pub fn attach(seg: Arc<Segment>, region_size: Option<u64>) -> Result<Cache> {
        let p = header::attach(&seg, region_size, ATTACH_WAIT)?;
        Ok(Cache::from_params(seg, p))
    }

    /// Like [`attach`](Self::attach), but a region whose initialisation has not finished is
    /// reported at once ([`Error::NotReady`], or [`Error::BadFormat`] for all-zero bytes)
    /// instead of being waited for: for tools that inspect segments they did not make.
    pub fn probe(seg: Arc<Segment>) -> Result<Cache> {
        let p = header::attach(&seg, None, Duration::ZERO)?;
        Ok(Cache::from_params(seg, p))
    }

    fn from_params(seg: Arc<Segment>, p: Params) -> Cache {
        Cache {
            views: Cache::views(seg.as_ptr(), &p),
            // SAFETY: the buckets offset lies inside the validated geometry, inside the mapping.
            buckets0: unsafe { seg.as_ptr().add(p.geo.buckets_off as usize) },
            buckets_stride: p.geo.buckets_per_shard as usize * layout::BUCKET_SIZE as usize,
            buckets_per_shard: p.geo.buckets_per_shard,
            region: seg.as_ptr(),
            lanes: Lanes::new(seg.clone(), p.geo.lanes_off, p.geo.lanes),
            seg,
            shard_mask: p.geo.shards - 1,
            p,
            clock: Clock::System,
            now_word: sys::ticked(),
            lock_timeout: None,
        }
    }

    /// Makes this handle read time from `clock` (epoch ms) instead of the system clock: for
    /// tests and simulations. Other handles and processes keep their own clocks.
    pub fn use_manual_clock(&mut self, clock: Arc<AtomicU64>) {
        self.now_word = Arc::as_ptr(&clock);
        self.clock = Clock::Manual(clock);
    }

    /// Makes this handle give up with [`Error::LockTimeout`] when a shard stays locked longer
    /// than `timeout`, instead of waiting for it (`None`, the default). A holder that *died*
    /// never makes anyone wait (its lock is recovered at once); this is for tools that must not
    /// hang on a holder that is alive but stopped.
    pub fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.lock_timeout = timeout;
    }

    /// Removes the segment (POSIX name or System V key) this cache lives in, even while others
    /// are attached; their mappings stay valid until they drop them.
    pub fn destroy(&self) -> Result<bool> {
        self.seg.destroy_self(true)
    }

    // ---- geometry ----

    /// The segment.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }
    /// Entries the cache was made to hold: at least this many distinct keys fit.
    pub fn capacity(&self) -> u64 {
        self.p.capacity
    }
    /// Slots in all: the most entries the cache can hold, and one past the highest slot id.
    /// Equal to the capacity for one shard; a little more for several (see
    /// [`CacheOptions::capacity`]).
    pub fn slots(&self) -> u64 {
        self.p.geo.slots()
    }
    /// Data bytes per record.
    pub fn record_size(&self) -> u32 {
        self.p.geo.record_size
    }
    /// Shard count.
    pub fn shards(&self) -> u32 {
        self.p.geo.shards
    }
    /// Bytes of the segment the cache occupies.
    pub fn region_size(&self) -> u64 {
        self.p.region_size
    }
    /// Whether a full shard evicts.
    pub fn evict_on_full(&self) -> bool {
        self.p.evict()
    }
    /// The default time to live, ms (0 = forever).
    pub fn default_ttl_ms(&self) -> u64 {
        self.p.default_ttl
    }
    /// The layout.
    pub fn geometry(&self) -> Geometry {
        self.p.geo
    }

    /// Current time, epoch ms, by this handle's clock.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        // SAFETY: `now_word` points at the static ticked word or into the Arc that `clock`
        // holds, which lives as long as this Cache.
        let t = unsafe { &*self.now_word }.load(Ordering::Relaxed);
        if t != 0 {
            return t;
        }
        self.now_ms_slow()
    }

    #[cold]
    fn now_ms_slow(&self) -> u64 {
        self.clock_ms(sys::now_ms)
    }

    /// Current time as [`Cache::now_ms`], but read from the system clock now rather than from
    /// the ticked word, which lags it while its thread waits to be scheduled: for cold paths
    /// that compare times of use with now.
    fn now_ms_fresh(&self) -> u64 {
        self.clock_ms(sys::fresh_now_ms)
    }

    /// The time by this handle's clock, the system's read with `system`.
    fn clock_ms(&self, system: fn() -> u64) -> u64 {
        match &self.clock {
            Clock::System => system(),
            Clock::Manual(c) => c.load(Ordering::Relaxed),
        }
    }

    fn expires_for(&self, ttl: Option<u64>, now: u64) -> u64 {
        match ttl.unwrap_or(self.p.default_ttl) {
            0 => 0,
            t => now.saturating_add(t).max(1),
        }
    }

    // ---- shards ----

    #[inline]
    fn shard(&self, s: u32) -> &Shard<'_> {
        debug_assert_eq!(self.views.len(), self.shard_mask as usize + 1);
        // SAFETY: there is one view per shard and the shard count is shard_mask + 1 (a power of
        // two, fixed when the Cache is made), so the masked index is in bounds.
        unsafe { self.views.get_unchecked((s & self.shard_mask) as usize) }
    }

    /// The views of every shard of the region at `region` laid out as `p` says.
    fn views(region: *mut u8, p: &Params) -> Box<[Shard<'static>]> {
        let g = &p.geo;
        let cap = g.slots_per_shard as u64;
        (0..g.shards as u64)
            .map(|s| {
                // SAFETY: s < g.shards, so every offset below lies in the validated geometry,
                // which lies inside the mapping that the Cache holding these views keeps alive
                // (they are only lent out borrowed from it); every process accesses these bytes
                // only atomically (the Shard type's rule).
                unsafe {
                    Shard::new(
                        region.add((g.shards_off + s * SHARD_SIZE) as usize),
                        region.add(
                            (g.buckets_off + s * g.buckets_per_shard as u64 * layout::BUCKET_SIZE) as usize,
                        ),
                        region.add((g.slots_off + s * cap * g.stride) as usize),
                        region.add((g.journals_off + s * g.stride) as usize),
                        g.slots_per_shard,
                        g.buckets_per_shard,
                        g.stride as usize,
                        g.record_size,
                        region.add(layout::hdr::LIVE),
                        p.capacity,
                    )
                }
            })
            .collect()
    }

    /// The address of the home bucket of spread hash `h` in shard `s` (masked): the same as
    /// the shard view's `home_bucket`, computed from constants of the geometry, so that the
    /// bucket's load waits for the hash only.
    #[inline(always)]
    fn home_bucket(&self, s: u32, h: u64) -> *mut u8 {
        let home = home_of(h, self.buckets_per_shard);
        let s = (s & self.shard_mask) as usize;
        // home < buckets_per_shard and s < shards: a bucket of the region's bucket area.
        self.buckets0
            .wrapping_add(s * self.buckets_stride + home as usize * layout::BUCKET_SIZE as usize)
    }

    fn member(&self, s: u32) -> Membership {
        Membership {
            index: s & self.shard_mask,
            mask: self.shard_mask,
        }
    }

    #[inline]
    fn lock(&self, s: u32) -> Result<ShardGuard<'_>> {
        let g = self.lock_shard(s)?;
        if g.recovered() {
            drop(g);
            self.recount()?;
            return self.lock_shard(s);
        }
        Ok(g)
    }

    #[inline]
    fn try_lock(&self, s: u32) -> Result<Option<ShardGuard<'_>>> {
        // SAFETY: the shard of a validated, initialised region has an initialised mutex in its
        // header, and the mapping outlives the guard (tied to `&self`).
        match unsafe { ShardGuard::try_lock(self.shard(s), self.member(s)) }? {
            Some(g) if g.recovered() => {
                drop(g);
                self.recount()?;
                Ok(None)
            }
            g => Ok(g),
        }
    }

    /// Shard `s`'s lock, as it comes (see [`lock`](Self::lock)).
    #[inline(always)]
    fn lock_shard(&self, s: u32) -> Result<ShardGuard<'_>> {
        // SAFETY: the shard of a validated, initialised region has an initialised mutex in its
        // header, and the mapping outlives the guard (tied to `&self`).
        unsafe { ShardGuard::lock(self.shard(s), self.member(s), self.lock_timeout) }
    }

    /// Sets the shared count of entries to the sum of the shards' counts, every shard locked:
    /// after a shard was rebuilt, whose dead holder may have changed one count and not the
    /// other. No lock is held while this waits for the others.
    #[cold]
    fn recount(&self) -> Result<()> {
        let guards = self.lock_all()?;
        let (_, sum) = self.live_and_sum(&guards);
        self.live_count().store(sum, Ordering::Relaxed);
        Ok(())
    }

    #[inline]
    fn shard_of(&self, h: u64) -> u32 {
        (h as u32) & self.shard_mask
    }

    fn locate_slot(&self, slot: u64) -> Result<(u32, u32)> {
        if slot == 0 || slot > self.slots() {
            return Err(Error::NoSuchSlot(slot));
        }
        let per = self.p.geo.slots_per_shard as u64;
        Ok((((slot - 1) / per) as u32, ((slot - 1) % per) as u32 + 1))
    }

    fn global(&self, shard: u32, local: u32) -> u32 {
        shard * self.p.geo.slots_per_shard + local
    }

    // ---- reads ----

    /// Finds `key` and copies its value into `out`, without the lock when it can. `mark`:
    /// count a hit or miss and record the use.
    ///
    /// The first lock-free attempt is inline; anything unusual (a writer busy on the bucket, a key
    /// that may be past its home bucket, an expired entry) goes to
    /// [`read_again`](Self::read_again), out of line.
    #[inline(always)]
    fn read<O: Out + ?Sized>(
        &self,
        key: KeyRef<'_>,
        mark: bool,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let k = Hashed::new(key);
        let s = self.shard_of(k.h);
        let shard = self.shard(s);
        match shard.probe_home(self.home_bucket(s, k.h), &k) {
            Probe::Absent => {
                if mark {
                    self.lanes.bump(Counter::Misses);
                }
                return Ok(None);
            }
            Probe::Found(hit) => {
                // The clock is read only on a hit, for expiry and the time of use.
                let now = self.now_ms();
                if !expired(hit.meta.expires, now) {
                    match self.take_hit(s, shard, &hit, mark, now, out) {
                        Taken::Copied(len, kind, slot) => return Ok(Some((len, kind, slot))),
                        Taken::TooSmall(needed) => return Err(Error::BufferTooSmall { needed }),
                        Taken::Changed => {}
                    }
                }
            }
            Probe::Unsure => {}
        }
        self.read_again(key, s, mark, out)
    }

    /// Copies the value of an entry a lock-free lookup found into `out` and validates the copy;
    /// once it is valid, counts the hit and records the use (`mark`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn take_hit<O: Out + ?Sized>(
        &self,
        s: u32,
        shard: &Shard<'_>,
        hit: &Hit,
        mark: bool,
        now: u64,
        out: &mut O,
    ) -> Taken {
        let len = hit.meta.vlen as usize;
        let Some(dst) = out.room(len) else {
            if !shard.still(hit) {
                return Taken::Changed;
            }
            if mark {
                self.count_hit(s, shard, hit, now);
            }
            return Taken::TooSmall(len);
        };
        shard.copy_value_of(hit, dst);
        if !shard.still(hit) {
            return Taken::Changed;
        }
        if mark {
            self.count_hit(s, shard, hit, now);
        }
        Taken::Copied(len, ValueKind::from_flags(hit.meta.flags), self.global(s, hit.id))
    }

    /// The rest of [`read`](Self::read) after a first attempt that did not settle it: more
    /// lock-free attempts, then the lock.
    #[inline(never)]
    fn read_again<O: Out + ?Sized>(
        &self,
        key: KeyRef<'_>,
        s: u32,
        mark: bool,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let k = &Hashed::new(key);
        let shard = self.shard(s);
        for _ in 1..READ_TRIES {
            match shard.probe(k) {
                Probe::Absent => {
                    if mark {
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
                    match self.take_hit(s, shard, &hit, mark, now, out) {
                        Taken::Copied(len, kind, slot) => return Ok(Some((len, kind, slot))),
                        Taken::TooSmall(needed) => return Err(Error::BufferTooSmall { needed }),
                        Taken::Changed => std::hint::spin_loop(),
                    }
                }
            }
        }
        self.read_locked(k, s, mark, self.now_ms(), out)
    }

    /// Counts a hit found by a lock-free read and records the use; promotes the entry if it is
    /// due and the lock is free at once.
    #[inline(always)]
    fn count_hit(&self, s: u32, shard: &Shard<'_>, hit: &Hit, now: u64) {
        self.lanes.bump(Counter::Hits);
        if !shard.note_hit(hit, now) {
            return;
        }
        self.promote_found(s, shard, hit.id, hit.stamp(), now);
    }

    /// Moves a found entry to the head if the shard's lock is free at once and its bucket has
    /// not changed since the read (so the slot still holds the key read).
    #[inline(never)]
    fn promote_found(&self, s: u32, shard: &Shard<'_>, id: u32, read: Stamp, now: u64) {
        match self.try_lock(s) {
            Ok(Some(g)) => {
                if g.unchanged(read) {
                    g.promote(id, now);
                }
            }
            _ => shard.note_use_unpromoted(id, now),
        }
    }

    #[cold]
    fn read_locked<O: Out + ?Sized>(
        &self,
        k: &Hashed<'_>,
        s: u32,
        mark: bool,
        now: u64,
        out: &mut O,
    ) -> Result<Option<(usize, ValueKind, u32)>> {
        let g = self.lock(s)?;
        let Some(f) = g.find_live(k, now) else {
            if mark {
                self.lanes.bump(Counter::Misses);
            }
            return Ok(None);
        };
        let meta = g.meta(f.id);
        if mark {
            self.lanes.bump(Counter::Hits);
            g.touch(f.id, now);
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

    /// Calls `f` with a copy of the value of `key`, and marks the entry used. Counts a hit or a
    /// miss.
    #[inline]
    pub fn get_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.with_copy(key.into(), true, f)
    }

    /// Like [`get_with`](Self::get_with) but neither marks the entry used nor counts.
    pub fn peek_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.with_copy(key.into(), false, f)
    }

    /// Calls `f` with a validated copy of the value.
    fn with_copy<R>(
        &self,
        key: KeyRef<'_>,
        mark: bool,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        let mut v = Vec::new();
        Ok(self.read(key, mark, &mut v)?.map(|(_, kind, _)| f(&v, kind)))
    }

    /// The value of `key`, copied out; marks it used.
    pub fn get<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        let mut v = Vec::new();
        Ok(self.read(key.into(), true, &mut v)?.map(|_| v))
    }

    /// The value of `key` without marking it used.
    pub fn peek<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        let mut v = Vec::new();
        Ok(self.read(key.into(), false, &mut v)?.map(|_| v))
    }

    /// Copies the value of `key` into `buf` and returns its length; marks it used.
    /// [`Error::BufferTooSmall`] (nothing copied) if it does not fit.
    #[inline(always)]
    pub fn get_into<'k>(
        &self,
        key: impl Into<KeyRef<'k>>,
        buf: &mut [u8],
    ) -> Result<Option<(usize, ValueKind)>> {
        Ok(self.read(key.into(), true, buf)?.map(|(n, kind, _)| (n, kind)))
    }

    /// Whether `key` is present (and not expired). Does not mark it used.
    pub fn contains<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        self.slot_of(key).map(|s| s.is_some())
    }

    /// The slot id holding `key`, if present.
    pub fn slot_of<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<u32>> {
        Ok(self.read(key.into(), false, &mut Skip)?.map(|(_, _, slot)| slot))
    }

    // ---- writes ----

    /// Stores `value` under `key` as `opts` says.
    #[inline]
    pub fn set<'k>(&self, key: impl Into<KeyRef<'k>>, value: &[u8], opts: &SetOptions) -> Result<SetOutcome> {
        let key = key.into();
        if key.bytes().len() > u16::MAX as usize {
            return Err(Error::KeyTooLarge(key.bytes().len()));
        }
        let k = Hashed::new(key);
        let s = self.shard_of(k.h);
        let shard = self.shard(s);
        sys::prefetch_write(shard.mutex());
        shard.prefetch_for_write(self.home_bucket(s, k.h), &k);
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
        let evict = self.p.evict();
        let set =
            |g: &ShardGuard<'_>| g.set(k, value, opts.kind, expires, opts.mode, evict, now, opts.keep_ttl);
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
        let sum: u64 = (0..self.p.geo.shards).map(|s| self.shard(s).len() as u64).sum();
        let was = self.live_count().swap(sum, Ordering::Relaxed);
        was != sum && sum < self.p.capacity
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
        let s = self.shard_of(k.h);
        let r = self.lock(s)?.incr(&k, delta, expires, self.p.evict(), now);
        if matches!(r, Err(Error::Full)) && !self.p.evict() && self.resync_live() {
            return self.lock(s)?.incr(&k, delta, expires, self.p.evict(), now);
        }
        r
    }

    /// When `key` expires: `None` if absent, `Some(None)` if it never does, else the epoch-ms
    /// time. Does not mark it used.
    pub fn expiry_of<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Option<u64>>> {
        let k = Hashed::new(key.into());
        let now = self.now_ms();
        let g = self.lock(self.shard_of(k.h))?;
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
        let g = self.lock(self.shard_of(k.h))?;
        let Some(f) = g.find_live(&k, now) else {
            return Ok(false);
        };
        if let Some(t) = ttl_ms {
            g.set_expiry(f, self.expires_for(Some(t), now));
        }
        g.touch(f.id, now);
        Ok(true)
    }

    /// Removes `key`. Returns whether it was present.
    pub fn remove<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        let k = Hashed::new(key.into());
        let now = self.now_ms();
        let g = self.lock(self.shard_of(k.h))?;
        match g.find_live(&k, now) {
            Some(f) => {
                g.remove_found(f, k.h);
                g.bump(shd::REMOVES);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    // ---- by slot ----

    fn with_slot<R>(&self, slot: u64, f: impl FnOnce(&ShardGuard<'_>, u32, u32) -> Result<R>) -> Result<R> {
        let (shard, local) = self.locate_slot(slot)?;
        let now = self.now_ms();
        let g = self.lock(shard)?;
        if !g.holds_entry(local) {
            return Err(Error::SlotFree(slot));
        }
        if expired(g.meta(local).expires, now) {
            g.remove_slot(local);
            g.bump(shd::EXPIRATIONS);
            return Err(Error::SlotFree(slot));
        }
        f(&g, shard, local)
    }

    /// Calls `f` with the value in slot `slot`, without marking it used.
    /// [`Error::NoSuchSlot`] for 0 or beyond the slots, [`Error::SlotFree`] for a free slot.
    pub fn get_slot_with<R>(&self, slot: u64, f: impl FnOnce(&[u8], ValueKind) -> R) -> Result<R> {
        self.with_slot(slot, |g, _, id| {
            let m = g.meta(id);
            Ok(f(&g.value_of(id, &m), ValueKind::from_flags(m.flags)))
        })
    }

    /// The whole entry in slot `slot`.
    pub fn slot_entry(&self, slot: u64) -> Result<Entry> {
        self.with_slot(slot, |g, s, id| Ok(self.entry(s, g.copy(id))))
    }

    /// Removes the entry in slot `slot`.
    pub fn remove_slot(&self, slot: u64) -> Result<()> {
        self.with_slot(slot, |g, _, id| {
            g.remove_slot(id);
            g.bump(shd::REMOVES);
            Ok(())
        })
    }

    /// Sets the share key of the entry in slot `slot`.
    pub fn set_share_key(&self, slot: u64, share_key: u32) -> Result<()> {
        self.with_slot(slot, |g, _, id| {
            g.set_share(id, share_key);
            Ok(())
        })
    }

    fn entry(&self, shard: u32, c: Copied) -> Entry {
        Entry {
            slot: self.global(shard, c.id),
            key: c.key,
            value: c.value,
            kind: c.kind,
            used_ms: c.used,
            expires_ms: (c.expires != 0).then_some(c.expires),
            share_key: c.share,
        }
    }

    // ---- whole cache ----

    /// Evicts up to `max` entries last used before `cutoff_ms` (epoch ms), least recently used
    /// first, and returns them. An entry used at or after the cutoff is never taken.
    pub fn evict_used_before(&self, cutoff_ms: u64, max: usize) -> Result<Vec<Entry>> {
        // (time of last use, shard, slot, link time, stored hash): the last two tell, when the
        // shard is locked again, whether the slot still holds the same entry.
        let mut cands: Vec<(u64, u32, u32, u64, u64)> = Vec::new();
        for s in 0..self.p.geo.shards {
            let g = self.lock(s)?;
            cands.extend(
                g.used_before(cutoff_ms, max)
                    .into_iter()
                    .map(|(u, id)| (u, s, id, g.use_of(id).linked, g.stored_hash(id))),
            );
        }
        cands.sort_unstable();
        cands.truncate(max);
        let mut out = Vec::with_capacity(cands.len());
        for s in 0..self.p.geo.shards {
            if !cands.iter().any(|c| c.1 == s) {
                continue;
            }
            let g = self.lock(s)?;
            for &(used, _, id, linked, hash) in cands.iter().filter(|c| c.1 == s) {
                // Still the same entry (not removed, cleared or replaced meanwhile), still
                // unused since the cutoff?
                let u = g.use_of(id);
                if !g.holds_entry(id)
                    || u.used != used
                    || u.linked != linked
                    || g.stored_hash(id) != hash
                    || u.used >= cutoff_ms
                {
                    continue;
                }
                out.push((used, self.entry(s, g.copy(id))));
                g.remove_slot(id);
                g.bump(shd::EVICTIONS);
            }
        }
        out.sort_by_key(|e| e.0);
        Ok(out.into_iter().map(|e| e.1).collect())
    }

    /// Evicts up to `max` entries not used in the last `age_ms` milliseconds.
    pub fn evict_older_than(&self, age_ms: u64, max: usize) -> Result<Vec<Entry>> {
        self.evict_used_before(self.now_ms_fresh().saturating_sub(age_ms), max)
    }

    /// Reclaims every expired entry now; returns how many.
    pub fn purge_expired(&self) -> Result<u64> {
        let now = self.now_ms_fresh();
        let mut n = 0;
        for s in 0..self.p.geo.shards {
            n += self.lock(s)?.purge_expired(now);
        }
        Ok(n)
    }

    /// A snapshot of the live entries in order of last use, optionally only those with
    /// `share_key`, at most `limit`. Shards are locked one at a time.
    pub fn entries(&self, order: Order, share_key: Option<u32>, limit: Option<usize>) -> Result<Vec<Entry>> {
        self.seg.verify_size()?;
        let now = self.now_ms();
        let mut all: Vec<Entry> = Vec::new();
        for s in 0..self.p.geo.shards {
            let g = self.lock(s)?;
            let mut v = g.live_entries(now, share_key);
            if order == Order::LruFirst {
                v.reverse();
            }
            all.extend(v.into_iter().map(|c| self.entry(s, c)));
        }
        match order {
            Order::MruFirst => all.sort_by_key(|e| std::cmp::Reverse(e.used_ms)),
            Order::LruFirst => all.sort_by_key(|e| e.used_ms),
        }
        all.truncate(limit.unwrap_or(usize::MAX));
        Ok(all)
    }

    /// Up to `max` live entries from `from` on (the start when `None`), for walking a cache of
    /// any size in constant memory: shard after shard, each shard in `order` along its recency
    /// list (by link time: exact when the shard's refresh interval is 0, within it otherwise).
    /// Returns them and where to go on from (`None` at the end). Each call locks one shard
    /// once. A walk over a changing cache sees each entry that stays put once; one moved or
    /// removed meanwhile may be seen twice or not at all.
    pub fn scan(
        &self,
        order: Order,
        from: Option<ScanCursor>,
        max: usize,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>)> {
        self.seg.verify_size()?;
        let shards = self.p.geo.shards;
        let mut at = from.unwrap_or(ScanCursor {
            shard: 0,
            next: 0,
            linked: 0,
        });
        let mut out = Vec::new();
        let now = self.now_ms();
        while at.shard < shards && out.len() < max.max(1) {
            let g = self.lock(at.shard)?;
            let mru = order == Order::MruFirst;
            let start = if mru { g.head() } else { g.tail() };
            let mut id = if at.next == 0 {
                start
            } else if g.holds_entry(at.next) && g.use_of(at.next).linked == at.linked {
                at.next
            } else {
                // The entry to go on from moved or went: find the first one not yet passed
                // by its link time, which the list is ordered by.
                let mut id = start;
                let mut hops = g.cap();
                while id != 0 && hops > 0 {
                    let l = g.use_of(id).linked;
                    if (mru && l <= at.linked) || (!mru && l >= at.linked) {
                        break;
                    }
                    id = if mru { g.next(id) } else { g.prev(id) };
                    hops -= 1;
                }
                id
            };
            let mut hops = g.cap();
            while id != 0 && hops > 0 && out.len() < max.max(1) {
                if !expired(g.meta(id).expires, now) {
                    out.push(self.entry(at.shard, g.copy(id)));
                }
                id = if mru { g.next(id) } else { g.prev(id) };
                hops -= 1;
            }
            if id == 0 || hops == 0 {
                at = ScanCursor {
                    shard: at.shard + 1,
                    next: 0,
                    linked: 0,
                };
            } else {
                at = ScanCursor {
                    shard: at.shard,
                    next: id,
                    linked: g.use_of(id).linked,
                };
            }
        }
        Ok((out, (at.shard < shards).then_some(at)))
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> Result<u64> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let mut n = 0;
        for s in 0..self.p.geo.shards {
            n += self.lock(s)?.clear();
        }
        Ok(n)
    }

    /// Live entries now (expired ones are reclaimed first).
    pub fn len(&self) -> Result<u64> {
        let now = self.now_ms();
        let mut n = 0;
        for s in 0..self.p.geo.shards {
            let g = self.lock(s)?;
            g.purge_expired(now);
            n += g.len() as u64;
        }
        Ok(n)
    }

    /// Whether the cache holds no live entry.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Counters summed over shards and processes (expired entries are reclaimed first).
    pub fn stats(&self) -> Result<Stats> {
        let now = self.now_ms();
        let mut st = Stats {
            capacity: self.capacity(),
            hits: self.lanes.total(Counter::Hits),
            misses: self.lanes.total(Counter::Misses),
            ..Stats::default()
        };
        for s in 0..self.p.geo.shards {
            let g = self.lock(s)?;
            g.purge_expired(now);
            st.inserts += g.counter(shd::INSERTS);
            st.updates += g.counter(shd::UPDATES);
            st.removes += g.counter(shd::REMOVES);
            st.evictions += g.counter(shd::EVICTIONS);
            st.expirations += g.counter(shd::EXPIRATIONS);
            st.recoveries += g.recoveries() as u64;
            st.len += g.len() as u64;
        }
        Ok(st)
    }

    /// Each shard's refresh interval R, ms: the time within which the recency order of two
    /// uses is approximate (see the crate docs).
    pub fn refresh_intervals(&self) -> Vec<u64> {
        (0..self.p.geo.shards)
            .map(|s| self.shard(s).refresh_ms())
            .collect()
    }

    /// Verifies every structural invariant of every shard (index, lists, free space and counts
    /// agree; no cycles) and of the whole cache (its shared count of entries is the sum of the
    /// shards'), and reports what is wrong. Holds every shard's lock at once, taken in order.
    pub fn check(&self) -> Result<CheckReport> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let mut report = CheckReport {
            shards: self.p.geo.shards,
            ..CheckReport::default()
        };
        let guards = self.lock_all()?;
        for (s, g) in guards.iter().enumerate() {
            check_shard(g, s as u32, self.p.geo.shards, &mut report);
        }
        let (live, sum) = self.live_and_sum(&guards);
        if live != sum {
            report.problems.push(format!(
                "the cache counts {live} entries but its shards hold {sum}"
            ));
        }
        Ok(report)
    }

    /// Every shard's lock, taken in shard order: only `check` and `repair` hold more than one,
    /// and always in that order, so no two callers can wait for each other.
    /// A shard rebuilt on the way sets the shared count again, from every shard's.
    fn lock_all(&self) -> Result<Vec<ShardGuard<'_>>> {
        let guards = (0..self.p.geo.shards)
            .map(|s| self.lock_shard(s))
            .collect::<Result<Vec<_>>>()?;
        if guards.iter().any(|g| g.recovered()) {
            let (_, sum) = self.live_and_sum(&guards);
            self.live_count().store(sum, Ordering::Relaxed);
        }
        Ok(guards)
    }

    /// The shared count of entries, and the sum of the shards' counts (every shard locked).
    fn live_and_sum(&self, guards: &[ShardGuard<'_>]) -> (u64, u64) {
        let sum = guards.iter().map(|g| g.len() as u64).sum();
        (self.live_count().load(Ordering::Relaxed), sum)
    }

    /// The region's shared count of entries.
    fn live_count(&self) -> &AtomicU64 {
        // SAFETY: the count lies in the region header, 8-aligned, inside the mapping that
        // `self` keeps alive, and is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.region.add(layout::hdr::LIVE).cast()) }
    }

    /// Checks every shard and rebuilds each damaged one from its slots, as recovery after a
    /// dead lock holder does: entries that cannot be trusted (mid-write, lengths over the
    /// record, a key that does not match its hash or shard, a duplicate) are dropped.
    pub fn repair(&self) -> Result<RepairReport> {
        // A walk over every shard: make sure the segment was not cut short underneath first.
        self.seg.verify_size()?;
        let shards = self.p.geo.shards;
        let mut r = RepairReport {
            before: CheckReport {
                shards,
                ..CheckReport::default()
            },
            after: CheckReport {
                shards,
                ..CheckReport::default()
            },
            ..RepairReport::default()
        };
        let guards = self.lock_all()?;
        for (s, g) in guards.iter().enumerate() {
            let s = s as u32;
            let mut one = CheckReport::default();
            check_shard(g, s, shards, &mut one);
            r.before.entries += one.entries;
            r.before.free += one.free;
            if !one.is_ok() {
                r.before.problems.append(&mut one.problems);
                let done = g.rebuild(|h| self.member(s).belongs(h));
                r.rebuilt += 1;
                r.kept += done.kept;
                r.dropped += done.dropped;
            }
            check_shard(g, s, shards, &mut r.after);
        }
        // The shared count last, once every shard's own count is right.
        let (live, sum) = self.live_and_sum(&guards);
        if live != sum {
            r.before.problems.push(format!(
                "the cache counts {live} entries but its shards hold {sum}"
            ));
            self.live_count().store(sum, Ordering::Relaxed);
            r.recounted = true;
        }
        Ok(r)
    }

    // ---- the application mutex ----

    fn app_mutex(&self) -> *mut libc::pthread_mutex_t {
        self.region.wrapping_add(layout::hdr::APP_MUTEX).cast()
    }

    /// Takes the cache's application mutex, blocking; a mutex for the callers' own use that a
    /// killed holder cannot wedge. Returns `true` when the previous holder died holding it (the
    /// mutex is then taken and usable; what it protected may need repair).
    pub fn app_lock(&self) -> Result<bool> {
        // SAFETY: the app mutex was initialised with the region and lies in the header, which
        // `self.seg` keeps mapped.
        let r = unsafe { robust_mutex::lock(self.app_mutex()) }.map_err(|source| Error::Unrecoverable {
            op: "app mutex",
            source,
        })?;
        if r == robust_mutex::Locked::WouldBlock {
            // Only a lock found damaged makes a blocking lock give up.
            // SAFETY: as above.
            let why = unsafe { robust_mutex::diagnose(self.app_mutex()) }.unwrap_or_default();
            return Err(Error::LockDamaged {
                waited: robust_mutex::DAMAGE_GRACE,
                why,
            });
        }
        self.app_consistent(r)
    }

    /// Like [`app_lock`](Self::app_lock) without waiting: `None` if someone else holds it.
    pub fn app_try_lock(&self) -> Result<Option<bool>> {
        // SAFETY: as in app_lock.
        let r =
            unsafe { robust_mutex::try_lock(self.app_mutex()) }.map_err(|source| Error::Unrecoverable {
                op: "app mutex",
                source,
            })?;
        if r == robust_mutex::Locked::WouldBlock {
            return Ok(None);
        }
        self.app_consistent(r).map(Some)
    }

    fn app_consistent(&self, r: robust_mutex::Locked) -> Result<bool> {
        if r == robust_mutex::Locked::OwnerDied {
            // SAFETY: we hold the mutex, taken with EOWNERDEAD.
            unsafe { robust_mutex::make_consistent(self.app_mutex()) }.map_err(|source| {
                Error::Unrecoverable {
                    op: "app mutex",
                    source,
                }
            })?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Releases the application mutex. Fails if this thread does not hold it.
    pub fn app_unlock(&self) -> Result<()> {
        // SAFETY: unlock of a robust mutex checks ownership and fails with EPERM otherwise.
        unsafe { robust_mutex::unlock(self.app_mutex()) }.map_err(Error::NotLockOwner)
    }

    // ---- opening with a say on whom to trust ----

    /// Like [`open`](Self::open), with the owner and mode of the segment vetted by `opts`
    /// ([`Segment::open_with`]; [`Error::Permission`] when they are not trusted).
    pub fn open_with(id: &SegmentId, opts: &OpenOptions) -> Result<Cache> {
        Cache::open_inner(id, opts, false)
    }

    /// [`open_with`](Self::open_with); with `remove_abandoned`, a segment left half-made by a
    /// dead creator is removed before [`Error::Abandoned`] is returned.
    fn open_inner(id: &SegmentId, opts: &OpenOptions, remove_abandoned: bool) -> Result<Cache> {
        // A creator sizes its object just after making it (two system calls later), so an
        // object of size 0 is given a moment before it is called damaged.
        let seg = Arc::new(Segment::open_sized(id, opts, SIZE_WAIT)?);
        match header::attach(&seg, None, ATTACH_WAIT) {
            Ok(p) => Ok(Cache::from_params(seg, p)),
            Err(Error::Abandoned(what)) => {
                if remove_abandoned {
                    seg.remove_abandoned();
                }
                Err(Error::Abandoned(what))
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`open_or_create`](Self::open_or_create), opening an existing segment with
    /// [`open_with`](Self::open_with) and `open`.
    pub fn open_or_create_with(id: &SegmentId, opts: &CacheOptions, open: &OpenOptions) -> Result<Cache> {
        for _ in 0..100 {
            match Cache::create(id, opts) {
                Err(Error::SegmentExists(_)) => match Cache::open_inner(id, open, true) {
                    Err(Error::SegmentNotFound(_) | Error::Abandoned(_)) => continue,
                    r => return r,
                },
                r => return r,
            }
        }
        Err(Error::NotReady(format!("{id} keeps appearing and vanishing")))
    }
}

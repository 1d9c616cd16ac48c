//! The public cache: hashes the key, picks the shard, takes its lock and runs the algorithm of
//! `shard.rs` on it. Also creation, attaching and validation of the region header.

use crate::check::{check_shard, CheckReport};
use crate::error::{Error, Result};
use crate::key::{Key, KeyRef};
use crate::layout::{
    self, hdr, shd, Geometry, FLAG_EVICT_ON_FULL, F_BYTES_KEY, HEADER_SIZE, SHARD_SIZE, TIME_MASK,
};
use crate::lock::ShardGuard;
use crate::segment::{Segment, SegmentId};
use crate::shard::{Hashed, SetMode, ValueKind};
use crate::slots::ShardView;
use crate::sys::{self, robust_mutex};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a cache is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Entries wanted (for [`Cache::create`]; a region's size decides it for
    /// [`Cache::init_in`]). Rounded up to a multiple of the shard count.
    pub capacity: u64,
    /// Data bytes per record: key bytes (for byte keys) plus value bytes must fit.
    pub record_size: u32,
    /// When a shard is full: evict its least recently used entry (`true`) or refuse with
    /// [`Error::Full`] (`false`).
    pub evict_on_full: bool,
    /// Shard count (a power of two up to 1024). `None` picks one: 1 for a cache that does not
    /// evict, so that its capacity is exact; up to 64 for larger evicting caches.
    pub shards: Option<u32>,
    /// Time to live given to entries set without one, in ms (0 = forever).
    pub default_ttl_ms: u64,
    /// Permission bits of a created segment.
    pub mode: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            capacity: 1024,
            record_size: 256,
            evict_on_full: true,
            shards: None,
            default_ttl_ms: 0,
            mode: 0o600,
        }
    }
}

/// Per-call options of [`Cache::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// Time to live in ms; `None` uses the cache's default, `Some(0)` means forever.
    pub ttl_ms: Option<u64>,
    /// Insert, overwrite, or either.
    pub mode: SetMode,
    /// How the value should come back.
    pub kind: ValueKind,
}

/// What [`Cache::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOutcome {
    /// The entry's slot id (1-based).
    pub slot: u32,
    /// `true` for a new entry, `false` for an overwrite.
    pub inserted: bool,
    /// Whether a least recently used entry was evicted to make room.
    pub evicted: bool,
}

/// What to do when [`Cache::init_in`] finds the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// Use the cache that is there; fail if there is none.
    Attach,
    /// Use the cache that is there if it has the requested record size, else lay a new one out
    /// (over whatever bytes the region holds, unless they are a cache of ours).
    AttachOrInit,
    /// Lay a new, empty cache out, discarding what the region holds.
    Reset,
}

/// Iteration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Most recently used first.
    MruFirst,
    /// Least recently used first.
    LruFirst,
}

/// One entry, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Slot id.
    pub slot: u32,
    /// Key.
    pub key: Key,
    /// Value bytes.
    pub value: Vec<u8>,
    /// How the value was stored.
    pub kind: ValueKind,
    /// Time of last use, epoch ms.
    pub used_ms: u64,
    /// Expiry, epoch ms, if any.
    pub expires_ms: Option<u64>,
    /// The entry's share key.
    pub share_key: u32,
}

/// Counters and sizes, summed over shards. Counters live in the segment, so they count what
/// every process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// `get`s that found their key.
    pub hits: u64,
    /// `get`s that did not.
    pub misses: u64,
    /// New entries.
    pub inserts: u64,
    /// Overwrites (including `incr`).
    pub updates: u64,
    /// Explicit removals.
    pub removes: u64,
    /// Entries evicted for room or by age.
    pub evictions: u64,
    /// Expired entries reclaimed.
    pub expirations: u64,
    /// Times a shard was rebuilt after a process died holding its lock.
    pub recoveries: u64,
    /// Entries now.
    pub len: u64,
    /// Slots in all.
    pub capacity: u64,
}

#[derive(Debug, Clone)]
enum Clock {
    System,
    Manual(Arc<AtomicU64>),
}

/// A shared-memory LRU cache attached to one region of one segment.
///
/// Every method takes `&self` and is safe to call from many threads and many processes at once:
/// each operation locks only the shard its key maps to. Handles are cheap to keep; the mapping
/// stays alive as long as the handle does.
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
    region_size: u64,
    geo: Geometry,
    shard_mask: u32,
    base_ms: u64,
    evict: bool,
    default_ttl: u64,
    clock: Clock,
    lock_timeout: Option<Duration>,
}

// SAFETY: the raw pointer addresses a mapping owned by `seg` (kept alive by the Arc); all access
// to shared bytes goes through shard locks or atomics, so handles may move between threads.
unsafe impl Send for Cache {}
// SAFETY: as above; `&Cache` methods synchronise through the shard locks.
unsafe impl Sync for Cache {}

const ATTACH_WAIT: Duration = Duration::from_secs(5);

impl Cache {
    /// Creates a new segment sized for `opts` and lays a cache out in it. Fails with
    /// [`Error::Exists`] if the segment exists.
    pub fn create(id: &SegmentId, opts: &CacheOptions) -> Result<Cache> {
        let geo = Cache::geometry_for(opts)?;
        let seg = Arc::new(Segment::create(id, geo.total, opts.mode)?);
        match Cache::init(seg, geo.total, geo, opts, true) {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = Segment::destroy(id, true);
                Err(e)
            }
        }
    }

    /// Attaches to the cache in an existing segment made by [`Cache::create`].
    pub fn open(id: &SegmentId) -> Result<Cache> {
        let seg = Arc::new(Segment::open(id)?);
        Cache::attach(seg, None)
    }

    /// Opens the cache if the segment exists, else creates it.
    pub fn open_or_create(id: &SegmentId, opts: &CacheOptions) -> Result<Cache> {
        for _ in 0..100 {
            match Cache::create(id, opts) {
                Err(Error::Exists(_)) => match Cache::open(id) {
                    Err(Error::NotFound(_)) => continue,
                    r => return r,
                },
                r => return r,
            }
        }
        Err(Error::NotReady(format!("{id} keeps appearing and vanishing")))
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
        let per = opts.capacity.div_ceil(shards.max(1) as u64);
        let per = u32::try_from(per)
            .map_err(|_| Error::InvalidArgument(format!("capacity {} too large", opts.capacity)))?;
        Geometry::new(opts.record_size, shards, per)
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
        let shards = match opts.shards {
            Some(s) => s,
            None => {
                let approx = Geometry::fit(opts.record_size, 1, region_size)?.capacity();
                layout::default_shards(opts.evict_on_full, approx)
            }
        };
        let geo = Geometry::fit(opts.record_size, shards, region_size)?;
        if mode == InitMode::AttachOrInit && region_size >= HEADER_SIZE {
            // SAFETY: the region has at least HEADER_SIZE bytes; reads of the magic word are
            // plain loads of bytes nobody else may be writing once the state is READY.
            let magic = unsafe { seg.as_ptr().add(hdr::MAGIC).cast::<u64>().read_volatile() };
            let state = state_of(seg.as_ptr()).load(Ordering::Acquire);
            if magic == layout::MAGIC || state == layout::STATE_INITIALIZING {
                let c = Cache::attach(seg.clone(), Some(region_size))?;
                if c.geo.record_size != opts.record_size {
                    return Err(Error::InvalidArgument(format!(
                        "the region already holds a cache with record size {}, not {}",
                        c.geo.record_size, opts.record_size
                    )));
                }
                return Ok(c);
            }
        }
        Cache::init(seg, region_size, geo, opts, false)
    }

    fn init(
        seg: Arc<Segment>,
        region_size: u64,
        geo: Geometry,
        opts: &CacheOptions,
        fresh: bool,
    ) -> Result<Cache> {
        let base = seg.as_ptr();
        let state = state_of(base);
        let seen = state.load(Ordering::Acquire);
        if seen == layout::STATE_INITIALIZING
            || state
                .compare_exchange(
                    seen,
                    layout::STATE_INITIALIZING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            // Somebody else is laying it out: use theirs.
            return Cache::attach(seg, Some(region_size));
        }
        let flags = if opts.evict_on_full { FLAG_EVICT_ON_FULL } else { 0 };
        let base_ms = sys::now_ms();
        // SAFETY: we won the state transition to INITIALIZING, so no other process reads or
        // writes the region's fields until we publish READY; every write is inside the
        // region, whose size `geo.total <= region_size <= seg.len()` was checked by the callers.
        unsafe {
            let w32 = |off: usize, v: u32| base.add(off).cast::<u32>().write(v);
            let w64 = |off: usize, v: u64| base.add(off).cast::<u64>().write(v);
            w64(hdr::MAGIC, 0);
            w32(hdr::FORMAT, layout::FORMAT_VERSION);
            w32(hdr::LAYOUT, layout::layout_word());
            w32(hdr::FLAGS, flags);
            w32(hdr::RECORD_SIZE, geo.record_size);
            w32(hdr::SHARD_COUNT, geo.shards);
            w32(hdr::SLOTS_PER_SHARD, geo.slots_per_shard);
            w32(hdr::BUCKETS_PER_SHARD, geo.buckets_per_shard);
            w32(hdr::SLOT_STRIDE, geo.stride as u32);
            w32(hdr::CREATOR_PID, sys::pid());
            w64(hdr::REGION_SIZE, region_size);
            w64(hdr::CAPACITY, geo.capacity());
            w64(hdr::BASE_MS, base_ms);
            w64(hdr::DEFAULT_TTL_MS, opts.default_ttl_ms);
            w64(hdr::SHARDS_OFF, geo.shards_off);
            w64(hdr::BUCKETS_OFF, geo.buckets_off);
            w64(hdr::SLOTS_OFF, geo.slots_off);
            robust_mutex::init(base.add(hdr::APP_MUTEX).cast())
                .map_err(|e| Error::io("pthread_mutex_init", seg.id(), e))?;
            for s in 0..geo.shards as u64 {
                let sh = base.add((geo.shards_off + s * SHARD_SIZE) as usize);
                std::ptr::write_bytes(sh, 0, SHARD_SIZE as usize);
                robust_mutex::init(sh.add(shd::MUTEX).cast())
                    .map_err(|e| Error::io("pthread_mutex_init", seg.id(), e))?;
            }
            if !fresh {
                // A fresh segment is zeroed by the kernel; a reused region is not.
                let len = geo.shards as u64 * geo.buckets_per_shard as u64 * 4;
                std::ptr::write_bytes(base.add(geo.buckets_off as usize), 0, len as usize);
            }
            w64(hdr::MAGIC, layout::MAGIC);
        }
        state.store(layout::STATE_READY, Ordering::Release);
        Ok(Cache::from_parts(
            seg,
            region_size,
            geo,
            flags,
            base_ms,
            opts.default_ttl_ms,
        ))
    }

    /// Attaches to a cache laid out at the start of `seg`, validating its header. The region
    /// the header claims must lie within the segment; `region_size`, when given, only bounds
    /// where the header itself may be read (the cache's own size comes from its header).
    pub fn attach(seg: Arc<Segment>, region_size: Option<u64>) -> Result<Cache> {
        Cache::attach_waiting(seg, region_size, ATTACH_WAIT)
    }

    /// Like [`attach`](Self::attach), but a region whose initialisation has not finished is
    /// reported at once ([`Error::NotReady`], or [`Error::BadFormat`] for all-zero bytes)
    /// instead of being waited for: for tools that inspect segments they did not make.
    pub fn probe(seg: Arc<Segment>) -> Result<Cache> {
        Cache::attach_waiting(seg, None, Duration::ZERO)
    }

    fn attach_waiting(seg: Arc<Segment>, region_size: Option<u64>, wait: Duration) -> Result<Cache> {
        let avail = region_size.unwrap_or(seg.len()).min(seg.len());
        if avail < HEADER_SIZE {
            return Err(Error::RegionTooSmall {
                needed: HEADER_SIZE,
                available: avail,
            });
        }
        let base = seg.as_ptr();
        let state = state_of(base);
        let start = Instant::now();
        loop {
            let s = state.load(Ordering::Acquire);
            // SAFETY: the region has at least HEADER_SIZE bytes.
            let magic = unsafe { base.add(hdr::MAGIC).cast::<u64>().read_volatile() };
            if s == layout::STATE_READY && magic == layout::MAGIC {
                break;
            }
            let pending = s == layout::STATE_INITIALIZING || (s == layout::STATE_EMPTY && magic == 0);
            if !pending {
                return Err(Error::BadFormat(format!(
                    "segment {} does not start with a shm-lru header (magic {magic:#018x})",
                    seg.id()
                )));
            }
            if wait.is_zero() && s == layout::STATE_EMPTY {
                return Err(Error::BadFormat(format!(
                    "segment {} holds zero bytes, not a cache",
                    seg.id()
                )));
            }
            if start.elapsed() >= wait {
                return Err(Error::NotReady(format!(
                    "segment {} was not initialised within {wait:?} (its initialiser may have died)",
                    seg.id(),
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // SAFETY: READY was published with Release after every header field was written, and
        // the fields never change afterwards; the reads are inside the region's first
        // HEADER_SIZE bytes.
        let r32 = |off: usize| unsafe { base.add(off).cast::<u32>().read() };
        // SAFETY: as above.
        let r64 = |off: usize| unsafe { base.add(off).cast::<u64>().read() };
        let format = r32(hdr::FORMAT);
        if format != layout::FORMAT_VERSION {
            return Err(Error::VersionMismatch {
                found: format,
                expected: layout::FORMAT_VERSION,
            });
        }
        let lw = r32(hdr::LAYOUT);
        if lw != layout::layout_word() {
            return Err(Error::VersionMismatch {
                found: lw,
                expected: layout::layout_word(),
            });
        }
        let header_region = r64(hdr::REGION_SIZE);
        if header_region > seg.len() {
            return Err(Error::RegionTooSmall {
                needed: header_region,
                available: seg.len(),
            });
        }
        let bad = |what: String| Error::BadFormat(format!("segment {}: {what}", seg.id()));
        let geo = Geometry::new(
            r32(hdr::RECORD_SIZE),
            r32(hdr::SHARD_COUNT),
            r32(hdr::SLOTS_PER_SHARD),
        )
        .map_err(|e| bad(format!("impossible geometry ({e})")))?;
        if geo.total > header_region
            || geo.buckets_per_shard != r32(hdr::BUCKETS_PER_SHARD)
            || geo.stride != r32(hdr::SLOT_STRIDE) as u64
            || geo.capacity() != r64(hdr::CAPACITY)
            || geo.shards_off != r64(hdr::SHARDS_OFF)
            || geo.buckets_off != r64(hdr::BUCKETS_OFF)
            || geo.slots_off != r64(hdr::SLOTS_OFF)
        {
            return Err(bad("header fields disagree with each other".into()));
        }
        let flags = r32(hdr::FLAGS);
        let base_ms = r64(hdr::BASE_MS);
        let ttl = r64(hdr::DEFAULT_TTL_MS);
        Ok(Cache::from_parts(seg, header_region, geo, flags, base_ms, ttl))
    }

    fn from_parts(
        seg: Arc<Segment>,
        region_size: u64,
        geo: Geometry,
        flags: u32,
        base_ms: u64,
        ttl: u64,
    ) -> Cache {
        Cache {
            region: seg.as_ptr(),
            seg,
            region_size,
            geo,
            shard_mask: geo.shards - 1,
            base_ms,
            evict: flags & FLAG_EVICT_ON_FULL != 0,
            default_ttl: ttl,
            clock: Clock::System,
            lock_timeout: None,
        }
    }

    /// Makes this handle read time from `clock` (epoch ms) instead of the system clock: for
    /// tests and simulations. Other handles and processes keep their own clocks.
    pub fn use_manual_clock(&mut self, clock: Arc<AtomicU64>) {
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
    /// Slots in all: the most entries the cache can hold.
    pub fn capacity(&self) -> u64 {
        self.geo.capacity()
    }
    /// Data bytes per record.
    pub fn record_size(&self) -> u32 {
        self.geo.record_size
    }
    /// Shard count.
    pub fn shards(&self) -> u32 {
        self.geo.shards
    }
    /// Bytes of the segment the cache occupies.
    pub fn region_size(&self) -> u64 {
        self.region_size
    }
    /// Whether a full shard evicts.
    pub fn evict_on_full(&self) -> bool {
        self.evict
    }
    /// The default time to live, ms (0 = forever).
    pub fn default_ttl_ms(&self) -> u64 {
        self.default_ttl
    }
    /// The layout.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Current time, epoch ms, by this handle's clock.
    pub fn now_ms(&self) -> u64 {
        match &self.clock {
            Clock::System => sys::now_ms(),
            Clock::Manual(c) => c.load(Ordering::Relaxed),
        }
    }

    #[inline]
    fn rel(&self, abs: u64) -> u64 {
        (abs.saturating_sub(self.base_ms) + 1).min(TIME_MASK)
    }

    #[inline]
    fn now_rel(&self) -> u64 {
        self.rel(self.now_ms())
    }

    fn abs(&self, rel: u64) -> u64 {
        self.base_ms + rel.saturating_sub(1)
    }

    fn expires_for(&self, ttl: Option<u64>, now_abs: u64) -> u64 {
        match ttl.unwrap_or(self.default_ttl) {
            0 => 0,
            t => self.rel(now_abs.saturating_add(t)).max(1),
        }
    }

    // ---- shards ----

    fn view(&self, shard: u32) -> (ShardView, *mut u8) {
        let g = &self.geo;
        let s = shard as u64;
        let cap = g.slots_per_shard as u64;
        // SAFETY: shard < g.shards (callers mask or range-check), so every offset below lies in
        // the validated geometry, which lies inside the mapping; the view is handed only to
        // ShardGuard::lock, which takes the shard lock before any use, or to `prefetch`, which
        // only computes an address from it and reads nothing.
        unsafe {
            let hdr = self.region.add((g.shards_off + s * SHARD_SIZE) as usize);
            let buckets = self
                .region
                .add((g.buckets_off + s * g.buckets_per_shard as u64 * 4) as usize)
                .cast::<u32>();
            let slots = self.region.add((g.slots_off + s * cap * g.stride) as usize);
            (
                ShardView::new(
                    hdr,
                    buckets,
                    slots,
                    g.slots_per_shard,
                    g.stride as usize,
                    g.record_size,
                ),
                hdr,
            )
        }
    }

    #[inline]
    fn lock(&self, shard: u32) -> Result<ShardGuard<'_>> {
        let (view, hdr) = self.view(shard);
        // SAFETY: the view addresses shard `shard` of a validated, initialised region that
        // `self.seg` keeps mapped for the guard's lifetime (tied to `&self`).
        unsafe { ShardGuard::lock(view, hdr, self.lock_timeout) }
    }

    /// Starts fetching the bucket a lookup of spread hash `h` reads first, so that its cache
    /// miss overlaps reading the clock and taking the lock instead of lengthening the locked
    /// section. (Reading the bucket here to prefetch its first slot as well was tried: it made
    /// inserts into large caches slower, as the read has to complete before the lock.)
    #[inline]
    fn prefetch(&self, h: u64) {
        let (view, _) = self.view(self.shard_of(h));
        sys::prefetch(view.bucket_ptr(view.bucket_of(h)));
    }

    #[inline]
    fn shard_of(&self, h: u64) -> u32 {
        (h as u32) & self.shard_mask
    }

    fn locate_slot(&self, slot: u64) -> Result<(u32, u32)> {
        if slot == 0 || slot > self.capacity() {
            return Err(Error::NoSuchSlot(slot));
        }
        let per = self.geo.slots_per_shard as u64;
        Ok((((slot - 1) / per) as u32, ((slot - 1) % per) as u32 + 1))
    }

    fn global(&self, shard: u32, local: u32) -> u32 {
        shard * self.geo.slots_per_shard + local
    }

    // ---- by key ----

    /// Calls `f` with the value of `key` while the shard is locked, and marks the entry most
    /// recently used. Counts a hit or a miss. `f` must be quick: it holds the shard's lock.
    #[inline]
    pub fn get_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.read_with(key.into(), true, f)
    }

    /// Like [`get_with`](Self::get_with) but neither marks the entry used nor counts.
    pub fn peek_with<'k, R>(
        &self,
        key: impl Into<KeyRef<'k>>,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        self.read_with(key.into(), false, f)
    }

    #[inline(always)]
    fn read_with<R>(
        &self,
        key: KeyRef<'_>,
        mark_used: bool,
        f: impl FnOnce(&[u8], ValueKind) -> R,
    ) -> Result<Option<R>> {
        let k = Hashed::new(key);
        self.prefetch(k.h);
        let now = self.now_rel();
        let g = self.lock(self.shard_of(k.h))?;
        let Some(id) = g.find_live(&k, now) else {
            if mark_used {
                g.bump(shd::MISSES);
            }
            return Ok(None);
        };
        if mark_used {
            g.touch(id, now);
            g.bump(shd::HITS);
        }
        let m = g.meta(id);
        Ok(Some(f(
            g.value_bytes(id, m.klen, m.vlen),
            ValueKind::from_flags(m.flags),
        )))
    }

    /// The value of `key`, copied out; marks it used.
    pub fn get<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        self.get_with(key, |v, _| v.to_vec())
    }

    /// The value of `key` without marking it used.
    pub fn peek<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<Vec<u8>>> {
        self.peek_with(key, |v, _| v.to_vec())
    }

    /// Copies the value of `key` into `buf` and returns its length; marks it used.
    /// [`Error::BufferTooSmall`] (nothing copied) if it does not fit.
    pub fn get_into<'k>(
        &self,
        key: impl Into<KeyRef<'k>>,
        buf: &mut [u8],
    ) -> Result<Option<(usize, ValueKind)>> {
        match self.get_with(key, |v, kind| {
            if v.len() > buf.len() {
                Err(v.len())
            } else {
                buf[..v.len()].copy_from_slice(v);
                Ok((v.len(), kind))
            }
        })? {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(needed)) => Err(Error::BufferTooSmall { needed }),
        }
    }

    /// Whether `key` is present (and not expired). Does not mark it used.
    pub fn contains<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        self.slot_of(key).map(|s| s.is_some())
    }

    /// The slot id holding `key`, if present.
    pub fn slot_of<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<Option<u32>> {
        let k = Hashed::new(key.into());
        self.prefetch(k.h);
        let now = self.now_rel();
        let shard = self.shard_of(k.h);
        let g = self.lock(shard)?;
        Ok(g.find_live(&k, now).map(|id| self.global(shard, id)))
    }

    /// Stores `value` under `key` as `opts` says.
    #[inline]
    pub fn set<'k>(&self, key: impl Into<KeyRef<'k>>, value: &[u8], opts: &SetOptions) -> Result<SetOutcome> {
        let key = key.into();
        if key.bytes().len() > u16::MAX as usize {
            return Err(Error::KeyTooLarge(key.bytes().len()));
        }
        let k = Hashed::new(key);
        self.prefetch(k.h);
        let now_abs = self.now_ms();
        let now = self.rel(now_abs);
        let expires = self.expires_for(opts.ttl_ms, now_abs);
        let shard = self.shard_of(k.h);
        let g = self.lock(shard)?;
        let r = g.set(&k, value, opts.kind, expires, opts.mode, self.evict, now)?;
        Ok(SetOutcome {
            slot: self.global(shard, r.id),
            inserted: r.inserted,
            evicted: r.evicted,
        })
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
        self.prefetch(k.h);
        let now_abs = self.now_ms();
        let expires = self.expires_for(ttl_ms, now_abs);
        let g = self.lock(self.shard_of(k.h))?;
        g.incr(&k, delta, expires, self.evict, self.rel(now_abs))
    }

    /// Removes `key`. Returns whether it was present.
    pub fn remove<'k>(&self, key: impl Into<KeyRef<'k>>) -> Result<bool> {
        let k = Hashed::new(key.into());
        self.prefetch(k.h);
        let now = self.now_rel();
        let g = self.lock(self.shard_of(k.h))?;
        match g.find_live(&k, now) {
            Some(id) => {
                g.remove_entry(id, k.h);
                g.bump(shd::REMOVES);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    // ---- by slot ----

    fn with_slot<R>(&self, slot: u64, f: impl FnOnce(&ShardView, u32, u64) -> Result<R>) -> Result<R> {
        let (shard, local) = self.locate_slot(slot)?;
        let now = self.now_rel();
        let g = self.lock(shard)?;
        if local > g.unused() || !g.is_occupied(local) {
            return Err(Error::SlotFree(slot));
        }
        if g.expired(local, now) {
            let h = g.stored_hash(local);
            g.remove_entry(local, h);
            g.bump(shd::EXPIRATIONS);
            return Err(Error::SlotFree(slot));
        }
        f(&g, local, now)
    }

    /// Calls `f` with the value in slot `slot`, without marking it used.
    /// [`Error::NoSuchSlot`] for 0 or beyond the capacity, [`Error::SlotFree`] for a free slot.
    pub fn get_slot_with<R>(&self, slot: u64, f: impl FnOnce(&[u8], ValueKind) -> R) -> Result<R> {
        self.with_slot(slot, |g, id, _| {
            let m = g.meta(id);
            Ok(f(
                g.value_bytes(id, m.klen, m.vlen),
                ValueKind::from_flags(m.flags),
            ))
        })
    }

    /// The whole entry in slot `slot`.
    pub fn slot_entry(&self, slot: u64) -> Result<Entry> {
        self.with_slot(slot, |g, id, _| Ok(self.entry(g, slot as u32, id)))
    }

    /// Removes the entry in slot `slot`.
    pub fn remove_slot(&self, slot: u64) -> Result<()> {
        self.with_slot(slot, |g, id, _| {
            let h = g.stored_hash(id);
            g.remove_entry(id, h);
            g.bump(shd::REMOVES);
            Ok(())
        })
    }

    /// Sets the share key of the entry in slot `slot`.
    pub fn set_share_key(&self, slot: u64, share_key: u32) -> Result<()> {
        self.with_slot(slot, |g, id, _| {
            g.set_share(id, share_key);
            Ok(())
        })
    }

    fn entry(&self, g: &ShardView, slot: u32, id: u32) -> Entry {
        let m = g.meta(id);
        let key = if m.flags & F_BYTES_KEY != 0 {
            Key::Bytes(g.key_bytes(id, m.klen).to_vec())
        } else {
            Key::Hash(m.key)
        };
        Entry {
            slot,
            key,
            value: g.value_bytes(id, m.klen, m.vlen).to_vec(),
            kind: ValueKind::from_flags(m.flags),
            used_ms: self.abs(m.used),
            expires_ms: (m.expires != 0).then(|| self.abs(m.expires)),
            share_key: g.share(id),
        }
    }

    // ---- whole cache ----

    /// Evicts, least recently used first, up to `max` entries last used before `cutoff_ms`
    /// (epoch ms); returns them. An entry used at or after the cutoff is never taken. With
    /// several shards, each shard gives up its oldest in turn.
    pub fn evict_used_before(&self, cutoff_ms: u64, max: usize) -> Result<Vec<Entry>> {
        let cutoff = self.rel(cutoff_ms);
        let mut out = Vec::new();
        for s in 0..self.geo.shards {
            if out.len() >= max {
                break;
            }
            let g = self.lock(s)?;
            while out.len() < max {
                let t = g.tail();
                if t == 0 || g.meta(t).used >= cutoff {
                    break;
                }
                out.push(self.entry(&g, self.global(s, t), t));
                let h = g.stored_hash(t);
                g.remove_entry(t, h);
                g.bump(shd::EVICTIONS);
            }
        }
        Ok(out)
    }

    /// Evicts up to `max` entries not used in the last `age_ms` milliseconds.
    pub fn evict_older_than(&self, age_ms: u64, max: usize) -> Result<Vec<Entry>> {
        self.evict_used_before(self.now_ms().saturating_sub(age_ms), max)
    }

    /// Reclaims every expired entry now; returns how many.
    pub fn purge_expired(&self) -> Result<u64> {
        let now = self.now_rel();
        let mut n = 0;
        for s in 0..self.geo.shards {
            let g = self.lock(s)?;
            let mut id = g.head();
            while id != 0 {
                let next = g.next(id);
                if g.expired(id, now) {
                    let h = g.stored_hash(id);
                    g.remove_entry(id, h);
                    g.bump(shd::EXPIRATIONS);
                    n += 1;
                }
                id = next;
            }
        }
        Ok(n)
    }

    /// A snapshot of the live entries in recency order, optionally only those with
    /// `share_key`, at most `limit`. Shards are locked one at a time and merged by time of use,
    /// each shard's own order kept.
    pub fn entries(&self, order: Order, share_key: Option<u32>, limit: Option<usize>) -> Result<Vec<Entry>> {
        let limit = limit.unwrap_or(usize::MAX);
        let now = self.now_rel();
        let mut per: Vec<Vec<Entry>> = Vec::with_capacity(self.geo.shards as usize);
        for s in 0..self.geo.shards {
            let g = self.lock(s)?;
            let mut v = Vec::new();
            let mut id = if order == Order::MruFirst {
                g.head()
            } else {
                g.tail()
            };
            let mut hops = g.cap();
            while id != 0 && v.len() < limit && hops > 0 {
                if !g.expired(id, now) && share_key.is_none_or(|k| g.share(id) == k) {
                    v.push(self.entry(&g, self.global(s, id), id));
                }
                id = if order == Order::MruFirst {
                    g.next(id)
                } else {
                    g.prev(id)
                };
                hops -= 1;
            }
            per.push(v);
        }
        if per.len() == 1 {
            return Ok(per.pop().unwrap_or_default());
        }
        let mut idx = vec![0usize; per.len()];
        let mut out = Vec::new();
        while out.len() < limit {
            let mut best: Option<usize> = None;
            for (s, v) in per.iter().enumerate() {
                let Some(e) = v.get(idx[s]) else { continue };
                let better = match best {
                    None => true,
                    Some(b) => {
                        let cur = &per[b][idx[b]];
                        if order == Order::MruFirst {
                            e.used_ms > cur.used_ms
                        } else {
                            e.used_ms < cur.used_ms
                        }
                    }
                };
                if better {
                    best = Some(s);
                }
            }
            let Some(b) = best else { break };
            out.push(per[b][idx[b]].clone());
            idx[b] += 1;
        }
        Ok(out)
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> Result<u64> {
        let mut n = 0;
        for s in 0..self.geo.shards {
            let g = self.lock(s)?;
            let len = g.len() as u64;
            // Forget every slot first, so that a crash part-way leaves an empty shard.
            g.set_unused(0);
            g.set_len(0);
            g.set_head(0);
            g.set_tail(0);
            g.set_free_head(0);
            g.zero_buckets();
            n += len;
            g.add(shd::REMOVES, len);
        }
        Ok(n)
    }

    /// Entries now.
    pub fn len(&self) -> Result<u64> {
        let mut n = 0;
        for s in 0..self.geo.shards {
            n += self.lock(s)?.len() as u64;
        }
        Ok(n)
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Counters summed over shards.
    pub fn stats(&self) -> Result<Stats> {
        let mut st = Stats {
            capacity: self.capacity(),
            ..Stats::default()
        };
        for s in 0..self.geo.shards {
            let g = self.lock(s)?;
            st.hits += g.hdr_u64(shd::HITS);
            st.misses += g.hdr_u64(shd::MISSES);
            st.inserts += g.hdr_u64(shd::INSERTS);
            st.updates += g.hdr_u64(shd::UPDATES);
            st.removes += g.hdr_u64(shd::REMOVES);
            st.evictions += g.hdr_u64(shd::EVICTIONS);
            st.expirations += g.hdr_u64(shd::EXPIRATIONS);
            st.recoveries += g.recoveries() as u64;
            st.len += g.len() as u64;
        }
        Ok(st)
    }

    /// Verifies every structural invariant of every shard (index, lists, free space and counts
    /// agree; no cycles) and reports what is wrong.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport {
            shards: self.geo.shards,
            ..CheckReport::default()
        };
        for s in 0..self.geo.shards {
            let g = self.lock(s)?;
            check_shard(&g, s, self.geo.shards, &mut report);
        }
        Ok(report)
    }

    // ---- the application mutex ----

    fn app_mutex(&self) -> *mut libc::pthread_mutex_t {
        self.region.wrapping_add(hdr::APP_MUTEX).cast()
    }

    /// Takes the cache's application mutex, blocking; a mutex for the callers' own use that a
    /// killed holder cannot wedge. Returns `true` when the previous holder died holding it (the
    /// mutex is then taken and usable; what it protected may need repair).
    pub fn app_lock(&self) -> Result<bool> {
        // SAFETY: the app mutex was initialised with the region and lies in the header, which
        // `self.seg` keeps mapped.
        let r = unsafe { robust_mutex::lock(self.app_mutex()) }
            .map_err(|e| Error::Unrecoverable(format!("app mutex: {e}")))?;
        self.app_consistent(r)
    }

    /// Like [`app_lock`](Self::app_lock) without waiting: `None` if someone else holds it.
    pub fn app_try_lock(&self) -> Result<Option<bool>> {
        // SAFETY: as in app_lock.
        let r = unsafe { robust_mutex::try_lock(self.app_mutex()) }
            .map_err(|e| Error::Unrecoverable(format!("app mutex: {e}")))?;
        if r == robust_mutex::Locked::WouldBlock {
            return Ok(None);
        }
        self.app_consistent(r).map(Some)
    }

    fn app_consistent(&self, r: robust_mutex::Locked) -> Result<bool> {
        if r == robust_mutex::Locked::OwnerDied {
            // SAFETY: we hold the mutex, taken with EOWNERDEAD.
            unsafe { robust_mutex::make_consistent(self.app_mutex()) }
                .map_err(|e| Error::Unrecoverable(format!("app mutex: {e}")))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Releases the application mutex. Fails if this thread does not hold it.
    pub fn app_unlock(&self) -> Result<()> {
        // SAFETY: unlock of a robust mutex checks ownership and fails with EPERM otherwise.
        unsafe { robust_mutex::unlock(self.app_mutex()) }
            .map_err(|e| Error::InvalidArgument(format!("app mutex unlock: {e}")))
    }
}

fn state_of<'a>(base: *mut u8) -> &'a AtomicU32 {
    // SAFETY: callers ensure the region has at least HEADER_SIZE bytes; the state word is
    // 4-aligned and is only ever accessed atomically by every process.
    unsafe { &*base.add(hdr::STATE).cast::<AtomicU32>() }
}

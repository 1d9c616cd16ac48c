//! The public cache: hashes the key, picks the shard, reads it optimistically or takes its lock,
//! and calls the algorithm of `shard/`. Creating and attaching go through `header.rs`.
//!
//! - this file: the type, its constructors, accessors, clock and shards;
//! - `read.rs`: the lock-free read, from the lookup to the promotion it may hand to the lock;
//! - `write.rs`: set, incr, touch, remove;
//! - `walk.rs`: whole-cache walks: entries, scan, eviction by age, purge, stats, check, repair;
//! - `slot.rs`: the original API's slot ids;
//! - `prefix.rs`: removing every key that starts with a prefix.

mod prefix;
mod read;
mod slot;
mod walk;
mod write;

pub use walk::ScanCursor;

use crate::counters::Lanes;
use crate::error::{Error, Result};
use crate::header::{self, Layout, Params};
use crate::layout::{self, Geometry, SHARD_SIZE};
use crate::lock::{AppMutex, Membership, ShardGuard};
use crate::options::{CacheOptions, Entry, InitMode};
use crate::segment::{OpenOptions, Segment, SegmentId};
use crate::shard::{home_of, BucketPtr, CopiedEntry, Shard};
use crate::sys;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    params: Params,
    shard_mask: u32,
    clock: Clock,
    /// The word that holds the current time by `clock` (0: ask `clock`): the ticked system
    /// clock's, or the manual clock's, which `clock` keeps alive.
    now_word: *const AtomicU64,
    lock_timeout: Option<Duration>,
    lanes: Lanes,
    /// Shard 0's buckets, the distance from one shard's buckets to the next's, from one bucket
    /// to the next, and the bucket count of each: the home bucket of a key from the hash alone,
    /// without a load that waits for it (see [`home_bucket`](Self::home_bucket)).
    buckets0: *mut u8,
    buckets_stride: usize,
    bucket_stride: usize,
    buckets_per_shard: u32,
    /// With an index that grows: the start of shard 0's value store, where its buckets lie
    /// (shard `s`'s `s * buckets_stride` further), and shard 0's header, whose count of buckets
    /// in use the home bucket of a key depends on.
    store0: *mut u8,
    shard_hdr0: *mut u8,
    /// Whether the cache has a byte budget and an index that grows (`layout::FLAG_GROWS`).
    grows: bool,
    /// With an index that grows: each shard's count of buckets in use as this handle last saw
    /// it (clamped as [`Shard::buckets_now`] clamps). A read computes the home with it, so that
    /// the bucket's address waits for the hash only, and uses what it found only if the shard
    /// header's count, loaded beside it, is the same (`cache/read.rs`). Held here, not behind a
    /// pointer, so that the count is one load from `self`, as the fixed index's constants are.
    seen_buckets: [AtomicU32; layout::MAX_SHARDS as usize],
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

impl Cache {
    /// Creates a new segment sized for `opts` and lays a cache out in it. Fails with
    /// [`Error::SegmentExists`] if the segment exists.
    pub fn create(id: &SegmentId, opts: &CacheOptions) -> Result<Cache> {
        let geo = Cache::geometry_for(opts)?;
        let seg = Arc::new(Segment::create(id, geo.total, opts.mode)?);
        let budget = opts.max_bytes > 0;
        let l = Layout {
            geo,
            region_size: geo.total,
            capacity: if budget {
                geo.slots().min(Cache::budget_capacity(opts))
            } else {
                opts.capacity
            },
            evict: opts.evict_on_full,
            default_ttl: opts.default_ttl_ms,
            max_value: if budget { Cache::budget_max_value(opts) } else { 0 },
            max_bytes: if budget { opts.max_bytes } else { 0 },
            fresh: true,
            start_units: if geo.grows { geo.start_units() } else { 0 },
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
        let seg = match Segment::open_sized(id, opts, SIZE_WAIT) {
            Ok(seg) => Arc::new(seg),
            Err(Error::BadFormat(_)) if remove_abandoned && Segment::remove_if_never_sized(id) => {
                return Err(Error::Abandoned(id.to_string()));
            }
            Err(e) => return Err(e),
        };
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

    /// Bytes a segment needs for `opts` (see [`Cache::create`]).
    pub fn required_size(opts: &CacheOptions) -> Result<u64> {
        Ok(Cache::geometry_for(opts)?.total)
    }

    /// The largest entry of a cache with a byte budget made with `opts`.
    fn budget_max_value(opts: &CacheOptions) -> u64 {
        if opts.max_value_size > 0 {
            opts.max_value_size
        } else {
            layout::DEFAULT_MAX_VALUE_SIZE.min(opts.max_bytes / 8)
        }
    }

    /// The entries a cache with a byte budget made with `opts` may hold: its capacity, or
    /// with none as many as its index can grow to.
    fn budget_capacity(opts: &CacheOptions) -> u64 {
        if opts.capacity > 0 {
            opts.capacity
        } else {
            u64::MAX
        }
    }

    fn geometry_for(opts: &CacheOptions) -> Result<Geometry> {
        if opts.max_bytes > 0 {
            if opts.record_size != 0 {
                return Err(Error::InvalidArgument(format!(
                    "record_size ({}) and max_bytes ({}) were both given: a cache has fixed \
                     records or a byte budget, not both",
                    opts.record_size, opts.max_bytes
                )));
            }
            let max_value = Cache::budget_max_value(opts);
            if max_value == 0 || max_value > layout::MAX_VALUE_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "max_value_size {max_value} is not in 1..={}",
                    layout::MAX_VALUE_SIZE
                )));
            }
            return Geometry::budget(
                opts.max_bytes,
                max_value,
                opts.capacity,
                opts.shards,
                opts.evict_on_full,
            );
        }
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
            if c.params.geo.record_size != opts.record_size {
                return Err(Error::InvalidArgument(format!(
                    "the region already holds a cache with record size {}, not {}",
                    c.params.geo.record_size, opts.record_size
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
            max_value: 0,
            max_bytes: 0,
            fresh: false,
            start_units: 0,
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
        let views = Cache::views(seg.as_ptr(), &p);
        Cache {
            seen_buckets: std::array::from_fn(|s| {
                AtomicU32::new(match views.get(s) {
                    Some(v) if p.geo.grows => v.buckets_now(),
                    _ => 1,
                })
            }),
            views,
            // SAFETY: the buckets offset lies inside the validated geometry, inside the mapping.
            buckets0: unsafe { seg.as_ptr().add(p.geo.buckets_off as usize) },
            grows: p.geo.grows,
            buckets_stride: if p.geo.grows {
                p.geo.store_bytes as usize
            } else {
                p.geo.buckets_per_shard as usize * p.geo.bucket_stride as usize
            },
            // SAFETY: the start of shard 0's store lies inside (or, for an index that does not
            // grow, at offset 0 of) the validated geometry, inside the mapping.
            store0: unsafe {
                seg.as_ptr().add(if p.geo.grows {
                    p.geo.store_start(0) as usize
                } else {
                    0
                })
            },
            // SAFETY: as above: the first shard header lies inside the geometry.
            shard_hdr0: unsafe { seg.as_ptr().add(p.geo.shards_off as usize) },
            bucket_stride: p.geo.bucket_stride as usize,
            buckets_per_shard: p.geo.buckets_per_shard,
            region: seg.as_ptr(),
            lanes: Lanes::new(seg.clone(), p.geo.lanes_off, p.geo.lanes),
            seg,
            shard_mask: p.geo.shards - 1,
            params: p,
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

    /// The segment.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }

    /// Entries the cache was made to hold: at least this many distinct keys fit.
    pub fn capacity(&self) -> u64 {
        self.params.capacity
    }

    /// Slots in all: the most entries the cache can hold, and one past the highest slot id.
    /// Equal to the capacity for one shard; a little more for several (see
    /// [`CacheOptions::capacity`]).
    pub fn slots(&self) -> u64 {
        self.params.geo.slots()
    }

    /// Data bytes per record; 0 in a cache with a byte budget, which has no records of one
    /// size.
    pub fn record_size(&self) -> u32 {
        if self.params.budget() {
            0
        } else {
            self.params.geo.record_size
        }
    }

    /// The byte budget the cache was made with; 0 for a cache of fixed records.
    pub fn max_bytes(&self) -> u64 {
        self.params.max_bytes
    }

    /// The most bytes of key plus value one entry may hold: with a byte budget, the cache's
    /// `max_value_size`; else the record size.
    pub fn max_value_size(&self) -> u64 {
        if self.params.budget() {
            self.params.max_value
        } else {
            self.params.geo.record_size as u64
        }
    }

    /// Shard count.
    pub fn shards(&self) -> u32 {
        self.params.geo.shards
    }

    /// Bytes of the segment the cache occupies.
    pub fn region_size(&self) -> u64 {
        self.params.region_size
    }

    /// Whether a full shard evicts.
    pub fn evict_on_full(&self) -> bool {
        self.params.evict()
    }

    /// The default time to live, ms (0 = forever).
    pub fn default_ttl_ms(&self) -> u64 {
        self.params.default_ttl
    }

    /// The layout.
    pub fn geometry(&self) -> Geometry {
        self.params.geo
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
        match ttl.unwrap_or(self.params.default_ttl) {
            0 => 0,
            // A slot holds 48 bits of expiry (year 10889): a later one is that.
            t => now.saturating_add(t).clamp(1, (1 << 48) - 1),
        }
    }

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
                        region
                            .add((g.buckets_off + s * g.buckets_per_shard as u64 * g.bucket_stride) as usize),
                        region.add((g.slots_off + s * cap * g.stride) as usize),
                        region.add((g.journals_off + s * g.stride) as usize),
                        g.slots_per_shard,
                        g.buckets_per_shard,
                        g.stride as usize,
                        g.record_size,
                        region.add(layout::region_header::LIVE),
                        p.capacity,
                        region.add((g.store_off + s * g.store_bytes) as usize),
                        g.store_bytes,
                        p.max_value,
                        g.bucket_stride as usize,
                        g.grows,
                    )
                }
            })
            .collect()
    }

    /// The address of the home bucket of spread hash `h` in shard `s` (masked): the same as
    /// the shard view's `home_bucket`, computed from constants of the geometry, so that the
    /// bucket's load waits for the hash only.
    /// (In an index that grows, the count the shard header holds now: a writer's prefetch.)
    #[inline(always)]
    fn home_bucket(&self, s: u32, h: u64) -> BucketPtr<'_> {
        if self.grows {
            self.shard(s).home_bucket(h)
        } else if self.bucket_stride == layout::BUDGET_BUCKET_STRIDE as usize {
            self.home_bucket_in::<true>(s, h)
        } else {
            self.home_bucket_in::<false>(s, h)
        }
    }

    /// The home bucket of spread hash `h` in shard `s` of a cache with a byte budget whose index
    /// grows, for a lock-free read: the address computed with the count of buckets in use this
    /// handle last saw (`seen`, one load from `self`, so that the address waits for the hash
    /// only); that count; and whether what is read there can stand: the shard header's count,
    /// loaded now (acquire: the buckets it names are initialised), is `seen`, and `seen` is
    /// within the buckets the header's units have (as [`Shard::buckets_now`] bounds a count
    /// each time). The loads of the header are made beside the bucket's, and their answer is
    /// only needed once the bucket is read; a look that cannot stand is made again with the
    /// count as it is now (see [`seen_buckets_moved`](Self::seen_buckets_moved)).
    #[inline(always)]
    fn home_in_store(&self, s: u32, h: u64) -> (BucketPtr<'_>, u32, bool) {
        let s = (s & self.shard_mask) as usize;
        let hdr = self.shard_hdr0.wrapping_add(s * SHARD_SIZE as usize);
        // SAFETY: s < shards: the buckets and units words of shard s's header, 4-aligned, inside
        // the validated geometry in the mapping `self.seg` keeps alive; accessed only
        // atomically.
        let (now, units) = unsafe {
            (
                AtomicU32::from_ptr(hdr.add(layout::shard_header::BUCKETS).cast()).load(Ordering::Acquire),
                AtomicU32::from_ptr(hdr.add(layout::shard_header::UNITS).cast()).load(Ordering::Relaxed),
            )
        };
        // (s < shards <= MAX_SHARDS: the mask only lets the compiler see it.)
        let seen = self.seen_buckets[s & (layout::MAX_SHARDS as usize - 1)].load(Ordering::Relaxed);
        let home = home_of(h, seen);
        let at = self
            .store0
            .wrapping_add(s * self.buckets_stride + layout::bucket_in_store(home) as usize);
        let stands = now == seen && seen <= units.wrapping_mul(layout::UNIT_BUCKETS);
        // SAFETY: home < max(seen, 1), and `seen` is only ever a count clamped as
        // `Shard::buckets_now` clamps (`seen_buckets_moved`), at most the most buckets a shard's
        // index may have, which lie from the start of shard s's store and inside it
        // (`Geometry::budget_index`), in the mapping `self.seg` keeps alive as long as `self`,
        // which the result borrows.
        (unsafe { BucketPtr::new_unchecked(at) }, seen, stands)
    }

    /// After a lock-free look in a growing index made with count `seen` (see
    /// [`home_in_store`](Self::home_in_store)) that cannot stand: takes shard `s`'s count as it
    /// is now, clamped, for the next look.
    #[cold]
    #[inline(never)]
    pub(super) fn seen_buckets_moved(&self, s: u32, shard: &Shard<'_>) {
        self.seen_buckets[(s & self.shard_mask) as usize].store(shard.buckets_now(), Ordering::Relaxed);
    }

    /// [`home_bucket`](Self::home_bucket) in a cache with a value store (`STORE`) or without,
    /// whose bucket stride is then a constant: the caller knows which the cache is.
    #[inline(always)]
    fn home_bucket_in<const STORE: bool>(&self, s: u32, h: u64) -> BucketPtr<'_> {
        let stride = if STORE {
            layout::BUDGET_BUCKET_STRIDE
        } else {
            layout::BUCKET_SIZE
        } as usize;
        debug_assert_eq!(stride, self.bucket_stride);
        let home = home_of(h, self.buckets_per_shard);
        let s = (s & self.shard_mask) as usize;
        let at = self
            .buckets0
            .wrapping_add(s * self.buckets_stride + home as usize * stride);
        // SAFETY: home < buckets_per_shard and s < shards, and `stride` is the geometry's (a
        // cache has a value store exactly when its buckets are BUDGET_BUCKET_STRIDE apart,
        // `Geometry::with_store`, and the caller says which it is): a whole bucket of the
        // region's bucket area, of the validated geometry, in the mapping `self.seg` keeps alive
        // as long as `self`, which the result borrows.
        unsafe { BucketPtr::new_unchecked(at) }
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
        if g.recovered() || self.recount_pending() {
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
            Some(g) if g.recovered() || self.recount_pending() => {
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
        self.shard(0).recount_flag().store(0, Ordering::Release);
        Ok(())
    }

    /// Whether a shard was rebuilt and the shared count of entries not yet set again since
    /// (its rebuilder died first).
    #[inline]
    fn recount_pending(&self) -> bool {
        self.shard(0).recount_flag().load(Ordering::Relaxed) != 0
    }

    /// Every shard's lock, taken in shard order: only `check` and `repair` hold more than one,
    /// and always in that order, so no two callers can wait for each other.
    /// A shard rebuilt on the way sets the shared count again, from every shard's.
    fn lock_all(&self) -> Result<Vec<ShardGuard<'_>>> {
        let guards = (0..self.params.geo.shards)
            .map(|s| self.lock_shard(s))
            .collect::<Result<Vec<_>>>()?;
        if guards.iter().any(|g| g.recovered()) || self.recount_pending() {
            let (_, sum) = self.live_and_sum(&guards);
            self.live_count().store(sum, Ordering::Relaxed);
            self.shard(0).recount_flag().store(0, Ordering::Release);
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
        unsafe { AtomicU64::from_ptr(self.region.add(layout::region_header::LIVE).cast()) }
    }

    #[inline]
    fn shard_of(&self, h: u64) -> u32 {
        (h as u32) & self.shard_mask
    }

    fn global(&self, shard: u32, local: u32) -> u32 {
        shard * self.params.geo.slots_per_shard + local
    }

    fn entry(&self, shard: u32, c: CopiedEntry) -> Entry {
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

    /// The region's application mutex.
    fn app_mutex(&self) -> AppMutex<'_> {
        // SAFETY: the app mutex was initialised with the region and lies in its header, which
        // `self.seg` keeps mapped as long as `self`, which the returned value borrows.
        unsafe { AppMutex::new(self.region.wrapping_add(layout::region_header::APP_MUTEX).cast()) }
    }

    /// Takes the cache's application mutex, blocking; a mutex for the callers' own use that a
    /// killed holder cannot wedge. Returns `true` when the previous holder died holding it (the
    /// mutex is then taken and usable; what it protected may need repair).
    pub fn app_lock(&self) -> Result<bool> {
        self.app_mutex().lock()
    }

    /// Like [`app_lock`](Self::app_lock) without waiting: `None` if someone else holds it.
    pub fn app_try_lock(&self) -> Result<Option<bool>> {
        self.app_mutex().try_lock()
    }

    /// Releases the application mutex. Fails if this thread does not hold it.
    pub fn app_unlock(&self) -> Result<()> {
        self.app_mutex().unlock()
    }
}

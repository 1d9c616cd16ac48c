//! The region header's lifecycle: laying a cache out (write every field, initialise the mutexes,
//! publish `READY`) and validating one on attach (state, magic, format version, layout word,
//! and every derived field recomputed from the geometry).

use crate::error::{Error, Result};
use crate::layout::{
    self, bucket, region_header, shard_header, Geometry, BUCKET_SIZE, FLAG_BUDGET, FLAG_EVICT_ON_FULL,
    HEADER_SIZE, SHARD_SIZE,
};
use crate::segment::Segment;
use crate::sys::{self, robust_mutex};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What the header says, once validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub geo: Geometry,
    pub region_size: u64,
    pub flags: u32,
    pub capacity: u64,
    pub default_ttl: u64,
    /// With a byte budget, the largest entry (key plus value bytes); else 0.
    pub max_value: u64,
    /// With a byte budget, the budget; else 0.
    pub max_bytes: u64,
}

impl Params {
    pub(crate) fn evict(&self) -> bool {
        self.flags & FLAG_EVICT_ON_FULL != 0
    }

    /// Whether the cache has a byte budget (a value store) rather than fixed records.
    pub(crate) fn budget(&self) -> bool {
        self.flags & FLAG_BUDGET != 0
    }
}

/// The region header's state word.
///
/// # Safety
/// `base` must be the start of a mapping of at least `HEADER_SIZE` bytes that outlives `'a`.
unsafe fn state_of<'a>(base: *mut u8) -> &'a AtomicU32 {
    // SAFETY: the caller guarantees the header's bytes; the state word is 4-aligned (the
    // mapping is page-aligned) and is only ever accessed atomically by every process.
    unsafe { &*base.add(region_header::STATE).cast::<AtomicU32>() }
}

/// What the caller of [`init`] asks for.
pub(crate) struct Layout {
    pub geo: Geometry,
    pub region_size: u64,
    pub capacity: u64,
    pub evict: bool,
    pub default_ttl: u64,
    /// With a byte budget, the largest entry; 0 for a cache of fixed records.
    pub max_value: u64,
    /// With a byte budget, the budget; else 0.
    pub max_bytes: u64,
    /// The segment is new (zero-filled by the kernel), so nothing needs clearing.
    pub fresh: bool,
    /// With a byte budget, the units each shard's index starts with (`Geometry::start_units`).
    pub start_units: u32,
}

/// Lays a cache out at the start of `seg`. Returns `None` when another process is laying it
/// out at the same time (the caller should attach instead).
pub(crate) fn init(seg: &Segment, l: &Layout) -> Result<Option<Params>> {
    let base = seg.as_ptr();
    // SAFETY: the callers lay out a geometry they validated against the segment's size, and a
    // geometry starts with the whole header; `seg` outlives this call.
    let state = unsafe { state_of(base) };
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
        return Ok(None);
    }
    let flags = if l.evict { FLAG_EVICT_ON_FULL } else { 0 }
        | if l.max_value > 0 { FLAG_BUDGET } else { 0 }
        | if l.geo.grows { layout::FLAG_GROWS } else { 0 };
    let geo = l.geo;
    // SAFETY: we won the state transition to INITIALIZING, so no other process reads or writes
    // the region's fields until we publish READY; every write is inside the region, whose size
    // `geo.total <= region_size <= seg.len()` the callers checked.
    unsafe {
        let w32 = |off: usize, v: u32| base.add(off).cast::<u32>().write(v);
        let w64 = |off: usize, v: u64| base.add(off).cast::<u64>().write(v);
        w64(region_header::MAGIC, 0);
        w32(region_header::FORMAT, layout::FORMAT_VERSION);
        w32(region_header::LAYOUT, layout::layout_word());
        w32(region_header::FLAGS, flags);
        w32(region_header::RECORD_SIZE, geo.record_size);
        w32(region_header::SHARD_COUNT, geo.shards);
        w32(region_header::SLOTS_PER_SHARD, geo.slots_per_shard);
        w32(region_header::BUCKETS_PER_SHARD, geo.buckets_per_shard);
        w32(region_header::SLOT_STRIDE, geo.stride as u32);
        w32(region_header::CREATOR_PID, sys::pid());
        w64(region_header::REGION_SIZE, l.region_size);
        w64(region_header::CAPACITY, l.capacity);
        w64(region_header::CREATED_MS, sys::wall_now_ms());
        w64(region_header::DEFAULT_TTL_MS, l.default_ttl);
        w64(region_header::SHARDS_OFF, geo.shards_off);
        w64(region_header::BUCKETS_OFF, geo.buckets_off);
        w64(region_header::SLOTS_OFF, geo.slots_off);
        w64(region_header::LANES_OFF, geo.lanes_off);
        w32(region_header::LANE_COUNT, geo.lanes);
        w64(region_header::RETIRED_HITS, 0);
        w64(region_header::RETIRED_MISSES, 0);
        w64(region_header::LIVE, 0);
        w64(region_header::MAX_VALUE_SIZE, l.max_value);
        w64(region_header::STORE_OFF, geo.store_off);
        w64(region_header::STORE_BYTES, geo.store_bytes);
        w64(region_header::MAX_BYTES, l.max_bytes);
        w32(region_header::RECOUNT, 0);
        robust_mutex::init(base.add(region_header::APP_MUTEX).cast())
            .map_err(|e| Error::io("pthread_mutex_init", seg.id(), e))?;
        std::ptr::write_bytes(
            base.add(geo.lanes_off as usize),
            0,
            (geo.shards_off - geo.lanes_off) as usize,
        );
        for s in 0..geo.shards as u64 {
            let sh = base.add((geo.shards_off + s * SHARD_SIZE) as usize);
            std::ptr::write_bytes(sh, 0, SHARD_SIZE as usize);
            robust_mutex::init(sh.add(shard_header::MUTEX).cast())
                .map_err(|e| Error::io("pthread_mutex_init", seg.id(), e))?;
            sh.add(shard_header::EARLIEST_EXPIRY)
                .cast::<u64>()
                .write(u64::MAX);
            sh.add(shard_header::REFRESH_MS).cast::<u32>().write(0);
            let units = if geo.grows {
                l.start_units
                    .clamp(1, geo.buckets_per_shard / layout::UNIT_BUCKETS)
            } else {
                0
            };
            sh.add(shard_header::UNITS).cast::<u32>().write(units);
            // A growing index starts using its first units' buckets (zeroed: empty), and its
            // ring of records starts past them.
            sh.add(shard_header::BUCKETS)
                .cast::<u32>()
                .write(units * layout::UNIT_BUCKETS);
            let start = layout::index_bucket_bytes(units);
            sh.add(shard_header::STORE_HEAD).cast::<u64>().write(start);
            sh.add(shard_header::STORE_TAIL).cast::<u64>().write(start);
        }
        if !l.fresh {
            // A fresh segment is zeroed by the kernel; a reused region is not.
            let len = if geo.has_store() {
                0
            } else {
                geo.shards as u64 * geo.buckets_per_shard as u64 * geo.bucket_stride
            };
            std::ptr::write_bytes(base.add(geo.buckets_off as usize), 0, len as usize);
            let len = geo.total - geo.journals_off;
            std::ptr::write_bytes(base.add(geo.journals_off as usize), 0, len as usize);
        }
        debug_assert_eq!(bucket::SEQ, 0);
        w64(region_header::MAGIC, layout::MAGIC);
    }
    state.store(layout::STATE_READY, Ordering::Release);
    Ok(Some(Params {
        geo,
        region_size: l.region_size,
        flags,
        capacity: l.capacity,
        default_ttl: l.default_ttl,
        max_value: l.max_value,
        max_bytes: l.max_bytes,
    }))
}

/// Whether the region holds (or is being given) a cache header of ours.
pub(crate) fn looks_initialised(seg: &Segment) -> bool {
    if seg.len() < HEADER_SIZE {
        return false;
    }
    // SAFETY: the region has at least HEADER_SIZE bytes; a volatile read of the magic word
    // races only with an initialiser, and any value read is acceptable here.
    let magic = unsafe {
        seg.as_ptr()
            .add(region_header::MAGIC)
            .cast::<u64>()
            .read_volatile()
    };
    // SAFETY: as for the magic word above.
    magic == layout::MAGIC
        || unsafe { state_of(seg.as_ptr()) }.load(Ordering::Acquire) == layout::STATE_INITIALIZING
}

/// Validates the header of the cache at the start of `seg`, waiting up to `wait` for an
/// initialiser to finish. `region_size`, when given, bounds where the header may be read.
pub(crate) fn attach(seg: &Segment, region_size: Option<u64>, wait: Duration) -> Result<Params> {
    let avail = region_size.unwrap_or(seg.len()).min(seg.len());
    if avail < HEADER_SIZE {
        return Err(Error::RegionTooSmall {
            needed: HEADER_SIZE,
            available: avail,
        });
    }
    let base = seg.as_ptr();
    // SAFETY: checked above: the segment has at least HEADER_SIZE bytes; `seg` outlives this call.
    let state = unsafe { state_of(base) };
    let start = Instant::now();
    let mut looks = 0u32;
    loop {
        let s = state.load(Ordering::Acquire);
        // SAFETY: the region has at least HEADER_SIZE bytes.
        let magic = unsafe { base.add(region_header::MAGIC).cast::<u64>().read_volatile() };
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
        if wait.is_zero() && seg.creator_gone() {
            return Err(Error::Abandoned(seg.id().to_string()));
        }
        if wait.is_zero() && s == layout::STATE_EMPTY && !seg.being_created() {
            return Err(Error::BadFormat(format!(
                "segment {} holds zero bytes, not a cache",
                seg.id()
            )));
        }
        if looks % 25 == 0 && seg.creator_gone() {
            return Err(Error::Abandoned(seg.id().to_string()));
        }
        looks += 1;
        if start.elapsed() >= wait {
            return Err(Error::NotReady(format!(
                "segment {} was not initialised within {wait:?} (its initialiser may have died)",
                seg.id(),
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: READY was published with Release after every header field was written, and the
    // fields never change afterwards; the reads are inside the region's first HEADER_SIZE bytes.
    let r32 = |off: usize| unsafe { base.add(off).cast::<u32>().read() };
    // SAFETY: as above.
    let r64 = |off: usize| unsafe { base.add(off).cast::<u64>().read() };
    let format = r32(region_header::FORMAT);
    if format != layout::FORMAT_VERSION {
        return Err(Error::VersionMismatch {
            found: format,
            expected: layout::FORMAT_VERSION,
        });
    }
    let lw = r32(region_header::LAYOUT);
    if lw != layout::layout_word() {
        return Err(Error::VersionMismatch {
            found: lw,
            expected: layout::layout_word(),
        });
    }
    let header_region = r64(region_header::REGION_SIZE);
    if header_region > seg.len() {
        return Err(Error::RegionTooSmall {
            needed: header_region,
            available: seg.len(),
        });
    }
    let bad = |what: String| Error::BadFormat(format!("segment {}: {what}", seg.id()));
    let flags = r32(region_header::FLAGS);
    let (max_value, max_bytes) = (r64(region_header::MAX_VALUE_SIZE), r64(region_header::MAX_BYTES));
    let geo = if flags & FLAG_BUDGET != 0 && flags & layout::FLAG_GROWS != 0 {
        // (A unit has one bucket: any count of buckets is whole units.)
        let buckets = r32(region_header::BUCKETS_PER_SHARD);
        let geo = Geometry::budget_index(
            r32(region_header::SHARD_COUNT),
            buckets / layout::UNIT_BUCKETS,
            r32(region_header::LANE_COUNT),
            r64(region_header::STORE_BYTES),
        )
        .map_err(|e| bad(format!("impossible value store ({e})")))?;
        if r32(region_header::RECORD_SIZE) != layout::REF_SIZE
            || geo.slots_per_shard != r32(region_header::SLOTS_PER_SHARD)
            || geo.store_off != r64(region_header::STORE_OFF)
            || max_value == 0
            || max_value > layout::MAX_VALUE_SIZE
            || 2 * layout::record_len(0, max_value)
                + layout::index_bytes(geo.buckets_per_shard / layout::UNIT_BUCKETS)
                > geo.store_bytes
            || geo.total > max_bytes
        {
            return Err(bad("value store fields disagree with each other".into()));
        }
        geo
    } else if flags & FLAG_BUDGET != 0 {
        let geo = Geometry::with_bucket_stride(
            r32(region_header::RECORD_SIZE),
            r32(region_header::SHARD_COUNT),
            r32(region_header::SLOTS_PER_SHARD),
            r32(region_header::LANE_COUNT),
            layout::BUDGET_BUCKET_STRIDE,
        )
        .map_err(|e| bad(format!("impossible geometry ({e})")))?
        .with_store(r64(region_header::STORE_BYTES))
        .map_err(|e| bad(format!("impossible value store ({e})")))?;
        if geo.record_size != layout::REF_SIZE
            || geo.store_off != r64(region_header::STORE_OFF)
            || max_value == 0
            || max_value > layout::MAX_VALUE_SIZE
            || 2 * layout::record_len(0, max_value) > geo.store_bytes
            || geo.total > max_bytes
        {
            return Err(bad("value store fields disagree with each other".into()));
        }
        geo
    } else {
        if max_value != 0 || r64(region_header::STORE_BYTES) != 0 || flags & layout::FLAG_GROWS != 0 {
            return Err(bad("a cache of fixed records with value store fields".into()));
        }
        Geometry::with_bucket_stride(
            r32(region_header::RECORD_SIZE),
            r32(region_header::SHARD_COUNT),
            r32(region_header::SLOTS_PER_SHARD),
            r32(region_header::LANE_COUNT),
            BUCKET_SIZE,
        )
        .map_err(|e| bad(format!("impossible geometry ({e})")))?
    };
    let capacity = r64(region_header::CAPACITY);
    if geo.total > header_region
        || geo.buckets_per_shard != r32(region_header::BUCKETS_PER_SHARD)
        || geo.stride != r32(region_header::SLOT_STRIDE) as u64
        || capacity == 0
        || capacity > geo.slots()
        || geo.shards_off != r64(region_header::SHARDS_OFF)
        || geo.buckets_off != r64(region_header::BUCKETS_OFF)
        || geo.slots_off != r64(region_header::SLOTS_OFF)
        || geo.lanes_off != r64(region_header::LANES_OFF)
    {
        return Err(bad("header fields disagree with each other".into()));
    }
    Ok(Params {
        geo,
        region_size: header_region,
        flags,
        capacity,
        default_ttl: r64(region_header::DEFAULT_TTL_MS),
        max_value,
        max_bytes,
    })
}

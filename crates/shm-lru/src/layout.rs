//! The on-segment format: region header, shard headers, bucket arrays and slots, at fixed
//! offsets. `docs/FORMAT.md` describes the same bytes for readers in other languages; the two
//! must change together, and any change bumps [`FORMAT_VERSION`].

use crate::error::{Error, Result};
use crate::sys::robust_mutex::MUTEX_SIZE;

/// `b"SHMLRU\0\x01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMLRU\0\x01");
/// Format version of the bytes described here.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of the region header (slots, buckets and shards follow).
pub const HEADER_SIZE: u64 = 256;
/// Bytes of one shard header.
pub const SHARD_SIZE: u64 = 192;
/// Bytes of a slot's header, before its data bytes.
pub const SLOT_HEADER: u64 = 40;
/// Largest record size (data bytes per slot): values' lengths are stored in 24 bits.
pub const MAX_RECORD_SIZE: u32 = (1 << 24) - 1;
/// Most shards a cache may have.
pub const MAX_SHARDS: u32 = 1024;
/// Times are stored in 40 bits of milliseconds after the cache's base time (almost 35 years).
pub const TIME_MASK: u64 = (1 << 40) - 1;

/// Header field offsets, from the start of the region.
pub mod hdr {
    /// [`MAGIC`](super::MAGIC), u64.
    pub const MAGIC: usize = 0;
    /// [`FORMAT_VERSION`](super::FORMAT_VERSION), u32.
    pub const FORMAT: usize = 8;
    /// [`layout_word`](super::layout_word), u32.
    pub const LAYOUT: usize = 12;
    /// Initialisation state (`STATE_*`), u32, accessed atomically.
    pub const STATE: usize = 16;
    /// Region flags (`FLAG_*`), u32.
    pub const FLAGS: usize = 20;
    /// Data bytes per slot, u32.
    pub const RECORD_SIZE: usize = 24;
    /// Shards, a power of two, u32.
    pub const SHARD_COUNT: usize = 28;
    /// Slots in each shard, u32.
    pub const SLOTS_PER_SHARD: usize = 32;
    /// Index buckets in each shard, u32.
    pub const BUCKETS_PER_SHARD: usize = 36;
    /// Bytes from one slot to the next, u32.
    pub const SLOT_STRIDE: usize = 40;
    /// Pid of the process that laid the region out, u32.
    pub const CREATOR_PID: usize = 44;
    /// Bytes of the segment the cache may use, u64.
    pub const REGION_SIZE: usize = 48;
    /// Slots in all, u64.
    pub const CAPACITY: usize = 56;
    /// Epoch ms the slot times count from, u64.
    pub const BASE_MS: usize = 64;
    /// Time to live of entries set without one (0 = none), u64.
    pub const DEFAULT_TTL_MS: usize = 72;
    /// Offset of the first shard header, u64.
    pub const SHARDS_OFF: usize = 80;
    /// Offset of the first bucket array, u64.
    pub const BUCKETS_OFF: usize = 88;
    /// Offset of the first slot, u64.
    pub const SLOTS_OFF: usize = 96;
    /// The application mutex, 64 bytes reserved.
    pub const APP_MUTEX: usize = 128;
}

/// Shard header field offsets, from the start of the shard header.
pub mod shd {
    /// The shard's robust mutex, 64 bytes reserved.
    pub const MUTEX: usize = 0;
    /// Most recently used slot id, u32 (0 = none).
    pub const HEAD: usize = 64;
    /// Least recently used slot id, u32.
    pub const TAIL: usize = 68;
    /// First slot of the free list, u32.
    pub const FREE: usize = 72;
    /// Entries in the shard, u32.
    pub const LEN: usize = 76;
    /// Slots `1..=unused` have been handed out at least once, u32.
    pub const UNUSED: usize = 80;
    /// Times the shard was rebuilt after a holder died, u32.
    pub const RECOVERIES: usize = 84;
    /// Counter: gets that found their key, u64.
    pub const HITS: usize = 88;
    /// Counter: gets that did not, u64.
    pub const MISSES: usize = 96;
    /// Counter: new entries, u64.
    pub const INSERTS: usize = 104;
    /// Counter: overwrites, u64.
    pub const UPDATES: usize = 112;
    /// Counter: explicit removals, u64.
    pub const REMOVES: usize = 120;
    /// Counter: entries evicted, u64.
    pub const EVICTIONS: usize = 128;
    /// Counter: expired entries reclaimed, u64.
    pub const EXPIRATIONS: usize = 136;
}

/// Slot field offsets, from the start of the slot.
pub mod slot {
    /// The u64 key, or FNV-1a-64 of the key bytes.
    pub const KEY: usize = 0;
    /// Toward the head of the recency list, u32.
    pub const PREV: usize = 8;
    /// Toward the tail; in a free slot, the next free slot, u32.
    pub const NEXT: usize = 12;
    /// Next slot in the same index bucket, u32.
    pub const CHAIN: usize = 16;
    /// The share key, u32.
    pub const SHARE: usize = 20;
    /// Low 40 bits: time of last use; high 24 bits: value length.
    pub const USED_VLEN: usize = 24;
    /// Low 40 bits: expiry (0 = never); bits 40..56: key length; bits 56..64: flags.
    pub const EXP_KLEN_FLAGS: usize = 32;
    /// Key bytes (for byte keys), then value bytes.
    pub const DATA: usize = 40;
}

/// Slot flag: the slot holds an entry.
pub const F_OCCUPIED: u8 = 1;
/// Slot flag: the key is bytes stored at the start of the data (else the key is the u64 word).
pub const F_BYTES_KEY: u8 = 2;
/// Slot flag: the value was stored as a string (UTF-8).
pub const F_STR_VALUE: u8 = 4;
/// Slot flag: a write of the key or value is in progress; the entry is not to be trusted.
pub const F_WRITING: u8 = 8;

/// Region state: zero bytes, nobody has started.
pub const STATE_EMPTY: u32 = 0;
/// Region state: a process is writing the header.
pub const STATE_INITIALIZING: u32 = 1;
/// Region state: ready for use.
pub const STATE_READY: u32 = 2;

/// Region flag: a full shard evicts its least recently used entry to make room.
pub const FLAG_EVICT_ON_FULL: u32 = 1;

const _: () = assert!(MUTEX_SIZE <= 64, "the mutex must fit its 64-byte field");
const _: () = assert!(hdr::APP_MUTEX + 64 <= HEADER_SIZE as usize);
const _: () = assert!(shd::EXPIRATIONS + 8 <= SHARD_SIZE as usize);

/// The layout word: sizes that must agree between every process using a region.
pub fn layout_word() -> u32 {
    let little = cfg!(target_endian = "little") as u32;
    let wide = (std::mem::size_of::<usize>() == 8) as u32;
    (MUTEX_SIZE as u32)
        | ((SLOT_HEADER as u32) << 8)
        | (((SHARD_SIZE / 8) as u32) << 16)
        | (little << 24)
        | (wide << 25)
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Where everything is, for a given record size, shard count and slots per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Data bytes per slot.
    pub record_size: u32,
    /// Shards (a power of two).
    pub shards: u32,
    /// Slots in each shard.
    pub slots_per_shard: u32,
    /// Index buckets in each shard.
    pub buckets_per_shard: u32,
    /// Bytes from one slot to the next.
    pub stride: u64,
    /// Offset of the first shard header.
    pub shards_off: u64,
    /// Offset of the first bucket array.
    pub buckets_off: u64,
    /// Offset of the first slot.
    pub slots_off: u64,
    /// Bytes the whole layout needs.
    pub total: u64,
}

impl Geometry {
    /// The layout for exactly `slots_per_shard` slots in each of `shards` shards.
    pub fn new(record_size: u32, shards: u32, slots_per_shard: u32) -> Result<Geometry> {
        validate(record_size, shards)?;
        if slots_per_shard == 0 {
            return Err(Error::InvalidArgument("a cache needs at least one slot".into()));
        }
        if (shards as u64) * (slots_per_shard as u64) > u32::MAX as u64 - 1 {
            return Err(Error::InvalidArgument(format!(
                "{} slots exceed the 4,294,967,294 a cache can number",
                (shards as u64) * (slots_per_shard as u64)
            )));
        }
        let stride = align_up(SLOT_HEADER + record_size as u64, 8);
        let shards_off = HEADER_SIZE;
        let buckets_off = align_up(shards_off + shards as u64 * SHARD_SIZE, 64);
        let buckets_per_shard = slots_per_shard;
        let slots_off = align_up(buckets_off + shards as u64 * buckets_per_shard as u64 * 4, 64);
        let total = slots_off + shards as u64 * slots_per_shard as u64 * stride;
        Ok(Geometry {
            record_size,
            shards,
            slots_per_shard,
            buckets_per_shard,
            stride,
            shards_off,
            buckets_off,
            slots_off,
            total,
        })
    }

    /// The largest layout that fits in `region` bytes.
    pub fn fit(record_size: u32, shards: u32, region: u64) -> Result<Geometry> {
        validate(record_size, shards)?;
        let stride = align_up(SLOT_HEADER + record_size as u64, 8);
        let fixed = align_up(HEADER_SIZE + shards as u64 * SHARD_SIZE, 64) + 64;
        let per = shards as u64 * (stride + 4);
        let mut c = region.saturating_sub(fixed) / per;
        c = c.min((u32::MAX as u64 - 1) / shards as u64);
        if c == 0 {
            let needed = Geometry::new(record_size, shards, 1)?.total;
            return Err(Error::RegionTooSmall {
                needed,
                available: region,
            });
        }
        loop {
            let g = Geometry::new(record_size, shards, c as u32)?;
            if g.total <= region {
                // The estimate allowed for worst-case padding: take any slot that still fits.
                let mut best = g;
                while let Ok(bigger) = Geometry::new(record_size, shards, best.slots_per_shard + 1) {
                    if bigger.total > region {
                        break;
                    }
                    best = bigger;
                }
                return Ok(best);
            }
            c -= 1;
            if c == 0 {
                let needed = Geometry::new(record_size, shards, 1)?.total;
                return Err(Error::RegionTooSmall {
                    needed,
                    available: region,
                });
            }
        }
    }

    /// Total slots.
    pub fn capacity(&self) -> u64 {
        self.shards as u64 * self.slots_per_shard as u64
    }
}

fn validate(record_size: u32, shards: u32) -> Result<()> {
    if record_size == 0 || record_size > MAX_RECORD_SIZE {
        return Err(Error::InvalidArgument(format!(
            "record size {record_size} is outside 1..={MAX_RECORD_SIZE}"
        )));
    }
    if shards == 0 || !shards.is_power_of_two() || shards > MAX_SHARDS {
        return Err(Error::InvalidArgument(format!(
            "shard count {shards} is not a power of two in 1..={MAX_SHARDS}"
        )));
    }
    Ok(())
}

/// The shard count chosen when the caller names none: one shard for a cache that refuses when
/// full (so that its capacity is exact), else enough shards of at least 2,048 slots to spread
/// contention, at most 64.
pub fn default_shards(evict_on_full: bool, approx_capacity: u64) -> u32 {
    if !evict_on_full {
        return 1;
    }
    let mut s = 1u32;
    while s < 64 && approx_capacity / (s as u64 * 2) >= 2048 {
        s *= 2;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_is_exact_and_maximal() {
        for region in [4_000u64, 10_000, 65_536, 1_000_000, 12_345_678] {
            for rec in [1u32, 8, 64, 250, 1024] {
                for shards in [1u32, 4] {
                    let Ok(g) = Geometry::fit(rec, shards, region) else {
                        continue;
                    };
                    assert!(g.total <= region, "{g:?} over {region}");
                    let bigger = Geometry::new(rec, shards, g.slots_per_shard + 1).unwrap();
                    assert!(bigger.total > region, "one more slot would still fit: {g:?}");
                    assert_eq!(g.slots_off % 64, 0);
                    assert_eq!(g.stride % 8, 0);
                }
            }
        }
    }

    #[test]
    fn too_small_region_is_an_error() {
        assert!(matches!(
            Geometry::fit(250, 1, 300),
            Err(Error::RegionTooSmall { .. })
        ));
        assert!(Geometry::fit(0, 1, 10_000).is_err());
        assert!(Geometry::fit(1 << 24, 1, u64::MAX).is_err());
        assert!(Geometry::fit(64, 3, 1 << 20).is_err());
    }

    #[test]
    fn hundred_million_records_fit_the_numbering() {
        let g = Geometry::new(8, 64, 100_000_000 / 64).unwrap();
        assert_eq!(g.capacity(), 100_000_000);
        // 48-byte slots plus a 4-byte bucket each.
        assert_eq!(g.stride, 48);
    }

    #[test]
    fn default_shards_scale() {
        assert_eq!(default_shards(false, 1 << 30), 1);
        assert_eq!(default_shards(true, 100), 1);
        assert_eq!(default_shards(true, 100_000), 32);
        assert_eq!(default_shards(true, 10_000_000), 64);
    }
}

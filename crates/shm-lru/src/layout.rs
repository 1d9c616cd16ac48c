//! The on-segment format, version 9: region header, counter lanes, shard headers, index buckets,
//! slots, each shard's undo record and, in a cache with a byte budget, each shard's value store
//! (whose top holds the index instead, in units, when it grows: a budget cache made without a
//! capacity), at fixed offsets. `docs/FORMAT.md` describes the same
//! bytes for readers in other languages; the two must change together, and any change bumps
//! [`FORMAT_VERSION`].
//!
//! Writing and validating the region header is `header.rs`'s business; this file only says
//! where things are and how big.
//!
//! Public for this crate's tests and tools, hidden from its documentation, and not part of the
//! supported API: any offset may change with the format.

use crate::error::{Error, Result};
use crate::sys::robust_mutex::MUTEX_SIZE;

/// `b"SHMLRU\0\x01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMLRU\0\x01");
/// Format version of the bytes described here.
pub const FORMAT_VERSION: u32 = 11;

/// Bytes of the region header.
pub const HEADER_SIZE: u64 = 256;
/// Bytes of one counter lane.
pub const LANE_SIZE: u64 = 64;
/// Bytes of one shard header.
pub const SHARD_SIZE: u64 = 256;
/// Bytes of one index bucket (one cache line).
pub const BUCKET_SIZE: u64 = 64;
/// Bytes from one bucket to the next in a cache with a byte budget: the bucket, then its 64
/// bytes of hints (see [`hint`]): two lines, which a reader asks for together.
pub const BUDGET_BUCKET_STRIDE: u64 = 2 * BUCKET_SIZE;
/// Slot ids one bucket holds.
pub const BUCKET_ENTRIES: usize = 14;
/// Slots per bucket the index is sized for: 11 of 14 entries in use on average. About 3 % of
/// keys then live past their home bucket and 15 % of misses read a second line; in exchange the
/// index costs under 6 bytes an entry, which keeps the whole overhead within 40 bytes.
pub const SLOTS_PER_BUCKET: u32 = 11;
/// Bytes of one unit of the index of a cache with a byte budget: [`UNIT_BUCKETS`] bucket with
/// its hints ([`BUDGET_BUCKET_STRIDE`]), and [`UNIT_SLOTS`] slots. A shard's index grows a unit
/// at a time (see [`shard_header::UNITS`]) and takes the store's bytes a group of
/// [`GROUP_UNITS`] units at a time, from both ends of its value store: the group's buckets
/// (4 KiB, a page, as stores of a growing index are whole pages) from the bottom, where all the
/// index's buckets make one array, and its slots (12 KiB) from the top. A bucket for eight
/// slots: the index uses as many of its buckets as keep from 9 to 11 entries a bucket
/// ([`shard_header::BUCKETS`]), fewer than it has while its slots are not all taken.
pub const UNIT_SIZE: u64 = 512;
/// Units of one group (see [`UNIT_SIZE`]).
pub const GROUP_UNITS: u32 = 32;
/// Bytes of one group of units.
pub const GROUP_SIZE: u64 = GROUP_UNITS as u64 * UNIT_SIZE;
/// Bytes of a group's buckets (with their hints): a page, at the bottom of the store.
pub const GROUP_BUCKET_BYTES: u64 = (GROUP_UNITS * UNIT_BUCKETS) as u64 * BUDGET_BUCKET_STRIDE;
/// Bytes of a group's slots: three pages, at the top of the store.
pub const GROUP_SLOT_BYTES: u64 = GROUP_SIZE - GROUP_BUCKET_BYTES;

/// Bytes of store that an index of `units` units takes: whole groups.
pub const fn index_bytes(units: u32) -> u64 {
    units.div_ceil(GROUP_UNITS) as u64 * GROUP_SIZE
}

/// Bytes at the bottom of the store that the buckets of an index of `units` units take: a
/// group's buckets (4 KiB) for each group the units take. The ring of records starts after them.
pub const fn index_bucket_bytes(units: u32) -> u64 {
    units.div_ceil(GROUP_UNITS) as u64 * GROUP_BUCKET_BYTES
}

/// Bytes at the top of the store that the slots of an index of `units` units take: a group's
/// slots (12 KiB) for each group the units take. The ring of records ends before them.
pub const fn index_slot_bytes(units: u32) -> u64 {
    index_bytes(units) - index_bucket_bytes(units)
}

/// Where bucket `b` of a growing index starts, from the start of its store: the buckets are
/// one array at the bottom of the store.
#[inline(always)]
pub const fn bucket_in_store(b: u32) -> u64 {
    b as u64 * BUDGET_BUCKET_STRIDE
}

/// How far below the top of its store slot `i + 1` of a growing index starts: group `g`'s
/// slots are the `g + 1`-th block of [`GROUP_SLOT_BYTES`] below the top.
#[inline(always)]
pub const fn slot_below_top(i: u32) -> u64 {
    let per = GROUP_UNITS * UNIT_SLOTS;
    (i / per + 1) as u64 * GROUP_SLOT_BYTES - (i % per) as u64 * (SLOT_HEADER + REF_SIZE as u64)
}
/// Buckets of one index unit: bucket `u` is unit `u`'s.
pub const UNIT_BUCKETS: u32 = 1;
/// Slots of one index unit: slots `8u + 1 ..= 8u + 8` are unit `u`'s.
pub const UNIT_SLOTS: u32 = 8;
/// Most units one shard's index may have.
pub const MAX_UNITS: u32 = 1 << 22;
/// Entries a bucket of a growing index holds on average, at most: past it the index uses more
/// of its buckets (`shard/grow.rs`). As many as a fixed index has slots a bucket.
pub const MOST_PER_BUCKET: u32 = SLOTS_PER_BUCKET;

/// The buckets a growing index uses for `entries` entries: nine a bucket, so that a quarter
/// more entries fit before it needs more.
pub const fn grown_buckets_for(entries: u64) -> u64 {
    let b = entries.div_ceil(9);
    if b == 0 {
        1
    } else {
        b
    }
}
/// Budget bytes per index unit that a cache with a byte budget and no capacity starts with (its
/// index then grows as entries need it).
pub const BUDGET_BYTES_PER_START_UNIT: u64 = 128 << 10;
/// Budget bytes per entry that the shard count of a cache with a byte budget is chosen for.
pub const BUDGET_BYTES_PER_ENTRY: u64 = 3072;
/// Bytes of a slot's header, before its data bytes.
pub const SLOT_HEADER: u64 = 40;
/// Largest record size (data bytes per slot): values' lengths are stored in 24 bits.
pub const MAX_RECORD_SIZE: u32 = (1 << 24) - 1;
/// Most shards a cache may have.
pub const MAX_SHARDS: u32 = 1024;
/// Most buckets past its home bucket that a key may be placed in.
pub const MAX_REACH: u32 = 1024;
/// Most counter lanes of a cache made by `Cache::create` (one per thread that counts; lane 0
/// is shared by everyone once the others are taken).
pub const DEFAULT_LANES: u32 = 64;

/// Counter lanes for a cache of `capacity` entries: one per 128 entries, 8 to 64, so that small
/// caches do not spend more on counters than on entries.
pub fn lanes_for(capacity: u64) -> u32 {
    (capacity / 128).clamp(SMALL_LANES as u64, DEFAULT_LANES as u64) as u32
}
/// Counter lanes of a cache laid out in a region smaller than 1 MiB.
pub const SMALL_LANES: u32 = 8;

/// Region header field offsets, from the start of the region.
pub mod region_header {
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
    /// Entries the cache was made to hold, u64.
    pub const CAPACITY: usize = 56;
    /// Epoch ms when the region was laid out, u64 (informational).
    pub const CREATED_MS: usize = 64;
    /// Time to live of entries set without one (0 = none), u64.
    pub const DEFAULT_TTL_MS: usize = 72;
    /// Offset of the first shard header, u64.
    pub const SHARDS_OFF: usize = 80;
    /// Offset of the first bucket, u64.
    pub const BUCKETS_OFF: usize = 88;
    /// Offset of the first slot, u64.
    pub const SLOTS_OFF: usize = 96;
    /// Offset of the first counter lane, u64.
    pub const LANES_OFF: usize = 104;
    /// Counter lanes, u32.
    pub const LANE_COUNT: usize = 112;
    /// The application mutex, 64 bytes reserved.
    pub const APP_MUTEX: usize = 128;
    /// Hits counted by lanes that were released, u64, updated atomically.
    pub const RETIRED_HITS: usize = 192;
    /// Misses counted by lanes that were released, u64, updated atomically.
    pub const RETIRED_MISSES: usize = 200;
    /// Entries in all shards, u64, updated atomically by inserts and removals: what bounds
    /// the cache to its capacity.
    pub const LIVE: usize = 208;
    /// With a byte budget: the most bytes of key plus value one entry may hold, u64 (0 in a
    /// cache of fixed records).
    pub const MAX_VALUE_SIZE: usize = 216;
    /// With a byte budget: offset of the first shard's value store, u64 (0 otherwise).
    pub const STORE_OFF: usize = 224;
    /// With a byte budget: bytes of each shard's value store, u64 (0 otherwise).
    pub const STORE_BYTES: usize = 232;
    /// With a byte budget: the budget the cache was made with, u64 (0 otherwise).
    pub const MAX_BYTES: usize = 240;
    /// 1 from when a shard was rebuilt until the shared count of entries ([`LIVE`]) was set
    /// again from every shard's, u32, accessed atomically: a process killed in between leaves
    /// the count to the next lock holder.
    pub const RECOUNT: usize = 248;
}

/// Counter lane field offsets, from the start of the lane.
pub mod lane {
    /// Owner: `pid + 1` of the process whose thread counts here, 0 when free, u64.
    pub const OWNER: usize = 0;
    /// Gets that found their key, u64.
    pub const HITS: usize = 8;
    /// Gets that did not, u64.
    pub const MISSES: usize = 16;
}

/// Shard header field offsets, from the start of the shard header. The first line holds the
/// mutex, and the counter of updates (the one field an update in place changes, so in the line
/// its lock took already); the second and third only what writers change under it; the fourth
/// what lock-free readers read, written rarely, so that writers do not keep taking it from
/// readers' caches.
pub mod shard_header {
    /// The shard's robust mutex, 56 bytes reserved.
    pub const MUTEX: usize = 0;
    /// Counter: overwrites, u64.
    pub const UPDATES: usize = 56;
    /// Most recently linked slot id, u32 (0 = none).
    pub const HEAD: usize = 64;
    /// Least recently linked slot id, u32.
    pub const TAIL: usize = 68;
    /// First slot of the free list, u32.
    pub const FREE: usize = 72;
    /// Entries in the shard, u32.
    pub const LEN: usize = 76;
    /// Slots `1..=handed_out` have been handed out at least once, u32.
    pub const HANDED_OUT: usize = 80;
    /// Times the shard was rebuilt after a holder died, u32.
    pub const RECOVERIES: usize = 84;
    /// Counter: new entries, u64.
    pub const INSERTS: usize = 88;
    /// Counter: explicit removals, u64.
    pub const REMOVES: usize = 104;
    /// Counter: entries evicted, u64.
    pub const EVICTIONS: usize = 112;
    /// Counter: expired entries reclaimed, u64.
    pub const EXPIRATIONS: usize = 120;
    /// Counter: entries moved to the head of the recency list after a use, u64.
    pub const PROMOTIONS: usize = 128;
    /// Start of the current promotion-rate window, epoch ms, i64.
    pub const WINDOW_START: usize = 136;
    /// Promotions in the current window, u32.
    pub const WINDOW_PROMOTIONS: usize = 144;
    /// Earliest expiry of any entry in the shard (a lower bound), epoch ms, i64; `i64::MAX`
    /// when no entry expires.
    pub const EARLIEST_EXPIRY: usize = 152;
    /// With a byte budget: where the next record of the value store goes, as a position that
    /// only grows (the byte offset is the position modulo the store's size), u64.
    pub const STORE_HEAD: usize = 160;
    /// With a byte budget: the position of the oldest record not yet reclaimed, u64; bytes from
    /// here to `STORE_HEAD` are in use, the rest free.
    pub const STORE_TAIL: usize = 168;
    /// With a byte budget: bytes of the records that entries name, u64.
    pub const STORE_LIVE: usize = 176;
    /// With a byte budget: 1 when the index found itself short of entries (a new key found no
    /// free slot, or no free place) and could not grow then, u32; the index grows when the
    /// ring next can spare a unit.
    pub const WANTS_UNITS: usize = 184;
    /// The refresh interval R in ms (0: every use moves the entry), u32: read by lock-free
    /// readers.
    pub const REFRESH_MS: usize = 192;
    /// With a byte budget: units of the shard's index (`UNIT_SIZE`), u32, which only grows. It
    /// gives the index `UNITS` buckets and `8 * UNITS` slots, and leaves the ring of records
    /// the bytes of each lap of the store from `index_bucket_bytes(UNITS)` (past the buckets)
    /// to `store_bytes - index_slot_bytes(UNITS)` (before the slots).
    pub const UNITS: usize = 196;
    /// With a byte budget and an index that grows: the buckets of the index in use, u32,
    /// numbered from 0, at most `UNITS * UNIT_BUCKETS`; only grows. A key's home is its hash
    /// scaled to this count, and lock-free readers load it (acquire) before they read a bucket.
    pub const BUCKETS: usize = 200;
}

/// Index bucket field offsets, from the start of the bucket.
pub mod bucket {
    /// Sequence number, u32: odd while a writer changes the bucket or a slot indexed in it.
    pub const SEQ: usize = 0;
    /// Low 16 bits: keys whose home is this bucket placed in a later bucket; high 16 bits: how
    /// many buckets past this one such keys may be, u32.
    pub const SPILL: usize = 4;
    /// `BUCKET_ENTRIES` u32 entries: `tag << id_bits | slot id`, 0 = empty.
    pub const ENTRIES: usize = 8;
}

/// The hints of a cache with a byte budget, which let a lock-free reader find a value without
/// reading the entry's slot: the 64 bytes right after each bucket ([`BUDGET_BUCKET_STRIDE`]);
/// for the entry at position `p` of the bucket, its record hint (u32) at `4 * p`; at [`USE`](hint::USE),
/// the bucket's use word (u64), shared by its entries.
///
/// * A record hint tells where the record of the entry's slot is. Outside a write window on the
///   bucket it equals the slot's record offset, which stays the truth: writers change both in
///   one window, and recovery sets every hint again.
/// * The use word: bits 0..32, a Unix time in ms modulo 2^32, *until*; bit `32 + p`, set when
///   the use of the entry at position `p` is recorded in its slot's use word until then. A reader
///   that hits before *until* an entry whose bit is set has nothing to record, and reads no slot.
///   Readers set bits (a compare-and-swap) after recording a use, as they write the use word,
///   and start the word over with a later *until*; a writer clears an entry's bit when another
///   entry takes its position. A stale word costs a use not recorded or a slot read, never a
///   wrong value.
pub mod hint {
    /// The record hint that names no record.
    pub const NONE: u32 = 0;
    /// A time that records nothing (a use recorded in the last millisecond of 2^32 is taken as
    /// unrecorded, see [`recorded`]).
    pub const NOT_RECORDED: u32 = u32::MAX;
    /// Offset of the bucket's use word among its hints.
    pub const USE: usize = 56;
    /// How far ahead of the time of a hit a use word's *until* may be and still say that the
    /// use is recorded: the largest grain of recorded times, twice.
    const AHEAD: u32 = 512;

    /// Whether `until` says that a use at `now` (epoch ms) is recorded already: it is at or
    /// after `now`, and not by more than any recorded time can be (a time left from 2^32 ms
    /// before passes for one only within that margin).
    #[inline(always)]
    pub const fn recorded(until: u32, now: u64) -> bool {
        until.wrapping_sub(now as u32) < AHEAD && until != NOT_RECORDED
    }

    /// Whether use word `w` says that the use at `now` of the entry at position `pos` is
    /// recorded already.
    #[inline(always)]
    pub const fn use_recorded(w: u64, pos: usize, now: u64) -> bool {
        debug_assert!(pos < super::BUCKET_ENTRIES);
        // A set bit comes with a time that `recorded` accepted (`marked`): not NOT_RECORDED,
        // unless the word was damaged, which costs uses unrecorded.
        (w >> (32 + pos)) & 1 != 0 && (w as u32).wrapping_sub(now as u32) < AHEAD
    }

    /// Until when uses are recorded by a slot whose use word records a use at `used`: then
    /// when the word says the entry was used since it was linked, else never.
    pub const fn until(used: u64, referenced: bool) -> u32 {
        if referenced {
            used as u32
        } else {
            NOT_RECORDED
        }
    }

    /// Use word `w` with the entry at position `pos` marked as recorded, its slot recording uses
    /// until `until`, at `now`: into `w`'s *until* while that is current and `until` reaches it,
    /// else a word of its own; `None` when there is nothing to mark, or when `w` is current and
    /// asks more than `until` gives.
    pub const fn marked(w: u64, pos: usize, until: u32, now: u64) -> Option<u64> {
        debug_assert!(pos < super::BUCKET_ENTRIES);
        let bit = 1u64 << (32 + pos);
        if !recorded(until, now) {
            return None;
        }
        let cur = w as u32;
        if !recorded(cur, now) {
            return Some(until as u64 | bit);
        }
        if w & bit != 0 || (until.wrapping_sub(cur) as i32) < 0 {
            return None;
        }
        Some(w | bit)
    }

    /// Use word `w` with the entry at position `pos` unmarked.
    pub const fn unmarked(w: u64, pos: usize) -> u64 {
        w & !(1u64 << (32 + pos))
    }

    /// The record hint of a record at byte offset `off` of its store (8-aligned): `off / 8 + 1`,
    /// or [`NONE`] for an offset past what a u32 can name.
    pub const fn of(off: u64) -> u32 {
        let v = off / 8 + 1;
        if v > u32::MAX as u64 {
            NONE
        } else {
            v as u32
        }
    }
}

/// Slot field offsets, from the start of the slot.
pub mod slot {
    /// The u64 key, or FNV-1a-64 of the key bytes.
    pub const KEY: usize = 0;
    /// The use word, u64, stored by lock-free readers too: bits 0..44 time of last use (epoch
    /// ms), bit 44 "used since linked", bits 45..64 the time of last use minus the time the
    /// entry was linked at its place in the recency list (signed, ms).
    pub const USE: usize = 8;
    /// Toward the head of the recency list, u32.
    pub const PREV: usize = 16;
    /// Toward the tail; in a free slot, the next free slot, u32.
    pub const NEXT: usize = 20;
    /// The share key, u32.
    pub const SHARE: usize = 24;
    /// Bits 0..24: value length; bits 24..28: flags; bits 28..32: the rewrite generation
    /// ([`GEN_SHIFT`](super::GEN_SHIFT)).
    pub const VLEN_FLAGS: usize = 28;
    /// Bits 0..48: expiry, epoch ms (0 = never); bits 48..64: key length.
    pub const EXP_KLEN: usize = 32;
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
/// The flags' bits in the flags byte of a slot's `VLEN_FLAGS` word (the rest is the rewrite
/// generation).
pub const FLAG_BITS: u8 = 0x0f;
/// Where a slot's rewrite generation starts in its `VLEN_FLAGS` word: 4 bits counting the
/// rewrites of the value in place since the slot last changed inside its bucket's write
/// window, modulo 16. A rewrite that brings it back to 0 opens the bucket's window too.
pub const GEN_SHIFT: u32 = 28;

/// Region state: zero bytes, nobody has started.
pub const STATE_EMPTY: u32 = 0;
/// Region state: a process is writing the header.
pub const STATE_INITIALIZING: u32 = 1;
/// Region state: ready for use.
pub const STATE_READY: u32 = 2;

/// Region flag: a full shard evicts its least recently used entry to make room.
pub const FLAG_EVICT_ON_FULL: u32 = 1;
/// Region flag: the cache has a byte budget: slots hold the byte offset of a record in their
/// shard's value store, where the key and value are.
pub const FLAG_BUDGET: u32 = 2;
/// Region flag, with [`FLAG_BUDGET`]: the index grows inside the value stores (units, see
/// [`UNIT_SIZE`]); without it, a budget cache's index is arrays fixed when it was made.
pub const FLAG_GROWS: u32 = 4;

/// The record size of a cache with a byte budget: a slot holds the u64 byte offset of its record.
pub const REF_SIZE: u32 = 8;
/// Bytes of a value-store record's header, before its key and value bytes.
pub const RECORD_HEADER: u64 = 32;
/// The top byte of a record header's first word: tells a record from bytes that are not one.
pub const RECORD_MARK: u8 = 0xb5;
/// Record flag (beside `F_BYTES_KEY` and `F_STR_VALUE`): the record fills the end of the store
/// and holds no entry.
pub const R_PAD: u8 = 0x80;
/// The most bytes of one shard's value store: what a record hint (`hint::of`) can name.
pub const MAX_STORE_BYTES: u64 = (32 << 30) - 64;
const _: () = assert!(hint::of(MAX_STORE_BYTES - 8) != hint::NONE);
const _: () = assert!(slot_below_top(0) == GROUP_SLOT_BYTES);
/// The default largest entry (key plus value bytes) of a cache with a byte budget.
pub const DEFAULT_MAX_VALUE_SIZE: u64 = 1 << 20;
/// The largest entry of a cache with a byte budget: a record's length must fit in 32 bits.
pub const MAX_VALUE_SIZE: u64 = (1 << 32) - 1 - 2 * RECORD_HEADER;
/// Bytes of a record for `klen` key bytes and `vlen` value bytes: header, key, value, rounded
/// up to 8.
pub const fn record_len(klen: u64, vlen: u64) -> u64 {
    align_up(RECORD_HEADER + klen + vlen, 8)
}

const _: () = assert!(
    MUTEX_SIZE <= shard_header::UPDATES,
    "the mutex must fit its 56-byte field"
);
const _: () = assert!(region_header::APP_MUTEX + 64 <= region_header::RETIRED_HITS);
const _: () = assert!(region_header::MAX_BYTES + 8 <= region_header::RECOUNT);
const _: () = assert!(region_header::RECOUNT + 4 <= HEADER_SIZE as usize);
const _: () = assert!(shard_header::EARLIEST_EXPIRY + 8 <= shard_header::STORE_HEAD);
const _: () = assert!(shard_header::STORE_LIVE + 8 <= shard_header::WANTS_UNITS);
const _: () = assert!(shard_header::WANTS_UNITS + 4 <= shard_header::REFRESH_MS);
const _: () = assert!(region_header::LIVE + 8 <= region_header::MAX_VALUE_SIZE);
const _: () = assert!(shard_header::REFRESH_MS + 4 <= shard_header::UNITS);
const _: () = assert!(shard_header::UNITS + 4 <= shard_header::BUCKETS);
const _: () = assert!(shard_header::BUCKETS + 4 <= SHARD_SIZE as usize);
const _: () = assert!(
    UNIT_BUCKETS as u64 * BUDGET_BUCKET_STRIDE + UNIT_SLOTS as u64 * (SLOT_HEADER + REF_SIZE as u64)
        == UNIT_SIZE
);
const _: () = assert!(UNIT_SIZE % 64 == 0 && GROUP_BUCKET_BYTES == 4096 && GROUP_SIZE == 16384);
const _: () = assert!(bucket::ENTRIES + 4 * BUCKET_ENTRIES == BUCKET_SIZE as usize);
const _: () = assert!(4 * BUCKET_ENTRIES <= hint::USE && hint::USE + 8 == BUCKET_SIZE as usize);
const _: () = assert!(32 + BUCKET_ENTRIES <= 64);
const _: () = assert!(slot::EXP_KLEN + 8 == SLOT_HEADER as usize);

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

/// Buckets of a shard of `slots` slots.
pub const fn buckets_for(slots: u32) -> u32 {
    let b = slots.div_ceil(SLOTS_PER_BUCKET);
    if b == 0 {
        1
    } else {
        b
    }
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
    /// Counter lanes.
    pub lanes: u32,
    /// Bytes from one slot to the next.
    pub stride: u64,
    /// Offset of the first counter lane.
    pub lanes_off: u64,
    /// Offset of the first shard header.
    pub shards_off: u64,
    /// Offset of the first bucket.
    pub buckets_off: u64,
    /// Offset of the first slot.
    pub slots_off: u64,
    /// Offset of the first shard's undo record (one slot-sized area per shard, after every
    /// slot): the old contents of a slot while it is rewritten in place.
    pub journals_off: u64,
    /// With a byte budget, offset of the first shard's value store (64-aligned, after the
    /// undo records); else 0.
    pub store_off: u64,
    /// With a byte budget, bytes of each shard's value store (a multiple of 64); else 0.
    pub store_bytes: u64,
    /// Bytes from one bucket to the next: [`BUCKET_SIZE`], or with a byte budget
    /// [`BUDGET_BUCKET_STRIDE`] (each bucket followed by its hints).
    pub bucket_stride: u64,
    /// With a byte budget: whether the index grows inside the value stores (in units, see
    /// [`UNIT_SIZE`]; a cache made without a capacity) rather than lying in arrays of a size
    /// fixed when the cache was made (one made with a capacity).
    pub grows: bool,
    /// Bytes the whole layout needs.
    pub total: u64,
}

impl Geometry {
    /// The layout for exactly `slots_per_shard` slots in each of `shards` shards.
    pub fn new(record_size: u32, shards: u32, slots_per_shard: u32, lanes: u32) -> Result<Geometry> {
        Geometry::with_bucket_stride(record_size, shards, slots_per_shard, lanes, BUCKET_SIZE)
    }

    /// [`new`](Self::new) with buckets `bucket_stride` bytes apart: [`BUCKET_SIZE`], or
    /// [`BUDGET_BUCKET_STRIDE`] for the index of a cache with a byte budget.
    pub fn with_bucket_stride(
        record_size: u32,
        shards: u32,
        slots_per_shard: u32,
        lanes: u32,
        bucket_stride: u64,
    ) -> Result<Geometry> {
        validate(record_size, shards)?;
        if bucket_stride != BUCKET_SIZE && bucket_stride != BUDGET_BUCKET_STRIDE {
            return Err(Error::InvalidArgument(format!(
                "a bucket stride of {bucket_stride} bytes"
            )));
        }
        if slots_per_shard == 0 {
            return Err(Error::InvalidArgument("a cache needs at least one slot".into()));
        }
        if (shards as u64) * (slots_per_shard as u64) > u32::MAX as u64 - 1 {
            return Err(Error::InvalidArgument(format!(
                "{} slots exceed the 4,294,967,294 a cache can number",
                (shards as u64) * (slots_per_shard as u64)
            )));
        }
        if lanes == 0 || lanes > 4096 {
            return Err(Error::InvalidArgument(format!(
                "{lanes} counter lanes is not in 1..=4096"
            )));
        }
        let stride = align_up(SLOT_HEADER + record_size as u64, 8);
        let lanes_off = HEADER_SIZE;
        let shards_off = lanes_off + lanes as u64 * LANE_SIZE;
        // A bucket with its hints is one aligned block of `bucket_stride` bytes.
        let buckets_off = align_up(shards_off + shards as u64 * SHARD_SIZE, bucket_stride);
        let buckets_per_shard = buckets_for(slots_per_shard);
        let slots_off = buckets_off + shards as u64 * buckets_per_shard as u64 * bucket_stride;
        let journals_off = slots_off + shards as u64 * slots_per_shard as u64 * stride;
        let total = journals_off + shards as u64 * stride;
        Ok(Geometry {
            store_off: 0,
            store_bytes: 0,
            grows: false,
            bucket_stride,
            record_size,
            shards,
            slots_per_shard,
            buckets_per_shard,
            lanes,
            stride,
            lanes_off,
            shards_off,
            buckets_off,
            slots_off,
            journals_off,
            total,
        })
    }

    /// The largest layout with `lanes` counter lanes that fits in `region` bytes.
    pub fn fit(record_size: u32, shards: u32, region: u64, lanes: u32) -> Result<Geometry> {
        validate(record_size, shards)?;
        let too_small = || -> Result<Geometry> {
            let needed = Geometry::new(record_size, shards, 1, lanes)?.total;
            Err(Error::RegionTooSmall {
                needed,
                available: region,
            })
        };
        let base = Geometry::new(record_size, shards, 1, lanes)?;
        if base.total > region {
            return too_small();
        }
        // Binary search on the slot count: `total` grows with it.
        let mut lo = 1u64;
        let mut hi = ((region / base.stride) / shards as u64 + 1).min((u32::MAX as u64 - 1) / shards as u64);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match Geometry::new(record_size, shards, mid as u32, lanes) {
                Ok(g) if g.total <= region => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Geometry::new(record_size, shards, lo as u32, lanes)
    }

    /// Total slots.
    pub fn slots(&self) -> u64 {
        self.shards as u64 * self.slots_per_shard as u64
    }

    /// The layout of a cache with a byte budget: `shards` value stores of `store_bytes` bytes
    /// (a multiple of [`UNIT_SIZE`]) after the undo records, each with an index that may grow
    /// to `units` units taken from its two ends; no bucket or slot outside the stores.
    pub fn budget_index(shards: u32, units: u32, lanes: u32, store_bytes: u64) -> Result<Geometry> {
        validate(REF_SIZE, shards)?;
        if lanes == 0 || lanes > 4096 {
            return Err(Error::InvalidArgument(format!(
                "{lanes} counter lanes is not in 1..=4096"
            )));
        }
        if units == 0 || units > MAX_UNITS {
            return Err(Error::InvalidArgument(format!(
                "an index of {units} units is not in 1..={MAX_UNITS}"
            )));
        }
        let slots = shards as u64 * units as u64 * UNIT_SLOTS as u64;
        if slots > u32::MAX as u64 - 1 {
            return Err(Error::InvalidArgument(format!(
                "{slots} slots exceed the 4,294,967,294 a cache can number"
            )));
        }
        check_store_bytes(store_bytes)?;
        if index_bytes(units) >= store_bytes {
            return Err(Error::InvalidArgument(format!(
                "an index of {units} units takes the whole value store of {store_bytes} bytes"
            )));
        }
        let stride = SLOT_HEADER + REF_SIZE as u64;
        let lanes_off = HEADER_SIZE;
        let shards_off = lanes_off + lanes as u64 * LANE_SIZE;
        let buckets_off = align_up(shards_off + shards as u64 * SHARD_SIZE, 64);
        let journals_off = buckets_off;
        let store_off = align_up(journals_off + shards as u64 * stride, 4096);
        let total = stores_end(shards, store_off, store_bytes)?;
        Ok(Geometry {
            record_size: REF_SIZE,
            shards,
            slots_per_shard: units * UNIT_SLOTS,
            buckets_per_shard: units * UNIT_BUCKETS,
            lanes,
            stride,
            lanes_off,
            shards_off,
            buckets_off,
            slots_off: buckets_off,
            journals_off,
            store_off,
            store_bytes,
            bucket_stride: BUDGET_BUCKET_STRIDE,
            grows: true,
            total,
        })
    }

    /// This layout with a value store of `store_bytes` bytes per shard after the undo records:
    /// a cache with a byte budget whose index is the arrays of this layout, fixed in size.
    pub fn with_store(self, store_bytes: u64) -> Result<Geometry> {
        check_store_bytes(store_bytes)?;
        if self.bucket_stride != BUDGET_BUCKET_STRIDE {
            return Err(Error::InvalidArgument(
                "a value store needs an index whose buckets have hints".into(),
            ));
        }
        let store_off = self.store_off_for_store();
        let total = stores_end(self.shards, store_off, store_bytes)?;
        Ok(Geometry {
            store_off,
            store_bytes,
            total,
            grows: false,
            ..self
        })
    }

    /// Where the value stores go when this index gets them: after the undo records.
    fn store_off_for_store(&self) -> u64 {
        align_up(self.journals_off + self.shards as u64 * self.stride, 64)
    }

    /// Whether this is the layout of a cache with a byte budget.
    pub fn has_store(&self) -> bool {
        self.store_bytes != 0
    }

    /// Offset of the end of shard `s`'s value store, below which a growing index's slots lie.
    pub fn store_top(&self, s: u32) -> u64 {
        self.store_off + (s as u64 + 1) * self.store_bytes
    }

    /// Offset of the start of shard `s`'s value store, where a growing index's buckets lie.
    pub fn store_start(&self, s: u32) -> u64 {
        self.store_off + s as u64 * self.store_bytes
    }

    /// Offset of bucket `b` of shard `s`.
    pub fn bucket_offset(&self, s: u32, b: u32) -> u64 {
        if self.grows {
            self.store_start(s) + bucket_in_store(b)
        } else {
            self.buckets_off + (s as u64 * self.buckets_per_shard as u64 + b as u64) * self.bucket_stride
        }
    }

    /// Offset of slot `id` (1-based) of shard `s`.
    pub fn slot_offset(&self, s: u32, id: u32) -> u64 {
        let i = id as u64 - 1;
        if self.grows {
            self.store_top(s) - slot_below_top(i as u32)
        } else {
            self.slots_off + (s as u64 * self.slots_per_shard as u64 + i) * self.stride
        }
    }

    /// The units each shard's growing index has when a cache is made: one per
    /// [`BUDGET_BYTES_PER_START_UNIT`] of the store (at least 2).
    pub fn start_units(&self) -> u32 {
        let most = self.buckets_per_shard / UNIT_BUCKETS;
        let u = (self.store_bytes / BUDGET_BYTES_PER_START_UNIT).clamp(2, MAX_UNITS as u64) as u32;
        u.min(most)
    }

    /// The layout of a cache with a byte budget of `max_bytes` whose entries hold at most
    /// `max_value` bytes of key and value, over `shards` shards (`None`: as [`default_shards`]
    /// for one entry per [`BUDGET_BYTES_PER_ENTRY`] of budget, fewer when a shard's store would
    /// hold under 16 of the largest entries). Given a `capacity`, an index of that many entries
    /// in arrays before the stores, fixed; with none (0), an index that grows inside each store
    /// as entries need it, while it leaves two of the largest records' worth of store. The rest
    /// of the budget is split into the shards' value stores.
    pub fn budget(
        max_bytes: u64,
        max_value: u64,
        capacity: u64,
        shards: Option<u32>,
        evict: bool,
    ) -> Result<Geometry> {
        let entries = if capacity == 0 {
            (max_bytes / BUDGET_BYTES_PER_ENTRY).max(16)
        } else {
            capacity
        };
        let biggest = record_len(0, max_value);
        let mut shards = match shards {
            Some(s) => s,
            None => {
                let mut s = default_shards(evict, entries);
                while s > 1 && max_bytes / s as u64 / 16 < biggest {
                    s /= 2;
                }
                // As many more as keep each store within what a record hint can name.
                while s < MAX_SHARDS && max_bytes / s as u64 > MAX_STORE_BYTES {
                    s *= 2;
                }
                s
            }
        };
        shards = shards.max(1);
        validate(REF_SIZE, shards)?;
        let lanes = lanes_for(entries);
        let store_off = Geometry::budget_index(shards, 1, lanes, 2 * GROUP_SIZE)?.store_off;
        let store = (max_bytes.saturating_sub(store_off) / shards as u64) / 64 * 64;
        // A store must keep two of the largest records, so that one can be written while the
        // other is still read: the index may take the rest, in whole groups.
        if capacity > 0 {
            // An index of that many entries, in arrays before the stores.
            let per = u32::try_from(slots_per_shard(capacity, shards))
                .map_err(|_| Error::InvalidArgument(format!("capacity {capacity} too large")))?;
            let index = Geometry::with_bucket_stride(REF_SIZE, shards, per, lanes, BUDGET_BUCKET_STRIDE)?;
            let store_off = index.store_off_for_store();
            let store = (max_bytes.saturating_sub(store_off) / shards as u64) / 64 * 64;
            if store < 2 * biggest || store == 0 {
                return Err(Error::InvalidArgument(format!(
                    "max_bytes {max_bytes} is too small for max_value_size {max_value}: an index \
                     of {capacity} entries takes {store_off} bytes, and each of {shards} shards \
                     needs at least {} bytes for values",
                    2 * biggest
                )));
            }
            return index.with_store(store);
        }
        // Whole pages, so that each group's buckets take whole pages of their own.
        let store = store / 4096 * 4096;
        let room = store.saturating_sub(2 * biggest) / GROUP_SIZE * GROUP_UNITS as u64;
        let units = room
            .min(MAX_UNITS as u64)
            .min((u32::MAX as u64 - 1) / (UNIT_SLOTS as u64 * shards as u64));
        if units == 0 {
            return Err(Error::InvalidArgument(format!(
                "max_bytes {max_bytes} is too small for max_value_size {max_value}: each of \
                 {shards} shards needs at least {} bytes for values and its index",
                2 * biggest + GROUP_SIZE
            )));
        }
        Geometry::budget_index(shards, units as u32, lanes, store)
    }
}

/// Refuses a shard's value store of `store_bytes` bytes that is not a positive multiple of 64,
/// or larger than a record hint can name.
fn check_store_bytes(store_bytes: u64) -> Result<()> {
    if store_bytes == 0 || store_bytes % 64 != 0 {
        return Err(Error::InvalidArgument(format!(
            "a value store of {store_bytes} bytes is not a positive multiple of 64"
        )));
    }
    if store_bytes > MAX_STORE_BYTES {
        return Err(Error::InvalidArgument(format!(
            "a shard's value store of {store_bytes} bytes is over the {MAX_STORE_BYTES} a \
             record hint can name: use more shards"
        )));
    }
    Ok(())
}

/// The end of `shards` value stores of `store_bytes` bytes from `store_off`: the layout's total.
fn stores_end(shards: u32, store_off: u64, store_bytes: u64) -> Result<u64> {
    (shards as u64)
        .checked_mul(store_bytes)
        .and_then(|b| b.checked_add(store_off))
        .ok_or_else(|| Error::InvalidArgument(format!("a value store of {store_bytes} bytes")))
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
/// full (so that its capacity is exact), else enough shards of at least 32,768 entries to
/// spread writers over, at most 16. Readers take no lock, so shards only matter to writers.
pub fn default_shards(evict_on_full: bool, capacity: u64) -> u32 {
    if !evict_on_full {
        return 1;
    }
    let mut s = 1u32;
    while s < 16 && capacity / (s as u64 * 2) >= 32_768 {
        s *= 2;
    }
    s
}

/// Slots each of `shards` shards gets so that `capacity` keys spread by a hash fit: the even
/// share plus five standard deviations of a binomial share, plus 8 (one shard: exactly the
/// capacity).
pub fn slots_per_shard(capacity: u64, shards: u32) -> u64 {
    if shards <= 1 {
        return capacity;
    }
    let mean = capacity.div_ceil(shards as u64);
    let sd = ((capacity as f64) * (1.0 / shards as f64) * (1.0 - 1.0 / shards as f64)).sqrt();
    mean + (5.0 * sd).ceil() as u64 + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_is_exact_and_maximal() {
        for region in [8_000u64, 10_000, 65_536, 1_000_000, 12_345_678] {
            for rec in [1u32, 8, 64, 250, 1024] {
                for shards in [1u32, 4] {
                    let Ok(g) = Geometry::fit(rec, shards, region, SMALL_LANES) else {
                        continue;
                    };
                    assert!(g.total <= region, "{g:?} over {region}");
                    let bigger = Geometry::new(rec, shards, g.slots_per_shard + 1, SMALL_LANES).unwrap();
                    assert!(bigger.total > region, "one more slot would still fit: {g:?}");
                    assert_eq!(g.slots_off % 64, 0);
                    assert_eq!(g.buckets_off % 64, 0);
                    assert_eq!(g.stride % 8, 0);
                }
            }
        }
    }

    #[test]
    fn too_small_region_is_an_error() {
        assert!(matches!(
            Geometry::fit(250, 1, 300, SMALL_LANES),
            Err(Error::RegionTooSmall { .. })
        ));
        assert!(Geometry::fit(0, 1, 10_000, SMALL_LANES).is_err());
        assert!(Geometry::fit(1 << 24, 1, u64::MAX, SMALL_LANES).is_err());
        assert!(Geometry::fit(64, 3, 1 << 20, SMALL_LANES).is_err());
    }

    #[test]
    fn hundred_million_records_fit_the_numbering() {
        let g = Geometry::new(8, 16, 100_000_000 / 16, DEFAULT_LANES).unwrap();
        assert_eq!(g.slots(), 100_000_000);
        assert_eq!(g.stride, 48);
    }

    #[test]
    fn default_shards_scale() {
        assert_eq!(default_shards(false, 1 << 30), 1);
        assert_eq!(default_shards(true, 100), 1);
        assert_eq!(default_shards(true, 100_000), 2);
        assert_eq!(default_shards(true, 10_000_000), 16);
    }

    #[test]
    fn every_store_stays_within_what_a_hint_names() {
        // 100 GiB that does not evict: one shard by default, as many as the hints need here.
        let g = Geometry::budget(100 << 30, 1 << 20, 1 << 16, None, false).unwrap();
        assert_eq!(g.shards, 4);
        assert!(g.store_bytes <= MAX_STORE_BYTES && g.total <= 100 << 30);
        // A shard count given that would not do is refused, naming the limit.
        let e = Geometry::budget(100 << 30, 1 << 20, 1 << 16, Some(2), false).unwrap_err();
        assert!(e.to_string().contains(&MAX_STORE_BYTES.to_string()), "{e}");
        // Each bucket is followed by its 64 bytes of hints, in one array at the bottom of each
        // store; the slots lie in groups at the top; between them the store keeps two of the
        // largest records.
        let g = Geometry::budget(32 << 20, 1 << 20, 0, None, true).unwrap();
        assert_eq!(g.bucket_stride, 128);
        assert!(g.total <= 32 << 20);
        for s in 0..g.shards {
            // The buckets, one after the other from the store's start.
            assert_eq!(g.bucket_offset(s, 0), g.store_start(s));
            assert_eq!(g.bucket_offset(s, 0) % 4096, 0);
            assert_eq!(g.bucket_offset(s, 31), g.bucket_offset(s, 0) + 31 * 128);
            assert_eq!(g.bucket_offset(s, 32), g.bucket_offset(s, 0) + 4096);
            // A group's 256 slots, three pages below the top for the first group.
            assert_eq!(g.slot_offset(s, 1), g.store_top(s) - GROUP_SLOT_BYTES);
            assert_eq!(g.slot_offset(s, 256), g.slot_offset(s, 1) + 255 * 48);
            assert_eq!(g.slot_offset(s, 256) + 48, g.store_top(s));
            assert_eq!(g.slot_offset(s, 257), g.store_top(s) - 2 * GROUP_SLOT_BYTES);
            let units = g.buckets_per_shard / UNIT_BUCKETS;
            let last_bucket_end = g.bucket_offset(s, g.buckets_per_shard - 1) + 128;
            let lowest_slot = g.slot_offset(s, units * UNIT_SLOTS);
            assert!(last_bucket_end - g.store_start(s) <= index_bucket_bytes(units));
            assert!(g.store_top(s) - lowest_slot <= index_slot_bytes(units));
            assert!(lowest_slot >= last_bucket_end + 2 * record_len(0, 1 << 20));
        }
        // A capacity gives an index of that many entries, in arrays, that does not grow; no
        // capacity, one that grows and starts small.
        let c = Geometry::budget(32 << 20, 1 << 20, 10_000, None, true).unwrap();
        assert!(!c.grows && g.grows);
        assert_eq!(c.slots(), 10_000);
        assert_eq!(
            c.slots_off,
            c.buckets_off + c.shards as u64 * c.buckets_per_shard as u64 * 128
        );
        assert!(g.start_units() < g.buckets_per_shard / 16);
    }

    #[test]
    fn a_grown_index_uses_buckets_for_nine_entries_each() {
        assert_eq!(grown_buckets_for(0), 1);
        assert_eq!(grown_buckets_for(9), 1);
        assert_eq!(grown_buckets_for(10), 2);
        assert_eq!(grown_buckets_for(90_000), 10_000);
        // The slots of a unit never need more buckets than the unit brings.
        for units in [1u64, 7, 1000, MAX_UNITS as u64] {
            assert!(grown_buckets_for(units * UNIT_SLOTS as u64) <= units * UNIT_BUCKETS as u64);
        }
        assert_eq!(GROUP_SIZE % 4096, 0);
    }

    #[test]
    fn a_use_word_marks_entries_recorded_until_its_time() {
        use hint::{marked, unmarked, use_recorded, NOT_RECORDED};
        let now = 1_000_000u64;
        let t = now as u32 + 3;
        // Nothing is recorded in an empty word, nor for a slot that records nothing.
        assert!(!use_recorded(0, 2, now));
        assert_eq!(marked(0, 2, NOT_RECORDED, now), None);
        // A first mark starts the word at the slot's time; the entry is recorded until then.
        let w = marked(0, 2, t, now).unwrap();
        assert!(use_recorded(w, 2, now) && use_recorded(w, 2, now + 3));
        assert!(!use_recorded(w, 2, now + 4) && !use_recorded(w, 3, now));
        // Another entry recorded as long or longer joins it; one recorded for less does not.
        assert!(use_recorded(marked(w, 3, t + 5, now).unwrap(), 3, now + 3));
        assert_eq!(marked(w, 3, t - 1, now), None);
        assert_eq!(marked(w, 2, t, now), None);
        // A word whose time has passed starts over, with the new entry alone.
        let later = now + 10;
        let w2 = marked(w, 3, later as u32, later).unwrap();
        assert!(use_recorded(w2, 3, later) && !use_recorded(w2, 2, later));
        // Unmarking an entry leaves the others.
        let w3 = unmarked(marked(w, 3, t, now).unwrap(), 2);
        assert!(!use_recorded(w3, 2, now) && use_recorded(w3, 3, now));
        // Every position has its own bit.
        for p in 0..BUCKET_ENTRIES {
            let w = marked(0, p, t, now).unwrap();
            assert!((0..BUCKET_ENTRIES).all(|q| use_recorded(w, q, now) == (q == p)));
        }
    }

    #[test]
    fn slack_covers_an_uneven_spread() {
        assert_eq!(slots_per_shard(1000, 1), 1000);
        let per = slots_per_shard(10_000_000, 16);
        assert!(per > 625_000 && per < 630_000, "{per}");
    }
}

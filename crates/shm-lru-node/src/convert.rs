//! Conversions between JS values and the engine's types, shared by the class functions
//! (`class.rs`) and the original API's (`seed.rs`): engine errors to JS errors with their
//! `code`, keys, values, cache options, time-to-live options, segment ids, slot indexes and
//! iteration orders, the externals that hold a cache or a segment, and values read out of the
//! cache into a buffer of the binding's, to be made into JS values.
//!
//! Bounds. The engine owns every limit of what it stores and lays out (largest record, shard
//! counts, how many slots a cache can number) and refuses a value beyond one with
//! `ERR_SHM_INVALID_ARGUMENT`. This module checks only what turning a JS number into the
//! engine's type needs (an integer, not negative, within the safe integers or the engine's
//! `u32`) and that counts and sizes are positive, which makes the `RangeError` node's own APIs
//! would throw; and that a cache's options name one kind of cache, fixed records or a byte
//! budget, so that the error names the options as JS spells them.

use crate::napi::{Cx, Env, ErrorKind, Handle, JsResult, Text, Throw, Value, MAX_SAFE};
use napi_sys as sys;
use shm_lru::{
    Cache, CacheOptions, Entry, Error, Key, KeyRef, OpenOptions, Order, Segment, SegmentId, ValueKind,
};
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl From<shm_lru::Error> for Throw {
    fn from(e: shm_lru::Error) -> Throw {
        let kind = match e {
            shm_lru::Error::BufferTooSmall { .. } => ErrorKind::Range,
            _ => ErrorKind::Error,
        };
        Throw::new(kind, e.code(), e.to_string())
    }
}

// ---- handles ----

/// The kind of externals that hold a cache: [`Env::external`] registers each under this
/// static's address. (The value only makes the two kinds' statics differ.)
static CACHE_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x7368_6d2d_6c72_7563,
    upper: 0x6361_6368_6568_646c,
};

/// The kind of externals that hold a segment mapping.
static SEGMENT_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x7368_6d2d_6c72_7573,
    upper: 0x7365_676d_656e_7468,
};

/// The cache handle in argument `i`.
#[inline]
pub fn cache(cx: &Cx, i: usize) -> JsResult<&Handle<Cache>> {
    cx.env
        .external_ref::<Handle<Cache>>(cx.arg(i), &CACHE_TAG, "handle", "a cache handle")
}

/// A new handle owning `cache`.
pub fn new_cache(env: Env, cache: Cache) -> JsResult<Value> {
    env.external(Handle::new(Arc::new(cache)), &CACHE_TAG)
}

/// A segment as the original API's handle holds it: the mapping, and the owner slot of the
/// last ArrayBuffer made over it, which `release` empties (after detaching that buffer) so that
/// the mapping goes at once instead of when the buffer is collected.
pub struct Mapped {
    /// The mapping.
    pub seg: Arc<Segment>,
    /// What keeps the mapping alive for the live view, if there is one. (Touched only by the
    /// thread that owns the handle; a mutex rather than a cell keeps the handle `Sync`.)
    pub view: Mutex<Option<ViewOwner>>,
}

/// The share of a mapping an ArrayBuffer over it holds; emptied when the buffer is detached.
pub type ViewOwner = Arc<Mutex<Option<Arc<Segment>>>>;

/// The segment handle in argument `i`.
pub fn segment(cx: &Cx, i: usize) -> JsResult<&Handle<Mapped>> {
    cx.env
        .external_ref::<Handle<Mapped>>(cx.arg(i), &SEGMENT_TAG, "segment", "a segment handle")
}

/// A new handle owning `seg`.
pub fn new_segment(env: Env, seg: Segment) -> JsResult<Value> {
    let m = Mapped {
        seg: Arc::new(seg),
        view: Mutex::new(None),
    };
    env.external(Handle::new(Arc::new(m)), &SEGMENT_TAG)
}

/// The segments this process made through the class API and has not destroyed, so that the
/// original API's `getTotalCreatedSize()` counts what exists: the engine counts a segment as
/// created until the mapping that made it destroys it, and a class cache is usually destroyed
/// by name (`SharedLRU.destroy`), often after that mapping is gone.
pub mod created {
    use shm_lru::{Cache, Segment, SegmentId};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// Made here and not yet destroyed: name → bytes. Process-wide, as the engine's totals are.
    static LIVE: Mutex<Option<HashMap<SegmentId, u64>>> = Mutex::new(None);
    /// Bytes of those that were destroyed by name: the engine's total counts them still.
    static GONE: AtomicU64 = AtomicU64::new(0);

    /// Notes that this process made `c`'s segment.
    pub fn remember(c: &Cache) {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.get_or_insert_with(HashMap::new)
            .insert(c.segment().id().clone(), c.segment().len());
    }

    /// Notes that segment `id` is gone.
    pub fn forget(id: &SegmentId) {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(size) = live.as_mut().and_then(|m| m.remove(id)) {
            GONE.fetch_add(size, Ordering::Relaxed);
        }
    }

    /// Removes segment `id` (even while attached); `false` if there was none.
    pub fn destroy(id: &SegmentId) -> shm_lru::Result<bool> {
        let existed = Segment::destroy(id, true)?;
        if existed {
            forget(id);
        }
        Ok(existed)
    }

    /// Bytes of the segments this process made and has not destroyed.
    pub fn total() -> u64 {
        shm_lru::totals()
            .created
            .saturating_sub(GONE.load(Ordering::Relaxed))
    }
}

// ---- arguments ----

/// Stack room for string keys; longer ones go to the heap.
pub const KEY_STACK: usize = 256;
/// Stack room for string values.
const VALUE_STACK: usize = 1024;

/// Calls `f` with the bytes of the key in argument `i` (a string's UTF-8 bytes or a
/// Buffer's: the same bytes are the same key).
#[inline(always)]
pub fn with_key<R>(cx: &Cx, i: usize, f: impl FnOnce(&[u8]) -> JsResult<R>) -> JsResult<R> {
    cx.with_bytes::<KEY_STACK, _>(i, "key", |key, _| f(key))
}

/// Calls `f` with the bytes of the value in argument `i` and how it is to come back.
#[inline(always)]
pub fn with_value<R>(cx: &Cx, i: usize, f: impl FnOnce(&[u8], ValueKind) -> JsResult<R>) -> JsResult<R> {
    cx.with_bytes::<VALUE_STACK, _>(i, "value", |value, text| {
        let kind = match text {
            Text::Utf8 => ValueKind::Str,
            Text::Binary => ValueKind::Bytes,
        };
        f(value, kind)
    })
}

/// A 64-bit key of the original API (its "hash").
#[inline(always)]
pub fn hash(cx: &Cx, i: usize) -> JsResult<u64> {
    cx.u64(i, "hash")
}

/// A slot index of the original API, from 1.
pub fn slot(cx: &Cx, i: usize) -> JsResult<u64> {
    cx.integer(i, "index", 1, u32::MAX as i64).map(|n| n as u64)
}

/// A segment name: `/name` (POSIX) or an integer (System V key). A string that does not start
/// with `/` (such as `"1"`) is refused: System V keys are numbers.
pub fn segment_id(cx: &Cx, i: usize, name: &str) -> JsResult<SegmentId> {
    match cx.env.type_of(cx.arg(i))? {
        sys::ValueType::napi_string => {
            let s = cx.string(i, name)?;
            if !s.starts_with('/') {
                return Err(Throw::arg_value(
                    name,
                    "a POSIX name starting with \"/\" or an integer System V key",
                ));
            }
            Ok(s.parse::<SegmentId>()?)
        }
        sys::ValueType::napi_number => {
            let k = cx.integer(i, name, i32::MIN as i64, u32::MAX as i64)?;
            Ok(SegmentId::sysv(k)?)
        }
        _ => Err(Throw::arg_type(name, "a string (\"/name\") or an integer key")),
    }
}

/// An iteration order given as a boolean argument: `true` for least recently used first.
pub fn order(cx: &Cx, i: usize, name: &str) -> JsResult<Order> {
    Ok(if cx.boolean(i, name)? {
        Order::LruFirst
    } else {
        Order::MruFirst
    })
}

/// Property `prop` of `obj`, or `None` when it is `undefined`.
fn field(cx: &Cx, obj: Value, prop: &CStr) -> JsResult<Option<Value>> {
    let v = cx.property(obj, prop)?;
    Ok(if cx.is_undefined_of(v)? { None } else { Some(v) })
}

/// A positive integer of at most `max`.
fn positive(cx: &Cx, v: Value, name: &str, max: u64) -> JsResult<u64> {
    cx.integer_of(v, name, 1, max as i64).map(|n| n as u64)
}

/// The options object of the class API's `create` and `openOrCreate` in argument `i`: records
/// of one size, `{ capacity, recordSize, ... }`, or a byte budget, `{ maxBytes, maxValueSize?,
/// capacity?, ... }`, each with `{ evictOnFull?, ttl?, mode?, shards? }`. The fields left out
/// take the engine's defaults ([`CacheOptions::default`], or [`CacheOptions::budget`] with
/// `maxBytes`: no record size, and a capacity the engine derives from the budget).
pub fn cache_options(cx: &Cx, i: usize) -> JsResult<CacheOptions> {
    let o = cx.object(
        i,
        "options",
        "an object with capacity and recordSize, or with maxBytes",
    )?;
    let max_bytes = field(cx, o, c"maxBytes")?;
    let record = field(cx, o, c"recordSize")?;
    let max_value = field(cx, o, c"maxValueSize")?;
    let capacity = field(cx, o, c"capacity")?;
    let mut opts = match max_bytes {
        Some(v) => {
            if record.is_some() {
                return Err(both_sizes());
            }
            let mut opts = CacheOptions::budget(positive(cx, v, "options.maxBytes", MAX_SAFE)?);
            if let Some(v) = max_value {
                opts.max_value_size = positive(cx, v, "options.maxValueSize", MAX_SAFE)?;
            }
            if let Some(v) = capacity {
                opts.capacity = positive(cx, v, "options.capacity", MAX_SAFE)?;
            }
            opts
        }
        None => {
            let required = |v: Option<Value>, name: &str| {
                v.ok_or_else(|| {
                    Throw::arg_type(
                        name,
                        "a positive integer (it is required unless options.maxBytes is given)",
                    )
                })
            };
            let capacity = required(capacity, "options.capacity")?;
            let record = required(record, "options.recordSize")?;
            if max_value.is_some() {
                return Err(Throw::error(
                    "ERR_SHM_INVALID_ARGUMENT",
                    "options.maxValueSize is given without options.maxBytes: it bounds an entry of \
                     a cache with a byte budget; in a cache of fixed records, recordSize does",
                ));
            }
            CacheOptions {
                capacity: positive(cx, capacity, "options.capacity", MAX_SAFE)?,
                record_size: positive(cx, record, "options.recordSize", u32::MAX as u64)? as u32,
                ..CacheOptions::default()
            }
        }
    };
    if let Some(v) = field(cx, o, c"evictOnFull")? {
        opts.evict_on_full = cx.boolean_of(v, "options.evictOnFull")?;
    }
    if let Some(v) = field(cx, o, c"ttl")? {
        opts.default_ttl_ms = ttl_ms(cx, v)?;
    }
    if let Some(v) = field(cx, o, c"mode")? {
        opts.mode = cx.integer_of(v, "options.mode", 0, 0o777)? as u32;
    }
    if let Some(v) = field(cx, o, c"shards")? {
        opts.shards = Some(positive(cx, v, "options.shards", u32::MAX as u64)? as u32);
    }
    Ok(opts)
}

/// The error for options that ask for both kinds of cache.
#[cold]
fn both_sizes() -> Throw {
    Throw::error(
        "ERR_SHM_INVALID_ARGUMENT",
        "options.recordSize and options.maxBytes are both given: a cache holds either records of \
         one size (recordSize, with capacity) or values of any size within a byte budget \
         (maxBytes, with maxValueSize); pass one of the two",
    )
}

/// How a class cache is opened and used, from the same options object as its geometry:
/// `{ trustOwner?, lockTimeout?, mode?, reuse? }`.
pub struct Access {
    /// Whom to trust as the owner of an existing segment, and with what mode.
    pub open: OpenOptions,
    /// How long to wait for a shard lock; `None`: as long as it takes.
    pub lock_timeout: Option<Duration>,
    /// `openOrCreate` with `reuse: 'any'`: accept an existing cache whatever its settings.
    pub reuse_any: bool,
}

/// The access options in argument `i` (an object, or `undefined` when `optional`). `mode`,
/// when given, is the most the caller lets others write an existing segment
/// ([`OpenOptions::mode`]).
pub fn access_options(cx: &Cx, i: usize, optional: bool) -> JsResult<Access> {
    let mut a = Access {
        open: OpenOptions::default(),
        lock_timeout: None,
        reuse_any: false,
    };
    if optional && cx.is_undefined(i)? {
        return Ok(a);
    }
    let o = cx.object(i, "options", "an object")?;
    if let Some(v) = field(cx, o, c"trustOwner")? {
        a.open.trust_owner = Some(cx.integer_described_of(
            v,
            "options.trustOwner",
            0,
            u32::MAX as i64,
            "a user id (an integer from 0 to 4294967295)",
        )? as u32);
    }
    if let Some(v) = field(cx, o, c"mode")? {
        a.open.mode = Some(cx.integer_of(v, "options.mode", 0, 0o777)? as u32);
    }
    if let Some(v) = field(cx, o, c"lockTimeout")? {
        a.lock_timeout = lock_timeout(cx, v, "options.lockTimeout")?;
    }
    if let Some(v) = field(cx, o, c"reuse")? {
        let ok = cx.env.type_of(v)? == sys::ValueType::napi_string;
        let word = if ok {
            Some(cx.string_of(v, "options.reuse")?)
        } else {
            None
        };
        match word.as_deref() {
            Some("same") => {}
            Some("any") => a.reuse_any = true,
            _ => return Err(Throw::arg_value("options.reuse", "'same' (the default) or 'any'")),
        }
    }
    Ok(a)
}

/// A lock timeout in ms: `Infinity` for none, else a whole number of ms (0: do not wait).
pub fn lock_timeout(cx: &Cx, v: Value, name: &str) -> JsResult<Option<Duration>> {
    let n = cx.number_of(v, name)?;
    if n == f64::INFINITY {
        return Ok(None);
    }
    let ms = cx.integer_described_of(
        v,
        name,
        0,
        MAX_SAFE as i64,
        "a whole number of milliseconds, 0 or more, or Infinity (wait as long as it takes)",
    )?;
    Ok(Some(Duration::from_millis(ms as u64)))
}

/// A time to live in ms, 0 meaning forever.
fn ttl_ms(cx: &Cx, v: Value) -> JsResult<u64> {
    ttl_named(cx, v, "options.ttl")
}

/// A time to live in ms named `name` in errors, 0 meaning forever.
fn ttl_named(cx: &Cx, v: Value, name: &str) -> JsResult<u64> {
    cx.integer_described_of(
        v,
        name,
        0,
        MAX_SAFE as i64,
        "a whole number of milliseconds, 0 or more (0 = never expires)",
    )
    .map(|n| n as u64)
}

/// The per-call options of a set or incr in argument `i` (`{ ttl? }`, a number of ms standing
/// for `{ ttl }`, or `undefined`): the entry's time to live, `None` for the cache's default.
#[inline]
pub fn set_ttl(cx: &Cx, i: usize) -> JsResult<Option<u64>> {
    set_options(cx, i).map(|(ttl, _)| ttl)
}

/// The per-call options of a set in argument `i` (`{ ttl?, noUpdateTTL? }`, a number of ms
/// standing for `{ ttl }`, or `undefined`): the time to live as [`set_ttl`] reads it, and
/// whether an overwrite keeps the entry's current expiry.
#[inline]
pub fn set_options(cx: &Cx, i: usize) -> JsResult<(Option<u64>, bool)> {
    if cx.is_undefined(i)? {
        return Ok((None, false));
    }
    if cx.env.type_of(cx.arg(i))? == sys::ValueType::napi_number {
        return ttl_named(cx, cx.arg(i), "options").map(|t| (Some(t), false));
    }
    let o = cx.object(i, "options", "an object such as { ttl: 1000 }, or a number of ms")?;
    let ttl = match field(cx, o, c"ttl")? {
        Some(v) => Some(ttl_ms(cx, v)?),
        None => None,
    };
    let keep = match field(cx, o, c"noUpdateTTL")? {
        Some(v) => cx.boolean_of(v, "options.noUpdateTTL")?,
        None => false,
    };
    Ok((ttl, keep))
}

/// A time to live in ms in argument `i` named `name` (0 meaning forever), `None` when it is
/// `undefined`.
pub fn ttl_arg(cx: &Cx, i: usize, name: &str) -> JsResult<Option<u64>> {
    if cx.is_undefined(i)? {
        return Ok(None);
    }
    ttl_named(cx, cx.arg(i), name).map(Some)
}

/// An eviction by time: `f` gets the cache in argument 0, the time in ms in argument 1 (named
/// `ms_name`) and the most entries to evict in argument 2 (`max_name`; a count or `Infinity`,
/// `undefined` too when `optional`), and the entries it evicts come back as `[key, value]` pairs.
pub fn evict(
    cx: &Cx,
    ms_name: &str,
    max_name: &str,
    optional: bool,
    f: impl FnOnce(&Cache, u64, usize) -> shm_lru::Result<Vec<Entry>>,
) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let ms = cx.integer(1, ms_name, 0, MAX_SAFE as i64)? as u64;
    let max = cx.limit(2, max_name, optional)?;
    pairs(cx.env, &f(&c, ms, max)?)
}

// ---- results ----

/// A value as it was stored: a string for [`ValueKind::Str`], else a Buffer.
#[inline(always)]
pub fn stored(env: Env, bytes: &[u8], kind: ValueKind) -> JsResult<Value> {
    match kind {
        ValueKind::Str => env.string(bytes),
        ValueKind::Bytes => env.buffer(bytes),
    }
}

/// A key as JS sees it: a number (or BigInt) for a 64-bit key; a string for a byte key that is
/// valid UTF-8, else a Buffer.
pub fn key(env: Env, key: &Key) -> JsResult<Value> {
    match key {
        Key::Hash(h) => env.u64_value(*h),
        Key::Bytes(b) if std::str::from_utf8(b).is_ok() => env.string(b),
        Key::Bytes(b) => env.buffer(b),
    }
}

/// `[key, value]` pairs.
pub fn pairs(env: Env, entries: &[Entry]) -> JsResult<Value> {
    let arr = env.array(entries.len())?;
    for (i, e) in entries.iter().enumerate() {
        let pair = env.array_of(&[key(env, &e.key)?, stored(env, &e.value, e.kind)?])?;
        env.set_index(arr, i as u32, pair)?;
    }
    Ok(arr)
}

/// `[key, value, expiresMs]` triples, `expiresMs` 0 for an entry that never expires: what a
/// dump needs to carry each entry's remaining time to live.
pub fn triples(env: Env, entries: &[Entry]) -> JsResult<Value> {
    let arr = env.array(entries.len())?;
    for (i, e) in entries.iter().enumerate() {
        let expires = env.number(e.expires_ms.unwrap_or(0) as f64)?;
        let t = env.array_of(&[key(env, &e.key)?, stored(env, &e.value, e.kind)?, expires])?;
        env.set_index(arr, i as u32, t)?;
    }
    Ok(arr)
}

/// Room on the stack for a value read out of the cache; longer ones go to the heap.
const COPY_STACK: usize = 1024;

/// A value read out of the cache, to be made into a JS value: on the stack when it fits, else on
/// the heap. Reads validate what they copy, so the value is whole; making the JS value
/// allocates on the V8 heap, which is done from this private copy rather than from the slot.
pub struct ValueBuf {
    stack: MaybeUninit<[u8; COPY_STACK]>,
    heap: Vec<u8>,
    len: usize,
    kind: ValueKind,
}

impl ValueBuf {
    /// Nothing copied yet (no allocation, no zeroing).
    #[inline]
    pub fn new() -> ValueBuf {
        ValueBuf {
            stack: MaybeUninit::uninit(),
            heap: Vec::new(),
            len: 0,
            kind: ValueKind::Bytes,
        }
    }

    /// Copies `v` (replacing any earlier copy).
    #[inline(always)]
    pub fn fill(&mut self, v: &[u8], kind: ValueKind) {
        if v.len() <= COPY_STACK {
            // SAFETY: `stack` is writable for COPY_STACK >= v.len() bytes and is not `v`'s memory
            // (it is this struct's own field).
            unsafe { ptr::copy_nonoverlapping(v.as_ptr(), self.stack.as_mut_ptr().cast::<u8>(), v.len()) };
        } else {
            self.heap.clear();
            self.heap.extend_from_slice(v);
        }
        self.len = v.len();
        self.kind = kind;
    }

    /// Reads the value of `key` with a get (the entry is marked used, a hit or a miss counted):
    /// from the slot straight into the stack buffer. A value longer than the stack buffer (which
    /// only values of records over 1 KiB, or of a cache with a byte budget, can be) is read
    /// again, without counting, onto the heap. Returns whether the key was present.
    #[inline(always)]
    pub fn get(&mut self, c: &Cache, key: KeyRef<'_>) -> shm_lru::Result<bool> {
        // A cache with a byte budget has no record size (0): its values may take the whole
        // stack buffer, and a longer one the heap.
        let room = match c.record_size() {
            0 => COPY_STACK,
            r => (r as usize).min(COPY_STACK),
        };
        let at = self.stack.as_mut_ptr().cast::<u8>();
        // SAFETY: `stack` is this struct's own memory, writable for COPY_STACK >= room bytes; the
        // zeroed bytes are initialised, so they may be lent out as a slice.
        let buf = unsafe {
            ptr::write_bytes(at, 0, room);
            std::slice::from_raw_parts_mut(at, room)
        };
        match c.get_into(key, buf) {
            Ok(Some((len, kind))) => {
                self.len = len;
                self.kind = kind;
                Ok(true)
            }
            Ok(None) => Ok(false),
            // The get counted the hit and recorded the use; this read only copies.
            Err(Error::BufferTooSmall { .. }) => {
                Ok(c.peek_with(key, |v, kind| self.fill(v, kind))?.is_some())
            }
            Err(e) => Err(e),
        }
    }

    /// The value as JS sees it: a string or a Buffer, as it was stored.
    #[inline(always)]
    pub fn to_js(&self, env: Env) -> JsResult<Value> {
        let bytes = if self.len <= COPY_STACK {
            // SAFETY: `fill` wrote `len` bytes at the start of `stack` (or `len` is 0).
            unsafe { std::slice::from_raw_parts(self.stack.as_ptr().cast::<u8>(), self.len) }
        } else {
            &self.heap[..]
        };
        stored(env, bytes, self.kind)
    }
}

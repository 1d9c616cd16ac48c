//! The native functions behind the `SharedLRU` class: each converts its arguments, calls one
//! engine method and converts the result. Caches are held by externals wrapping an
//! `Arc<Cache>`; see `lib/native.js` for the interface as JS sees it.

use crate::napi::{Copied, Cx, Env, Handle, JsResult, Throw, Value, MAX_SAFE};
use napi_sys as sys;
use shm_lru::{Cache, CacheOptions, Entry, Error, Order, SegmentId, SetMode, SetOptions};
use std::ffi::CStr;
use std::sync::Arc;

/// The kind of externals that hold a cache: [`Env::external`] registers each under this
/// static's address. (The value only makes the two kinds' statics differ.)
pub static CACHE_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x7368_6d2d_6c72_7563,
    upper: 0x6361_6368_6568_646c,
};

/// Stack room for string keys; longer ones go to the heap.
const KEY_STACK: usize = 256;
/// Stack room for string values.
const VALUE_STACK: usize = 1024;

/// The cache handle in argument `i`.
#[inline]
pub fn handle(cx: &Cx, i: usize) -> JsResult<&Handle<Cache>> {
    cx.env
        .external_ref::<Handle<Cache>>(cx.arg(i), &CACHE_TAG, "handle", "a cache handle")
}

/// Wraps a cache in a new handle.
pub fn new_handle(env: Env, cache: Cache) -> JsResult<Value> {
    env.external(Handle::new(Arc::new(cache)), &CACHE_TAG)
}

/// A segment name: `/name` (POSIX), or an integer or decimal string (System V key).
pub fn segment_id(cx: &Cx, i: usize, name: &str) -> JsResult<SegmentId> {
    match cx.env.type_of(cx.arg(i))? {
        sys::ValueType::napi_string => Ok(cx.string(i, name)?.parse::<SegmentId>()?),
        sys::ValueType::napi_number => {
            let k = cx.integer(i, name, i32::MIN as i64, u32::MAX as i64)?;
            Ok(SegmentId::sysv(k)?)
        }
        _ => Err(Throw::arg_type(name, "a string (\"/name\") or an integer key")),
    }
}

/// `(capacity, recordSize, evictOnFull, ttlMs, mode, shards|undefined)` from argument `first`.
fn options(cx: &Cx, first: usize) -> JsResult<CacheOptions> {
    let shards = if cx.is_undefined(first + 5)? {
        None
    } else {
        Some(cx.u32(first + 5, "shards")?)
    };
    Ok(CacheOptions {
        capacity: cx.integer(first, "capacity", 1, MAX_SAFE as i64)? as u64,
        record_size: cx.u32(first + 1, "recordSize")?,
        evict_on_full: cx.boolean(first + 2, "evictOnFull")?,
        default_ttl_ms: cx.integer(first + 3, "ttlMs", 0, MAX_SAFE as i64)? as u64,
        mode: cx.integer(first + 4, "mode", 0, 0o777)? as u32,
        shards,
    })
}

/// `ttlMs` of a set: -1 is the cache's default, 0 forever.
fn ttl(cx: &Cx, i: usize) -> JsResult<Option<u64>> {
    let t = cx.integer(i, "ttlMs", -1, MAX_SAFE as i64)?;
    Ok(u64::try_from(t).ok())
}

/// `[key, value]` pairs.
fn pairs(env: Env, entries: &[Entry]) -> JsResult<Value> {
    let arr = env.array(entries.len())?;
    for (i, e) in entries.iter().enumerate() {
        let pair = env.array_of(&[env.key(&e.key)?, env.stored(&e.value, e.kind)?])?;
        env.set_index(arr, i as u32, pair)?;
    }
    Ok(arr)
}

fn set_num(env: Env, obj: Value, name: &CStr, n: u64) -> JsResult<()> {
    env.set(obj, name, env.number(n as f64)?)
}

pub(crate) fn cache_create(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    let opts = options(cx, 1)?;
    new_handle(cx.env, Cache::create(&id, &opts)?)
}

pub(crate) fn cache_open(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    new_handle(cx.env, Cache::open(&id)?)
}

pub(crate) fn cache_open_or_create(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    let opts = options(cx, 1)?;
    new_handle(cx.env, Cache::open_or_create(&id, &opts)?)
}

pub(crate) fn cache_destroy_name(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    cx.env.boolean(shm_lru::Segment::destroy(&id, true)?)
}

pub(crate) fn cache_close(cx: &Cx) -> JsResult<Value> {
    let h = handle(cx, 0)?;
    drop(h.close()?);
    cx.env.undefined()
}

pub(crate) fn cache_get(cx: &Cx) -> JsResult<Value> {
    read(cx, true)
}

pub(crate) fn cache_peek(cx: &Cx) -> JsResult<Value> {
    read(cx, false)
}

/// The value under the key argument, copied out under the shard lock and made into a JS value
/// after it; `get` marks the entry used, `peek` does not.
#[inline(always)]
fn read(cx: &Cx, mark_used: bool) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let mut out = Copied::new();
    let found = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| {
        let copy = |v: &[u8], kind| out.fill(v, kind);
        let hit = if mark_used {
            c.get_with(key, copy)?
        } else {
            c.peek_with(key, copy)?
        };
        Ok(hit.is_some())
    })?;
    if found {
        out.to_js(cx.env)
    } else {
        cx.env.nothing()
    }
}

pub(crate) fn cache_set(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let ttl_ms = ttl(cx, 3)?;
    let mode = match cx.integer(4, "mode", 0, 2)? {
        0 => SetMode::Upsert,
        1 => SetMode::Add,
        _ => SetMode::Replace,
    };
    let done = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| {
        cx.with_bytes::<VALUE_STACK, _>(2, "value", |value, kind| {
            let opts = SetOptions { ttl_ms, mode, kind };
            match c.set(key, value, &opts) {
                Ok(_) => Ok(true),
                Err(Error::KeyExists) if mode == SetMode::Add => Ok(false),
                Err(Error::KeyNotFound) if mode == SetMode::Replace => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    })?;
    cx.env.boolean(done)
}

pub(crate) fn cache_has(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let found = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| Ok(c.contains(key)?))?;
    cx.env.boolean(found)
}

pub(crate) fn cache_get_into(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let (dst, cap) = cx.out_buffer(2, "buf")?;
    let n = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| {
        let overlaps = (key.as_ptr() as usize) < dst as usize + cap
            && (dst as usize) < key.as_ptr() as usize + key.len();
        // A key that shares memory with the destination is copied first, so the copy below
        // never writes bytes a live slice still reads.
        let owned;
        let key = if overlaps {
            owned = key.to_vec();
            &owned[..]
        } else {
            key
        };
        let r = c.get_with(key, |v, _| {
            if v.len() > cap {
                return Err(v.len());
            }
            // SAFETY: `dst` is valid for `cap >= v.len()` bytes (a live Uint8Array argument),
            // and `v` (the slot, under the shard lock) is a different allocation from it unless
            // the caller passed a view of the segment itself, in which case `copy` (memmove)
            // still copies correctly.
            unsafe { std::ptr::copy(v.as_ptr(), dst, v.len()) };
            Ok(v.len())
        })?;
        match r {
            None => Ok(-1.0),
            Some(Ok(n)) => Ok(n as f64),
            Some(Err(needed)) => Err(Error::BufferTooSmall { needed }.into()),
        }
    })?;
    cx.env.number(n)
}

pub(crate) fn cache_delete(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let removed = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| Ok(c.remove(key)?))?;
    cx.env.boolean(removed)
}

pub(crate) fn cache_incr(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let delta = cx.integer(2, "delta", -(MAX_SAFE as i64), MAX_SAFE as i64)?;
    let ttl_ms = ttl(cx, 3)?;
    let n = cx.with_bytes::<KEY_STACK, _>(1, "key", |key, _| Ok(c.incr(key, delta, ttl_ms)?))?;
    cx.env.number(n as f64)
}

pub(crate) fn cache_clear(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    cx.env.number(c.clear()? as f64)
}

pub(crate) fn cache_len(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    cx.env.number(c.len()? as f64)
}

pub(crate) fn cache_info(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let env = cx.env;
    let o = env.object()?;
    env.set(o, c"name", env.string(c.segment().id().to_string().as_bytes())?)?;
    set_num(env, o, c"capacity", c.capacity())?;
    set_num(env, o, c"recordSize", c.record_size() as u64)?;
    set_num(env, o, c"shards", c.shards() as u64)?;
    env.set(o, c"evictOnFull", env.boolean(c.evict_on_full())?)?;
    set_num(env, o, c"defaultTtl", c.default_ttl_ms())?;
    set_num(env, o, c"regionSize", c.region_size())?;
    Ok(o)
}

/// An iteration order given as a boolean argument: `true` for least recently used first.
pub(crate) fn order_arg(cx: &Cx, i: usize, name: &str) -> JsResult<Order> {
    Ok(if cx.boolean(i, name)? {
        Order::LruFirst
    } else {
        Order::MruFirst
    })
}

pub(crate) fn cache_entries(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let order = order_arg(cx, 1, "lruFirst")?;
    let limit = cx.limit(2, "limit", true)?;
    pairs(cx.env, &c.entries(order, None, Some(limit))?)
}

pub(crate) fn cache_evict_older_than(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let age = cx.integer(1, "ms", 0, MAX_SAFE as i64)? as u64;
    let max = cx.limit(2, "max", true)?;
    pairs(cx.env, &c.evict_older_than(age, max)?)
}

pub(crate) fn cache_stats(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let s = c.stats()?;
    let env = cx.env;
    let o = env.object()?;
    for (name, n) in [
        (c"hits", s.hits),
        (c"misses", s.misses),
        (c"inserts", s.inserts),
        (c"updates", s.updates),
        (c"removes", s.removes),
        (c"evictions", s.evictions),
        (c"expirations", s.expirations),
        (c"recoveries", s.recoveries),
        (c"len", s.len),
        (c"capacity", s.capacity),
    ] {
        set_num(env, o, name, n)?;
    }
    Ok(o)
}

pub(crate) fn cache_check(cx: &Cx) -> JsResult<Value> {
    let c = handle(cx, 0)?.get()?;
    let r = c.check()?;
    let env = cx.env;
    let o = env.object()?;
    env.set(o, c"ok", env.boolean(r.is_ok())?)?;
    let problems = env.array(r.problems.len())?;
    for (i, p) in r.problems.iter().enumerate() {
        env.set_index(problems, i as u32, env.string(p.as_bytes())?)?;
    }
    env.set(o, c"problems", problems)?;
    Ok(o)
}

/// The floor of a native call: converts two `u32`s and returns.
pub(crate) fn bench_noop(cx: &Cx) -> JsResult<Value> {
    let mut a = 0u32;
    let mut b = 0u32;
    for (i, out) in [&mut a, &mut b].into_iter().enumerate() {
        *out = cx.u32(i, "n")?;
    }
    std::hint::black_box((a, b));
    cx.env.nothing()
}

/// The floor of a call that returns a string: 64 bytes already at hand.
pub(crate) fn bench_string(cx: &Cx) -> JsResult<Value> {
    const S: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    cx.env.string(S)
}

//! The native functions behind the `SharedLRU` class (`lib/shared-lru.js`): each converts its
//! arguments, calls one engine method and converts the result. Caches are held by externals
//! wrapping an `Arc<Cache>`; see `lib/native.js` for the interface as JS sees it.

use crate::convert::{
    self, access_options, cache, cache_options, created, new_cache, pairs, segment_id, set_options, set_ttl,
    triples, ttl_arg, with_key, with_value, Access, ValueBuf,
};
use crate::napi::{Cx, Env, JsResult, Throw, Value};
use shm_lru::{Cache, CacheOptions, Error, Order, SetMode, SetOptions, ValueKind};
use std::ffi::CStr;

fn set_num(env: Env, obj: Value, name: &CStr, n: u64) -> JsResult<()> {
    env.set(obj, name, env.number(n as f64)?)
}

pub(crate) fn cache_create(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    let opts = cache_options(cx, 1)?;
    let access = access_options(cx, 1, false)?;
    let c = Cache::create(&id, &opts)?;
    created::remember(&c);
    open_cache(cx, c, &access)
}

pub(crate) fn cache_open(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    let access = access_options(cx, 1, true)?;
    open_cache(cx, Cache::open_with(&id, &access.open)?, &access)
}

pub(crate) fn cache_open_or_create(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    let opts = cache_options(cx, 1)?;
    let mut access = access_options(cx, 1, false)?;
    // An existing segment that lets more users write than this caller would have let is not
    // taken over silently.
    access.open.mode = Some(opts.mode);
    let c = Cache::open_or_create_with(&id, &opts, &access.open)?;
    if c.segment().created() {
        created::remember(&c);
    } else if !access.reuse_any {
        check_same_settings(&c, &opts)?;
    }
    open_cache(cx, c, &access)
}

/// A handle for `c`, with the access options applied.
fn open_cache(cx: &Cx, mut c: Cache, access: &Access) -> JsResult<Value> {
    c.set_lock_timeout(access.lock_timeout);
    new_cache(cx.env, c)
}

/// Refuses, with `ERR_SHM_MISMATCH`, an existing cache whose settings are not the ones
/// `openOrCreate` was asked for, naming each that differs.
fn check_same_settings(c: &Cache, opts: &CacheOptions) -> JsResult<()> {
    let mut diffs = Vec::new();
    // A kind of cache other than asked for is one difference, said once.
    let kind = |max_bytes: u64| {
        if max_bytes == 0 {
            "fixed records (recordSize)"
        } else {
            "a byte budget (maxBytes)"
        }
    };
    let other_kind = (c.max_bytes() == 0) != (opts.max_bytes == 0);
    if other_kind {
        diffs.push(format!(
            "it has {}, not {}",
            kind(c.max_bytes()),
            kind(opts.max_bytes)
        ));
    }
    let mut differ = |name: &str, has: String, asked: String| {
        if has != asked {
            diffs.push(format!("{name} is {has}, not {asked}"));
        }
    };
    if !other_kind && opts.max_bytes == 0 {
        differ("capacity", c.capacity().to_string(), opts.capacity.to_string());
        differ(
            "recordSize",
            c.record_size().to_string(),
            opts.record_size.to_string(),
        );
    } else if !other_kind {
        differ("maxBytes", c.max_bytes().to_string(), opts.max_bytes.to_string());
        // With a budget, capacity and maxValueSize are compared only when asked for (0 lets
        // the engine derive them).
        if opts.capacity != 0 {
            differ("capacity", c.capacity().to_string(), opts.capacity.to_string());
        }
        if opts.max_value_size != 0 {
            differ(
                "maxValueSize",
                c.max_value_size().to_string(),
                opts.max_value_size.to_string(),
            );
        }
    }
    differ(
        "evictOnFull",
        c.evict_on_full().to_string(),
        opts.evict_on_full.to_string(),
    );
    // The shard count is compared only when asked for (`opts.shards` is set only then).
    if let Some(s) = opts.shards {
        differ("shards", c.shards().to_string(), s.to_string());
    }
    differ(
        "ttl",
        c.default_ttl_ms().to_string(),
        opts.default_ttl_ms.to_string(),
    );
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Throw::error(
        "ERR_SHM_MISMATCH",
        format!(
            "cache {} exists with other settings than asked: {}; pass its settings, open it with \
             SharedLRU.open(name), or pass {{ reuse: 'any' }} to take it as it is",
            c.segment().id(),
            diffs.join(", ")
        ),
    ))
}

pub(crate) fn cache_destroy_name(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "name")?;
    cx.env.boolean(created::destroy(&id)?)
}

pub(crate) fn cache_close(cx: &Cx) -> JsResult<Value> {
    let h = cache(cx, 0)?;
    drop(h.close()?);
    cx.env.undefined()
}

pub(crate) fn cache_get(cx: &Cx) -> JsResult<Value> {
    read(cx, true)
}

pub(crate) fn cache_peek(cx: &Cx) -> JsResult<Value> {
    read(cx, false)
}

/// The value under the key argument, read without a lock into a buffer of the binding's and
/// made into a JS value from there; `get` marks the entry used, `peek` does not.
#[inline(always)]
fn read(cx: &Cx, mark_used: bool) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let mut out = ValueBuf::new();
    let found = with_key(cx, 1, |key| {
        if mark_used {
            Ok(out.get(&c, key.into())?)
        } else {
            Ok(c.peek_with(key, |v, kind| out.fill(v, kind))?.is_some())
        }
    })?;
    if found {
        out.to_js(cx.env)
    } else {
        cx.env.nothing()
    }
}

/// `cacheGetMany(handle, keys) → Array<value | undefined>`: a `get` of each key of an array in
/// one call, each marking its entry used and counting a hit or a miss.
pub(crate) fn cache_get_many(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let env = cx.env;
    let keys = cx.arg(1);
    let Some(n) = env.array_len(keys)? else {
        return Err(Throw::arg_type(
            "keys",
            "an array of strings, Buffers or Uint8Arrays",
        ));
    };
    // Filled in order from empty: V8 keeps it a packed array, where a preset length would
    // start it holey.
    let out = env.array(0)?;
    let mut copy = ValueBuf::new();
    for i in 0..n {
        let k = env.get_index(keys, i)?;
        let found = cx.with_bytes_of::<{ convert::KEY_STACK }, _>(k, "keys[i]", |key, _| {
            Ok(c.get_with(key, |v: &[u8], kind| copy.fill(v, kind))?.is_some())
        })?;
        let v = if found { copy.to_js(env)? } else { env.undefined()? };
        env.set_index(out, i, v)?;
    }
    Ok(out)
}

/// `cacheGetJoined(handle, joined, lengths, spans, count) → text | [text, extras]`: a `get` of
/// each of `count` string keys, given as one string (the keys joined) and each key's length in
/// UTF-16 units (the first `count` numbers of a Uint32Array), so that reading them takes a few Node-API calls instead of some per key. The
/// string values found come back joined in `text`; `spans` (an Int32Array of at least twice as
/// many numbers as keys, which the caller keeps and reuses) receives for key `i` its value's
/// `[start, end)` in `text` in UTF-16 units, or `[-1, 0]` when absent, or `[-2, j]` when its
/// value is `extras[j]` (bytes, or a string value whose bytes are not UTF-8). Each key counts a
/// hit or a miss and marks its entry used, as `get` does.
pub(crate) fn cache_get_joined(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let env = cx.env;
    // Room for the next value: a record's data, or in a cache with a byte budget (no record
    // size) a first guess; a longer value is copied in on a second read (below).
    let room = match c.record_size() {
        0 => JOINED_GUESS,
        r => r as usize,
    };
    // Values are read straight into `text` at `pos`; it grows (zeroed) only as far as needed.
    let mut text: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    let mut units = 0usize;
    let mut extras: Vec<Value> = Vec::new();
    let (spans, spans_len) = cx.out_i32_array(3, "spans")?;
    let count = cx.u32(4, "count")? as usize;
    cx.with_u32_array(2, "lengths", |lengths| {
        let Some(lengths) = lengths.get(..count) else {
            return Err(Throw::arg_value("count", "at most the length of lengths"));
        };
        if spans_len < lengths.len() * 2 {
            return Err(Throw::arg_value("spans", "an Int32Array of two numbers per key"));
        }
        let put = |i: usize, a: i32, b: i32| {
            // SAFETY: `spans` is valid for `spans_len >= 2 * lengths.len()` i32s (a live
            // Int32Array argument) and `i < lengths.len()`; no JS runs before the call returns.
            unsafe {
                *spans.add(2 * i) = a;
                *spans.add(2 * i + 1) = b;
            }
        };
        cx.with_bytes::<{ convert::KEY_STACK }, _>(1, "keys", |joined, _| {
            let ascii = joined.is_ascii();
            let mut at = 0usize;
            for (i, &len) in lengths.iter().enumerate() {
                let end = if ascii {
                    at + len as usize
                } else {
                    utf8_after_units(joined, at, len as usize)
                };
                if end > joined.len() {
                    return Err(Throw::arg_value("lengths", "the lengths of the joined keys"));
                }
                let key = &joined[at..end];
                at = end;
                if text.len() < pos + room {
                    text.resize((pos + room).max(text.len() * 2), 0);
                }
                let got = match c.get_into(key, &mut text[pos..pos + room]) {
                    Ok(got) => got,
                    // The get counted the hit and recorded the use; this read only copies.
                    Err(Error::BufferTooSmall { .. }) => c.peek_with(key, |v, kind| {
                        if text.len() < pos + v.len() {
                            text.resize((pos + v.len()).max(text.len() * 2), 0);
                        }
                        text[pos..pos + v.len()].copy_from_slice(v);
                        (v.len(), kind)
                    })?,
                    Err(e) => return Err(e.into()),
                };
                match got {
                    None => put(i, -1, 0),
                    Some((n, kind)) => {
                        let v = &text[pos..pos + n];
                        if kind == ValueKind::Str && (v.is_ascii() || std::str::from_utf8(v).is_ok()) {
                            let u = utf16_units(v);
                            put(i, units as i32, (units + u) as i32);
                            units += u;
                            pos += n;
                        } else {
                            let js = if kind == ValueKind::Str {
                                env.string(v)?
                            } else {
                                env.buffer(v)?
                            };
                            put(i, -2, extras.len() as i32);
                            extras.push(js);
                        }
                    }
                }
            }
            if at != joined.len() {
                return Err(Throw::arg_value("lengths", "the lengths of the joined keys"));
            }
            Ok(())
        })
    })?;
    let text = env.string(&text[..pos])?;
    if extras.is_empty() {
        return Ok(text);
    }
    env.array_of(&[text, env.array_of(&extras)?])
}

/// How much room `cacheGetJoined` first gives a value of a cache with a byte budget.
const JOINED_GUESS: usize = 4096;

/// UTF-16 code units of valid UTF-8 `b`: one per character, two for one beyond the BMP.
fn utf16_units(b: &[u8]) -> usize {
    if b.is_ascii() {
        return b.len();
    }
    b.iter()
        .map(|&c| usize::from(c & 0xc0 != 0x80) + usize::from(c >= 0xf0))
        .sum()
}

/// The byte offset in UTF-8 `b` that lies `units` UTF-16 code units after byte offset `at`;
/// past the end (`usize::MAX`) when `b` ends first or the count splits a surrogate pair.
fn utf8_after_units(b: &[u8], mut at: usize, units: usize) -> usize {
    let mut u = 0;
    while u < units {
        let Some(&c) = b.get(at) else {
            return usize::MAX;
        };
        let (width, n) = match c {
            0x00..=0x7f => (1, 1),
            0xc0..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            _ => (4, 2),
        };
        u += n;
        at += width;
    }
    if u == units {
        at
    } else {
        usize::MAX
    }
}

pub(crate) fn cache_set(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let (ttl_ms, keep_ttl) = set_options(cx, 3)?;
    let mode = match cx.integer(4, "mode", 0, 2)? {
        0 => SetMode::Upsert,
        1 => SetMode::Add,
        _ => SetMode::Replace,
    };
    let done = with_key(cx, 1, |key| {
        with_value(cx, 2, |value, kind| {
            let opts = SetOptions {
                ttl_ms,
                mode,
                kind,
                keep_ttl,
            };
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

/// A yes-or-no question `f` asks the cache in argument 0 about the key in argument 1.
#[inline(always)]
fn on_key(cx: &Cx, f: impl FnOnce(&Cache, &[u8]) -> shm_lru::Result<bool>) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let yes = with_key(cx, 1, |key| Ok(f(&c, key)?))?;
    cx.env.boolean(yes)
}

pub(crate) fn cache_has(cx: &Cx) -> JsResult<Value> {
    on_key(cx, |c, key| c.contains(key))
}

pub(crate) fn cache_get_into(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let (dst, cap) = cx.out_buffer(2, "buf")?;
    let n = with_key(cx, 1, |key| {
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
            // and `v` (the engine's private copy of the value) is a different allocation from
            // it; `copy` (memmove) would copy correctly even if they overlapped.
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
    on_key(cx, |c, key| c.remove(key))
}

pub(crate) fn cache_incr(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let delta = cx.i64(2, "delta")?;
    let ttl_ms = set_ttl(cx, 3)?;
    let n = with_key(cx, 1, |key| Ok(c.incr(key, delta, ttl_ms)?))?;
    // Exact: a BigInt beyond the safe integers, which a number would round.
    cx.env.i64_value(n)
}

/// `cacheDeletePrefix(handle, prefix) → number`: removes every entry whose key starts with the
/// prefix's bytes, in one pass in the engine; returns how many.
pub(crate) fn cache_delete_prefix(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let n = cx.with_bytes::<{ convert::KEY_STACK }, _>(1, "prefix", |p, _| Ok(c.remove_prefix(p)?))?;
    cx.env.number(n as f64)
}

pub(crate) fn cache_clear(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    cx.env.number(c.clear()? as f64)
}

pub(crate) fn cache_len(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    cx.env.number(c.len()? as f64)
}

pub(crate) fn cache_info(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let env = cx.env;
    let o = env.object()?;
    env.set(o, c"name", env.string(c.segment().id().to_string().as_bytes())?)?;
    set_num(env, o, c"capacity", c.capacity())?;
    set_num(env, o, c"recordSize", c.record_size() as u64)?;
    set_num(env, o, c"maxBytes", c.max_bytes())?;
    set_num(env, o, c"maxValueSize", c.max_value_size())?;
    set_num(env, o, c"shards", c.shards() as u64)?;
    env.set(o, c"evictOnFull", env.boolean(c.evict_on_full())?)?;
    set_num(env, o, c"defaultTtl", c.default_ttl_ms())?;
    set_num(env, o, c"regionSize", c.region_size())?;
    Ok(o)
}

pub(crate) fn cache_entries(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let order = convert::order(cx, 1, "lruFirst")?;
    let limit = cx.limit(2, "limit", true)?;
    pairs(cx.env, &c.entries(order, None, Some(limit))?)
}

/// `cacheScan(handle, lruFirst, shard, next, linked, max) → [pairs, cursor | null]`: one batch of
/// a walk in constant memory (`Cache::scan`); `shard` undefined starts it, `cursor` is
/// `[shard, next, linked]` to go on from.
pub(crate) fn cache_scan(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let order = convert::order(cx, 1, "lruFirst")?;
    let from = if cx.is_undefined(2)? {
        None
    } else {
        Some(shm_lru::ScanCursor {
            shard: cx.u32(2, "shard")?,
            next: cx.u32(3, "next")?,
            linked: cx.u64(4, "linked")?,
        })
    };
    let max = cx.limit(5, "max", false)?;
    let (batch, next) = c.scan(order, from, max)?;
    let env = cx.env;
    let cursor = match next {
        None => env.null()?,
        Some(n) => env.array_of(&[
            env.number(n.shard as f64)?,
            env.number(n.next as f64)?,
            env.number(n.linked as f64)?,
        ])?,
    };
    env.array_of(&[pairs(env, &batch)?, cursor])
}

pub(crate) fn cache_evict_older_than(cx: &Cx) -> JsResult<Value> {
    convert::evict(cx, "ms", "max", true, |c, age, max| c.evict_older_than(age, max))
}

pub(crate) fn cache_stats(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
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
        (c"size", s.len),
        (c"capacity", s.capacity),
        (c"maxBytes", s.max_bytes),
        (c"bytesLive", s.bytes_live),
        (c"bytesUsed", s.bytes_used),
        (c"bytesFree", s.bytes_free),
    ] {
        set_num(env, o, name, n)?;
    }
    Ok(o)
}

pub(crate) fn cache_check(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let r = c.check()?;
    report(cx.env, &r)
}

/// `{ ok, problems }` for a check report.
fn report(env: Env, r: &shm_lru::CheckReport) -> JsResult<Value> {
    let o = env.object()?;
    env.set(o, c"ok", env.boolean(r.is_ok())?)?;
    let problems = env.array(r.problems.len())?;
    for (i, p) in r.problems.iter().enumerate() {
        env.set_index(problems, i as u32, env.string(p.as_bytes())?)?;
    }
    env.set(o, c"problems", problems)?;
    Ok(o)
}

/// `cacheRepair(handle) → { before, rebuilt, kept, dropped, after }`, `before` and `after` as
/// `cacheCheck` gives them.
pub(crate) fn cache_repair(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let r = c.repair()?;
    let env = cx.env;
    let o = env.object()?;
    env.set(o, c"before", report(env, &r.before)?)?;
    env.set(o, c"rebuilt", env.number(r.rebuilt as f64)?)?;
    env.set(o, c"kept", env.number(r.kept as f64)?)?;
    env.set(o, c"dropped", env.number(r.dropped as f64)?)?;
    env.set(o, c"after", report(env, &r.after)?)?;
    Ok(o)
}

// ---- what lru-cache users reach for: times to live, pop, dump, purge ----

pub(crate) fn cache_touch(cx: &Cx) -> JsResult<Value> {
    let ttl = ttl_arg(cx, 2, "ttl")?;
    on_key(cx, |c, key| c.touch(key, ttl))
}

pub(crate) fn cache_expiry(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    match with_key(cx, 1, |key| Ok(c.expiry_of(key)?))? {
        None => cx.env.nothing(),
        Some(at) => cx.env.number(at.unwrap_or(0) as f64),
    }
}

pub(crate) fn cache_pop(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let taken = c.evict_used_before(u64::MAX, 1)?;
    match taken.first() {
        Some(e) => cx.env.array_of(&[
            convert::key(cx.env, &e.key)?,
            convert::stored(cx.env, &e.value, e.kind)?,
        ]),
        None => cx.env.nothing(),
    }
}

pub(crate) fn cache_dump(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    triples(cx.env, &c.entries(Order::LruFirst, None, None)?)
}

pub(crate) fn cache_purge_expired(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    cx.env.number(c.purge_expired()? as f64)
}

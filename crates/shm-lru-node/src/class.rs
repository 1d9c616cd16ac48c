//! The native functions behind the `SharedLRU` class (`lib/shared-lru.js`): each converts its
//! arguments, calls one engine method and converts the result. Caches are held by externals
//! wrapping an `Arc<Cache>`; see `lib/native.js` for the interface as JS sees it.

use crate::convert::{
    self, access_options, cache, cache_options, created, new_cache, pairs, segment_id, set_options, set_ttl,
    triples, ttl_arg, with_key, with_value, Access, ValueBuf,
};
use crate::napi::{Cx, Env, JsResult, Throw, Value};
use shm_lru::{Cache, CacheOptions, Error, Order, SetMode, SetOptions};
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
    let mut differ = |name: &str, has: String, asked: String| {
        if has != asked {
            diffs.push(format!("{name} is {has}, not {asked}"));
        }
    };
    differ("capacity", c.capacity().to_string(), opts.capacity.to_string());
    differ(
        "recordSize",
        c.record_size().to_string(),
        opts.record_size.to_string(),
    );
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
        (c"len", s.len),
        (c"capacity", s.capacity),
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

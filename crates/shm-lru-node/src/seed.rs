//! The native functions behind the original package's API (`lib/seed.js`): segments as live
//! ArrayBuffers, and the by-hash and by-slot calls of an LRU laid out in a segment by `initLRU`.
//! The return conventions of that API (-1, `false`, -2 and the last reason) are made in JS from
//! the errors and `undefined`s these return.

use crate::convert::{
    self, cache, created, hash, new_cache, new_segment, segment, segment_id, slot, with_value, ValueBuf,
};
use crate::napi::{Cx, JsResult, Throw, Value, MAX_SAFE};
use shm_lru::{Cache, CacheOptions, Error, InitMode, Segment, SegmentId, SetOptions};
use std::sync::{Arc, Mutex, PoisonError};

/// `segCreate(key|undefined, size, perm) → segment|null`: a new segment, or `null` if one with
/// that key exists. Without a key, a fresh random System V key is used.
pub(crate) fn seg_create(cx: &Cx) -> JsResult<Value> {
    let size = cx.integer(1, "size", 1, MAX_SAFE as i64)? as u64;
    let perm = cx.integer(2, "perm", 0, 0o777)? as u32;
    let r = if cx.is_undefined(0)? {
        Segment::create_unique(size, perm)
    } else {
        Segment::create(&segment_id(cx, 0, "key")?, size, perm)
    };
    match r {
        Ok(seg) => new_segment(cx.env, seg),
        Err(Error::SegmentExists(_)) => cx.env.null(),
        Err(e) => Err(e.into()),
    }
}

/// `segOpen(key) → segment|null`: maps an existing segment, `null` if there is none.
pub(crate) fn seg_open(cx: &Cx) -> JsResult<Value> {
    match Segment::open(&segment_id(cx, 0, "key")?) {
        Ok(seg) => new_segment(cx.env, seg),
        Err(Error::SegmentNotFound(_)) => cx.env.null(),
        Err(e) => Err(e.into()),
    }
}

/// `segView(segment) → ArrayBuffer` over the whole mapping; the buffer keeps the mapping alive
/// until it is collected, or until `segRelease` detaches it.
pub(crate) fn seg_view(cx: &Cx) -> JsResult<Value> {
    let m = Arc::clone(&*segment(cx, 0)?.get()?);
    let ptr = m.seg.as_ptr();
    let len = usize::try_from(m.seg.len()).map_err(|_| Throw::error("ERR_SHM_IO", "segment too large"))?;
    let owner: convert::ViewOwner = Arc::new(Mutex::new(Some(Arc::clone(&m.seg))));
    // SAFETY: the mapping is `len` bytes at `ptr` and stays mapped while the segment in `owner`
    // lives: until the buffer is collected, or until `seg_release` empties the owner, which it
    // does only after detaching the buffer (so no JS can reach the bytes through it again).
    let ab = unsafe { cx.env.external_arraybuffer(ptr, len, Arc::clone(&owner)) }?;
    // The previous view, if any, is no longer reachable from JS (the module makes a new one
    // only when the last was collected): its owner goes with its finaliser.
    *m.view.lock().unwrap_or_else(PoisonError::into_inner) = Some(owner);
    Ok(ab)
}

/// `segKey(segment) → number|string`: the key (System V) or name (POSIX).
pub(crate) fn seg_key(cx: &Cx) -> JsResult<Value> {
    let m = segment(cx, 0)?.get()?;
    match m.seg.id() {
        SegmentId::SysV(k) => cx.env.number(*k as f64),
        SegmentId::Posix(n) => cx.env.string(n.as_bytes()),
    }
}

/// `segSize(segment) → number`.
pub(crate) fn seg_size(cx: &Cx) -> JsResult<Value> {
    let m = segment(cx, 0)?.get()?;
    cx.env.number(m.seg.len() as f64)
}

/// `segStatSize(key) → number|null`: the size the system reports, `null` if there is no such
/// segment.
pub(crate) fn seg_stat_size(cx: &Cx) -> JsResult<Value> {
    match Segment::info(&segment_id(cx, 0, "key")?) {
        Ok(i) => cx.env.number(i.size as f64),
        Err(Error::SegmentNotFound(_)) => cx.env.null(),
        Err(e) => Err(e.into()),
    }
}

/// `segOthers(segment) → number|null`: attachments other than this mapping (System V), or
/// `null` where the system does not count them (POSIX).
pub(crate) fn seg_others(cx: &Cx) -> JsResult<Value> {
    let m = segment(cx, 0)?.get()?;
    match m.seg.attached()? {
        Some(n) => cx.env.number(n.saturating_sub(1) as f64),
        None => cx.env.null(),
    }
}

/// `segDestroy(segment) → boolean`: removes the segment (even while attached); mappings stay
/// valid until dropped.
pub(crate) fn seg_destroy(cx: &Cx) -> JsResult<Value> {
    let m = segment(cx, 0)?.get()?;
    let existed = m.seg.destroy_self(true)?;
    if existed {
        created::forget(m.seg.id());
    }
    cx.env.boolean(existed)
}

/// `segDestroyKey(key) → boolean`: removes a segment by key; `false` if there is none.
pub(crate) fn seg_destroy_key(cx: &Cx) -> JsResult<Value> {
    let id = segment_id(cx, 0, "key")?;
    cx.env.boolean(created::destroy(&id)?)
}

/// `segRelease(segment, view|undefined) → undefined`: this handle lets go of the mapping. `view`,
/// the live ArrayBuffer `segView` made last, is detached first (every Buffer and typed array
/// over it then has length 0) and lets go too, so that the mapping goes now, not when the
/// buffer is collected. Caches made from the segment keep it until they are closed.
pub(crate) fn seg_release(cx: &Cx) -> JsResult<Value> {
    let h = segment(cx, 0)?;
    if !cx.is_undefined(1)? {
        // (The borrow of the handle ends with this block, before `close` below.)
        let m = h.get()?;
        let ours = cx.env.arraybuffer_info(cx.arg(1))?;
        if ours != Some((m.seg.as_ptr(), m.seg.len() as usize)) {
            return Err(Throw::arg_type(
                "view",
                "the ArrayBuffer segView made over this segment",
            ));
        }
        // A buffer detached by someone else (transferred to another thread) may still be in use
        // there: its share of the mapping stays until it is collected.
        if cx.env.detach_arraybuffer(cx.arg(1))? {
            let owner = m.view.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(owner) = owner {
                drop(owner.lock().unwrap_or_else(PoisonError::into_inner).take());
            }
        }
    }
    drop(h.close()?);
    cx.env.undefined()
}

/// `totals() → { mapped, created }`: bytes this process maps, and has created.
pub(crate) fn totals(cx: &Cx) -> JsResult<Value> {
    let t = shm_lru::totals();
    let o = cx.env.object()?;
    cx.env.set(o, c"mapped", cx.env.number(t.mapped as f64)?)?;
    cx.env
        .set(o, c"created", cx.env.number(created::total() as f64)?)?;
    Ok(o)
}

/// `lruInit(segment, recordSize, regionSize, initializer) → handle`: a cache that does not evict
/// in the first `regionSize` bytes; the initialiser lays it out unless one is there, the others
/// attach.
pub(crate) fn lru_init(cx: &Cx) -> JsResult<Value> {
    let seg = Arc::clone(&segment(cx, 0)?.get()?.seg);
    let record_size = cx.integer(1, "record_size", 1, u32::MAX as i64)? as u32;
    let region = cx.integer(2, "region_size", 1, MAX_SAFE as i64)? as u64;
    let mode = if cx.boolean(3, "i_am_initializer")? {
        InitMode::AttachOrInit
    } else {
        InitMode::Attach
    };
    let opts = CacheOptions {
        record_size,
        evict_on_full: false,
        ..CacheOptions::default()
    };
    let cache = Cache::init_in(seg, region, &opts, mode)?;
    if cache.record_size() != record_size {
        return Err(Error::InvalidArgument(format!(
            "the region holds a cache with record size {}, not {record_size}",
            cache.record_size()
        ))
        .into());
    }
    new_cache(cx.env, cache)
}

/// `lruSet(handle, hash, value) → index`.
pub(crate) fn lru_set(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let hash = hash(cx, 1)?;
    let slot = with_value(cx, 2, |value, kind| {
        let opts = SetOptions {
            kind,
            ..SetOptions::default()
        };
        Ok(c.set(hash, value, &opts)?.slot)
    })?;
    cx.env.number(slot as f64)
}

/// `lruGetSlot(handle, index) → value` (throws `ERR_SHM_SLOT_FREE`, `ERR_SHM_NO_SUCH_SLOT`).
pub(crate) fn lru_get_slot(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let slot = slot(cx, 1)?;
    let mut out = ValueBuf::new();
    c.get_slot_with(slot, |v, kind| out.fill(v, kind))?;
    out.to_js(cx.env)
}

/// `lruGetHash(handle, hash) → value|undefined`; marks the entry used.
pub(crate) fn lru_get_hash(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let hash = hash(cx, 1)?;
    let mut out = ValueBuf::new();
    if out.get(&c, hash.into())? {
        out.to_js(cx.env)
    } else {
        cx.env.nothing()
    }
}

/// `lruDelSlot(handle, index) → undefined` (throws as `lruGetSlot`).
pub(crate) fn lru_del_slot(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    c.remove_slot(slot(cx, 1)?)?;
    cx.env.undefined()
}

/// `lruDelHash(handle, hash) → boolean`.
pub(crate) fn lru_del_hash(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let hash = hash(cx, 1)?;
    cx.env.boolean(c.remove(hash)?)
}

/// `lruSetShare(handle, index, shareKey) → undefined`.
pub(crate) fn lru_set_share(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let slot = slot(cx, 1)?;
    let share = cx.u32(2, "share_key")?;
    c.set_share_key(slot, share)?;
    cx.env.undefined()
}

/// `lruEvictOlderThan(handle, ageMs, max) → Array<[key, value]>`: evicts, least recently used
/// first, up to `max` entries not used in the last `ageMs` milliseconds (the original's
/// `run_lru_eviction`: last use before now − `ageMs`).
pub(crate) fn lru_evict_older_than(cx: &Cx) -> JsResult<Value> {
    convert::evict(cx, "cutoff_time", "max_evictions", false, |c, age, max| {
        c.evict_older_than(age, max)
    })
}

/// `lruDump(handle, backwards) → Array<[index, key, value, usedMs, shareKey]>`, most recently
/// used first (least recently used first when `backwards`).
pub(crate) fn lru_dump(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    let order = convert::order(cx, 1, "backwards")?;
    let env = cx.env;
    let entries = c.entries(order, None, None)?;
    let arr = env.array(entries.len())?;
    for (i, e) in entries.iter().enumerate() {
        let row = env.array_of(&[
            env.number(e.slot as f64)?,
            convert::key(env, &e.key)?,
            convert::stored(env, &e.value, e.kind)?,
            env.number(e.used_ms as f64)?,
            env.number(e.share_key as f64)?,
        ])?;
        env.set_index(arr, i as u32, row)?;
    }
    Ok(arr)
}

/// `lruLock(handle) → boolean`: takes the application mutex, blocking; `true` if its previous
/// holder died holding it.
pub(crate) fn lru_lock(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    cx.env.boolean(c.app_lock()?)
}

/// `lruTryLock(handle) → boolean|null`: like `lruLock`, or `null` if someone else holds it.
pub(crate) fn lru_try_lock(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    match c.app_try_lock()? {
        Some(died) => cx.env.boolean(died),
        None => cx.env.null(),
    }
}

/// `lruUnlock(handle) → undefined`; throws if this thread does not hold the mutex.
pub(crate) fn lru_unlock(cx: &Cx) -> JsResult<Value> {
    let c = cache(cx, 0)?.get()?;
    c.app_unlock()?;
    cx.env.undefined()
}

/// `lruSetLockTimeout(handle, ms)`: how long the LRU's calls wait for a shard lock before they
/// throw `ERR_SHM_LOCK_TIMEOUT` (`Infinity`: as long as it takes).
pub(crate) fn lru_set_lock_timeout(cx: &Cx) -> JsResult<Value> {
    let timeout = convert::lock_timeout(cx, cx.arg(1), "ms")?;
    cache(cx, 0)?.with_mut(|c| c.set_lock_timeout(timeout))?;
    cx.env.undefined()
}

//! The Node-API addon of shm-typed-lru: the native half of the package's `SharedLRU` class and
//! of the original package's API.
//!
//! It is deliberately thin. Each exported function converts its arguments, calls one method of
//! the `shm-lru` engine and converts the result; engine errors become JS `Error`s whose `code` is
//! [`shm_lru::Error::code`], bad arguments become `TypeError`s (`ERR_INVALID_ARG_TYPE`) or
//! `RangeError`s (`ERR_OUT_OF_RANGE`), and panics are caught at the boundary. Calls go through raw
//! Node-API (`napi-sys`) because the hot ones (`cacheGet`, `cacheSet`, `cacheHas`,
//! `cacheGetInto`) cost a few tens of nanoseconds that way. The interface as JS sees it is listed
//! in `lib/native.js`.
//!
//! The addon holds no process-wide state of its own: every cache and segment is owned by the JS
//! external that wraps it, so each worker thread that loads the module works independently.

mod class;
#[macro_use]
mod napi;
mod seed;

use napi::{Callback, Value};
use napi_sys as sys;
use std::ffi::CStr;

// name => body, number of arguments read.
callbacks! {
    cache_create => class::cache_create, 7;
    cache_open => class::cache_open, 1;
    cache_open_or_create => class::cache_open_or_create, 7;
    cache_destroy_name => class::cache_destroy_name, 1;
    cache_close => class::cache_close, 1;
    cache_get => class::cache_get, 2;
    cache_peek => class::cache_peek, 2;
    cache_set => class::cache_set, 5;
    cache_has => class::cache_has, 2;
    cache_get_into => class::cache_get_into, 3;
    cache_delete => class::cache_delete, 2;
    cache_incr => class::cache_incr, 4;
    cache_clear => class::cache_clear, 1;
    cache_len => class::cache_len, 1;
    cache_info => class::cache_info, 1;
    cache_entries => class::cache_entries, 3;
    cache_evict_older_than => class::cache_evict_older_than, 3;
    cache_stats => class::cache_stats, 1;
    cache_check => class::cache_check, 1;
    bench_noop => class::bench_noop, 2;
    bench_string => class::bench_string, 0;
    seg_create => seed::seg_create, 3;
    seg_open => seed::seg_open, 1;
    seg_view => seed::seg_view, 1;
    seg_key => seed::seg_key, 1;
    seg_size => seed::seg_size, 1;
    seg_stat_size => seed::seg_stat_size, 1;
    seg_others => seed::seg_others, 1;
    seg_destroy => seed::seg_destroy, 1;
    seg_destroy_key => seed::seg_destroy_key, 1;
    seg_release => seed::seg_release, 1;
    totals => seed::totals, 0;
    lru_init => seed::lru_init, 4;
    lru_set => seed::lru_set, 3;
    lru_get_slot => seed::lru_get_slot, 2;
    lru_get_hash => seed::lru_get_hash, 2;
    lru_del_slot => seed::lru_del_slot, 2;
    lru_del_hash => seed::lru_del_hash, 2;
    lru_set_share => seed::lru_set_share, 3;
    lru_evict_before => seed::lru_evict_before, 3;
    lru_dump => seed::lru_dump, 2;
    lru_lock => seed::lru_lock, 1;
    lru_try_lock => seed::lru_try_lock, 1;
    lru_unlock => seed::lru_unlock, 1;
}

/// Every exported function, by its JS name.
const FUNCTIONS: &[(&CStr, Callback)] = &[
    (c"cacheCreate", cache_create),
    (c"cacheOpen", cache_open),
    (c"cacheOpenOrCreate", cache_open_or_create),
    (c"cacheDestroyName", cache_destroy_name),
    (c"cacheClose", cache_close),
    (c"cacheGet", cache_get),
    (c"cachePeek", cache_peek),
    (c"cacheSet", cache_set),
    (c"cacheHas", cache_has),
    (c"cacheGetInto", cache_get_into),
    (c"cacheDelete", cache_delete),
    (c"cacheIncr", cache_incr),
    (c"cacheClear", cache_clear),
    (c"cacheLen", cache_len),
    (c"cacheInfo", cache_info),
    (c"cacheEntries", cache_entries),
    (c"cacheEvictOlderThan", cache_evict_older_than),
    (c"cacheStats", cache_stats),
    (c"cacheCheck", cache_check),
    (c"benchNoop", bench_noop),
    (c"benchString", bench_string),
    (c"segCreate", seg_create),
    (c"segOpen", seg_open),
    (c"segView", seg_view),
    (c"segKey", seg_key),
    (c"segSize", seg_size),
    (c"segStatSize", seg_stat_size),
    (c"segOthers", seg_others),
    (c"segDestroy", seg_destroy),
    (c"segDestroyKey", seg_destroy_key),
    (c"segRelease", seg_release),
    (c"totals", totals),
    (c"lruInit", lru_init),
    (c"lruSet", lru_set),
    (c"lruGetSlot", lru_get_slot),
    (c"lruGetHash", lru_get_hash),
    (c"lruDelSlot", lru_del_slot),
    (c"lruDelHash", lru_del_hash),
    (c"lruSetShare", lru_set_share),
    (c"lruEvictBefore", lru_evict_before),
    (c"lruDump", lru_dump),
    (c"lruLock", lru_lock),
    (c"lruTryLock", lru_try_lock),
    (c"lruUnlock", lru_unlock),
];

/// Called by node for every environment (main thread or worker) that loads the addon.
///
/// # Safety
/// Only node calls this, with the environment being set up and its `exports` object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: sys::napi_env, exports: Value) -> Value {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: node passes the registering environment and its exports object.
        unsafe { napi::export(env, exports, FUNCTIONS) }
    });
    match r {
        Ok(Ok(())) => exports,
        _ => {
            // SAFETY: `env` is the registering environment; the strings are static C strings.
            unsafe {
                sys::napi_throw_error(
                    env,
                    c"ERR_NAPI".as_ptr(),
                    c"shm-typed-lru: could not register the native functions".as_ptr(),
                )
            };
            std::ptr::null_mut()
        }
    }
}

//! The Node-API addon of shm-typed-lru: the native half of the package's `SharedLRU` class and
//! of the original package's API.
//!
//! Why raw Node-API. The addon calls Node-API directly (`napi-sys`, under the small layer in
//! [`napi`]) rather than through napi-rs's `#[napi]` functions, on measured figures: the hot
//! calls (`cacheGet`, `cacheSet`, `cacheHas`, `cacheGetInto`) do a few tens of nanoseconds of
//! work, and a napi-rs 3 call cost 4-5x a raw one, so the binding, not the cache, would have
//! been most of each call. Before moving to napi-rs, time the bench's floor rows (`benchNoop`,
//! a bare call; `npm run bench`) both ways.
//!
//! It is deliberately thin. Each exported function converts its arguments ([`convert`]), calls
//! one method of the `shm-lru` engine and converts the result; engine errors become JS `Error`s
//! whose `code` is [`shm_lru::Error::code`], bad arguments become `TypeError`s
//! (`ERR_INVALID_ARG_TYPE`) or `RangeError`s (`ERR_OUT_OF_RANGE`), and panics are caught at the
//! boundary. [`napi`] knows nothing of the engine; [`convert`] is where the two meet. The
//! interface as JS sees it is listed in `lib/native.js`.
//!
//! The addon holds no process-wide state of its own: every cache and segment is owned by the JS
//! external that wraps it, so each worker thread that loads the module works independently.

#[cfg(feature = "bench-hooks")]
mod bench;
mod class;
mod convert;
mod napi;
mod seed;

use napi::{exports, Callback, Value};
use napi_sys as sys;
use std::ffi::CStr;

/// Every exported function: its JS name, its body, and how many arguments it reads.
const FUNCTIONS: &[(&CStr, Callback)] = exports! {
    c"cacheCreate" => class::cache_create, 2;
    c"cacheOpen" => class::cache_open, 2;
    c"cacheOpenOrCreate" => class::cache_open_or_create, 2;
    c"cacheDestroyName" => class::cache_destroy_name, 1;
    c"cacheClose" => class::cache_close, 1;
    c"cacheGet" => class::cache_get, 2;
    c"cachePeek" => class::cache_peek, 2;
    c"cacheGetMany" => class::cache_get_many, 2;
    c"cacheGetJoined" => class::cache_get_joined, 5;
    c"cacheSet" => class::cache_set, 5;
    c"cacheHas" => class::cache_has, 2;
    c"cacheGetInto" => class::cache_get_into, 3;
    c"cacheDelete" => class::cache_delete, 2;
    c"cacheIncr" => class::cache_incr, 4;
    c"cacheDeletePrefix" => class::cache_delete_prefix, 2;
    c"cacheClear" => class::cache_clear, 1;
    c"cacheLen" => class::cache_len, 1;
    c"cacheInfo" => class::cache_info, 1;
    c"cacheEntries" => class::cache_entries, 3;
    c"cacheEvictOlderThan" => class::cache_evict_older_than, 3;
    c"cacheStats" => class::cache_stats, 1;
    c"cacheCheck" => class::cache_check, 1;
    c"cacheRepair" => class::cache_repair, 1;
    c"cacheScan" => class::cache_scan, 6;
    c"cacheTouch" => class::cache_touch, 3;
    c"cacheExpiry" => class::cache_expiry, 2;
    c"cachePop" => class::cache_pop, 1;
    c"cacheDump" => class::cache_dump, 1;
    c"cachePurgeExpired" => class::cache_purge_expired, 1;
    c"segCreate" => seed::seg_create, 3;
    c"segOpen" => seed::seg_open, 1;
    c"segView" => seed::seg_view, 1;
    c"segKey" => seed::seg_key, 1;
    c"segSize" => seed::seg_size, 1;
    c"segStatSize" => seed::seg_stat_size, 1;
    c"segOthers" => seed::seg_others, 1;
    c"segDestroy" => seed::seg_destroy, 1;
    c"segDestroyKey" => seed::seg_destroy_key, 1;
    c"segRelease" => seed::seg_release, 2;
    c"totals" => seed::totals, 0;
    c"lruInit" => seed::lru_init, 4;
    c"lruSet" => seed::lru_set, 3;
    c"lruGetSlot" => seed::lru_get_slot, 2;
    c"lruGetHash" => seed::lru_get_hash, 2;
    c"lruDelSlot" => seed::lru_del_slot, 2;
    c"lruDelHash" => seed::lru_del_hash, 2;
    c"lruSetShare" => seed::lru_set_share, 3;
    c"lruEvictOlderThan" => seed::lru_evict_older_than, 3;
    c"lruDump" => seed::lru_dump, 2;
    c"lruLock" => seed::lru_lock, 1;
    c"lruTryLock" => seed::lru_try_lock, 1;
    c"lruUnlock" => seed::lru_unlock, 1;
    c"lruSetLockTimeout" => seed::lru_set_lock_timeout, 2;
    #[cfg(feature = "bench-hooks")]
    c"benchNoop" => bench::noop, 2;
    #[cfg(feature = "bench-hooks")]
    c"benchString" => bench::string, 0;
};

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

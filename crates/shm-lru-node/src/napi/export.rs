//! The export side: the trampoline every exported function runs through (its arguments read,
//! panics caught, errors thrown), the [`exports!`] macro that makes the export table from one
//! list of JS names and bodies, and [`export`], which puts that table on the module's `exports`.

use super::args::{Cx, MAX_ARGS};
use super::env::{Env, Value};
use super::error::{JsResult, Throw};
use napi_sys as sys;
use std::any::Any;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// A native function as the module exports it.
pub type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value;

/// Runs `f` as the body of a Node-API callback: reads its first `argc` arguments, catches
/// panics, and throws any error as a JS exception.
///
/// # Safety
/// `env` and `info` must be the ones node passed to the running callback.
#[inline]
pub unsafe fn trampoline(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    argc: usize,
    f: impl FnOnce(&Cx) -> JsResult<Value>,
) -> Value {
    // SAFETY: node passed `env` to the running callback, which outlives this call.
    let env = unsafe { Env::from_raw(env) };
    let r = catch_unwind(AssertUnwindSafe(|| {
        // Asking for exactly the arguments a function reads keeps this call cheap; slots past
        // `argc` stay null, which Node-API refuses as an argument rather than misreading.
        let mut argv = [ptr::null_mut(); MAX_ARGS];
        let mut n = argc.min(MAX_ARGS);
        // SAFETY: `info` is the running callback's; `argv` has room for `n` handles (node fills
        // the ones not passed with `undefined`).
        env.check(unsafe {
            sys::napi_get_cb_info(
                env.0,
                info,
                &mut n,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        })?;
        f(&Cx::new(env, argv))
    }));
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(t)) => {
            env.throw(t);
            ptr::null_mut()
        }
        Err(panic) => {
            env.throw(Throw::error(
                "ERR_SHM_PANIC",
                format!("internal error in shm-typed-lru: {}", panic_message(&panic)),
            ));
            ptr::null_mut()
        }
    }
}

fn panic_message(p: &Box<dyn Any + Send>) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

/// The export table: `(JS name, callback)` pairs, one for each `name => body, argc;` line.
///
/// Each line becomes an `extern "C"` callback that runs `body` (a `fn(&Cx) -> JsResult<Value>`)
/// through [`trampoline`], reading its first `argc` arguments; attributes on a line (such as
/// `#[cfg(...)]`) apply to its entry. Naming each export once keeps the JS name, the body and
/// the argument count side by side.
macro_rules! exports {
    ($($(#[$attr:meta])* $name:literal => $body:path, $argc:literal;)*) => {
        &[$(
            $(#[$attr])*
            {
                unsafe extern "C" fn callback(
                    env: napi_sys::napi_env,
                    info: napi_sys::napi_callback_info,
                ) -> $crate::napi::Value {
                    // SAFETY: node calls this with the callback's own `env` and `info`.
                    unsafe { $crate::napi::trampoline(env, info, $argc, $body) }
                }
                ($name, callback as $crate::napi::Callback)
            },
        )*]
    };
}
pub(crate) use exports;

/// Adds `functions` to `exports`.
///
/// # Safety
/// `env` and `exports` must be the ones node passed to module registration.
pub unsafe fn export(env: sys::napi_env, exports: Value, functions: &[(&CStr, Callback)]) -> JsResult<()> {
    // SAFETY: registration runs on the thread and in the environment node gave us.
    let env = unsafe { Env::from_raw(env) };
    for (name, cb) in functions {
        let mut f = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated (length -1 says so); `cb` is a valid callback.
        env.check(unsafe {
            sys::napi_create_function(env.0, name.as_ptr(), -1, Some(*cb), ptr::null_mut(), &mut f)
        })?;
        env.set(exports, name, f)?;
    }
    Ok(())
}

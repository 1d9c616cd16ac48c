//! The Node-API environment of one callback, and the JS values it makes: primitives, strings,
//! Buffers, objects and arrays, and the exception a failed callback throws. Only the calls that
//! fail in ways the caller handles keep their raw status; every other status becomes a
//! [`Throw`] in [`Env::check`].

use super::error::{ErrorKind, JsResult, NewError, Throw};
use super::MAX_SAFE;
use napi_sys as sys;
use std::ffi::{c_void, CStr};
use std::ptr;

/// A JS value handle, valid during the callback that produced it.
pub type Value = sys::napi_value;

/// The Node-API environment of the current callback.
#[derive(Clone, Copy)]
pub struct Env(pub(super) sys::napi_env);

impl Env {
    /// Wraps a raw environment.
    ///
    /// # Safety
    /// `env` must be the environment of the callback (or module initialisation) now running on
    /// this thread, and the `Env` must not outlive it.
    pub unsafe fn from_raw(env: sys::napi_env) -> Env {
        Env(env)
    }

    /// Turns a Node-API status into a result.
    #[inline(always)]
    pub(super) fn check(self, status: sys::napi_status) -> JsResult<()> {
        if status == sys::Status::napi_ok {
            return Ok(());
        }
        Err(self.failed(status))
    }

    /// What a failed Node-API call left: a pending exception, or an error to throw. Out of
    /// line, so that the callers' fast paths stay small.
    #[cold]
    #[inline(never)]
    pub(super) fn failed(self, status: sys::napi_status) -> Throw {
        let mut pending = false;
        // SAFETY: `self.0` is the live environment (see `from_raw`); `pending` is writable.
        unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
        if pending || status == sys::Status::napi_pending_exception {
            return Throw::Pending;
        }
        Throw::error("ERR_NAPI", format!("a Node-API call failed with status {status}"))
    }

    /// Calls a Node-API function that writes one value through an out pointer.
    #[inline(always)]
    pub(super) fn out<T>(
        self,
        init: T,
        f: impl FnOnce(sys::napi_env, *mut T) -> sys::napi_status,
    ) -> JsResult<T> {
        let mut v = init;
        self.check(f(self.0, &mut v))?;
        Ok(v)
    }

    /// `undefined`.
    #[inline]
    pub fn undefined(self) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_get_undefined(e, r) })
    }

    /// `undefined` as a callback's return value (node turns a null result into `undefined`
    /// without a call). Only for returning; never store it in an object.
    #[inline(always)]
    pub fn nothing(self) -> JsResult<Value> {
        Ok(ptr::null_mut())
    }

    /// `null`.
    pub fn null(self) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_get_null(e, r) })
    }

    /// `true` or `false`.
    #[inline(always)]
    pub fn boolean(self, b: bool) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_get_boolean(e, b, r) })
    }

    /// A number.
    #[inline(always)]
    pub fn number(self, n: f64) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_double(e, n, r)
        })
    }

    /// A number if `n` is a safe integer, else a BigInt.
    pub fn u64_value(self, n: u64) -> JsResult<Value> {
        if n <= MAX_SAFE {
            return self.number(n as f64);
        }
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_bigint_uint64(e, n, r)
        })
    }

    /// A number if `n` is a safe integer, else a BigInt.
    pub fn i64_value(self, n: i64) -> JsResult<Value> {
        if n.unsigned_abs() <= MAX_SAFE {
            return self.number(n as f64);
        }
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_bigint_int64(e, n, r)
        })
    }

    /// Detaches `ab`, an ArrayBuffer (views over it then have length 0); `false` if it was
    /// detached already.
    pub fn detach_arraybuffer(self, ab: Value) -> JsResult<bool> {
        let mut detached = false;
        // SAFETY: `ab` is a handle of this callback; the out pointer is valid.
        self.check(unsafe { sys::napi_is_detached_arraybuffer(self.0, ab, &mut detached) })?;
        if detached {
            return Ok(false);
        }
        // SAFETY: as above; node refuses (with a status) a value that is not a detachable
        // ArrayBuffer.
        self.check(unsafe { sys::napi_detach_arraybuffer(self.0, ab) })?;
        Ok(true)
    }

    /// The data pointer and length of ArrayBuffer `ab`; `None` for any other value.
    pub fn arraybuffer_info(self, ab: Value) -> JsResult<Option<(*mut u8, usize)>> {
        let mut is = false;
        // SAFETY: `ab` is a handle of this callback; the out pointer is valid.
        self.check(unsafe { sys::napi_is_arraybuffer(self.0, ab, &mut is) })?;
        if !is {
            return Ok(None);
        }
        let mut data: *mut c_void = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `ab` is an ArrayBuffer handle of this callback; the out pointers are valid.
        self.check(unsafe { sys::napi_get_arraybuffer_info(self.0, ab, &mut data, &mut len) })?;
        Ok(Some((data.cast(), len)))
    }

    /// A string from UTF-8 bytes (invalid sequences become U+FFFD).
    ///
    /// ASCII bytes mean the same in Latin-1 and in UTF-8, and V8 makes the same one-byte string
    /// from them either way; the Latin-1 constructor only copies them, where the UTF-8 one
    /// decodes them first, so ASCII (the common case) takes that path.
    #[inline(always)]
    pub fn string(self, s: &[u8]) -> JsResult<Value> {
        if s.is_ascii() {
            // SAFETY: `s` is valid for `s.len()` bytes, and an explicit length is passed, so no
            // NUL terminator is needed.
            return self.out(ptr::null_mut(), |e, r| unsafe {
                sys::napi_create_string_latin1(e, s.as_ptr().cast(), s.len() as isize, r)
            });
        }
        // SAFETY: as above.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_string_utf8(e, s.as_ptr().cast(), s.len() as isize, r)
        })
    }

    /// A new Buffer holding a copy of `b`.
    #[inline]
    pub fn buffer(self, b: &[u8]) -> JsResult<Value> {
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `b` is valid for `b.len()` bytes; node copies them into the new buffer.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_buffer_copy(e, b.len(), b.as_ptr().cast(), &mut data, r)
        })
    }

    /// A new empty object.
    pub fn object(self) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_create_object(e, r) })
    }

    /// A new array of `len` holes.
    pub fn array(self, len: usize) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_create_array_with_length(e, len, r)
        })
    }

    /// An array of the given values.
    pub fn array_of(self, items: &[Value]) -> JsResult<Value> {
        let a = self.array(items.len())?;
        for (i, v) in items.iter().enumerate() {
            self.set_index(a, i as u32, *v)?;
        }
        Ok(a)
    }

    /// `obj[name] = v`.
    pub fn set(self, obj: Value, name: &CStr, v: Value) -> JsResult<()> {
        // SAFETY: `obj` and `v` are handles of this callback; `name` is NUL-terminated.
        self.check(unsafe { sys::napi_set_named_property(self.0, obj, name.as_ptr(), v) })
    }

    /// `arr[i] = v`.
    pub fn set_index(self, arr: Value, i: u32, v: Value) -> JsResult<()> {
        // SAFETY: `arr` and `v` are handles of this callback.
        self.check(unsafe { sys::napi_set_element(self.0, arr, i, v) })
    }

    /// The `typeof` of a value, as a `ValueType` constant.
    #[inline]
    pub fn type_of(self, v: Value) -> JsResult<sys::napi_valuetype> {
        // SAFETY: `v` is a handle of this callback; the out pointer is valid.
        self.out(0, |e, r| unsafe { sys::napi_typeof(e, v, r) })
    }

    /// `obj[name]` (`undefined` when absent).
    /// The length of `v` if it is an array, else `None`.
    pub fn array_len(self, v: Value) -> JsResult<Option<u32>> {
        let mut is = false;
        // SAFETY: live environment, `v` a handle of the running callback, valid out pointer.
        self.check(unsafe { sys::napi_is_array(self.0, v, &mut is) })?;
        if !is {
            return Ok(None);
        }
        let mut n = 0u32;
        // SAFETY: as above; `v` is an array.
        self.check(unsafe { sys::napi_get_array_length(self.0, v, &mut n) })?;
        Ok(Some(n))
    }

    /// Element `i` of `arr` (which may run a getter, and so may throw).
    pub fn get_index(self, arr: Value, i: u32) -> JsResult<Value> {
        let mut v = std::ptr::null_mut();
        // SAFETY: live environment, `arr` a handle of the running callback, valid out pointer.
        self.check(unsafe { sys::napi_get_element(self.0, arr, i, &mut v) })?;
        Ok(v)
    }

    pub fn get(self, obj: Value, name: &CStr) -> JsResult<Value> {
        // SAFETY: `obj` is a handle of this callback; `name` is NUL-terminated; the out pointer
        // is valid.
        self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_get_named_property(e, obj, name.as_ptr(), r)
        })
    }

    /// Throws `t` (unless an exception is already pending).
    pub(super) fn throw(self, t: Throw) {
        let Throw::New(e) = t else {
            return;
        };
        let NewError { kind, code, message } = *e;
        let made = (|| -> JsResult<Value> {
            let code = self.string(code.as_bytes())?;
            let msg = self.string(message.as_bytes())?;
            // SAFETY: `code` and `msg` are string handles of this callback; the out pointer is
            // valid.
            self.out(ptr::null_mut(), |e, r| unsafe {
                match kind {
                    ErrorKind::Error => sys::napi_create_error(e, code, msg, r),
                    ErrorKind::Type => sys::napi_create_type_error(e, code, msg, r),
                    ErrorKind::Range => sys::napi_create_range_error(e, code, msg, r),
                }
            })
        })();
        match made {
            // SAFETY: `err` is an error object of this callback.
            Ok(err) => unsafe {
                sys::napi_throw(self.0, err);
            },
            Err(_) => {
                // SAFETY: both strings are static and NUL-terminated.
                unsafe {
                    sys::napi_throw_error(
                        self.0,
                        c"ERR_NAPI".as_ptr(),
                        c"could not create an error".as_ptr(),
                    )
                };
            }
        }
    }
}

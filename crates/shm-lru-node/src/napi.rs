//! The thin layer over raw Node-API: one callback trampoline (arguments in, panics caught, errors
//! thrown), conversions between JS values and Rust ones, and externals that own engine objects.
//!
//! Everything here runs on the JS thread that called into the addon. A [`Cx`] exists only for the
//! duration of one callback, and the `napi_value` handles it hands out are valid only inside it;
//! that is what makes the safe methods below sound.

use napi_sys as sys;
use shm_lru::{Key, ValueKind};
use std::any::Any;
use std::cell::{Ref, RefCell};
use std::ffi::{c_void, CStr};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

/// A JS value handle, valid during the callback that produced it.
pub type Value = sys::napi_value;

/// The most arguments any exported function reads.
pub const MAX_ARGS: usize = 8;

/// `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// Which JS constructor an error is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Error`.
    Error,
    /// `TypeError`.
    Type,
    /// `RangeError`.
    Range,
}

/// Why a callback did not return a value.
#[derive(Debug)]
pub enum Throw {
    /// A JS exception is already pending; leave it.
    Pending,
    /// Throw a new error with a stable `code`.
    New {
        /// The constructor.
        kind: ErrorKind,
        /// The `code` property, e.g. `ERR_SHM_FULL`.
        code: &'static str,
        /// The message.
        message: String,
    },
}

/// The result of anything that may throw.
pub type JsResult<T> = Result<T, Throw>;

impl Throw {
    /// A `TypeError` with code `ERR_INVALID_ARG_TYPE`.
    pub fn arg_type(name: &str, expected: &str) -> Throw {
        Throw::New {
            kind: ErrorKind::Type,
            code: "ERR_INVALID_ARG_TYPE",
            message: format!("the \"{name}\" argument must be {expected}"),
        }
    }

    /// A `RangeError` with code `ERR_OUT_OF_RANGE`.
    pub fn out_of_range(name: &str, expected: &str) -> Throw {
        Throw::New {
            kind: ErrorKind::Range,
            code: "ERR_OUT_OF_RANGE",
            message: format!("the \"{name}\" argument must be {expected}"),
        }
    }

    /// An `Error` with the given code.
    pub fn error(code: &'static str, message: impl Into<String>) -> Throw {
        Throw::New {
            kind: ErrorKind::Error,
            code,
            message: message.into(),
        }
    }
}

impl From<shm_lru::Error> for Throw {
    fn from(e: shm_lru::Error) -> Throw {
        let kind = match e {
            shm_lru::Error::BufferTooSmall { .. } => ErrorKind::Range,
            _ => ErrorKind::Error,
        };
        Throw::New {
            kind,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// The Node-API environment of the current callback.
#[derive(Clone, Copy)]
pub struct Env(sys::napi_env);

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
    #[inline]
    fn check(self, status: sys::napi_status) -> JsResult<()> {
        if status == sys::Status::napi_ok {
            return Ok(());
        }
        let mut pending = false;
        // SAFETY: `self.0` is the live environment (see `from_raw`); `pending` is writable.
        unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
        if pending || status == sys::Status::napi_pending_exception {
            return Err(Throw::Pending);
        }
        Err(Throw::error(
            "ERR_NAPI",
            format!("a Node-API call failed with status {status}"),
        ))
    }

    /// Calls a Node-API function that writes one value through an out pointer.
    #[inline]
    fn out<T>(self, init: T, f: impl FnOnce(sys::napi_env, *mut T) -> sys::napi_status) -> JsResult<T> {
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
    #[inline]
    pub fn nothing(self) -> JsResult<Value> {
        Ok(ptr::null_mut())
    }

    /// `null`.
    pub fn null(self) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_get_null(e, r) })
    }

    /// `true` or `false`.
    #[inline]
    pub fn boolean(self, b: bool) -> JsResult<Value> {
        // SAFETY: live environment; the out pointer is valid.
        self.out(ptr::null_mut(), |e, r| unsafe { sys::napi_get_boolean(e, b, r) })
    }

    /// A number.
    #[inline]
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

    /// A string from UTF-8 bytes (invalid sequences become U+FFFD).
    #[inline]
    pub fn string(self, s: &[u8]) -> JsResult<Value> {
        // SAFETY: `s` is valid for `s.len()` bytes, and an explicit length is passed, so no NUL
        // terminator is needed.
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

    /// A value as it was stored: a string for [`ValueKind::Str`], else a Buffer.
    #[inline]
    pub fn stored(self, bytes: &[u8], kind: ValueKind) -> JsResult<Value> {
        match kind {
            ValueKind::Str => self.string(bytes),
            ValueKind::Bytes => self.buffer(bytes),
        }
    }

    /// A key as JS sees it: a number (or BigInt) for a 64-bit key; a string for a byte key that
    /// is valid UTF-8, else a Buffer.
    pub fn key(self, key: &Key) -> JsResult<Value> {
        match key {
            Key::Hash(h) => self.u64_value(*h),
            Key::Bytes(b) if std::str::from_utf8(b).is_ok() => self.string(b),
            Key::Bytes(b) => self.buffer(b),
        }
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

    /// A new external that owns `data` and drops it when collected, tagged with `tag`.
    pub fn external<T: 'static>(self, data: Box<T>, tag: &'static sys::napi_type_tag) -> JsResult<Value> {
        unsafe extern "C" fn finalize<T>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
            // SAFETY: `data` is the pointer `Box::into_raw` gave below, and node calls this
            // finaliser exactly once, after which nothing reads the external's data.
            drop(unsafe { Box::from_raw(data.cast::<T>()) });
        }
        let raw = Box::into_raw(data);
        let mut v = ptr::null_mut();
        // SAFETY: live environment; on success node owns `raw` and frees it with `finalize::<T>`.
        let st = unsafe {
            sys::napi_create_external(self.0, raw.cast(), Some(finalize::<T>), ptr::null_mut(), &mut v)
        };
        if let Err(e) = self.check(st) {
            // SAFETY: creation failed, so node did not take `raw`; we still own it.
            drop(unsafe { Box::from_raw(raw) });
            return Err(e);
        }
        // SAFETY: `v` is the external just made; `tag` lives forever.
        self.check(unsafe { sys::napi_type_tag_object(self.0, v, tag) })?;
        Ok(v)
    }

    /// The data of an external made by [`external`](Env::external) with the same `tag`, or a
    /// `TypeError` naming `what` for any other value. Callers must not keep the reference past
    /// the running callback (the wrappers in `class.rs` and `seed.rs` tie it to their `Cx`).
    #[inline]
    pub fn external_ref<'a, T: 'static>(
        self,
        v: Value,
        tag: &'static sys::napi_type_tag,
        name: &str,
        what: &str,
    ) -> JsResult<&'a T> {
        let mut ok = false;
        // SAFETY: `v` is a handle of this callback; `tag` and `ok` are valid.
        let st = unsafe { sys::napi_check_object_type_tag(self.0, v, tag, &mut ok) };
        if st != sys::Status::napi_ok {
            // Not an object: `null` and `undefined` even leave a TypeError pending (from the
            // conversion to an object), which gives way to ours. Nothing but our own externals
            // carries the tag, so no separate `typeof` is needed on the hot path.
            let mut pending = false;
            // SAFETY: live environment; the out pointer is valid.
            unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
            if pending {
                let mut exc = ptr::null_mut();
                // SAFETY: live environment; the out pointer is valid.
                unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut exc) };
            }
            return Err(Throw::arg_type(name, what));
        }
        if !ok {
            return Err(Throw::arg_type(name, what));
        }
        // SAFETY: live environment, `v` is an external; the out pointer is valid.
        let data = self.out(ptr::null_mut(), |e, r| unsafe {
            sys::napi_get_value_external(e, v, r)
        })?;
        // SAFETY: the tag proves `external::<T>` made this external, so `data` points to a live
        // `T`. The external is an argument of the running callback, so it cannot be collected
        // (and its `T` freed) before the callback returns, which bounds `'a`.
        Ok(unsafe { &*data.cast::<T>() })
    }

    /// An ArrayBuffer over `len` bytes at `data` that keeps `owner` alive until it is collected.
    ///
    /// # Safety
    /// `data` must be valid for reads and writes of `len` bytes for as long as `owner` lives.
    pub unsafe fn external_arraybuffer<T: 'static>(
        self,
        data: *mut u8,
        len: usize,
        owner: T,
    ) -> JsResult<Value> {
        unsafe extern "C" fn finalize<T>(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
            // SAFETY: `hint` is the pointer `Box::into_raw` gave below; node calls this once.
            drop(unsafe { Box::from_raw(hint.cast::<T>()) });
        }
        let hint = Box::into_raw(Box::new(owner));
        let mut v = ptr::null_mut();
        // SAFETY: the caller guarantees `data` stays valid while `owner` lives, and node keeps
        // `owner` (the hint) until the finaliser runs, after which the buffer is unreachable.
        let st = unsafe {
            sys::napi_create_external_arraybuffer(
                self.0,
                data.cast(),
                len,
                Some(finalize::<T>),
                hint.cast(),
                &mut v,
            )
        };
        if let Err(e) = self.check(st) {
            // SAFETY: creation failed, so node did not take `hint`.
            drop(unsafe { Box::from_raw(hint) });
            return Err(e);
        }
        Ok(v)
    }

    /// Throws `t` (unless an exception is already pending).
    fn throw(self, t: Throw) {
        let Throw::New { kind, code, message } = t else {
            return;
        };
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

/// One call's arguments.
pub struct Cx {
    /// The environment.
    pub env: Env,
    argv: [Value; MAX_ARGS],
}

impl Cx {
    /// Argument `i` (`undefined` when not passed; null past the count the function declared).
    #[inline]
    pub fn arg(&self, i: usize) -> Value {
        self.argv[i]
    }

    /// Whether argument `i` is `undefined` (or not passed).
    #[inline]
    pub fn is_undefined(&self, i: usize) -> JsResult<bool> {
        Ok(self.env.type_of(self.argv[i])? == sys::ValueType::napi_undefined)
    }

    /// A boolean argument.
    pub fn boolean(&self, i: usize, name: &str) -> JsResult<bool> {
        let v = self.argv[i];
        if self.env.type_of(v)? != sys::ValueType::napi_boolean {
            return Err(Throw::arg_type(name, "a boolean"));
        }
        let mut b = false;
        // SAFETY: `v` is a boolean handle of this callback; the out pointer is valid.
        let st = unsafe { sys::napi_get_value_bool(self.env.0, v, &mut b) };
        self.env.check(st)?;
        Ok(b)
    }

    /// A number argument (any number, `NaN` included).
    #[inline]
    pub fn number(&self, i: usize, name: &str) -> JsResult<f64> {
        let mut n = 0.0;
        // SAFETY: `argv[i]` is a handle of this callback; the out pointer is valid.
        let st = unsafe { sys::napi_get_value_double(self.env.0, self.argv[i], &mut n) };
        if st == sys::Status::napi_number_expected {
            return Err(Throw::arg_type(name, "a number"));
        }
        self.env.check(st)?;
        Ok(n)
    }

    /// An integer argument in `min..=max` (both within the safe integers).
    #[inline]
    pub fn integer(&self, i: usize, name: &str, min: i64, max: i64) -> JsResult<i64> {
        let n = self.number(i, name)?;
        if n.is_nan() || n.fract() != 0.0 || n < min as f64 || n > max as f64 {
            return Err(Throw::out_of_range(
                name,
                &format!("an integer from {min} to {max}"),
            ));
        }
        Ok(n as i64)
    }

    /// A `u32` argument.
    #[inline]
    pub fn u32(&self, i: usize, name: &str) -> JsResult<u32> {
        self.integer(i, name, 0, u32::MAX as i64).map(|n| n as u32)
    }

    /// A non-negative count, where `Infinity` (or `undefined` when `optional`) means no limit.
    pub fn limit(&self, i: usize, name: &str, optional: bool) -> JsResult<usize> {
        if optional && self.is_undefined(i)? {
            return Ok(usize::MAX);
        }
        let n = self.number(i, name)?;
        if n == f64::INFINITY {
            return Ok(usize::MAX);
        }
        if n.is_nan() || n.fract() != 0.0 || n < 0.0 || n > MAX_SAFE as f64 {
            return Err(Throw::out_of_range(name, "a non-negative integer or Infinity"));
        }
        Ok(n as usize)
    }

    /// A 64-bit key (the original package's "hash"): a non-negative safe integer, or a BigInt
    /// from 0 to 2^64-1.
    pub fn hash(&self, i: usize, name: &str) -> JsResult<u64> {
        let v = self.argv[i];
        match self.env.type_of(v)? {
            sys::ValueType::napi_number => self.integer(i, name, 0, MAX_SAFE as i64).map(|n| n as u64),
            sys::ValueType::napi_bigint => {
                let mut n = 0u64;
                let mut lossless = false;
                // SAFETY: `v` is a BigInt handle of this callback; the out pointers are valid.
                self.env.check(unsafe {
                    sys::napi_get_value_bigint_uint64(self.env.0, v, &mut n, &mut lossless)
                })?;
                if !lossless {
                    return Err(Throw::out_of_range(name, "a BigInt from 0n to 2n ** 64n - 1n"));
                }
                Ok(n)
            }
            _ => Err(Throw::arg_type(name, "a non-negative integer or a BigInt")),
        }
    }

    /// A string argument, copied.
    pub fn string(&self, i: usize, name: &str) -> JsResult<String> {
        if self.env.type_of(self.argv[i])? != sys::ValueType::napi_string {
            return Err(Throw::arg_type(name, "a string"));
        }
        self.with_string::<256, _>(self.argv[i], |b| Ok(String::from_utf8_lossy(b).into_owned()))
    }

    /// Calls `f` with the UTF-8 bytes of string `v`, read into an uninitialised stack buffer of
    /// `N` bytes when they fit (no zeroing, no copy), else into a heap buffer.
    #[inline]
    fn with_string<const N: usize, R>(&self, v: Value, f: impl FnOnce(&[u8]) -> JsResult<R>) -> JsResult<R> {
        let mut stack = MaybeUninit::<[u8; N]>::uninit();
        let mut len = 0usize;
        // SAFETY: `stack` is writable for N bytes (node writes at most N-1 plus a NUL).
        self.env.check(unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, stack.as_mut_ptr().cast(), N, &mut len)
        })?;
        // A truncated copy stops within 4 bytes (one UTF-8 character) of the end; anything
        // shorter is the whole string.
        if len + 4 < N {
            // SAFETY: node wrote `len` (< N) bytes at the start of `stack`.
            let bytes = unsafe { std::slice::from_raw_parts(stack.as_ptr().cast::<u8>(), len) };
            return f(bytes);
        }
        let mut full = 0usize;
        // SAFETY: a null buffer asks only for the length.
        self.env.check(unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, ptr::null_mut(), 0, &mut full)
        })?;
        let mut heap = vec![0u8; full + 1];
        // SAFETY: `heap` is writable for `full + 1` bytes, room for the string and its NUL.
        self.env.check(unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, heap.as_mut_ptr().cast(), full + 1, &mut len)
        })?;
        heap.truncate(len);
        f(&heap)
    }

    /// The bytes of a Buffer or Uint8Array argument, borrowed; `None` if it is not one.
    #[inline]
    fn uint8_array(&self, v: Value) -> JsResult<Option<(*mut u8, usize)>> {
        let mut is = false;
        // SAFETY: `v` is a handle of this callback; the out pointer is valid.
        let st = unsafe { sys::napi_is_typedarray(self.env.0, v, &mut is) };
        self.env.check(st)?;
        if !is {
            return Ok(None);
        }
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `v` is a typed array; the out pointers are valid (array buffer and offset are
        // optional and not asked for).
        self.env.check(unsafe {
            sys::napi_get_typedarray_info(
                self.env.0,
                v,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        })?;
        if ty != sys::TypedarrayType::uint8_array && ty != sys::TypedarrayType::uint8_clamped_array {
            return Ok(None);
        }
        if data.is_null() {
            // An empty (or detached) array has no data pointer.
            return Ok(Some((ptr::NonNull::<u8>::dangling().as_ptr(), 0)));
        }
        Ok(Some((data.cast(), len)))
    }

    /// Calls `f` with the bytes of argument `i`, a string (UTF-8) or a Buffer/Uint8Array, and
    /// whether it was a string. Short strings are read into a stack buffer of `N` bytes.
    #[inline]
    pub fn with_bytes<const N: usize, R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(&[u8], ValueKind) -> JsResult<R>,
    ) -> JsResult<R> {
        let v = self.argv[i];
        match self.env.type_of(v)? {
            sys::ValueType::napi_string => self.with_string::<N, _>(v, |b| f(b, ValueKind::Str)),
            sys::ValueType::napi_object => match self.uint8_array(v)? {
                Some((data, len)) => {
                    // SAFETY: node reports `data` valid for `len` bytes; the array is an argument
                    // of this callback, so it stays alive, and no JS runs (nothing can detach or
                    // resize it) before `f` returns.
                    let s = unsafe { std::slice::from_raw_parts(data, len) };
                    f(s, ValueKind::Bytes)
                }
                None => Err(Throw::arg_type(name, "a string, Buffer or Uint8Array")),
            },
            _ => Err(Throw::arg_type(name, "a string, Buffer or Uint8Array")),
        }
    }

    /// A writable Buffer/Uint8Array argument, as a raw pointer and length.
    pub fn out_buffer(&self, i: usize, name: &str) -> JsResult<(*mut u8, usize)> {
        let v = self.argv[i];
        if self.env.type_of(v)? != sys::ValueType::napi_object {
            return Err(Throw::arg_type(name, "a Buffer or Uint8Array"));
        }
        self.uint8_array(v)?
            .ok_or_else(|| Throw::arg_type(name, "a Buffer or Uint8Array"))
    }
}

/// An engine object owned by a JS external; [`close`](Handle::close) lets go of it early.
///
/// Handles are touched only by the JS thread that owns the external (externals cannot move
/// between threads), so a `RefCell` suffices.
pub struct Handle<T> {
    inner: RefCell<Option<Arc<T>>>,
}

impl<T> Handle<T> {
    /// Wraps `value`.
    pub fn new(value: Arc<T>) -> Box<Handle<T>> {
        Box::new(Handle {
            inner: RefCell::new(Some(value)),
        })
    }

    /// The object, or `ERR_SHM_CLOSED` once closed.
    #[inline]
    pub fn get(&self) -> JsResult<Ref<'_, Arc<T>>> {
        let r = self
            .inner
            .try_borrow()
            .map_err(|_| Throw::error("ERR_SHM_CLOSED", "the handle is in use"))?;
        Ref::filter_map(r, |o| o.as_ref())
            .map_err(|_| Throw::error("ERR_SHM_CLOSED", "the cache handle is closed"))
    }

    /// Lets go of the object; returns it if it was still open.
    pub fn close(&self) -> JsResult<Option<Arc<T>>> {
        let mut r = self
            .inner
            .try_borrow_mut()
            .map_err(|_| Throw::error("ERR_SHM_CLOSED", "the handle is in use"))?;
        Ok(r.take())
    }
}

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
        f(&Cx { env, argv })
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

/// Defines `extern "C"` callbacks that run Rust functions through [`trampoline`].
macro_rules! callbacks {
    ($($name:ident => $body:path, $argc:literal;)*) => {
        $(
            unsafe extern "C" fn $name(
                env: napi_sys::napi_env,
                info: napi_sys::napi_callback_info,
            ) -> $crate::napi::Value {
                // SAFETY: node calls this with the callback's own `env` and `info`.
                unsafe { $crate::napi::trampoline(env, info, $argc, $body) }
            }
        )*
    };
}

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

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
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::hash::{BuildHasherDefault, Hasher};
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
///
/// The error itself is boxed so that a `JsResult` of a number or a handle stays two words,
/// returned in registers: every `?` on the hot paths passes one along, and errors are rare.
#[derive(Debug)]
pub enum Throw {
    /// A JS exception is already pending; leave it.
    Pending,
    /// Throw a new error with a stable `code`.
    New(Box<NewError>),
}

/// An error to throw.
#[derive(Debug)]
pub struct NewError {
    /// The constructor.
    pub kind: ErrorKind,
    /// The `code` property, e.g. `ERR_SHM_FULL`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

/// The result of anything that may throw.
pub type JsResult<T> = Result<T, Throw>;

impl Throw {
    /// A `TypeError` with code `ERR_INVALID_ARG_TYPE`.
    #[cold]
    pub fn arg_type(name: &str, expected: &str) -> Throw {
        Throw::new(
            ErrorKind::Type,
            "ERR_INVALID_ARG_TYPE",
            format!("the \"{name}\" argument must be {expected}"),
        )
    }

    /// A `RangeError` with code `ERR_OUT_OF_RANGE`.
    #[cold]
    pub fn out_of_range(name: &str, expected: &str) -> Throw {
        Throw::new(
            ErrorKind::Range,
            "ERR_OUT_OF_RANGE",
            format!("the \"{name}\" argument must be {expected}"),
        )
    }

    /// An `Error` with the given code.
    pub fn error(code: &'static str, message: impl Into<String>) -> Throw {
        Throw::new(ErrorKind::Error, code, message.into())
    }

    /// A new error of `kind`.
    #[cold]
    pub fn new(kind: ErrorKind, code: &'static str, message: String) -> Throw {
        Throw::New(Box::new(NewError { kind, code, message }))
    }
}

impl From<shm_lru::Error> for Throw {
    fn from(e: shm_lru::Error) -> Throw {
        let kind = match e {
            shm_lru::Error::BufferTooSmall { .. } => ErrorKind::Range,
            _ => ErrorKind::Error,
        };
        Throw::new(kind, e.code(), e.to_string())
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
    #[inline(always)]
    fn check(self, status: sys::napi_status) -> JsResult<()> {
        if status == sys::Status::napi_ok {
            return Ok(());
        }
        Err(self.failed(status))
    }

    /// What a failed Node-API call left: a pending exception, or an error to throw. Out of
    /// line, so that the callers' fast paths stay small.
    #[cold]
    #[inline(never)]
    fn failed(self, status: sys::napi_status) -> Throw {
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

    /// A value as it was stored: a string for [`ValueKind::Str`], else a Buffer.
    #[inline(always)]
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

    /// A new external that owns `data` and drops it when collected, of kind `tag`.
    pub fn external<T: 'static>(self, data: Box<T>, tag: &'static sys::napi_type_tag) -> JsResult<Value> {
        unsafe extern "C" fn finalize<T>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
            // Forget the pointer before freeing what it points to. Every use of the registry is
            // a short borrow that calls nothing, so it cannot be borrowed here; should it ever
            // be (or be gone, at thread exit), the data is leaked rather than freed while still
            // registered.
            let forgotten = LIVE
                .try_with(|live| {
                    live.try_borrow_mut()
                        .map(|mut m| m.remove(&(data as usize)))
                        .is_ok()
                })
                .unwrap_or(false);
            if forgotten {
                // SAFETY: `data` is the pointer `Box::into_raw` gave below, and node calls this
                // finaliser exactly once, after which nothing reads the external's data (it is
                // no longer registered, so `external_ref` cannot hand it out).
                drop(unsafe { Box::from_raw(data.cast::<T>()) });
            }
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
        LIVE.with(|live| live.borrow_mut().insert(raw as usize, tag_id(tag)));
        Ok(v)
    }

    /// The data of an external made by [`external`](Env::external) with the same `tag`, or a
    /// `TypeError` naming `what` for any other value. Callers must not keep the reference past
    /// the running callback (the wrappers in `class.rs` and `seed.rs` tie it to their `Cx`).
    ///
    /// An external is recognised by its data pointer, which this thread's registry of live
    /// externals must list with the same kind: one lookup in a small table instead of the
    /// private-property lookup a Node-API type tag costs. (Externals cannot leave the thread
    /// that made them, so a registry per thread is complete.)
    #[inline]
    pub fn external_ref<'a, T: 'static>(
        self,
        v: Value,
        tag: &'static sys::napi_type_tag,
        name: &str,
        what: &str,
    ) -> JsResult<&'a T> {
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `v` is a handle of this callback (or null, which node refuses); the out
        // pointer is valid. For a value that is not an external node answers `napi_invalid_arg`
        // and leaves no exception pending.
        let st = unsafe { sys::napi_get_value_external(self.0, v, &mut data) };
        if st != sys::Status::napi_ok {
            return Err(Throw::arg_type(name, what));
        }
        let ours = LIVE.with(|live| live.borrow().get(&(data as usize)) == Some(&tag_id(tag)));
        if !ours {
            return Err(Throw::arg_type(name, what));
        }
        // SAFETY: the registry lists `data` with this kind, so `external::<T>` made it from a
        // live `Box<T>` (finalisers unregister before freeing). The external is an argument of
        // the running callback, so it cannot be collected (and its `T` freed) before the
        // callback returns, which bounds `'a`.
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

/// Hashes a pointer: one multiply (the low bits of an allocation address carry little).
#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(32);
    }
}

thread_local! {
    /// The data pointers of this thread's live externals, with the kind (tag) each was made as.
    static LIVE: RefCell<HashMap<usize, usize, BuildHasherDefault<PtrHasher>>> =
        const { RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())) };
}

/// The identity of a kind of external: the address of its static tag.
#[inline]
fn tag_id(tag: &'static sys::napi_type_tag) -> usize {
    tag as *const sys::napi_type_tag as usize
}

/// Whether `n` is an integer in `min..=max`, bounds within the safe integers. (Comparisons
/// first, which also refuse NaN; then a round trip through `i64`, exact in that range, where
/// `f64::fract` would call `trunc` out of line.)
#[inline(always)]
fn is_integer_in(n: f64, min: f64, max: f64) -> bool {
    n >= min && n <= max && (n as i64) as f64 == n
}

/// One call's arguments.
pub struct Cx {
    /// The environment.
    pub env: Env,
    argv: [Value; MAX_ARGS],
}

impl Cx {
    /// Argument `i` (`undefined` when not passed; null past the count the function declared).
    #[inline(always)]
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
    #[inline(always)]
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
    #[inline(always)]
    pub fn integer(&self, i: usize, name: &str, min: i64, max: i64) -> JsResult<i64> {
        let n = self.number(i, name)?;
        if !is_integer_in(n, min as f64, max as f64) {
            return Err(Throw::out_of_range(
                name,
                &format!("an integer from {min} to {max}"),
            ));
        }
        Ok(n as i64)
    }

    /// A `u32` argument.
    #[inline(always)]
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
        if !is_integer_in(n, 0.0, MAX_SAFE as f64) {
            return Err(Throw::out_of_range(name, "a non-negative integer or Infinity"));
        }
        Ok(n as usize)
    }

    /// A 64-bit key (the original package's "hash"): a non-negative safe integer, or a BigInt
    /// from 0 to 2^64-1.
    #[inline(always)]
    pub fn hash(&self, i: usize, name: &str) -> JsResult<u64> {
        let v = self.argv[i];
        let mut d = 0.0;
        // SAFETY: `v` is a handle of this callback; the out pointer is valid. A value that is not
        // a number is answered with `napi_number_expected` and no pending exception.
        let st = unsafe { sys::napi_get_value_double(self.env.0, v, &mut d) };
        if st == sys::Status::napi_ok {
            if !is_integer_in(d, 0.0, MAX_SAFE as f64) {
                return Err(Throw::out_of_range(
                    name,
                    &format!("an integer from 0 to {MAX_SAFE}"),
                ));
            }
            return Ok(d as u64);
        }
        if st != sys::Status::napi_number_expected {
            self.env.check(st)?;
        }
        if self.env.type_of(v)? != sys::ValueType::napi_bigint {
            return Err(Throw::arg_type(name, "a non-negative integer or a BigInt"));
        }
        let mut n = 0u64;
        let mut lossless = false;
        // SAFETY: `v` is a BigInt handle of this callback; the out pointers are valid.
        let st = unsafe { sys::napi_get_value_bigint_uint64(self.env.0, v, &mut n, &mut lossless) };
        self.env.check(st)?;
        if !lossless {
            return Err(Throw::out_of_range(name, "a BigInt from 0n to 2n ** 64n - 1n"));
        }
        Ok(n)
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
        match self.try_with_string::<N, R, _>(v, |b: &[u8], _| f(b)) {
            Ok(r) => r,
            Err(_) => Err(Throw::error("ERR_NAPI", "expected a string")),
        }
    }

    /// As [`with_string`](Cx::with_string) (`f` gets [`ValueKind::Str`]), but hands `f` back
    /// (`Err(f)`) when `v` is not a string, so that a caller can try another type without
    /// asking for `typeof` first.
    #[inline(always)]
    fn try_with_string<const N: usize, R, F: FnOnce(&[u8], ValueKind) -> JsResult<R>>(
        &self,
        v: Value,
        f: F,
    ) -> Result<JsResult<R>, F> {
        let mut stack = MaybeUninit::<[u8; N]>::uninit();
        let mut len = 0usize;
        // SAFETY: `stack` is writable for N bytes (node writes at most N-1 plus a NUL). A value
        // that is not a string is answered with `napi_string_expected` and no pending exception.
        let st =
            unsafe { sys::napi_get_value_string_utf8(self.env.0, v, stack.as_mut_ptr().cast(), N, &mut len) };
        if st == sys::Status::napi_string_expected {
            return Err(f);
        }
        if let Err(e) = self.env.check(st) {
            return Ok(Err(e));
        }
        // A truncated copy stops within 4 bytes (one UTF-8 character) of the end; anything
        // shorter is the whole string.
        if len + 4 < N {
            // SAFETY: node wrote `len` (< N) bytes at the start of `stack`.
            let bytes = unsafe { std::slice::from_raw_parts(stack.as_ptr().cast::<u8>(), len) };
            return Ok(f(bytes, ValueKind::Str));
        }
        Ok(self.long_string(v).and_then(|b| f(&b, ValueKind::Str)))
    }

    /// The UTF-8 bytes of a string too long for a stack buffer.
    #[cold]
    #[inline(never)]
    fn long_string(&self, v: Value) -> JsResult<Vec<u8>> {
        let mut full = 0usize;
        // SAFETY: a null buffer asks only for the length.
        self.env.check(unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, ptr::null_mut(), 0, &mut full)
        })?;
        let mut heap = vec![0u8; full + 1];
        let mut len = 0usize;
        // SAFETY: `heap` is writable for `full + 1` bytes, room for the string and its NUL.
        self.env.check(unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, heap.as_mut_ptr().cast(), full + 1, &mut len)
        })?;
        heap.truncate(len);
        Ok(heap)
    }

    /// The bytes of a Buffer or Uint8Array argument, borrowed; `None` if it is not one.
    #[inline(always)]
    fn uint8_array(&self, v: Value) -> JsResult<Option<(*mut u8, usize)>> {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `v` is a handle of this callback; the out pointers are valid (array buffer and
        // offset are optional and not asked for). A value that is not a typed array is answered
        // with `napi_invalid_arg` and no pending exception, so no `napi_is_typedarray` first.
        let st = unsafe {
            sys::napi_get_typedarray_info(
                self.env.0,
                v,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if st == sys::Status::napi_invalid_arg {
            return Ok(None);
        }
        self.env.check(st)?;
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
    ///
    /// The string read comes first and doubles as the type check (strings are the common
    /// case); only a value that is not a string is asked whether it is a typed array.
    #[inline(always)]
    pub fn with_bytes<const N: usize, R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(&[u8], ValueKind) -> JsResult<R>,
    ) -> JsResult<R> {
        let v = self.argv[i];
        let f = match self.try_with_string::<N, R, _>(v, f) {
            Ok(r) => return r,
            Err(f) => f,
        };
        match self.uint8_array(v)? {
            Some((data, len)) => {
                // SAFETY: node reports `data` valid for `len` bytes; the array is an argument of
                // this callback, so it stays alive, and no JS runs (nothing can detach or resize
                // it) before `f` returns.
                let s = unsafe { std::slice::from_raw_parts(data, len) };
                f(s, ValueKind::Bytes)
            }
            None => Err(Throw::arg_type(name, "a string, Buffer or Uint8Array")),
        }
    }

    /// A writable Buffer/Uint8Array argument, as a raw pointer and length.
    #[inline(always)]
    pub fn out_buffer(&self, i: usize, name: &str) -> JsResult<(*mut u8, usize)> {
        self.uint8_array(self.argv[i])?
            .ok_or_else(|| Throw::arg_type(name, "a Buffer or Uint8Array"))
    }
}

/// Room on the stack for a value copied out of a slot; longer ones go to the heap.
const COPY_STACK: usize = 1024;

/// A value copied out of its slot under the shard lock, to be made into a JS value after the
/// lock is released: making it allocates on the V8 heap, which may run a garbage collection,
/// and other processes would wait for the lock all that time. A copy of a short value costs a
/// few nanoseconds.
pub struct Copied {
    stack: MaybeUninit<[u8; COPY_STACK]>,
    heap: Vec<u8>,
    len: usize,
    kind: ValueKind,
}

impl Copied {
    /// Nothing copied yet (no allocation, no zeroing).
    #[inline]
    pub fn new() -> Copied {
        Copied {
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

    /// The value as JS sees it: a string or a Buffer, as it was stored.
    #[inline(always)]
    pub fn to_js(&self, env: Env) -> JsResult<Value> {
        let bytes = if self.len <= COPY_STACK {
            // SAFETY: `fill` wrote `len` bytes at the start of `stack` (or `len` is 0).
            unsafe { std::slice::from_raw_parts(self.stack.as_ptr().cast::<u8>(), self.len) }
        } else {
            &self.heap[..]
        };
        env.stored(bytes, self.kind)
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
    #[inline(always)]
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

//! The arguments of one callback, read into Rust values: booleans, numbers in a range, 64-bit
//! integers from a number or a BigInt, strings, and the bytes of a string or a Uint8Array,
//! borrowed where they lie. Argument `i` is read by index; the `*_of` forms read any value of
//! the callback, such as a property of an options object.

use super::env::{Env, Value};
use super::error::{JsResult, Throw};
use super::MAX_SAFE;
use napi_sys as sys;
use std::ffi::{c_void, CStr};
use std::mem::MaybeUninit;
use std::ptr;

/// The most arguments any exported function reads.
pub const MAX_ARGS: usize = 8;

/// What the bytes handed to a [`Cx::with_bytes`] callback were in JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// A string, read as UTF-8.
    Utf8,
    /// A Buffer or Uint8Array.
    Binary,
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
    /// Makes the arguments of one call.
    pub(super) fn new(env: Env, argv: [Value; MAX_ARGS]) -> Cx {
        Cx { env, argv }
    }

    /// Argument `i` (`undefined` when not passed; null past the count the function declared).
    #[inline(always)]
    pub fn arg(&self, i: usize) -> Value {
        self.argv[i]
    }

    /// Whether argument `i` is `undefined` (or not passed).
    #[inline]
    pub fn is_undefined(&self, i: usize) -> JsResult<bool> {
        self.is_undefined_of(self.argv[i])
    }

    /// Whether `v` is `undefined`.
    #[inline]
    pub fn is_undefined_of(&self, v: Value) -> JsResult<bool> {
        Ok(self.env.type_of(v)? == sys::ValueType::napi_undefined)
    }

    /// A boolean argument.
    pub fn boolean(&self, i: usize, name: &str) -> JsResult<bool> {
        self.boolean_of(self.argv[i], name)
    }

    /// `v` as a boolean.
    pub fn boolean_of(&self, v: Value, name: &str) -> JsResult<bool> {
        if self.env.type_of(v)? != sys::ValueType::napi_boolean {
            return Err(Throw::arg_type(name, "a boolean"));
        }
        let mut b = false;
        // SAFETY: `v` is a boolean handle of this callback; the out pointer is valid.
        let st = unsafe { sys::napi_get_value_bool(self.env.0, v, &mut b) };
        self.env.check(st)?;
        Ok(b)
    }

    /// `v` as a number (any number, `NaN` included).
    #[inline(always)]
    pub fn number_of(&self, v: Value, name: &str) -> JsResult<f64> {
        let mut n = 0.0;
        // SAFETY: `v` is a handle of this callback; the out pointer is valid.
        let st = unsafe { sys::napi_get_value_double(self.env.0, v, &mut n) };
        if st == sys::Status::napi_number_expected {
            return Err(Throw::arg_type(name, "a number"));
        }
        self.env.check(st)?;
        Ok(n)
    }

    /// An integer argument in `min..=max` (both within the safe integers).
    #[inline(always)]
    pub fn integer(&self, i: usize, name: &str, min: i64, max: i64) -> JsResult<i64> {
        self.integer_of(self.argv[i], name, min, max)
    }

    /// `v` as an integer in `min..=max` (both within the safe integers).
    #[inline(always)]
    pub fn integer_of(&self, v: Value, name: &str, min: i64, max: i64) -> JsResult<i64> {
        let n = self.number_of(v, name)?;
        if !is_integer_in(n, min as f64, max as f64) {
            return Err(Throw::out_of_range(
                name,
                &format!("an integer from {min} to {max}"),
            ));
        }
        Ok(n as i64)
    }

    /// As [`integer_of`](Cx::integer_of), with the range described by `expected` in the
    /// error, for a bound the plain numbers do not explain.
    pub fn integer_described_of(
        &self,
        v: Value,
        name: &str,
        min: i64,
        max: i64,
        expected: &str,
    ) -> JsResult<i64> {
        let n = self.number_of(v, name)?;
        if !is_integer_in(n, min as f64, max as f64) {
            return Err(Throw::out_of_range(name, expected));
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
        let n = self.number_of(self.argv[i], name)?;
        if n == f64::INFINITY {
            return Ok(usize::MAX);
        }
        if !is_integer_in(n, 0.0, MAX_SAFE as f64) {
            return Err(Throw::out_of_range(name, "a non-negative integer or Infinity"));
        }
        Ok(n as usize)
    }

    /// A 64-bit unsigned integer argument: a non-negative safe integer, or a BigInt from 0 to
    /// 2^64-1.
    #[inline(always)]
    pub fn u64(&self, i: usize, name: &str) -> JsResult<u64> {
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

    /// An object argument (`null` is refused), whose properties [`Cx::property`] reads.
    pub fn object(&self, i: usize, name: &str, expected: &str) -> JsResult<Value> {
        let v = self.argv[i];
        if self.env.type_of(v)? != sys::ValueType::napi_object {
            return Err(Throw::arg_type(name, expected));
        }
        Ok(v)
    }

    /// Property `prop` of object `obj`, `undefined` when absent.
    #[inline]
    pub fn property(&self, obj: Value, prop: &CStr) -> JsResult<Value> {
        self.env.get(obj, prop)
    }

    /// A string argument, copied.
    pub fn string(&self, i: usize, name: &str) -> JsResult<String> {
        self.string_of(self.argv[i], name)
    }

    /// `v` as a string, copied.
    pub fn string_of(&self, v: Value, name: &str) -> JsResult<String> {
        if self.env.type_of(v)? != sys::ValueType::napi_string {
            return Err(Throw::arg_type(name, "a string"));
        }
        self.with_string::<256, _>(v, |b| Ok(String::from_utf8_lossy(b).into_owned()))
    }

    /// A signed 64-bit integer argument: a safe integer, or a BigInt in the `i64` range.
    pub fn i64(&self, i: usize, name: &str) -> JsResult<i64> {
        let v = self.argv[i];
        if self.env.type_of(v)? != sys::ValueType::napi_bigint {
            return self.integer_of(v, name, -(MAX_SAFE as i64), MAX_SAFE as i64);
        }
        let mut n = 0i64;
        let mut lossless = false;
        // SAFETY: `v` is a BigInt handle of this callback; the out pointers are valid.
        let st = unsafe { sys::napi_get_value_bigint_int64(self.env.0, v, &mut n, &mut lossless) };
        self.env.check(st)?;
        if !lossless {
            return Err(Throw::out_of_range(
                name,
                "a BigInt from -(2n ** 63n) to 2n ** 63n - 1n",
            ));
        }
        Ok(n)
    }

    /// Whether string `v` holds a lone surrogate: a code unit that UTF-8 cannot encode, which
    /// `napi_get_value_string_utf8` turns into U+FFFD (so `'\uD800'` and `'\uDC00'` would read
    /// as the same bytes). Asked only of strings whose UTF-8 holds a U+FFFD.
    #[cold]
    #[inline(never)]
    fn has_lone_surrogate(&self, v: Value) -> JsResult<bool> {
        // SAFETY: `whole_string` passes a null buffer of size 0 (asking only for the length) or a
        // buffer writable for `size` code units; `len` is writable.
        let units = self.whole_string(|buf: *mut u16, size, len| unsafe {
            sys::napi_get_value_string_utf16(self.env.0, v, buf, size, len)
        })?;
        Ok(char::decode_utf16(units.iter().copied()).any(|c| c.is_err()))
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

    /// As [`with_string`](Cx::with_string) (`f` gets [`Text::Utf8`]), but hands `f` back
    /// (`Err(f)`) when `v` is not a string, so that a caller can try another type without
    /// asking for `typeof` first.
    #[inline(always)]
    fn try_with_string<const N: usize, R, F: FnOnce(&[u8], Text) -> JsResult<R>>(
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
            return Ok(f(bytes, Text::Utf8));
        }
        Ok(self.long_string(v).and_then(|b| f(&b, Text::Utf8)))
    }

    /// The UTF-8 bytes of a string too long for a stack buffer.
    #[cold]
    #[inline(never)]
    fn long_string(&self, v: Value) -> JsResult<Vec<u8>> {
        // SAFETY: as in `has_lone_surrogate`, in bytes.
        self.whole_string(|buf: *mut u8, size, len| unsafe {
            sys::napi_get_value_string_utf8(self.env.0, v, buf.cast(), size, len)
        })
    }

    /// A whole string read by `read(buf, size, len)`, a call of `napi_get_value_string_utf8` or
    /// `_utf16` that writes at most `size` code units to `buf` and the count to `len`: first with
    /// a null buffer, which asks only for the length, then into a buffer with room for the string
    /// and its NUL.
    #[inline]
    fn whole_string<T: Copy + Default>(
        &self,
        read: impl Fn(*mut T, usize, &mut usize) -> sys::napi_status,
    ) -> JsResult<Vec<T>> {
        let mut full = 0usize;
        self.env.check(read(ptr::null_mut(), 0, &mut full))?;
        let mut buf = vec![T::default(); full + 1];
        let mut len = 0usize;
        self.env.check(read(buf.as_mut_ptr(), full + 1, &mut len))?;
        buf.truncate(len);
        Ok(buf)
    }

    /// The bytes of a Buffer or Uint8Array argument, borrowed; `None` if it is not one.
    #[inline(always)]
    fn uint8_array(&self, v: Value, name: &str) -> JsResult<Option<(*mut u8, usize)>> {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        let mut buffer: Value = ptr::null_mut();
        // SAFETY: `v` is a handle of this callback; the out pointers are valid (the offset is
        // optional and not asked for). A value that is not a typed array is answered with
        // `napi_invalid_arg` and no pending exception, so no `napi_is_typedarray` first.
        let st = unsafe {
            sys::napi_get_typedarray_info(
                self.env.0,
                v,
                &mut ty,
                &mut len,
                &mut data,
                &mut buffer,
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
            // An empty array has no data pointer, and neither has one whose memory was detached
            // (transferred to another thread): that one is refused, not read as no bytes.
            let mut detached = false;
            // SAFETY: `buffer` is the array's ArrayBuffer, a handle node just gave for this
            // callback; the out pointer is valid.
            let status = unsafe { sys::napi_is_detached_arraybuffer(self.env.0, buffer, &mut detached) };
            self.env.check(status)?;
            if detached {
                return Err(Throw::arg_value(
                    name,
                    "a Buffer or Uint8Array whose memory is not detached (transferred away)",
                ));
            }
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
        f: impl FnOnce(&[u8], Text) -> JsResult<R>,
    ) -> JsResult<R> {
        self.with_bytes_of::<N, R>(self.argv[i], name, f)
    }

    /// As [`with_bytes`](Cx::with_bytes), for a value of this callback that is not an argument
    /// itself (an element of an array argument).
    #[inline(always)]
    pub fn with_bytes_of<const N: usize, R>(
        &self,
        v: Value,
        name: &str,
        f: impl FnOnce(&[u8], Text) -> JsResult<R>,
    ) -> JsResult<R> {
        // A string's UTF-8 holds U+FFFD (EF BF BD) where it held a lone surrogate: such a string
        // is refused, not stored as bytes another string has too.
        let checked = |b: &[u8], t: Text| {
            if t == Text::Utf8
                && !b.is_ascii()
                && b.windows(3).any(|w| w == [0xef, 0xbf, 0xbd])
                && self.has_lone_surrogate(v)?
            {
                return Err(Throw::arg_value(
                    name,
                    "a well-formed string (this one holds a lone surrogate, which has no UTF-8 form)",
                ));
            }
            f(b, t)
        };
        let f = match self.try_with_string::<N, R, _>(v, checked) {
            Ok(r) => return r,
            Err(f) => f,
        };
        match self.uint8_array(v, name)? {
            Some((data, len)) => {
                // SAFETY: node reports `data` valid for `len` bytes; the array is an argument of
                // this callback, so it stays alive, and no JS runs (nothing can detach or resize
                // it) before `f` returns.
                let s = unsafe { std::slice::from_raw_parts(data, len) };
                f(s, Text::Binary)
            }
            None => Err(Throw::arg_type(name, "a string, Buffer or Uint8Array")),
        }
    }

    /// Calls `f` with the numbers of a Uint32Array argument.
    pub fn with_u32_array<R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(&[u32]) -> JsResult<R>,
    ) -> JsResult<R> {
        let (data, len) = self.typed_array(i, name, sys::TypedarrayType::uint32_array, "a Uint32Array")?;
        if len == 0 || data.is_null() {
            return f(&[]);
        }
        // SAFETY: node reports `data` valid for `len` u32s (a typed array's data is aligned to
        // its element size); the array is an argument of this callback, so it stays alive, and
        // no JS runs (nothing can detach it) before `f` returns.
        f(unsafe { std::slice::from_raw_parts(data.cast::<u32>(), len) })
    }

    /// A writable Int32Array argument, as a raw pointer and length.
    pub fn out_i32_array(&self, i: usize, name: &str) -> JsResult<(*mut i32, usize)> {
        let (data, len) = self.typed_array(i, name, sys::TypedarrayType::int32_array, "an Int32Array")?;
        if data.is_null() {
            return Ok((ptr::NonNull::<i32>::dangling().as_ptr(), 0));
        }
        Ok((data.cast(), len))
    }

    /// Argument `i`'s data pointer and element count, if it is a typed array of type `want`
    /// (else a TypeError saying it must be `what`).
    fn typed_array(
        &self,
        i: usize,
        name: &str,
        want: sys::napi_typedarray_type,
        what: &str,
    ) -> JsResult<(*mut c_void, usize)> {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: argument `i` is a handle of this callback; the out pointers are valid (buffer
        // and offset are optional and not asked for).
        let st = unsafe {
            sys::napi_get_typedarray_info(
                self.env.0,
                self.argv[i],
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if st != sys::Status::napi_ok || ty != want {
            return Err(Throw::arg_type(name, what));
        }
        Ok((data, len))
    }

    /// A writable Buffer/Uint8Array argument, as a raw pointer and length.
    #[inline(always)]
    pub fn out_buffer(&self, i: usize, name: &str) -> JsResult<(*mut u8, usize)> {
        self.uint8_array(self.argv[i], name)?
            .ok_or_else(|| Throw::arg_type(name, "a Buffer or Uint8Array"))
    }
}

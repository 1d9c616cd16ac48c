//! Externals: JS values that own a Rust object and drop it when collected, recognised again by
//! a per-thread registry of the live ones and their kind; ArrayBuffers over memory a Rust owner
//! keeps valid; and [`Handle`], the closable holder an external keeps its object in.

use super::env::{Env, Value};
use super::error::{JsResult, Throw};
use napi_sys as sys;
use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr;
use std::sync::Arc;

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

impl Env {
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
    /// the running callback (the wrappers in `convert.rs` tie it to their `Cx`).
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
}

/// A Rust object owned by a JS external; [`close`](Handle::close) lets go of it early.
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

    /// The object, or an `Error` with code `ERR_SHM_CLOSED` once closed
    /// (`ERR_SHM_HANDLE_IN_USE` while a call of the running callback is changing it).
    #[inline(always)]
    pub fn get(&self) -> JsResult<Ref<'_, Arc<T>>> {
        let r = self
            .inner
            .try_borrow()
            .map_err(|_| Throw::error("ERR_SHM_HANDLE_IN_USE", "the handle is in use"))?;
        Ref::filter_map(r, |o| o.as_ref())
            .map_err(|_| Throw::error("ERR_SHM_CLOSED", "the cache handle is closed"))
    }

    /// Calls `f` with the object to change it: it must be open and held by this handle only
    /// (no call of the running callback holds a clone of it).
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> JsResult<R> {
        let mut r = self
            .inner
            .try_borrow_mut()
            .map_err(|_| Throw::error("ERR_SHM_HANDLE_IN_USE", "the handle is in use"))?;
        let arc = r
            .as_mut()
            .ok_or_else(|| Throw::error("ERR_SHM_CLOSED", "the cache handle is closed"))?;
        let t =
            Arc::get_mut(arc).ok_or_else(|| Throw::error("ERR_SHM_HANDLE_IN_USE", "the handle is in use"))?;
        Ok(f(t))
    }

    /// Lets go of the object; returns it if it was still open.
    pub fn close(&self) -> JsResult<Option<Arc<T>>> {
        let mut r = self
            .inner
            .try_borrow_mut()
            .map_err(|_| Throw::error("ERR_SHM_HANDLE_IN_USE", "the handle is in use"))?;
        Ok(r.take())
    }
}

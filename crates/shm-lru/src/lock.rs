//! Taking a shard's lock. When the previous holder died with it, the shard is rebuilt from its
//! slots before anything else touches it, and only then is the mutex marked consistent.

use crate::error::{Error, Result};
use crate::layout::shd;
use crate::recover;
use crate::slots::ShardView;
use crate::sys::robust_mutex::{self, Locked};
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

/// A held shard lock and the view of the shard it guards. Unlocks on drop.
pub(crate) struct ShardGuard<'a> {
    view: ShardView,
    mutex: *mut libc::pthread_mutex_t,
    _cache: PhantomData<&'a ()>,
}

impl<'a> ShardGuard<'a> {
    /// Locks the shard whose header `view` addresses, waiting at most `timeout` if one is given
    /// ([`Error::LockTimeout`] then).
    ///
    /// # Safety
    /// `view` must satisfy [`ShardView::new`]'s requirements except the lock (which this takes),
    /// its header's mutex must have been initialised, and the mapping must outlive `'a`.
    #[inline]
    pub(crate) unsafe fn lock(
        view: ShardView,
        hdr: *mut u8,
        timeout: Option<Duration>,
    ) -> Result<ShardGuard<'a>> {
        let mutex = hdr.wrapping_add(shd::MUTEX).cast::<libc::pthread_mutex_t>();
        let state = match timeout {
            // SAFETY: the caller guarantees an initialised mutex in live memory.
            None => unsafe { robust_mutex::lock(mutex) },
            // SAFETY: as above.
            Some(t) => unsafe { robust_mutex::lock_timeout(mutex, t) },
        }
        .map_err(lock_error)?;
        if state == Locked::WouldBlock {
            return Err(Error::LockTimeout(timeout.unwrap_or_default()));
        }
        let guard = ShardGuard {
            view,
            mutex,
            _cache: PhantomData,
        };
        if state == Locked::OwnerDied {
            guard.repair()?;
        }
        Ok(guard)
    }

    fn repair(&self) -> Result<()> {
        recover::rebuild(&self.view);
        self.view.set_recoveries(self.view.recoveries().wrapping_add(1));
        // SAFETY: we hold the mutex, obtained with EOWNERDEAD, and the state is repaired.
        unsafe { robust_mutex::make_consistent(self.mutex) }
            .map_err(|e| Error::Unrecoverable(format!("pthread_mutex_consistent: {e}")))
    }
}

fn lock_error(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ENOTRECOVERABLE) {
        Error::Unrecoverable("a process died holding the lock and nobody repaired it".into())
    } else {
        Error::Unrecoverable(format!("pthread_mutex_lock: {e}"))
    }
}

impl Deref for ShardGuard<'_> {
    type Target = ShardView;
    fn deref(&self) -> &ShardView {
        &self.view
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the mutex (taken in lock/try_lock, not released since).
        let _ = unsafe { robust_mutex::unlock(self.mutex) };
    }
}

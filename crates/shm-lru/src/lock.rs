//! Taking a shard's lock. When the previous holder died with it, the shard is rebuilt from its
//! slots before anything else touches it, and only then is the mutex marked consistent. Beside
//! it, the region's application mutex, which callers use for their own ends.

use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::sys::robust_mutex::{self, Locked};
use std::ops::Deref;
use std::time::Duration;

/// Attempts a contended lock makes, pausing between them (1, 2, 4, then 8 `pause`s: a few
/// microseconds in all), before it sleeps in the kernel: a writer holds a shard for well under
/// a microsecond, and a sleep and the wake-up it needs cost several.
const SPINS: u32 = 16;

/// A held shard lock and the view of the shard it guards. Unlocks on drop.
pub(crate) struct ShardGuard<'a> {
    shard: &'a Shard<'a>,
    /// Whether taking the lock rebuilt the shard (its previous holder died).
    recovered: bool,
}

/// Which keys belong to a shard: those whose spread hash has `index` in its `mask` bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Membership {
    pub index: u32,
    pub mask: u32,
}

impl Membership {
    pub(crate) fn belongs(self, h: u64) -> bool {
        (h as u32) & self.mask == self.index
    }
}

impl<'a> ShardGuard<'a> {
    /// Locks `shard`, waiting at most `timeout` if one is given ([`Error::LockTimeout`] then).
    ///
    /// # Safety
    /// `shard`'s header must hold an initialised robust mutex in memory that outlives `'a`.
    #[inline(always)]
    pub(crate) unsafe fn lock(
        shard: &'a Shard<'a>,
        who: Membership,
        timeout: Option<Duration>,
    ) -> Result<ShardGuard<'a>> {
        // SAFETY: the caller guarantees an initialised mutex in live memory.
        match unsafe { robust_mutex::try_lock(shard.mutex()) } {
            Ok(Locked::Clean) => Ok(ShardGuard {
                shard,
                recovered: false,
            }),
            Ok(Locked::WouldBlock) => {
                // SAFETY: as above.
                unsafe { Self::lock_slow(shard, who, timeout) }
            }
            Ok(state) => ShardGuard::held(shard, who, state),
            Err(e) => Err(lock_error(e)),
        }
    }

    /// [`lock`](Self::lock) when the lock was held: try it again a few times, pausing between
    /// ([`SPINS`]), then sleep until it is free; repair the shard if its holder died.
    ///
    /// # Safety
    /// As for [`lock`](Self::lock).
    #[inline(never)]
    unsafe fn lock_slow(
        shard: &'a Shard<'a>,
        who: Membership,
        timeout: Option<Duration>,
    ) -> Result<ShardGuard<'a>> {
        let mutex = shard.mutex();
        for i in 0..SPINS {
            for _ in 0..(1u32 << i.min(3)) {
                std::hint::spin_loop();
            }
            // SAFETY: the caller guarantees an initialised mutex in live memory.
            match unsafe { robust_mutex::try_lock(mutex) }.map_err(lock_error)? {
                Locked::WouldBlock => {}
                state => return ShardGuard::held(shard, who, state),
            }
        }
        let state = match timeout {
            // SAFETY: the caller guarantees an initialised mutex in live memory.
            None => unsafe { robust_mutex::lock_contended(mutex) },
            // SAFETY: as above.
            Some(t) => unsafe { robust_mutex::lock_timeout(mutex, t) },
        }
        .map_err(lock_error)?;
        if state == Locked::WouldBlock {
            let waited = timeout.unwrap_or(robust_mutex::DAMAGE_GRACE);
            // SAFETY: as above: the mutex lies in live memory.
            return Err(match unsafe { robust_mutex::diagnose(mutex) } {
                Some(why) => Error::LockDamaged { waited, why },
                None => Error::LockTimeout(waited),
            });
        }
        ShardGuard::held(shard, who, state)
    }

    /// Takes the lock only if it is free at once.
    ///
    /// # Safety
    /// As for [`lock`](Self::lock).
    #[inline]
    pub(crate) unsafe fn try_lock(shard: &'a Shard<'a>, who: Membership) -> Result<Option<ShardGuard<'a>>> {
        // SAFETY: the caller guarantees an initialised mutex in live memory.
        let state = unsafe { robust_mutex::try_lock(shard.mutex()) }.map_err(lock_error)?;
        if state == Locked::WouldBlock {
            return Ok(None);
        }
        ShardGuard::held(shard, who, state).map(Some)
    }

    #[inline]
    fn held(shard: &'a Shard<'a>, who: Membership, state: Locked) -> Result<ShardGuard<'a>> {
        let guard = ShardGuard {
            shard,
            recovered: false,
        };
        if state == Locked::OwnerDied {
            return guard.recover(who);
        }
        Ok(guard)
    }

    /// Rebuilds the shard that a dead holder left, then marks the mutex consistent.
    #[cold]
    fn recover(mut self, who: Membership) -> Result<ShardGuard<'a>> {
        self.shard.rebuild(|h| who.belongs(h));
        self.recovered = true;
        self.shard.note_recovery();
        // The shared count is set again from every shard's by whoever next can, should this
        // process die before it does (`Cache::lock`).
        self.shard
            .recount_flag()
            .store(1, std::sync::atomic::Ordering::Release);
        // SAFETY: we hold the mutex, obtained with EOWNERDEAD, and the shard is repaired.
        unsafe { robust_mutex::make_consistent(self.shard.mutex()) }.map_err(|source| {
            Error::Unrecoverable {
                op: "pthread_mutex_consistent",
                source,
            }
        })?;
        Ok(self)
    }
}

fn lock_error(source: std::io::Error) -> Error {
    // ENOTRECOVERABLE: a process died holding the lock and its repair was abandoned.
    Error::Unrecoverable {
        op: "pthread_mutex_lock",
        source,
    }
}

impl ShardGuard<'_> {
    /// Whether taking this lock rebuilt the shard after its previous holder died: the cache's
    /// shared count of entries is then to be set again from every shard's (a holder can die
    /// between changing its shard's count and the shared one).
    pub(crate) fn recovered(&self) -> bool {
        self.recovered
    }
}

impl<'a> Deref for ShardGuard<'a> {
    type Target = Shard<'a>;
    fn deref(&self) -> &Shard<'a> {
        self.shard
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the mutex (taken in lock/try_lock, not released since).
        let _ = unsafe { robust_mutex::unlock(self.shard.mutex()) };
    }
}

/// The region's application mutex: robust and process-shared like the shard locks, but guarding
/// nothing of the cache's, so a dead holder only makes the next locker told so.
pub(crate) struct AppMutex<'a> {
    mutex: *mut libc::pthread_mutex_t,
    _region: std::marker::PhantomData<&'a ()>,
}

impl AppMutex<'_> {
    /// # Safety
    /// `mutex` must address an initialised robust mutex in memory that stays mapped for the
    /// lifetime of the returned value.
    pub(crate) unsafe fn new<'a>(mutex: *mut libc::pthread_mutex_t) -> AppMutex<'a> {
        AppMutex {
            mutex,
            _region: std::marker::PhantomData,
        }
    }

    /// Takes the mutex, blocking. Returns `true` when the previous holder died holding it.
    pub(crate) fn lock(&self) -> Result<bool> {
        // SAFETY: `new`'s contract: an initialised mutex in mapped memory.
        let r = unsafe { robust_mutex::lock(self.mutex) }.map_err(app_error)?;
        if r == Locked::WouldBlock {
            // Only a lock found damaged makes a blocking lock give up.
            // SAFETY: as above.
            let why = unsafe { robust_mutex::diagnose(self.mutex) }.unwrap_or_default();
            return Err(Error::LockDamaged {
                waited: robust_mutex::DAMAGE_GRACE,
                why,
            });
        }
        self.consistent(r)
    }

    /// Takes the mutex if it is free at once: `None` if someone else holds it.
    pub(crate) fn try_lock(&self) -> Result<Option<bool>> {
        // SAFETY: as in `lock`.
        let r = unsafe { robust_mutex::try_lock(self.mutex) }.map_err(app_error)?;
        if r == Locked::WouldBlock {
            return Ok(None);
        }
        self.consistent(r).map(Some)
    }

    fn consistent(&self, r: Locked) -> Result<bool> {
        if r == Locked::OwnerDied {
            // SAFETY: we hold the mutex, taken with EOWNERDEAD.
            unsafe { robust_mutex::make_consistent(self.mutex) }.map_err(app_error)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Releases the mutex. Fails if this thread does not hold it.
    pub(crate) fn unlock(&self) -> Result<()> {
        // SAFETY: unlock of a robust mutex checks ownership and fails with EPERM otherwise.
        unsafe { robust_mutex::unlock(self.mutex) }.map_err(Error::NotLockOwner)
    }
}

fn app_error(source: std::io::Error) -> Error {
    Error::Unrecoverable {
        op: "app mutex",
        source,
    }
}

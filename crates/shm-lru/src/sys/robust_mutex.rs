//! Process-shared, robust pthread mutexes placed in shared memory.
//!
//! A robust mutex whose owner dies is handed to the next locker with `EOWNERDEAD`; that locker
//! must repair what the owner protected and call [`make_consistent`] before unlocking, or the
//! mutex becomes permanently unusable (`ENOTRECOVERABLE`).

use super::cvt_errno;
use std::io;

/// Bytes a mutex occupies in the segment.
pub const MUTEX_SIZE: usize = std::mem::size_of::<libc::pthread_mutex_t>();

/// What a lock attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Locked {
    /// Locked normally.
    Clean,
    /// Locked, but the previous owner died holding it: repair, then [`make_consistent`].
    OwnerDied,
    /// `try_lock` only: someone else holds it.
    WouldBlock,
}

/// Initialises a mutex in place as process-shared and robust.
///
/// # Safety
/// `m` must point to `MUTEX_SIZE` writable bytes, suitably aligned, that no process is using as
/// a mutex right now.
pub unsafe fn init(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: pthread_mutexattr_t is plain data; init below gives it its real value.
    let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is a valid, writable attribute object for the calls below, destroyed last.
    unsafe {
        cvt_errno(libc::pthread_mutexattr_init(&mut attr))?;
        let r = (|| {
            cvt_errno(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            cvt_errno(libc::pthread_mutexattr_setrobust(
                &mut attr,
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            std::ptr::write_bytes(m.cast::<u8>(), 0, MUTEX_SIZE);
            cvt_errno(libc::pthread_mutex_init(m, &attr))
        })();
        libc::pthread_mutexattr_destroy(&mut attr);
        r
    }
}

/// Locks, blocking.
///
/// # Safety
/// `m` must point to a mutex initialised by [`init`] in memory that stays mapped.
pub unsafe fn lock(m: *mut libc::pthread_mutex_t) -> io::Result<Locked> {
    // SAFETY: the caller guarantees `m` is a live, initialised mutex.
    match unsafe { libc::pthread_mutex_lock(m) } {
        0 => Ok(Locked::Clean),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Locks if free.
///
/// # Safety
/// As for [`lock`].
pub unsafe fn try_lock(m: *mut libc::pthread_mutex_t) -> io::Result<Locked> {
    // SAFETY: the caller guarantees `m` is a live, initialised mutex.
    match unsafe { libc::pthread_mutex_trylock(m) } {
        0 => Ok(Locked::Clean),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        libc::EBUSY => Ok(Locked::WouldBlock),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Locks, waiting at most `timeout`; [`Locked::WouldBlock`] if it is still held then.
///
/// # Safety
/// As for [`lock`].
pub unsafe fn lock_timeout(
    m: *mut libc::pthread_mutex_t,
    timeout: std::time::Duration,
) -> io::Result<Locked> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    super::cvt(unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) })?;
    let nanos = now.tv_nsec as u64 + timeout.subsec_nanos() as u64;
    let deadline = libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(timeout.as_secs().min(i32::MAX as u64) as libc::time_t)
            + (nanos / 1_000_000_000) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: the caller guarantees `m` is a live, initialised mutex; `deadline` is a valid
    // absolute CLOCK_REALTIME time, as pthread_mutex_timedlock requires.
    match unsafe { libc::pthread_mutex_timedlock(m, &deadline) } {
        0 => Ok(Locked::Clean),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        libc::ETIMEDOUT => Ok(Locked::WouldBlock),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Marks the state protected by a mutex taken with [`Locked::OwnerDied`] as repaired.
///
/// # Safety
/// The calling thread must hold `m`, obtained with `OwnerDied`.
pub unsafe fn make_consistent(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: the caller holds the mutex after EOWNERDEAD, which is what this call requires.
    cvt_errno(unsafe { libc::pthread_mutex_consistent(m) })
}

/// Unlocks.
///
/// # Safety
/// The calling thread must hold `m`.
pub unsafe fn unlock(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: the caller holds the mutex.
    cvt_errno(unsafe { libc::pthread_mutex_unlock(m) })
}

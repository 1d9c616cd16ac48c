//! Process-shared, robust pthread mutexes placed in shared memory.
//!
//! A robust mutex whose owner dies is handed to the next locker with `EOWNERDEAD`; that locker
//! must repair what the owner protected and call [`make_consistent`] before unlocking, or the
//! mutex becomes permanently unusable (`ENOTRECOVERABLE`).
//!
//! A blocked locker never sleeps on the lock for more than [`RECHECK`] at a time. When an owner
//! dies, the kernel marks the lock word and wakes one waiter; if that waiter is killed too
//! before it takes the lock (both processes killed at once, say), the wake-up is lost and the
//! other waiters would sleep on a free lock forever. Waking up to look again bounds that to
//! one interval.

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

/// How long a blocked locker sleeps before it looks at the lock word again.
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Locks, blocking.
///
/// # Safety
/// `m` must point to a mutex initialised by [`init`] in memory that stays mapped.
pub unsafe fn lock(m: *mut libc::pthread_mutex_t) -> io::Result<Locked> {
    // SAFETY: the caller guarantees `m` is a live, initialised mutex.
    match unsafe { try_lock(m) }? {
        Locked::WouldBlock => {}
        got => return Ok(got),
    }
    // SAFETY: as above.
    unsafe { lock_contended(m) }
}

/// [`lock`] after a [`try_lock`] found the mutex held: waits for it, looking at the lock word
/// again every [`RECHECK`].
///
/// # Safety
/// As for [`lock`].
pub unsafe fn lock_contended(m: *mut libc::pthread_mutex_t) -> io::Result<Locked> {
    loop {
        // SAFETY: the caller guarantees `m` is a live, initialised mutex.
        match unsafe { lock_by(m, deadline_after(RECHECK)?) }? {
            Locked::WouldBlock => continue,
            got => return Ok(got),
        }
    }
}

/// Locks if free.
///
/// # Safety
/// As for [`lock`].
#[inline]
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
    let start = std::time::Instant::now();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        // SAFETY: the caller guarantees `m` is a live, initialised mutex.
        match unsafe { lock_by(m, deadline_after(left.min(RECHECK))?) }? {
            Locked::WouldBlock if !left.is_zero() => continue,
            got => return Ok(got),
        }
    }
}

/// The CLOCK_REALTIME time `d` from now, as pthread_mutex_timedlock wants it.
fn deadline_after(d: std::time::Duration) -> io::Result<libc::timespec> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    super::cvt(unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) })?;
    let nanos = now.tv_nsec as u64 + d.subsec_nanos() as u64;
    Ok(libc::timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(d.as_secs().min(i32::MAX as u64) as libc::time_t)
            + (nanos / 1_000_000_000) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    })
}

/// Locks, waiting until `deadline` at most.
///
/// # Safety
/// As for [`lock`].
unsafe fn lock_by(m: *mut libc::pthread_mutex_t, deadline: libc::timespec) -> io::Result<Locked> {
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

/// Why a mutex that could not be taken in time looks damaged, where glibc's layout lets us tell:
/// its kind word no longer says "robust, process-shared", or its lock word names a holder
/// thread that does not exist (a dead holder of a robust mutex would have been reported as
/// such by the kernel; a live one exists). `None` when it looks like a mutex a live thread holds.
///
/// # Safety
/// `m` must point to `MUTEX_SIZE` readable bytes that stay mapped.
pub unsafe fn diagnose(m: *mut libc::pthread_mutex_t) -> Option<String> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        const ROBUST: u32 = 16; // PTHREAD_MUTEX_ROBUST_NORMAL_NP
        const PSHARED: u32 = 128; // PTHREAD_MUTEX_PSHARED_BIT
        const TID_MASK: u32 = 0x3fff_ffff; // FUTEX_TID_MASK
                                           // SAFETY: glibc's mutex starts with the u32 words __lock, __count, __owner, __nusers,
                                           // __kind; the caller guarantees the bytes are mapped; other processes change them only
                                           // with atomic instructions, and any value read is acceptable for a diagnosis.
        let word = |i: usize| unsafe { AtomicU32::from_ptr(m.cast::<u32>().add(i)) }.load(Relaxed);
        let (lock, kind) = (word(0), word(4));
        if kind & (ROBUST | PSHARED) != ROBUST | PSHARED {
            return Some(format!(
                "its bytes are no longer a robust process-shared mutex (kind word {kind:#x}): the lock is damaged"
            ));
        }
        let tid = lock & TID_MASK;
        if tid != 0 && !std::path::Path::new(&format!("/proc/{tid}")).exists() {
            return Some(format!(
                "its lock word names thread {tid} as the holder, and no such thread exists: the lock is damaged"
            ));
        }
        None
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = m;
        None
    }
}

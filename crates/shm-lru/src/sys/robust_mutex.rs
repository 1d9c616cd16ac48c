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
use std::time::Duration;

/// Bytes a mutex occupies in the segment.
pub const MUTEX_SIZE: usize = std::mem::size_of::<libc::pthread_mutex_t>();

/// What a lock attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Locked {
    /// Locked normally.
    Clean,
    /// Locked, but the previous owner died holding it: repair, then [`make_consistent`].
    OwnerDied,
    /// Someone else holds it (`try_lock`), still after the time allowed, or, for a locker with
    /// no time limit, so long that [`diagnose`] found the lock damaged.
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
/// again every [`RECHECK`]. After each [`DAMAGE_GRACE`] of waiting it asks [`diagnose`] whether
/// the lock is damaged (its bytes no longer a mutex, or naming a holder that does not exist),
/// and if so gives up with [`Locked::WouldBlock`] rather than wait for ever.
///
/// # Safety
/// As for [`lock`].
pub unsafe fn lock_contended(m: *mut libc::pthread_mutex_t) -> io::Result<Locked> {
    // SAFETY: the caller guarantees `m` is a live, initialised mutex.
    unsafe { lock_waiting(m, None) }
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
    // SAFETY: the caller guarantees `m` is a live, initialised mutex.
    unsafe { lock_waiting(m, Some(timeout)) }
}

/// How long a locker without a time limit waits before it looks whether the lock is damaged
/// (and again after each such interval). A writer holds a shard for well under a microsecond.
pub const DAMAGE_GRACE: Duration = Duration::from_secs(1);

/// Waits for the mutex in slices of [`RECHECK`], `timeout` at most (or, without one, until
/// [`diagnose`] finds it damaged). Time is measured on the kernel's monotonic clock, read by
/// system call: neither a step of the wall clock nor a process whose clock functions are
/// shifted (libfaketime) makes a wait longer or shorter.
unsafe fn lock_waiting(m: *mut libc::pthread_mutex_t, timeout: Option<Duration>) -> io::Result<Locked> {
    let start = monotonic_now()?;
    let mut next_look = DAMAGE_GRACE;
    loop {
        let waited = monotonic_now()?.saturating_sub(start);
        let left = timeout.map(|t| t.saturating_sub(waited));
        // SAFETY: the caller guarantees `m` is a live, initialised mutex.
        match unsafe { lock_for(m, left.map_or(RECHECK, |l| l.min(RECHECK))) }? {
            Locked::WouldBlock => {}
            got => return Ok(got),
        }
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(Locked::WouldBlock);
        }
        if timeout.is_none() && monotonic_now()?.saturating_sub(start) >= next_look {
            // SAFETY: as above.
            if unsafe { diagnose(m) }.is_some() {
                return Ok(Locked::WouldBlock);
            }
            next_look += DAMAGE_GRACE;
        }
    }
}

/// The kernel's clock `clock` now, by system call (not through the C library, whose clock
/// functions a process may have replaced).
fn kernel_clock(clock: libc::clockid_t) -> io::Result<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the valid, writable `ts`.
    let r = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts as *mut libc::timespec) };
    super::cvt(r as libc::c_int)?;
    Ok(ts)
}

/// Time since an arbitrary point, on the kernel's monotonic clock.
fn monotonic_now() -> io::Result<Duration> {
    let ts = kernel_clock(libc::CLOCK_MONOTONIC)?;
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// `clock`'s time `d` from now.
fn deadline_after(clock: libc::clockid_t, d: Duration) -> io::Result<libc::timespec> {
    let now = kernel_clock(clock)?;
    let nanos = now.tv_nsec as u64 + d.subsec_nanos() as u64;
    // Seconds to add, carry included: at most 2^31 - 1, which every `time_t` holds (its type is
    // left to inference: musl's is moving to 64 bits on every target).
    let secs = d.as_secs().min(i32::MAX as u64 - 1) + nanos / 1_000_000_000;
    Ok(libc::timespec {
        tv_sec: now.tv_sec.saturating_add(secs as _),
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    })
}

/// `pthread_mutex_clocklock`, where the C library has it (glibc 2.30 and later): looked up at
/// run time, so that one build runs on older libraries too.
type ClockLock =
    unsafe extern "C" fn(*mut libc::pthread_mutex_t, libc::clockid_t, *const libc::timespec) -> libc::c_int;

fn clock_lock() -> Option<ClockLock> {
    static FOUND: std::sync::OnceLock<Option<ClockLock>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_mutex_clocklock".as_ptr()) };
        // SAFETY: a non-null `pthread_mutex_clocklock` has this C signature in every C library
        // that defines it (POSIX.1-2024).
        (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, ClockLock>(f) })
    })
}

/// Locks, waiting `d` at most: on the monotonic clock where the C library can, else on the
/// wall clock, both read from the kernel.
///
/// # Safety
/// As for [`lock`].
unsafe fn lock_for(m: *mut libc::pthread_mutex_t, d: Duration) -> io::Result<Locked> {
    let r = match clock_lock() {
        Some(clocklock) => {
            let deadline = deadline_after(libc::CLOCK_MONOTONIC, d)?;
            // SAFETY: the caller guarantees `m` is a live, initialised mutex; `deadline` is a
            // valid absolute CLOCK_MONOTONIC time.
            unsafe { clocklock(m, libc::CLOCK_MONOTONIC, &deadline) }
        }
        None => {
            let deadline = deadline_after(libc::CLOCK_REALTIME, d)?;
            // SAFETY: as above, with an absolute CLOCK_REALTIME time, as
            // pthread_mutex_timedlock requires.
            unsafe { libc::pthread_mutex_timedlock(m, &deadline) }
        }
    };
    match r {
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

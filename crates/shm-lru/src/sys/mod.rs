//! Every call into libc lives below this module. Callers get `io::Result`s; the conversion from C
//! return codes to errors happens in `cvt` and `cvt_errno` only.

mod clock;
pub mod posix;
pub mod robust_mutex;
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd;
pub mod sysv;

use std::io;

/// Turns a libc return value of -1 into the thread's last OS error.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a pthread-style return code (0 or an errno value) into a result.
pub(crate) fn cvt_errno(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

pub use clock::{fresh_now_ms, now_ms, ticked, wall_now_ms};

/// Asks for the cache line at `p` in a state that lets this core write it (PREFETCHW), ahead
/// of a write: the line of a lock that another core took last then arrives with one transfer,
/// not a read and then an upgrade.
#[inline(always)]
pub(crate) fn prefetch_write<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW is a hint that cannot fault or change memory, for any address; a
    // processor without it executes the opcode as a no-op.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the cache line at `p` (PREFETCHT0), ahead of a read whose address the processor
/// would otherwise learn only later.
#[inline(always)]
pub(crate) fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint that cannot fault or change memory, for any address.
    unsafe {
        std::arch::asm!("prefetcht0 [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `x`, through an `asm!` block that emits nothing: the compiler cannot see that the result
/// equals `x`, so it keeps computing with the register it was given rather than with another
/// value it knows to be equal (one that arrives later, say).
#[inline(always)]
pub(crate) fn opaque(x: usize) -> usize {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut x = x;
        // SAFETY: the block holds only a comment: it reads and writes only the register
        // holding `x`, and touches no memory, stack or flags.
        unsafe { std::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags)) };
        x
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    x
}

/// Asks the kernel to back `len` bytes at `addr` with transparent huge pages where it can: a
/// hint that changes no contents. Shared memory gets them only where the administrator allows
/// it: POSIX objects when `/dev/shm` is mounted with `huge=advise` (or `always`), System V
/// segments when `/sys/kernel/mm/transparent_hugepage/shmem_enabled` is `advise` (or
/// `always`); elsewhere, and on any refusal, nothing changes. Mappings under 4 MiB are left
/// alone.
///
/// # Safety
/// `addr`/`len` must be a live mapping of this process.
pub(crate) unsafe fn advise_huge_pages(addr: *mut u8, len: u64) {
    if len < 4 << 20 {
        return;
    }
    // SAFETY: the caller guarantees a live mapping; MADV_HUGEPAGE changes no data, and errors
    // (EINVAL where the kernel lacks THP) are deliberately ignored.
    let _ = unsafe { libc::madvise(addr.cast(), len as libc::size_t, libc::MADV_HUGEPAGE) };
}

/// The calling process's id.
pub fn pid() -> u32 {
    std::process::id()
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let sz = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if sz <= 0 {
        4096
    } else {
        sz as usize
    }
}

/// Whether a process with id `pid` exists (it may belong to another user).
pub fn process_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission; it sends nothing.
    let rc = unsafe { libc::kill(p, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Memory a new allocation may take without pushing the machine into the OOM killer: the
/// kernel's `MemAvailable` estimate plus free swap, from `/proc/meminfo`. `None` when the file
/// cannot be read or lacks the fields (then callers do not limit by it).
///
/// This is the machine's view: a memory cgroup may allow less (its charge fails with `ENOMEM`,
/// which callers report the same way).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.saturating_mul(1024))
    };
    Some(field("MemAvailable:")?.saturating_add(field("SwapFree:").unwrap_or(0)))
}

/// The calling process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

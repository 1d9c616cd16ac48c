//! Whether the machine can back a new segment: kernel limits, free space on `/dev/shm` and
//! memory, checked before creating so that a refusal says which limit and by how much.

use crate::error::{Error, Result};
use crate::sys::{posix, sysv};

/// `size` rounded up to whole pages: what backing store a segment of `size` bytes takes.
fn page_rounded(size: u64) -> u64 {
    let page = crate::sys::page_size() as u64;
    size.div_ceil(page).saturating_mul(page)
}

/// Refuses a segment that the machine's memory cannot back.
fn check_memory(size: u64) -> Result<()> {
    let needed = page_rounded(size);
    match crate::sys::available_memory() {
        Some(available) if needed > available => Err(Error::NoSpace {
            needed: size,
            available,
            limit: "available memory and swap",
        }),
        _ => Ok(()),
    }
}

/// Refuses a System V segment beyond `kernel.shmmax`, `kernel.shmall` or the machine's memory.
///
/// The kernel enforces the first two itself, with bare `EINVAL` and `ENOSPC`; checking first
/// says which limit and by how much. The memory check is this crate's: a System V segment is
/// backed page by page as it is touched, so one larger than what is free would end in the OOM
/// killer rather than an error. Pages are not touched here (a fault past the memory available
/// would wake the OOM killer just the same, only sooner).
pub(super) fn check_sysv_space(size: u64) -> Result<()> {
    if let Ok(l) = sysv::limits() {
        if size > l.shmmax {
            return Err(Error::NoSpace {
                needed: size,
                available: l.shmmax,
                limit: "kernel.shmmax, bytes per System V segment",
            });
        }
        if page_rounded(size) > l.shmall_free {
            return Err(Error::NoSpace {
                needed: size,
                available: l.shmall_free,
                limit: "kernel.shmall, System V shared memory in all",
            });
        }
    }
    check_memory(size)
}

/// Refuses a POSIX object that the free space of `/dev/shm` or the machine's memory cannot back.
pub(super) fn check_posix_space(size: u64) -> Result<()> {
    if let Ok(free) = posix::free_space() {
        if page_rounded(size) > free {
            return Err(Error::NoSpace {
                needed: size,
                available: free,
                limit: "free space on /dev/shm",
            });
        }
    }
    check_memory(size)
}

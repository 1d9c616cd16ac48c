//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`, and the kernel's limits on
//! it (`kernel.shmmax`, `kernel.shmall`).

use super::cvt;
use std::io;

/// What `IPC_STAT` tells about a System V segment.
#[derive(Debug, Clone, Copy)]
pub struct SysvStat {
    /// Size in bytes.
    pub size: u64,
    /// Processes attached right now.
    pub attached: u64,
    /// Owner's user id (the creator may hand ownership to any uid with `IPC_SET`).
    pub uid: u32,
    /// Creator's user id (never changes).
    pub creator_uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Pid of the process that created it.
    pub creator_pid: u32,
}

/// Creates a new segment exclusively. `Ok(None)` if one with that key exists already.
pub fn create(key: i32, size: u64, mode: u32) -> io::Result<Option<i32>> {
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    let id = unsafe {
        libc::shmget(
            key,
            size as libc::size_t,
            libc::IPC_CREAT | libc::IPC_EXCL | (mode as libc::c_int & 0o777),
        )
    };
    match cvt(id) {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Looks up an existing segment. `Ok(None)` if there is none with that key.
pub fn lookup(key: i32) -> io::Result<Option<i32>> {
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::shmget(key, 0, 0) };
    match cvt(id) {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Attaches a segment read-write at an address the kernel picks.
pub fn attach(shmid: i32) -> io::Result<*mut u8> {
    // SAFETY: a null address lets the kernel choose a free range; the result is checked below.
    let p = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
    if p as isize == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Detaches a mapping made by [`attach`].
///
/// # Safety
/// `addr` must come from [`attach`] and must not be used after this call.
pub unsafe fn detach(addr: *mut u8) -> io::Result<()> {
    // SAFETY: the caller guarantees `addr` is a live attachment no longer in use.
    cvt(unsafe { libc::shmdt(addr.cast()) }).map(|_| ())
}

/// `IPC_STAT` on a segment.
pub fn stat(shmid: i32) -> io::Result<SysvStat> {
    // SAFETY: shmid_ds is a plain C struct for which all-zero bytes are valid.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds; IPC_STAT writes only into it.
    cvt(unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) })?;
    Ok(SysvStat {
        size: ds.shm_segsz as u64,
        attached: ds.shm_nattch as u64,
        uid: ds.shm_perm.uid,
        creator_uid: ds.shm_perm.cuid,
        mode: ds.shm_perm.mode as u32 & 0o777,
        creator_pid: ds.shm_cpid as u32,
    })
}

/// Marks a segment for removal; the kernel frees it when the last process detaches.
pub fn remove(shmid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer; a null pointer is what the man page prescribes.
    cvt(unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) }).map(|_| ())
}

/// The kernel's limits on System V shared memory, and what is in use against them.
#[derive(Debug, Clone, Copy)]
pub struct SysvLimits {
    /// `kernel.shmmax`: bytes one segment may have.
    pub shmmax: u64,
    /// `kernel.shmall` less the pages every segment of this IPC namespace holds, in bytes.
    pub shmall_free: u64,
}

/// `SHM_INFO` from `<linux/shm.h>`: the IPC namespace's totals (not in the libc crate).
const SHM_INFO: libc::c_int = 14;

/// `struct shm_info` from `<linux/shm.h>`, which `shmctl(SHM_INFO)` fills.
#[repr(C)]
#[derive(Default)]
struct ShmInfo {
    used_ids: libc::c_int,
    shm_tot: libc::c_ulong,
    shm_rss: libc::c_ulong,
    shm_swp: libc::c_ulong,
    swap_attempts: libc::c_ulong,
    swap_successes: libc::c_ulong,
}

fn read_sysctl(path: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {text:?}")))
}

/// Reads `kernel.shmmax`, `kernel.shmall` and the pages in use (`shmctl(SHM_INFO)`).
#[allow(clippy::unnecessary_cast)] // c_ulong is u64 only on 64-bit targets
pub fn limits() -> io::Result<SysvLimits> {
    let shmmax = read_sysctl("/proc/sys/kernel/shmmax")?;
    let shmall = read_sysctl("/proc/sys/kernel/shmall")?;
    let mut info = ShmInfo::default();
    // SAFETY: SHM_INFO writes a `struct shm_info`, which `ShmInfo` lays out exactly (repr(C),
    // same field types); the kernel ABI documents passing it through the shmid_ds pointer.
    cvt(unsafe { libc::shmctl(0, SHM_INFO, (&mut info as *mut ShmInfo).cast()) })?;
    let page = super::page_size() as u64;
    Ok(SysvLimits {
        shmmax,
        shmall_free: shmall.saturating_sub(info.shm_tot as u64).saturating_mul(page),
    })
}

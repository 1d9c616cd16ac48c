//! POSIX shared memory objects: `shm_open`, `ftruncate`, `posix_fallocate`, `fchmod`, `fstat`,
//! `mmap`, `munmap`, `shm_unlink`, and `statvfs` of the filesystem that holds them.

use super::cvt;
use std::ffi::CString;
use std::io;

fn cname(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

/// Opens (and with `create`, exclusively creates) an object; returns its descriptor.
/// `Ok(None)` when `create` and it exists, or when not `create` and it does not.
pub fn open(name: &str, create: bool, mode: u32) -> io::Result<Option<i32>> {
    let c = cname(name)?;
    let flags = if create {
        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL
    } else {
        libc::O_RDWR
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::mode_t) };
    match cvt(fd) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if create && e.raw_os_error() == Some(libc::EEXIST) => Ok(None),
        Err(e) if !create && e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes an advisory lock (`flock`) on the object: shared or exclusive, waiting or not.
/// Returns whether it was taken (`false`: another descriptor holds a conflicting one). The
/// kernel drops it when its holder's descriptor closes, a process killed by SIGKILL included.
pub fn flock(fd: i32, exclusive: bool, wait: bool) -> io::Result<bool> {
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH } | if wait { 0 } else { libc::LOCK_NB };
    // SAFETY: flock on a descriptor we own; no memory is passed.
    match cvt(unsafe { libc::flock(fd, op) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Drops this descriptor's advisory lock.
pub fn funlock(fd: i32) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    cvt(unsafe { libc::flock(fd, libc::LOCK_UN) }).map(|_| ())
}

/// The object's device, inode and last status change (epoch seconds).
pub fn identity(fd: i32) -> io::Result<(u64, u64, i64)> {
    // SAFETY: fstat fills the zeroed, writable struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `fd` is a descriptor we own.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev, st.st_ino, st.st_ctime))
}

/// Whether the name `name` still names the object open as `fd`.
pub fn names(name: &str, fd: i32) -> io::Result<bool> {
    let Some(other) = open(name, false, 0)? else {
        return Ok(false);
    };
    let same = identity(other).map(|o| identity(fd).map(|f| (o.0, o.1) == (f.0, f.1)));
    close(other);
    same?
}

/// Sets the object's size.
pub fn truncate(fd: i32, size: u64) -> io::Result<()> {
    // SAFETY: ftruncate on a descriptor we own; no memory is passed.
    cvt(unsafe { libc::ftruncate(fd, size as libc::off_t) }).map(|_| ())
}

/// Where glibc keeps POSIX shared memory objects on Linux: `/name` is `/dev/shm/name`.
pub const SHM_DIR: &str = "/dev/shm";

/// Bytes of `len` from 0 reserved per call to `posix_fallocate`, so that a signal interrupting
/// a large reservation costs one chunk, not the whole.
const RESERVE_CHUNK: u64 = 64 << 20;

/// Reserves backing store for bytes `0..len` of the object, so that touching them later cannot
/// fail for want of space (on tmpfs, a fault past the free space raises `SIGBUS`). Returns the
/// error number `posix_fallocate` gave (`ENOSPC`, `ENOMEM`, ...) as an `io::Error`.
pub fn reserve(fd: i32, len: u64) -> io::Result<()> {
    let mut off = 0u64;
    while off < len {
        let n = RESERVE_CHUNK.min(len - off);
        // SAFETY: posix_fallocate on a descriptor we own; no memory is passed. It returns an
        // error number instead of setting errno.
        let rc = unsafe { libc::posix_fallocate(fd, off as libc::off_t, n as libc::off_t) };
        match rc {
            0 => off += n,
            // tmpfs gives up a reservation when a signal arrives; this chunk is retried.
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
    Ok(())
}

/// Sets the object's permission bits exactly (`shm_open` applies the umask; this does not).
pub fn chmod(fd: i32, mode: u32) -> io::Result<()> {
    // SAFETY: fchmod on a descriptor we own; no memory is passed.
    cvt(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(|_| ())
}

/// What `fstat` says about an open object.
#[derive(Debug, Clone, Copy)]
pub struct ObjStat {
    /// Size in bytes.
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits (`0o777` at most).
    pub mode: u32,
    /// Whether it is a regular file (what `shm_open` creates); anything else was planted.
    pub regular: bool,
}

/// Size, owner, mode and type of an open object.
pub fn fstat(fd: i32) -> io::Result<ObjStat> {
    // SAFETY: `stat` is a plain C struct for which all-zero bytes are valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid and writable; fstat writes only into it.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(ObjStat {
        size: st.st_size as u64,
        uid: st.st_uid,
        mode: st.st_mode & 0o777,
        regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
    })
}

/// Bytes an unprivileged process may still allocate on the filesystem holding the objects.
pub fn free_space() -> io::Result<u64> {
    let c = cname(SHM_DIR)?;
    // SAFETY: `statvfs` is a plain C struct for which all-zero bytes are valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` is writable; statvfs writes only
    // into it.
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Maps `len` bytes of `fd` shared, read-write.
pub fn map(fd: i32, len: u64) -> io::Result<*mut u8> {
    // SAFETY: a null hint and a descriptor we own; the result is checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as libc::size_t,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Unmaps a mapping made by [`map`].
///
/// # Safety
/// `addr`/`len` must be exactly a live mapping from [`map`], not used after this call.
pub unsafe fn unmap(addr: *mut u8, len: u64) -> io::Result<()> {
    // SAFETY: the caller guarantees this is a whole live mapping no longer in use.
    cvt(unsafe { libc::munmap(addr.cast(), len as libc::size_t) }).map(|_| ())
}

/// Closes a descriptor.
pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own; errors from close are not actionable here.
    unsafe {
        libc::close(fd);
    }
}

/// Removes the name; mappings stay valid until unmapped. `Ok(false)` if there was no such name.
pub fn unlink(name: &str) -> io::Result<bool> {
    let c = cname(name)?;
    // SAFETY: `c` is a valid NUL-terminated string.
    match cvt(unsafe { libc::shm_unlink(c.as_ptr()) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

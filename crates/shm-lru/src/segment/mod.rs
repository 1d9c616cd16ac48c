//! Shared memory segments: System V segments named by an integer key, and POSIX objects named
//! `/name`. A [`Segment`] is one mapping of one of them into this process. This module also owns
//! the checks that make a mapping safe to touch: space reserved at creation, size checked on
//! attach, and the owner and mode of an existing segment checked against what the caller trusts
//! ([`OpenOptions`]).
//!
//! # What another process can still do
//!
//! A process that may write a segment (its owner, a process of the same uid, root, or anyone
//! its mode lets write) can change every byte of it; the cache's checks catch much of that,
//! not all. For a POSIX object it can also *truncate* it (`ftruncate`, `truncate -s`) after
//! this process mapped it: the mapping keeps its length, and touching a page past the new end
//! raises `SIGBUS`, which kills the process. No system call prevents that for a shared
//! writer (file seals need a memfd, which has no name to share). What this module does:
//!
//! - [`Segment::open_with`] refuses a segment owned by a uid the caller does not trust, or one
//!   whose mode lets more users write than the caller asked for, so by default only the
//!   caller's own uid and root can truncate what it maps;
//! - the size is read on attach, and read again after mapping, so an object already short is
//!   refused ([`Error::Truncated`], or the cache's [`Error::RegionTooSmall`]) instead of mapped;
//! - [`Segment::verify_size`] reads the size again, for callers to use before long or
//!   unattended work (a `check`, a dump, a watch loop) and to report a truncation as an error;
//!   a process that must survive a truncation between two such checks handles `SIGBUS` itself.
//!
//! System V segments cannot be resized, so none of this arises for them.
//!
//! `id.rs` names segments, `trust.rs` vets the owner and mode of an existing one, `space.rs`
//! checks that a new one can be backed, and `totals.rs` counts what this process maps.

use crate::error::{Error, Result};
use crate::sys::{posix, sysv};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod id;
mod space;
mod totals;
mod trust;

pub use id::SegmentId;
use space::{check_posix_space, check_sysv_space};
pub use totals::{totals, Totals};
use totals::{CREATED, MAPPED};
pub use trust::OpenOptions;

/// What the operating system says about a segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo {
    /// Size in bytes.
    pub size: u64,
    /// Attached processes (System V only; POSIX objects do not count them).
    pub attached: Option<u64>,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// A system call's error as this crate reports it: permission refusals get their own variant.
fn os_error(op: &'static str, id: &SegmentId, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::Permission {
            segment: id.to_string(),
            reason: format!("{op}: {e}"),
        },
        _ => Error::io(op, id, e),
    }
}

/// Sizes a new POSIX object, reserves its backing store and maps it.
fn init_posix(id: &SegmentId, fd: i32, size: u64, mode: u32) -> Result<*mut u8> {
    posix::chmod(fd, mode).map_err(|e| os_error("fchmod", id, e))?;
    posix::truncate(fd, size).map_err(|e| os_error("ftruncate", id, e))?;
    match posix::reserve(fd, size) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::ENOMEM | libc::EFBIG)) => {
            // ENOMEM: the memory cgroup (or the machine) refused the pages; otherwise the
            // filesystem is full.
            return Err(if e.raw_os_error() == Some(libc::ENOMEM) {
                Error::NoSpace {
                    needed: size,
                    available: crate::sys::available_memory().unwrap_or(0),
                    limit: "memory the kernel would give (machine or memory cgroup)",
                }
            } else {
                Error::NoSpace {
                    needed: size,
                    available: posix::free_space().unwrap_or(0),
                    limit: "free space on /dev/shm",
                }
            });
        }
        Err(e) => return Err(os_error("posix_fallocate", id, e)),
    }
    posix::map(fd, size).map_err(|e| os_error("mmap", id, e))
}

/// Whether a status change at `ctime` (epoch seconds, whole) was more than a second ago.
fn made_over_a_second_ago(ctime: i64) -> bool {
    (crate::sys::wall_now_ms() / 1000) as i64 > ctime.saturating_add(1)
}

#[derive(Debug)]
enum Kind {
    SysV {
        shmid: i32,
    },
    /// The descriptor stays open with the mapping, so that [`Segment::verify_size`] can read
    /// the size of this very object (its name may since have been removed or reused).
    Posix {
        fd: i32,
    },
}

/// One mapping of a shared memory segment into this process, read-write.
///
/// The bytes are shared with every other process that maps the segment, and any of them may
/// change them at any time. So this type hands out only a raw pointer: never hold a `&` or
/// `&mut` into the mapping across a point where another process could write. Dropping the
/// `Segment` unmaps it; the segment itself lives on until destroyed.
#[derive(Debug)]
pub struct Segment {
    id: SegmentId,
    ptr: NonNull<u8>,
    len: u64,
    kind: Kind,
    created: bool,
}

// SAFETY: `Segment` owns a mapping, not data; the pointer stays valid until drop whichever thread
// holds it, and every access to the bytes goes through raw pointers with its own synchronisation.
unsafe impl Send for Segment {}
// SAFETY: as above: `&Segment` only exposes the raw pointer and immutable metadata.
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates a new segment of `size` bytes with permission bits `mode` (e.g. `0o600`), failing
    /// with [`Error::SegmentExists`] if one of that name exists. The bytes start zeroed.
    ///
    /// `mode` is applied exactly, whatever the process's umask. The memory is reserved now, so
    /// that no later write can find it missing: a POSIX object's pages are allocated on
    /// `/dev/shm` (`posix_fallocate`, which takes time in proportion to `size` and counts the
    /// whole size as used at once); a System V segment is checked against `kernel.shmmax`,
    /// `kernel.shmall` and the memory available (System V has no call that reserves pages
    /// without touching them). Either way [`Error::NoSpace`] says what was needed and what is
    /// free.
    pub fn create(id: &SegmentId, size: u64, mode: u32) -> Result<Segment> {
        if size == 0 {
            return Err(Error::InvalidArgument(
                "segment size must be at least 1 byte".into(),
            ));
        }
        if mode & !0o777 != 0 {
            return Err(Error::InvalidArgument(format!(
                "mode {mode:#o} has bits beyond 0o777"
            )));
        }
        let seg = match id {
            SegmentId::SysV(key) => {
                check_sysv_space(size)?;
                let shmid = match sysv::create(*key, size, mode) {
                    Ok(Some(shmid)) => shmid,
                    Ok(None) => return Err(Error::SegmentExists(id.to_string())),
                    // The kernel's overcommit accounting refused the size.
                    Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                        return Err(Error::NoSpace {
                            needed: size,
                            available: crate::sys::available_memory().unwrap_or(0),
                            limit: "memory the kernel would commit",
                        })
                    }
                    Err(e) => return Err(os_error("shmget", id, e)),
                };
                let ptr = match sysv::attach(shmid) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = sysv::remove(shmid);
                        return Err(os_error("shmat", id, e));
                    }
                };
                Segment::wrap(id.clone(), ptr, size, Kind::SysV { shmid }, true)
            }
            SegmentId::Posix(name) => {
                check_posix_space(size)?;
                let fd = posix::open(name, true, mode)
                    .map_err(|e| os_error("shm_open", id, e))?
                    .ok_or_else(|| Error::SegmentExists(id.to_string()))?;
                // Held until the cache in it is laid out ([`Segment::creation_done`]): a
                // process that finds the object half-made and this lock free knows its creator
                // died (the kernel drops the lock with the descriptor).
                let locked = posix::flock(fd, true, true).map_err(|e| os_error("flock", id, e));
                match locked.and_then(|_| init_posix(id, fd, size, mode)) {
                    Ok(ptr) => Segment::wrap(id.clone(), ptr, size, Kind::Posix { fd }, true),
                    Err(e) => {
                        posix::close(fd);
                        let _ = posix::unlink(name);
                        return Err(e);
                    }
                }
            }
        };
        CREATED.fetch_add(size, Ordering::Relaxed);
        Ok(seg)
    }

    /// Creates a System V segment under a fresh random key.
    pub fn create_unique(size: u64, mode: u32) -> Result<Segment> {
        let local = 0u8;
        let mut seed = crate::sys::wall_now_ms()
            ^ ((crate::sys::pid() as u64) << 32)
            ^ (std::ptr::addr_of!(local) as u64);
        for _ in 0..64 {
            seed = crate::hash::mix64(seed.wrapping_add(0x9e37_79b9_7f4a_7c15));
            let key = ((seed >> 33) as i32 & 0x3fff_ffff) | 0x4000_0000;
            match Segment::create(&SegmentId::SysV(key), size, mode) {
                Err(Error::SegmentExists(_)) => continue,
                other => return other,
            }
        }
        Err(Error::NoFreeKey)
    }

    /// Says that the cache in a segment this process created is laid out: drops the creator's
    /// lock (see [`creator_gone`](Self::creator_gone)).
    pub(crate) fn creation_done(&self) {
        if let Kind::Posix { fd } = self.kind {
            let _ = posix::funlock(fd);
        }
    }

    /// Whether the process that created this segment is gone while the cache in it was not
    /// laid out (the caller saw it unfinished). A POSIX object: its creator's lock is free and
    /// the object was made more than a second ago (a creator takes the lock right after making
    /// it). A System V segment: its creator's pid names no live process.
    pub(crate) fn creator_gone(&self) -> bool {
        match self.kind {
            Kind::Posix { fd } => {
                let old = posix::fstat(fd).is_ok_and(|st| made_over_a_second_ago(st.ctime));
                old && posix::flock(fd, false, false).is_ok_and(|free| {
                    let _ = posix::funlock(fd);
                    free
                })
            }
            Kind::SysV { shmid } => {
                sysv::stat(shmid).is_ok_and(|st| !crate::sys::process_alive(st.creator_pid))
            }
        }
    }

    /// Whether a live creator is laying a cache out in this segment right now (a POSIX object
    /// whose creator's lock is held; never known for System V).
    pub(crate) fn being_created(&self) -> bool {
        match self.kind {
            Kind::Posix { fd } => posix::flock(fd, false, false).is_ok_and(|free| {
                if free {
                    let _ = posix::funlock(fd);
                }
                !free
            }),
            Kind::SysV { .. } => false,
        }
    }

    /// Removes this segment's name, which a dead creator left half-made, unless another process
    /// is doing the same or the name already names another segment. Returns whether it did.
    pub(crate) fn remove_abandoned(&self) -> bool {
        match (&self.id, &self.kind) {
            (SegmentId::Posix(name), Kind::Posix { fd }) => {
                if !posix::flock(*fd, true, false).unwrap_or(false) {
                    return false;
                }
                let removed =
                    posix::names(name, *fd).unwrap_or(false) && posix::unlink(name).unwrap_or(false);
                let _ = posix::funlock(*fd);
                removed
            }
            (_, Kind::SysV { shmid }) => sysv::remove(*shmid).is_ok(),
            _ => false,
        }
    }

    /// Maps an existing segment, failing with [`Error::SegmentNotFound`] if there is none; the same as
    /// [`open_with`](Segment::open_with) with default [`OpenOptions`] (owner: this uid or root;
    /// mode not checked).
    pub fn open(id: &SegmentId) -> Result<Segment> {
        Segment::open_with(id, &OpenOptions::default())
    }

    /// Maps an existing segment if its owner and mode pass `opts` (else [`Error::Permission`])
    /// and it has a size worth mapping; [`Error::SegmentNotFound`] if there is none.
    ///
    /// A POSIX object found shorter after mapping than before (truncated meanwhile) is refused
    /// with [`Error::Truncated`]; one of size 0 with [`Error::BadFormat`]. Whether the size fits
    /// what the region claims to hold is the cache's check, made on the size mapped here.
    pub fn open_with(id: &SegmentId, opts: &OpenOptions) -> Result<Segment> {
        Segment::open_unless_empty(id, opts)?.ok_or_else(|| Error::BadFormat(format!("{id} has size 0")))
    }

    /// Like [`open_with`](Segment::open_with), but a POSIX object of size 0, which is what a
    /// creator's object is between its `shm_open` and its `ftruncate`, is waited for up to
    /// `wait` before it is refused with [`Error::BadFormat`].
    pub(crate) fn open_sized(id: &SegmentId, opts: &OpenOptions, wait: Duration) -> Result<Segment> {
        let start = Instant::now();
        loop {
            if let Some(seg) = Segment::open_unless_empty(id, opts)? {
                return Ok(seg);
            }
            if start.elapsed() >= wait {
                return Err(Error::BadFormat(format!(
                    "{id} has size 0, and was not sized within {wait:?}: truncated, or its creator died"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the POSIX object `id` if it has size 0, was made more than a second ago and
    /// nobody holds its creator's lock: a creator killed before it sized it. Returns whether it
    /// did.
    pub(crate) fn remove_if_never_sized(id: &SegmentId) -> bool {
        let SegmentId::Posix(name) = id else {
            return false;
        };
        let Ok(Some(fd)) = posix::open(name, false, 0) else {
            return false;
        };
        let removed = posix::fstat(fd).is_ok_and(|st| st.size == 0 && made_over_a_second_ago(st.ctime))
            && posix::flock(fd, true, false).unwrap_or(false)
            && posix::names(name, fd).unwrap_or(false)
            && posix::unlink(name).unwrap_or(false);
        posix::close(fd);
        removed
    }

    /// [`open_with`](Segment::open_with), with `None` for a POSIX object of size 0.
    fn open_unless_empty(id: &SegmentId, opts: &OpenOptions) -> Result<Option<Segment>> {
        match id {
            SegmentId::SysV(key) => {
                let (shmid, st) = existing_sysv(id, *key)?;
                opts.vet(id, st.uid, Some(st.creator_uid), st.mode)?;
                let ptr = sysv::attach(shmid).map_err(|e| match e.raw_os_error() {
                    // Removed between the lookup and the attach.
                    Some(libc::EINVAL) | Some(libc::EIDRM) => Error::SegmentNotFound(id.to_string()),
                    _ => os_error("shmat", id, e),
                })?;
                Ok(Some(Segment::wrap(
                    id.clone(),
                    ptr,
                    st.size,
                    Kind::SysV { shmid },
                    false,
                )))
            }
            SegmentId::Posix(name) => {
                let fd = existing_posix(id, name)?;
                match map_existing(id, fd, opts) {
                    Ok(Some((ptr, size))) => Ok(Some(Segment::wrap(
                        id.clone(),
                        ptr,
                        size,
                        Kind::Posix { fd },
                        false,
                    ))),
                    r => {
                        posix::close(fd);
                        r.map(|_| None)
                    }
                }
            }
        }
    }

    /// What the operating system says about a segment, without mapping it.
    pub fn info(id: &SegmentId) -> Result<SegmentInfo> {
        match id {
            SegmentId::SysV(key) => {
                let (_, st) = existing_sysv(id, *key)?;
                Ok(SegmentInfo {
                    size: st.size,
                    attached: Some(st.attached),
                    uid: st.uid,
                    mode: st.mode,
                })
            }
            SegmentId::Posix(name) => {
                let fd = existing_posix(id, name)?;
                let r = posix::fstat(fd).map_err(|e| os_error("fstat", id, e));
                posix::close(fd);
                let st = r?;
                Ok(SegmentInfo {
                    size: st.size,
                    attached: None,
                    uid: st.uid,
                    mode: st.mode,
                })
            }
        }
    }

    /// Removes a segment by name. System V: refused with [`Error::Busy`] while other processes
    /// are attached unless `force` (the kernel then frees it at the last detach). POSIX: the
    /// name goes at once; existing mappings stay valid. Returns `false` if there was none.
    pub fn destroy(id: &SegmentId, force: bool) -> Result<bool> {
        match id {
            SegmentId::SysV(key) => {
                let Some(shmid) = sysv::lookup(*key).map_err(|e| os_error("shmget", id, e))? else {
                    return Ok(false);
                };
                let st = sysv::stat(shmid).map_err(|e| os_error("shmctl(IPC_STAT)", id, e))?;
                if st.attached > 0 && !force {
                    return Err(Error::Busy {
                        segment: id.to_string(),
                        attached: st.attached,
                    });
                }
                sysv::remove(shmid).map_err(|e| os_error("shmctl(IPC_RMID)", id, e))?;
                Ok(true)
            }
            SegmentId::Posix(name) => posix::unlink(name).map_err(|e| os_error("shm_unlink", id, e)),
        }
    }

    fn wrap(id: SegmentId, ptr: *mut u8, len: u64, kind: Kind, created: bool) -> Segment {
        MAPPED.fetch_add(len, Ordering::Relaxed);
        // Large caches are touched at random: ask for huge pages to spare TLB misses.
        // SAFETY: `ptr`/`len` is the whole mapping just made by mmap or shmat.
        unsafe { crate::sys::advise_huge_pages(ptr, len) };
        Segment {
            id,
            // The system calls above never return null on success.
            ptr: NonNull::new(ptr).expect("mapping at address 0"),
            len,
            kind,
            created,
        }
    }

    /// The segment's name.
    pub fn id(&self) -> &SegmentId {
        &self.id
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the segment has no bytes (never true for a mapped segment).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this mapping's `create` made the segment.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The first byte of the mapping. Valid for [`len`](Segment::len) bytes while `self` lives;
    /// other processes may write these bytes at any time.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Processes attached right now (System V), or `None` (POSIX).
    pub fn attached(&self) -> Result<Option<u64>> {
        match self.kind {
            Kind::SysV { shmid } => sysv::stat(shmid)
                .map(|s| Some(s.attached))
                .map_err(|e| os_error("shmctl(IPC_STAT)", &self.id, e)),
            Kind::Posix { .. } => Ok(None),
        }
    }

    /// Reads the size of the mapped object again and fails with [`Error::Truncated`] if it is
    /// now smaller than the mapping (a process with write access truncated it, and touching
    /// the pages past its end would raise `SIGBUS`). System V segments cannot shrink: always
    /// `Ok`. One `fstat`; a truncation right after it is not seen (see the module notes).
    pub fn verify_size(&self) -> Result<()> {
        let Kind::Posix { fd } = self.kind else {
            return Ok(());
        };
        let st = posix::fstat(fd).map_err(|e| os_error("fstat", &self.id, e))?;
        if st.size < self.len {
            return Err(Error::Truncated {
                segment: self.id.to_string(),
                size: st.size,
                mapped: self.len,
            });
        }
        Ok(())
    }

    /// Unmaps, and returns how many attachments remain (System V; 0 for POSIX, which does not
    /// count them). Also marks a created segment as no longer counted in [`totals`]' `created`
    /// when it is gone.
    pub fn detach(self) -> Result<u64> {
        let kind_shmid = match self.kind {
            Kind::SysV { shmid } => Some(shmid),
            Kind::Posix { .. } => None,
        };
        let id = self.id.clone();
        drop(self);
        match kind_shmid {
            Some(shmid) => match sysv::stat(shmid) {
                Ok(st) => Ok(st.attached),
                // Already removed and freed: nobody is attached.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EIDRM)) => Ok(0),
                Err(e) => Err(os_error("shmctl(IPC_STAT)", &id, e)),
            },
            None => Ok(0),
        }
    }

    /// Removes this segment (see [`Segment::destroy`]) and forgets it in the created total.
    pub fn destroy_self(&self, force: bool) -> Result<bool> {
        let r = match self.kind {
            Kind::SysV { shmid } => {
                let st = sysv::stat(shmid).map_err(|e| os_error("shmctl(IPC_STAT)", &self.id, e))?;
                // Our own attachment does not count against removal.
                if st.attached > 1 && !force {
                    return Err(Error::Busy {
                        segment: self.id.to_string(),
                        attached: st.attached - 1,
                    });
                }
                sysv::remove(shmid).map_err(|e| os_error("shmctl(IPC_RMID)", &self.id, e))?;
                true
            }
            Kind::Posix { .. } => Segment::destroy(&self.id, force)?,
        };
        if r && self.created {
            CREATED.fetch_sub(self.len.min(CREATED.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
        Ok(r)
    }
}

/// The id and status of an existing System V segment; [`Error::SegmentNotFound`] if there is none.
fn existing_sysv(id: &SegmentId, key: i32) -> Result<(i32, sysv::SysvStat)> {
    let shmid = sysv::lookup(key)
        .map_err(|e| os_error("shmget", id, e))?
        .ok_or_else(|| Error::SegmentNotFound(id.to_string()))?;
    let st = sysv::stat(shmid).map_err(|e| match e.raw_os_error() {
        // Removed between the lookup and the stat.
        Some(libc::EINVAL) | Some(libc::EIDRM) => Error::SegmentNotFound(id.to_string()),
        _ => os_error("shmctl(IPC_STAT)", id, e),
    })?;
    Ok((shmid, st))
}

/// A descriptor of an existing POSIX object; [`Error::SegmentNotFound`] if there is none.
fn existing_posix(id: &SegmentId, name: &str) -> Result<i32> {
    posix::open(name, false, 0)
        .map_err(|e| os_error("shm_open", id, e))?
        .ok_or_else(|| Error::SegmentNotFound(id.to_string()))
}

/// Vets and maps an open POSIX object whole; returns the mapping and its length, or `None` if
/// the object has size 0.
fn map_existing(id: &SegmentId, fd: i32, opts: &OpenOptions) -> Result<Option<(*mut u8, u64)>> {
    let st = posix::fstat(fd).map_err(|e| os_error("fstat", id, e))?;
    if !st.regular {
        return Err(Error::Permission {
            segment: id.to_string(),
            reason: "not a regular file: something other than shm_open made it".into(),
        });
    }
    opts.vet(id, st.uid, None, st.mode)?;
    if st.size == 0 {
        return Ok(None);
    }
    let ptr = posix::map(fd, st.size).map_err(|e| os_error("mmap", id, e))?;
    // A truncation between the fstat and the mmap would leave pages past the end mapped.
    let now = posix::fstat(fd).map(|s| s.size);
    if !matches!(now, Ok(n) if n >= st.size) {
        // SAFETY: `ptr` is the mapping of `st.size` bytes just made, never handed out.
        let _ = unsafe { posix::unmap(ptr, st.size) };
        return Err(match now {
            Ok(size) => Error::Truncated {
                segment: id.to_string(),
                size,
                mapped: st.size,
            },
            Err(e) => os_error("fstat", id, e),
        });
    }
    Ok(Some((ptr, st.size)))
}

impl Drop for Segment {
    fn drop(&mut self) {
        let r = match self.kind {
            // SAFETY: the pointer came from shmat in `open`/`create` and this is its only unmap;
            // nothing can use it after drop because the Segment owns it.
            Kind::SysV { .. } => unsafe { sysv::detach(self.ptr.as_ptr()) },
            Kind::Posix { fd } => {
                posix::close(fd);
                // SAFETY: as above, from mmap of exactly `len` bytes.
                unsafe { posix::unmap(self.ptr.as_ptr(), self.len) }
            }
        };
        if r.is_ok() {
            MAPPED.fetch_sub(self.len, Ordering::Relaxed);
        }
    }
}

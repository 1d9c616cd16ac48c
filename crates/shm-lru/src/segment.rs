//! Shared memory segments: System V segments named by an integer key, and POSIX objects named
//! `/name`. A [`Segment`] is one mapping of one of them into this process.

use crate::error::{Error, Result};
use crate::sys::{posix, sysv};
use std::fmt;
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

static MAPPED: AtomicU64 = AtomicU64::new(0);
static CREATED: AtomicU64 = AtomicU64::new(0);

/// Bytes this process has mapped right now, and bytes of segments it has created and not
/// destroyed, across every [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Bytes currently mapped by this process.
    pub mapped: u64,
    /// Bytes of segments this process created (and has not destroyed).
    pub created: u64,
}

/// Per-process totals of mapped and created bytes.
pub fn totals() -> Totals {
    Totals {
        mapped: MAPPED.load(Ordering::Relaxed),
        created: CREATED.load(Ordering::Relaxed),
    }
}

/// The name of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SegmentId {
    /// A System V segment, by key (never 0, which is `IPC_PRIVATE`).
    SysV(i32),
    /// A POSIX shared memory object, by name: `/` followed by 1 to 254 characters, none of them
    /// `/` or NUL.
    Posix(String),
}

impl SegmentId {
    /// Validates a System V key.
    pub fn sysv(key: i64) -> Result<SegmentId> {
        if key == 0 {
            return Err(Error::InvalidName("System V key 0 is IPC_PRIVATE".into()));
        }
        let k = i32::try_from(key)
            .or_else(|_| u32::try_from(key).map(|u| u as i32))
            .map_err(|_| Error::InvalidName(format!("System V key {key} does not fit 32 bits")))?;
        Ok(SegmentId::SysV(k))
    }

    /// Validates a POSIX name.
    pub fn posix(name: &str) -> Result<SegmentId> {
        let rest = name
            .strip_prefix('/')
            .ok_or_else(|| Error::InvalidName(format!("{name:?}: POSIX names start with '/'")))?;
        if rest.is_empty() || rest.len() > 254 {
            return Err(Error::InvalidName(format!(
                "{name:?}: POSIX names have 1 to 254 characters after '/'"
            )));
        }
        if rest.contains('/') || rest.contains('\0') || rest == "." || rest == ".." {
            return Err(Error::InvalidName(format!(
                "{name:?}: no '/' or NUL after the leading '/'"
            )));
        }
        Ok(SegmentId::Posix(name.to_string()))
    }
}

impl FromStr for SegmentId {
    type Err = Error;

    /// `/name` is POSIX; a decimal or `0x` hexadecimal integer is a System V key.
    fn from_str(s: &str) -> Result<SegmentId> {
        if s.starts_with('/') {
            return SegmentId::posix(s);
        }
        let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            i64::from_str_radix(hex, 16)
        } else {
            s.parse::<i64>()
        };
        match parsed {
            Ok(k) => SegmentId::sysv(k),
            Err(_) => Err(Error::InvalidName(format!(
                "{s:?}: expected a System V key (integer) or a POSIX name (/name)"
            ))),
        }
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentId::SysV(k) => write!(f, "{k}"),
            SegmentId::Posix(n) => f.write_str(n),
        }
    }
}

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

#[derive(Debug)]
enum Kind {
    SysV { shmid: i32 },
    Posix,
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
    /// with [`Error::Exists`] if one of that name exists. The bytes start zeroed.
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
                let shmid = sysv::create(*key, size, mode)
                    .map_err(|e| Error::io("shmget", id, e))?
                    .ok_or_else(|| Error::Exists(id.to_string()))?;
                let ptr = match sysv::attach(shmid) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = sysv::remove(shmid);
                        return Err(Error::io("shmat", id, e));
                    }
                };
                Segment::wrap(id.clone(), ptr, size, Kind::SysV { shmid }, true)
            }
            SegmentId::Posix(name) => {
                let fd = posix::open(name, true, mode)
                    .map_err(|e| Error::io("shm_open", id, e))?
                    .ok_or_else(|| Error::Exists(id.to_string()))?;
                let mapped = posix::truncate(fd, size)
                    .map_err(|e| Error::io("ftruncate", id, e))
                    .and_then(|()| posix::map(fd, size).map_err(|e| Error::io("mmap", id, e)));
                posix::close(fd);
                match mapped {
                    Ok(ptr) => Segment::wrap(id.clone(), ptr, size, Kind::Posix, true),
                    Err(e) => {
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
        let mut seed =
            crate::sys::now_ms() ^ ((crate::sys::pid() as u64) << 32) ^ (std::ptr::addr_of!(local) as u64);
        for _ in 0..64 {
            seed = crate::hash::mix64(seed.wrapping_add(0x9e37_79b9_7f4a_7c15));
            let key = ((seed >> 33) as i32 & 0x3fff_ffff) | 0x4000_0000;
            match Segment::create(&SegmentId::SysV(key), size, mode) {
                Err(Error::Exists(_)) => continue,
                other => return other,
            }
        }
        Err(Error::InvalidArgument(
            "could not find a free System V key".into(),
        ))
    }

    /// Maps an existing segment, failing with [`Error::NotFound`] if there is none.
    pub fn open(id: &SegmentId) -> Result<Segment> {
        match id {
            SegmentId::SysV(key) => {
                let (shmid, st) = existing_sysv(id, *key)?;
                let ptr = sysv::attach(shmid).map_err(|e| Error::io("shmat", id, e))?;
                Ok(Segment::wrap(
                    id.clone(),
                    ptr,
                    st.size,
                    Kind::SysV { shmid },
                    false,
                ))
            }
            SegmentId::Posix(name) => {
                let fd = existing_posix(id, name)?;
                let r = posix::fstat(fd)
                    .map_err(|e| Error::io("fstat", id, e))
                    .and_then(|(size, _, _)| {
                        if size == 0 {
                            return Err(Error::BadFormat(format!("{id} has size 0")));
                        }
                        posix::map(fd, size)
                            .map(|p| (p, size))
                            .map_err(|e| Error::io("mmap", id, e))
                    });
                posix::close(fd);
                let (ptr, size) = r?;
                Ok(Segment::wrap(id.clone(), ptr, size, Kind::Posix, false))
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
                let r = posix::fstat(fd).map_err(|e| Error::io("fstat", id, e));
                posix::close(fd);
                let (size, uid, mode) = r?;
                Ok(SegmentInfo {
                    size,
                    attached: None,
                    uid,
                    mode,
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
                let Some(shmid) = sysv::lookup(*key).map_err(|e| Error::io("shmget", id, e))? else {
                    return Ok(false);
                };
                let st = sysv::stat(shmid).map_err(|e| Error::io("shmctl(IPC_STAT)", id, e))?;
                if st.attached > 0 && !force {
                    return Err(Error::Busy {
                        segment: id.to_string(),
                        attached: st.attached,
                    });
                }
                sysv::remove(shmid).map_err(|e| Error::io("shmctl(IPC_RMID)", id, e))?;
                Ok(true)
            }
            SegmentId::Posix(name) => posix::unlink(name).map_err(|e| Error::io("shm_unlink", id, e)),
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
                .map_err(|e| Error::io("shmctl(IPC_STAT)", &self.id, e)),
            Kind::Posix => Ok(None),
        }
    }

    /// Unmaps, and returns how many attachments remain (System V; 0 for POSIX, which does not
    /// count them). Also marks a created segment as no longer counted in [`totals`]' `created`
    /// when it is gone.
    pub fn detach(self) -> Result<u64> {
        let kind_shmid = match self.kind {
            Kind::SysV { shmid } => Some(shmid),
            Kind::Posix => None,
        };
        let id = self.id.clone();
        drop(self);
        match kind_shmid {
            Some(shmid) => match sysv::stat(shmid) {
                Ok(st) => Ok(st.attached),
                // Already removed and freed: nobody is attached.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EIDRM)) => Ok(0),
                Err(e) => Err(Error::io("shmctl(IPC_STAT)", id, e)),
            },
            None => Ok(0),
        }
    }

    /// Removes this segment (see [`Segment::destroy`]) and forgets it in the created total.
    pub fn destroy_self(&self, force: bool) -> Result<bool> {
        let r = match self.kind {
            Kind::SysV { shmid } => {
                let st = sysv::stat(shmid).map_err(|e| Error::io("shmctl(IPC_STAT)", &self.id, e))?;
                // Our own attachment does not count against removal.
                if st.attached > 1 && !force {
                    return Err(Error::Busy {
                        segment: self.id.to_string(),
                        attached: st.attached - 1,
                    });
                }
                sysv::remove(shmid).map_err(|e| Error::io("shmctl(IPC_RMID)", &self.id, e))?;
                true
            }
            Kind::Posix => Segment::destroy(&self.id, force)?,
        };
        if r && self.created {
            CREATED.fetch_sub(self.len.min(CREATED.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
        Ok(r)
    }
}

/// The id and status of an existing System V segment; [`Error::NotFound`] if there is none.
fn existing_sysv(id: &SegmentId, key: i32) -> Result<(i32, sysv::SysvStat)> {
    let shmid = sysv::lookup(key)
        .map_err(|e| Error::io("shmget", id, e))?
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    let st = sysv::stat(shmid).map_err(|e| Error::io("shmctl(IPC_STAT)", id, e))?;
    Ok((shmid, st))
}

/// A descriptor of an existing POSIX object; [`Error::NotFound`] if there is none.
fn existing_posix(id: &SegmentId, name: &str) -> Result<i32> {
    posix::open(name, false, 0)
        .map_err(|e| Error::io("shm_open", id, e))?
        .ok_or_else(|| Error::NotFound(id.to_string()))
}

impl Drop for Segment {
    fn drop(&mut self) {
        let r = match self.kind {
            // SAFETY: the pointer came from shmat in `open`/`create` and this is its only unmap;
            // nothing can use it after drop because the Segment owns it.
            Kind::SysV { .. } => unsafe { sysv::detach(self.ptr.as_ptr()) },
            // SAFETY: as above, from mmap of exactly `len` bytes.
            Kind::Posix => unsafe { posix::unmap(self.ptr.as_ptr(), self.len) },
        };
        if r.is_ok() {
            MAPPED.fetch_sub(self.len, Ordering::Relaxed);
        }
    }
}

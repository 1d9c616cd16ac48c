//! Finding segments and who uses them, from what Linux publishes in `/proc`, `/dev/shm` and
//! `/etc/passwd`, and from the engine's [`Segment::info`]. [`Facts`] is the one description of
//! a segment the commands see, whichever source it came from. Nothing here maps a segment; the
//! engine does that.

use shm_lru::{Segment, SegmentId, SegmentInfo};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where POSIX shared memory objects live as files.
pub const DEV_SHM: &str = "/dev/shm";

/// What the system says about one segment, before anyone looks inside it.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Its name.
    pub id: SegmentId,
    /// Size in bytes.
    pub size: u64,
    /// Processes attached (System V: the kernel's count; POSIX: processes mapping it, as far as
    /// `/proc/*/maps` shows).
    pub attached: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
}

impl Facts {
    /// The engine's facts about segment `id`, with the attached count it cannot give for POSIX
    /// objects taken from [`posix_attached`].
    pub fn new(id: SegmentId, info: SegmentInfo) -> Facts {
        let attached = match &id {
            SegmentId::SysV(_) => info.attached.unwrap_or(0),
            SegmentId::Posix(name) => info.attached.unwrap_or_else(|| posix_attached(name)),
        };
        Facts {
            id,
            size: info.size,
            attached,
            uid: info.uid,
            mode: info.mode,
        }
    }
}

/// What the system says about segment `id` now.
pub fn lookup(id: &SegmentId) -> shm_lru::Result<Facts> {
    Ok(Facts::new(id.clone(), Segment::info(id)?))
}

/// Every System V segment with a key (segments under `IPC_PRIVATE`, including those already
/// removed but still attached, cannot be named and are left out).
pub fn sysv_segments() -> io::Result<Vec<Facts>> {
    let text = fs::read_to_string("/proc/sysvipc/shm")?;
    Ok(parse_sysvipc(&text))
}

fn parse_sysvipc(text: &str) -> Vec<Facts> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(k), Some(p), Some(s), Some(n), Some(u)) =
        (col("key"), col("perms"), col("size"), col("nattch"), col("uid"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let Ok(key) = get(k).parse::<i64>() else { continue };
        if key == 0 {
            continue;
        }
        let Ok(id) = SegmentId::sysv(key) else { continue };
        out.push(Facts {
            id,
            size: get(s).parse().unwrap_or(0),
            attached: get(n).parse().unwrap_or(0),
            uid: get(u).parse().unwrap_or(0),
            mode: u32::from_str_radix(get(p), 8).unwrap_or(0) & 0o777,
        });
    }
    out
}

/// Every regular file in `/dev/shm` whose name is a valid POSIX object name, with attached
/// counts from [`posix_mappers`].
pub fn posix_objects() -> io::Result<Vec<Facts>> {
    let mappers = posix_mappers();
    let mut out = Vec::new();
    for entry in fs::read_dir(DEV_SHM)? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(id) = SegmentId::posix(&format!("/{name}")) else {
            continue;
        };
        out.push(Facts {
            id,
            size: meta.len(),
            attached: mappers.get(&name).copied().unwrap_or(0),
            uid: meta.uid(),
            mode: meta.mode() & 0o777,
        });
    }
    out.sort_by_key(|f| f.id.to_string());
    Ok(out)
}

/// For each POSIX object name, how many processes other than this one map it, as found in
/// `/proc/*/maps` (best effort: unreadable processes are skipped).
pub fn posix_mappers() -> HashMap<String, u64> {
    let me = std::process::id().to_string();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return counts;
    };
    let prefix = format!("{DEV_SHM}/");
    for entry in dir.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid.to_str() else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(maps) = fs::read_to_string(Path::new("/proc").join(pid).join("maps")) else {
            continue;
        };
        let mut names: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.find(&prefix).map(|i| &l[i + prefix.len()..]))
            .map(|rest| rest.strip_suffix(" (deleted)").unwrap_or(rest))
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            *counts.entry(n.to_string()).or_default() += 1;
        }
    }
    counts
}

/// Processes other than this one that map POSIX object `name` (`/name`).
pub fn posix_attached(name: &str) -> u64 {
    let bare = name.strip_prefix('/').unwrap_or(name);
    posix_mappers().get(bare).copied().unwrap_or(0)
}

/// User names by uid, from `/etc/passwd` (empty if unreadable).
pub fn user_names() -> HashMap<u32, String> {
    let Ok(text) = fs::read_to_string("/etc/passwd") else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_sysvipc_shm() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                    1234         5   600                  8192   10    11      2  1000  1000  1000  1000 0 0 0 8192 0\n\
                    0            6   666                  4096   10    11      1     0     0     0     0 0 0 0 4096 0\n\
                    -5           7  1644                   100   10    11      0     0     0     0     0 0 0 0 4096 0\n";
        let v = parse_sysvipc(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].id, SegmentId::SysV(1234));
        assert_eq!(
            (v[0].size, v[0].attached, v[0].uid, v[0].mode),
            (8192, 2, 1000, 0o600)
        );
        assert_eq!(v[1].id, SegmentId::SysV(-5));
        assert_eq!(v[1].mode, 0o644);
    }
}

//! The names of segments: System V keys and POSIX names, parsed and checked.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

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

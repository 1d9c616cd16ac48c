//! Which owners and modes of an existing segment a caller trusts ([`OpenOptions`]).

use super::SegmentId;
use crate::error::{Error, Result};

/// Which users [`Segment::open_with`](super::Segment::open_with) accepts as the owner of an
/// existing segment, and which write permissions it accepts the segment to grant.
///
/// By default a segment is opened only if it is owned by the caller's effective uid or by root
/// (for System V, its creator must be one of them too: a creator can hand ownership to any uid
/// with `IPC_SET`). This holds for root as well: root opening a segment another user owns is
/// refused, since that user may have planted its contents and may truncate it under root's
/// mapping. Root-owned segments are accepted because root can write any process's memory
/// anyway; refusing them would protect nothing.
///
/// ```
/// use shm_lru::{OpenOptions, Segment, SegmentId};
/// let id: SegmentId = format!("/open-options-{}", std::process::id()).parse()?;
/// let made = Segment::create(&id, 4096, 0o600)?;
/// // Opened as the creator asked: owner only, nobody else may write.
/// let seg = Segment::open_with(&id, &OpenOptions { mode: Some(0o600), ..Default::default() })?;
/// assert_eq!(seg.len(), 4096);
/// Segment::destroy(&id, true)?;
/// # Ok::<(), shm_lru::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// One more uid trusted to own (and for System V, to have created) the segment, besides
    /// the caller's effective uid and root. `None`: only those two.
    pub trust_owner: Option<u32>,
    /// The permission bits the caller would have created the segment with. With `Some(m)`, a
    /// segment whose mode grants write to its group or to others where `m` does not is
    /// refused (it may have been written by users the caller never meant to share with).
    /// `None`: no check of the mode.
    pub mode: Option<u32>,
}

impl OpenOptions {
    /// Refuses (with [`Error::Permission`]) an owner or mode this caller does not trust.
    pub(super) fn vet(&self, id: &SegmentId, owner: u32, creator: Option<u32>, mode: u32) -> Result<()> {
        let me = crate::sys::euid();
        let trusted = |uid: u32| uid == me || uid == 0 || self.trust_owner == Some(uid);
        let deny = |reason: String| Error::Permission {
            segment: id.to_string(),
            reason,
        };
        if !trusted(owner) {
            return Err(deny(format!(
                "owned by uid {owner}, not by this process's uid {me} or root; \
                 open it with trust_owner: Some({owner}) if that user is trusted"
            )));
        }
        if let Some(c) = creator.filter(|&c| !trusted(c)) {
            return Err(deny(format!(
                "created by uid {c} (owner now {owner}), not by this process's uid {me} or root; \
                 open it with trust_owner: Some({c}) if that user is trusted"
            )));
        }
        if let Some(want) = self.mode {
            let extra = mode & 0o022 & !want;
            if extra != 0 {
                return Err(deny(format!(
                    "mode {mode:#o} lets {} write, more than the requested mode {want:#o} allows",
                    match (extra & 0o020 != 0, extra & 0o002 != 0) {
                        (true, true) => "its group and others",
                        (true, false) => "its group",
                        _ => "others",
                    }
                )));
            }
        }
        Ok(())
    }
}

//! What [`Cache::check`](crate::Cache::check) and [`Cache::repair`](crate::Cache::repair)
//! report. The checking itself is `shard/invariants.rs`.

use std::fmt;

/// What [`Cache::check`](crate::Cache::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Shards checked.
    pub shards: u32,
    /// Entries found on the recency lists.
    pub entries: u64,
    /// Slots found on the free lists or never used.
    pub free: u64,
    /// One line per violated invariant; empty when the cache is sound.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether no invariant is violated.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} shard(s), {} entries, {} free slots: {}",
            self.shards,
            self.entries,
            self.free,
            if self.is_ok() { "ok" } else { "PROBLEMS" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// What [`Cache::repair`](crate::Cache::repair) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// What was wrong before the repair.
    pub before: CheckReport,
    /// Shards rebuilt (those `check` found a problem in).
    pub rebuilt: u32,
    /// Entries kept in the rebuilt shards.
    pub kept: u64,
    /// Slots dropped from the rebuilt shards because they could not be trusted (mid-write,
    /// lengths over the record, a key that does not match its hash or shard, a duplicate).
    pub dropped: u64,
    /// Whether the cache's shared count of entries was set again to the sum of its shards'.
    pub recounted: bool,
    /// What `check` finds after the repair (empty problems when it worked).
    pub after: CheckReport,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.before)?;
        writeln!(
            f,
            "rebuilt {} shard(s): kept {} entries, dropped {} untrustworthy slot(s)",
            self.rebuilt, self.kept, self.dropped
        )?;
        if self.recounted {
            writeln!(f, "set the cache's count of entries to the shards' sum")?;
        }
        write!(f, "after: {}", self.after)
    }
}

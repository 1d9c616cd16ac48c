//! Removing every entry whose key starts with given bytes, in one pass over the shards.

use super::Cache;
use crate::error::Result;
use crate::key::Key;
use crate::layout::shard_header;
use crate::shard::{expired, Toward};

impl Cache {
    /// Removes every entry whose byte key starts with `prefix` (an empty prefix removes every
    /// byte-keyed entry); returns how many live entries it removed. Entries stored under a
    /// 64-bit key by the original API have no bytes to match and are kept.
    ///
    /// One pass: each shard is locked once and its recency list walked from head to tail, so
    /// the call costs one walk over the cache whatever the number of matches. Entries set under
    /// the prefix while the pass runs may be kept if their shard was already passed.
    pub fn remove_prefix(&self, prefix: &[u8]) -> Result<u64> {
        self.seg.verify_size()?;
        let now = self.now_ms();
        let mut removed = 0;
        for s in 0..self.params.geo.shards {
            let g = self.lock(s)?;
            // The walk reads each entry's link before yielding it, so removing it is safe.
            for id in g.walk(g.head(), Toward::Tail) {
                let m = g.meta(id);
                if let Key::Bytes(k) = g.key_of(id, &m) {
                    if k.starts_with(prefix) {
                        g.remove_slot(id);
                        if expired(m.expires, now) {
                            g.bump(shard_header::EXPIRATIONS);
                        } else {
                            g.bump(shard_header::REMOVES);
                            removed += 1;
                        }
                    }
                }
            }
        }
        Ok(removed)
    }
}

//! The original API's slot ids: a global id names a slot of one shard, and calls by id lock
//! that shard.

use super::Cache;
use crate::error::{Error, Result};
use crate::layout::shard_header;
use crate::lock::ShardGuard;
use crate::options::{Entry, ValueKind};
use crate::shard::expired;

impl Cache {
    fn locate_slot(&self, slot: u64) -> Result<(u32, u32)> {
        if slot == 0 || slot > self.slots() {
            return Err(Error::NoSuchSlot(slot));
        }
        let per = self.params.geo.slots_per_shard as u64;
        Ok((((slot - 1) / per) as u32, ((slot - 1) % per) as u32 + 1))
    }

    fn with_slot<R>(&self, slot: u64, f: impl FnOnce(&ShardGuard<'_>, u32, u32) -> Result<R>) -> Result<R> {
        let (shard, local) = self.locate_slot(slot)?;
        let now = self.now_ms();
        let g = self.lock(shard)?;
        if !g.holds_entry(local) {
            return Err(Error::SlotFree(slot));
        }
        if expired(g.meta(local).expires, now) {
            g.remove_slot(local);
            g.bump(shard_header::EXPIRATIONS);
            return Err(Error::SlotFree(slot));
        }
        f(&g, shard, local)
    }

    /// Calls `f` with the value in slot `slot`, without marking it used.
    /// [`Error::NoSuchSlot`] for 0 or beyond the slots, [`Error::SlotFree`] for a free slot.
    pub fn get_slot_with<R>(&self, slot: u64, f: impl FnOnce(&[u8], ValueKind) -> R) -> Result<R> {
        self.with_slot(slot, |g, _, id| {
            let m = g.meta(id);
            // A budget entry whose record is damaged is no entry, as for `get`.
            let value = g.value_of(id, &m).ok_or(Error::SlotFree(slot))?;
            Ok(f(&value, ValueKind::from_flags(m.flags)))
        })
    }

    /// The whole entry in slot `slot`.
    pub fn slot_entry(&self, slot: u64) -> Result<Entry> {
        self.with_slot(slot, |g, s, id| {
            let c = g.copy(id).ok_or(Error::SlotFree(slot))?;
            Ok(self.entry(s, c))
        })
    }

    /// Removes the entry in slot `slot`.
    pub fn remove_slot(&self, slot: u64) -> Result<()> {
        self.with_slot(slot, |g, _, id| {
            g.remove_slot(id);
            g.bump(shard_header::REMOVES);
            Ok(())
        })
    }

    /// Sets the share key of the entry in slot `slot`.
    pub fn set_share_key(&self, slot: u64, share_key: u32) -> Result<()> {
        self.with_slot(slot, |g, _, id| {
            g.set_share(id, share_key);
            Ok(())
        })
    }
}

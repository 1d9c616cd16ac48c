//! Rebuilding a shard from its slots after a process died holding its lock.
//!
//! The slots are the source of truth; the index chains, the recency list, the free list and
//! the count are derived. A slot counts as an entry when it is occupied, not mid-write, and its
//! lengths fit the record; anything else is freed. The recency order is rebuilt from the slots'
//! times of last use.

use crate::key::{spread_stored, KeyRef};
use crate::layout::{F_BYTES_KEY, F_OCCUPIED, F_WRITING};
use crate::slots::ShardView;

/// Rebuilds `view`'s derived structures from its slots. The caller holds the shard lock.
pub(crate) fn rebuild(view: &ShardView) {
    let n = view.unused();
    view.zero_buckets();
    view.set_head(0);
    view.set_tail(0);
    view.set_free_head(0);
    view.set_len(0);
    let mut live = vec![false; n as usize + 1];
    let mut order: Vec<(u64, u32)> = Vec::new();
    for id in 1..=n {
        let m = view.meta(id);
        if m.flags & F_OCCUPIED == 0 || m.flags & F_WRITING != 0 || !view.lengths_ok(&m) {
            continue;
        }
        let bytes_key = m.flags & F_BYTES_KEY != 0;
        let h = spread_stored(m.key, bytes_key);
        let kb;
        let key = if bytes_key {
            kb = view.key_bytes(id, m.klen).to_vec();
            KeyRef::Bytes(&kb)
        } else {
            KeyRef::Hash(m.key)
        };
        // Two slots with one key cannot arise from the write order, but a duplicate must not
        // survive a rebuild: keep the first.
        if view.lookup(&key, m.key, h).is_some() {
            continue;
        }
        view.index_insert(id, h);
        live[id as usize] = true;
        order.push((m.used, id));
    }
    order.sort_unstable();
    for &(_, id) in &order {
        view.push_front(id);
    }
    for id in (1..=n).rev() {
        if !live[id as usize] {
            view.push_free(id);
        }
    }
    view.set_len(order.len() as u32);
}

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

#[cfg(test)]
mod tests {
    use super::rebuild;
    use crate::check::{check_shard, CheckReport};
    use crate::key::KeyRef;
    use crate::layout::F_WRITING;
    use crate::list::tests::{heap_shard, order};
    use crate::shard::{Hashed, SetMode, ValueKind};

    fn put(v: &crate::slots::ShardView, k: u64, now: u64) -> u32 {
        let key = Hashed::new(KeyRef::Hash(k));
        v.set(
            &key,
            &k.to_le_bytes(),
            ValueKind::Bytes,
            0,
            SetMode::Upsert,
            false,
            now,
        )
        .unwrap()
        .id
    }

    fn sound(v: &crate::slots::ShardView) {
        let mut r = CheckReport::default();
        check_shard(v, 0, 1, &mut r);
        assert!(r.is_ok(), "{r}");
    }

    #[test]
    fn rebuild_keeps_entries_in_order_of_use_and_drops_half_written_ones() {
        let s = heap_shard(8, 16);
        let v = &s.view;
        // Slots 1..=5 for keys 0..5, used at times 10, 50, 20, 40, 30.
        for (k, t) in [(0u64, 10u64), (1, 50), (2, 20), (3, 40), (4, 30)] {
            put(v, k, t);
        }
        let removed = put(v, 9, 60);
        let h9 = Hashed::new(KeyRef::Hash(9)).h;
        v.remove_entry(removed, h9);
        // Key 2 (slot 3) was being overwritten when its writer died.
        v.set_flags(3, v.flags(3) | F_WRITING);
        // Scramble the derived state.
        v.set_head(4);
        v.set_tail(4);
        v.set_len(99);
        v.set_free_head(1);
        rebuild(v);
        sound(v);
        assert_eq!(order(v), vec![2, 4, 5, 1], "most recently used first");
        assert_eq!(v.len(), 4);
        assert_eq!(
            v.lookup(&KeyRef::Hash(2), 2, Hashed::new(KeyRef::Hash(2)).h),
            None
        );
        assert_eq!(
            v.lookup(&KeyRef::Hash(3), 3, Hashed::new(KeyRef::Hash(3)).h),
            Some(4)
        );
        // Slots 3 and 6 are free again, and used before any never-used slot.
        let mut again = vec![v.pop_free().unwrap(), v.pop_free().unwrap()];
        again.sort();
        assert_eq!(again, vec![3, 6]);
        assert_eq!(v.pop_free(), Some(7));
    }

    #[test]
    fn rebuild_keeps_one_of_two_slots_with_the_same_key() {
        let s = heap_shard(4, 16);
        let v = &s.view;
        put(v, 7, 1);
        put(v, 8, 2);
        // Make slot 2 a second copy of key 7.
        v.set_key_word(2, 7);
        rebuild(v);
        sound(v);
        assert_eq!(v.len(), 1);
        assert_eq!(order(v), vec![1]);
    }
}

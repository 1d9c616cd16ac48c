//! The recency list (head = most recently used, tail = least) and the free list, both threaded
//! through slot ids with 0 meaning none. The free list uses only `next`; slots above the
//! shard's `unused` mark have never been handed out and are taken in order before it grows.

use crate::slots::ShardView;

impl ShardView {
    /// Puts a detached slot at the head.
    pub(crate) fn push_front(&self, id: u32) {
        let old = self.head();
        self.set_prev(id, 0);
        self.set_next(id, old);
        if old != 0 {
            self.set_prev(old, id);
        } else {
            self.set_tail(id);
        }
        self.set_head(id);
    }

    /// Takes a slot out of the recency list.
    pub(crate) fn unlink(&self, id: u32) {
        let p = self.prev(id);
        let n = self.next(id);
        if p != 0 {
            self.set_next(p, n);
        } else {
            self.set_head(n);
        }
        if n != 0 {
            self.set_prev(n, p);
        } else {
            self.set_tail(p);
        }
        self.set_prev(id, 0);
        self.set_next(id, 0);
    }

    /// Marks a slot most recently used.
    #[inline]
    pub(crate) fn move_to_front(&self, id: u32) {
        if self.head() != id {
            self.unlink(id);
            self.push_front(id);
        }
    }

    /// A slot to fill: from the free list, else the next never-used one.
    pub(crate) fn pop_free(&self) -> Option<u32> {
        let f = self.free_head();
        if f != 0 {
            self.set_free_head(self.next(f));
            self.set_next(f, 0);
            return Some(f);
        }
        let u = self.unused();
        if u < self.cap() {
            // A slot above the mark is all zeros only in a fresh segment: after `clear` or in a
            // re-laid region it keeps an old entry's bytes, flags included. Mark it free before
            // it counts as handed out, so that a crash before it is written cannot bring that
            // entry back when recovery scans the slots.
            self.set_flags(u + 1, 0);
            self.set_unused(u + 1);
            Some(u + 1)
        } else {
            None
        }
    }

    /// Returns an emptied slot to the free list. Its flags are cleared first, so that a crash
    /// at any point leaves it recognisably free.
    pub(crate) fn push_free(&self, id: u32) {
        self.set_flags(id, 0);
        self.set_prev(id, 0);
        self.set_chain(id, 0);
        self.set_next(id, self.free_head());
        self.set_free_head(id);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::key::KeyRef;
    use crate::layout::{F_OCCUPIED, SHARD_SIZE, SLOT_HEADER};
    use crate::shard::{Hashed, SetMode, ValueKind};
    use crate::slots::ShardView;

    /// A shard laid out in heap memory, for testing the algorithm without a segment. The
    /// single-threaded test stands in for the shard lock.
    pub(crate) struct HeapShard {
        _mem: Vec<u64>,
        pub(crate) view: ShardView,
    }

    pub(crate) fn heap_shard(cap: u32, record_size: u32) -> HeapShard {
        let stride = (SLOT_HEADER as usize + record_size as usize).div_ceil(8) * 8;
        let hdr_words = SHARD_SIZE as usize / 8;
        let bucket_words = (cap as usize * 4).div_ceil(8);
        let mut mem = vec![0u64; hdr_words + bucket_words + cap as usize * stride / 8];
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: header, buckets and slots are disjoint, 8-aligned parts of `mem` with the
        // sizes ShardView::new requires; `mem`'s buffer lives (unmoved) as long as the view,
        // since both are in the returned HeapShard; only one thread uses it.
        let view = unsafe {
            ShardView::new(
                base,
                base.add(hdr_words * 8).cast(),
                base.add((hdr_words + bucket_words) * 8),
                cap,
                stride,
                record_size,
            )
        };
        HeapShard { _mem: mem, view }
    }

    /// Keys from head to tail, following `next`, checking `prev` on the way.
    pub(crate) fn order(v: &ShardView) -> Vec<u32> {
        let mut out = Vec::new();
        let mut prev = 0;
        let mut id = v.head();
        while id != 0 {
            assert_eq!(v.prev(id), prev);
            out.push(id);
            prev = id;
            id = v.next(id);
        }
        assert_eq!(v.tail(), prev);
        out
    }

    #[test]
    fn recency_list_moves() {
        let s = heap_shard(4, 8);
        let v = &s.view;
        for id in 1..=3 {
            v.push_front(id);
        }
        assert_eq!(order(v), vec![3, 2, 1]);
        v.move_to_front(1);
        assert_eq!(order(v), vec![1, 3, 2]);
        v.move_to_front(1);
        assert_eq!(order(v), vec![1, 3, 2]);
        v.unlink(3);
        assert_eq!(order(v), vec![1, 2]);
        assert_eq!((v.prev(3), v.next(3)), (0, 0));
        v.unlink(2);
        v.unlink(1);
        assert_eq!(order(v), Vec::<u32>::new());
        assert_eq!((v.head(), v.tail()), (0, 0));
    }

    #[test]
    fn free_list_before_never_used_slots() {
        let s = heap_shard(3, 8);
        let v = &s.view;
        assert_eq!(v.pop_free(), Some(1));
        assert_eq!(v.pop_free(), Some(2));
        v.set_flags(1, F_OCCUPIED);
        v.push_free(1);
        assert_eq!(v.flags(1), 0, "a freed slot is recognisably free");
        assert_eq!(v.pop_free(), Some(1), "the free list comes first");
        assert_eq!(v.pop_free(), Some(3));
        assert_eq!(v.pop_free(), None);
        assert_eq!(v.unused(), 3);
        v.push_free(2);
        v.push_free(3);
        assert_eq!(
            (v.pop_free(), v.pop_free(), v.pop_free()),
            (Some(3), Some(2), None)
        );
    }

    /// A slot above the never-used mark keeps the bytes of an entry from before a `clear` (or
    /// from a region laid out again). Handing it out must make it free before raising the
    /// mark: a process killed right after `pop_free` leaves exactly this state, and recovery
    /// must not bring the old entry back from it.
    #[test]
    fn a_slot_handed_out_is_free_until_written() {
        let s = heap_shard(4, 16);
        let v = &s.view;
        for k in 0..4u64 {
            let key = Hashed::new(KeyRef::Hash(k));
            v.set(&key, b"old", ValueKind::Bytes, 0, SetMode::Upsert, false, 1)
                .unwrap();
        }
        assert_eq!(v.len(), 4);
        // What Cache::clear does: forget every slot, leave their bytes.
        v.set_unused(0);
        v.set_len(0);
        v.set_head(0);
        v.set_tail(0);
        v.set_free_head(0);
        v.zero_buckets();
        assert_ne!(v.flags(1), 0, "the old bytes are still there");
        // An insert takes slot 1, and its process dies before writing anything.
        assert_eq!(v.pop_free(), Some(1));
        assert_eq!(v.flags(1), 0);
        crate::recover::rebuild(v);
        assert_eq!(v.len(), 0, "a cleared entry came back");
        assert_eq!(
            v.lookup(&KeyRef::Hash(0), 0, Hashed::new(KeyRef::Hash(0)).h),
            None
        );
    }
}

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

//! The recency list (head = most recently linked, tail = least) and the free list, both
//! threaded through slot ids with 0 meaning none. The free list uses only `next`; slots above
//! the shard's `handed_out` mark have never been handed out and are taken in order before it
//! grows. Readers never follow these links, so changing them needs no bucket write window.

use super::Shard;

/// Which way a [`Walk`] goes along the recency list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Toward {
    /// From the head on, by `next`: most recently linked first.
    Tail,
    /// From the tail on, by `prev`: least recently linked first.
    Head,
}

/// A walk along the recency list, yielding slot ids. It takes at most as many steps as the
/// shard has slots, so a damaged list (a cycle) cannot hold it forever, and it reads the link
/// from an entry before yielding it, so the caller may remove the entry it is given.
pub(crate) struct Walk<'s, 'a> {
    shard: &'s Shard<'a>,
    at: u32,
    steps: u32,
    toward: Toward,
}

impl Walk<'_, '_> {
    /// The id the walk would yield next (0 at the end of the list; after its last step, the
    /// id it stopped at).
    pub(crate) fn at(&self) -> u32 {
        self.at
    }

    /// Whether the walk reached the end of the list or ran out of steps.
    pub(crate) fn ended(&self) -> bool {
        self.at == 0 || self.steps == 0
    }
}

impl Iterator for Walk<'_, '_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.ended() {
            return None;
        }
        let id = self.at;
        self.at = match self.toward {
            Toward::Tail => self.shard.next(id),
            Toward::Head => self.shard.prev(id),
        };
        self.steps -= 1;
        Some(id)
    }
}

impl<'a> Shard<'a> {
    /// A walk from `from` (an id, or 0 for none) along the recency list.
    pub(crate) fn walk(&self, from: u32, toward: Toward) -> Walk<'_, 'a> {
        Walk {
            shard: self,
            at: from,
            steps: self.slot_count(),
            toward,
        }
    }

    /// Puts a detached slot at the head.
    pub(super) fn push_front(&self, id: u32) {
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
    pub(super) fn unlink(&self, id: u32) {
        let p = self.prev(id);
        let n = self.next(id);
        if p != 0 {
            self.set_next(p, n);
        } else if self.head() == id {
            self.set_head(n);
        }
        if n != 0 {
            self.set_prev(n, p);
        } else if self.tail() == id {
            self.set_tail(p);
        }
        self.set_prev(id, 0);
        self.set_next(id, 0);
    }

    /// Moves a listed slot to the head.
    pub(super) fn move_to_front(&self, id: u32) {
        if self.head() != id {
            self.unlink(id);
            self.push_front(id);
        }
    }

    /// A slot to fill: from the free list, else the next never-used one.
    pub(super) fn pop_free(&self) -> Option<u32> {
        let f = self.free_head();
        if f != 0 {
            self.set_free_head(self.next(f));
            self.set_next(f, 0);
            return Some(f);
        }
        let u = self.handed_out();
        if u < self.slot_count() {
            // A slot above the mark is all zeros only in a fresh segment: after `clear` or in a
            // re-laid region it keeps an old entry's bytes, flags included. Mark it free before
            // it counts as handed out, so that a crash before it is written cannot bring that
            // entry back when recovery scans the slots.
            self.set_vlen_flags(u + 1, 0, 0);
            self.set_handed_out(u + 1);
            Some(u + 1)
        } else {
            None
        }
    }

    /// Returns an emptied slot (flags already 0) to the free list.
    pub(super) fn push_free(&self, id: u32) {
        self.set_prev(id, 0);
        self.set_next(id, self.free_head());
        self.set_free_head(id);
    }
}

//! The index: per shard, an array of buckets, each the head of a chain of slot ids linked
//! through the slots' `chain` fields. Bucket count equals slot count (load factor at most 1),
//! and the bucket is picked from the high 32 bits of the spread hash by multiply-shift.

use crate::key::KeyRef;
use crate::layout::{F_BYTES_KEY, F_OCCUPIED};
use crate::slots::ShardView;

impl ShardView {
    /// The slot holding `key`, if any. Expiry is not considered here.
    #[inline]
    pub(crate) fn lookup(&self, key: &KeyRef<'_>, word: u64, h: u64) -> Option<u32> {
        let mut id = self.bucket(self.bucket_of(h));
        let want_bytes = key.is_bytes();
        // A chain longer than the shard would mean a cycle: stop rather than spin.
        let mut hops = self.cap();
        while id != 0 && hops > 0 {
            if self.key_word(id) == word {
                let m = self.meta(id);
                if m.flags & F_OCCUPIED != 0 && ((m.flags & F_BYTES_KEY != 0) == want_bytes) {
                    if !want_bytes {
                        return Some(id);
                    }
                    let kb = key.bytes();
                    if m.klen as usize == kb.len() && self.key_bytes(id, m.klen) == kb {
                        return Some(id);
                    }
                }
            }
            id = self.chain(id);
            hops -= 1;
        }
        None
    }

    /// Links `id` into the chain of bucket `b`.
    pub(crate) fn index_insert(&self, id: u32, h: u64) {
        let b = self.bucket_of(h);
        self.set_chain(id, self.bucket(b));
        self.set_bucket(b, id);
    }

    /// Unlinks `id` from the chain of its bucket. Returns false if it was not there.
    pub(crate) fn index_remove(&self, id: u32, h: u64) -> bool {
        let b = self.bucket_of(h);
        let mut cur = self.bucket(b);
        if cur == id {
            self.set_bucket(b, self.chain(id));
            self.set_chain(id, 0);
            return true;
        }
        let mut hops = self.cap();
        while cur != 0 && hops > 0 {
            let nxt = self.chain(cur);
            if nxt == id {
                self.set_chain(cur, self.chain(id));
                self.set_chain(id, 0);
                return true;
            }
            cur = nxt;
            hops -= 1;
        }
        false
    }
}

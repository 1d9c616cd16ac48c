//! Hit and miss counters that every process adds to without a shared atomic read-modify-write.
//!
//! The region holds a few 64-byte counter lanes. Each thread that counts for a cache handle
//! claims a lane of its own (its owner word names the process) and bumps its counters with
//! plain loads and stores, since no one else writes that line; `stats()` sums every lane plus
//! the totals of lanes given back. Lane 0 is shared, with atomic additions, by the threads that
//! find no lane free. A lane comes back to its handle when the thread exits, and to the region
//! (its counts moved to the retired totals) when the handle is dropped; a lane whose owner
//! process died is taken over by the next thread that finds no free one.

use crate::layout::{lane, region_header, LANE_SIZE};
use crate::segment::Segment;
use crate::sys;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

static NEXT_SET: AtomicU64 = AtomicU64::new(1);

/// The counter lanes one cache handle uses.
#[derive(Debug)]
pub(crate) struct Lanes {
    set: Arc<LaneSet>,
    /// The set's id, lane area and lane count, copied here for the hot path.
    id: u64,
    base: *mut u8,
    count: u32,
}

// SAFETY: `base` addresses the lane area of the mapping the set's segment keeps alive; it is
// only used for atomic accesses.
unsafe impl Send for Lanes {}
// SAFETY: as above.
unsafe impl Sync for Lanes {}

#[derive(Debug)]
struct LaneSet {
    id: u64,
    seg: Arc<Segment>,
    lanes_off: u64,
    count: u32,
    owner: u64,
    /// Every lane this handle claimed from the region.
    claimed: Mutex<Vec<u32>>,
    /// Claimed lanes no thread uses now.
    idle: Mutex<Vec<u32>>,
}

// SAFETY: the set only computes addresses inside its segment's mapping (kept alive by the Arc)
// and accesses them atomically.
unsafe impl Send for LaneSet {}
// SAFETY: as above; the Vecs are behind mutexes.
unsafe impl Sync for LaneSet {}

struct Held {
    set_id: u64,
    lane: u32,
    set: Weak<LaneSet>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            set.idle.lock().unwrap_or_else(|e| e.into_inner()).push(self.lane);
        }
    }
}

thread_local! {
    static MINE: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    /// The set this thread counted for last, and the address of its own lane there (null for
    /// the shared lane 0): the common case in one load.
    static LAST: Cell<(u64, *mut u8)> = const { Cell::new((0, std::ptr::null_mut())) };
}

/// Which counter of a lane.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Hits,
    Misses,
}

impl Counter {
    fn off(self) -> usize {
        match self {
            Counter::Hits => lane::HITS,
            Counter::Misses => lane::MISSES,
        }
    }
}

impl LaneSet {
    #[inline]
    fn word(&self, lane: u32, off: usize) -> &AtomicU64 {
        let lane = if lane < self.count { lane } else { 0 };
        let p = self
            .seg
            .as_ptr()
            .wrapping_add((self.lanes_off + lane as u64 * LANE_SIZE) as usize + off);
        // SAFETY: lane < count, so the word lies in the lane area of a validated geometry inside
        // the mapping `seg` keeps alive; it is 8-aligned and only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(p.cast()) }
    }

    fn retired(&self, c: Counter) -> &AtomicU64 {
        let off = match c {
            Counter::Hits => region_header::RETIRED_HITS,
            Counter::Misses => region_header::RETIRED_MISSES,
        };
        // SAFETY: the field lies in the region header, inside the mapping, 8-aligned, accessed
        // atomically by every process.
        unsafe { AtomicU64::from_ptr(self.seg.as_ptr().wrapping_add(off).cast()) }
    }

    /// Moves a lane's counts to the retired totals and zeroes it.
    fn retire_counts(&self, l: u32) {
        for c in [Counter::Hits, Counter::Misses] {
            let n = self.word(l, c.off()).swap(0, Relaxed);
            self.retired(c).fetch_add(n, Relaxed);
        }
    }

    /// A lane from the region for this process, or 0 (the shared lane) if none can be had.
    fn claim(&self) -> u32 {
        if let Some(l) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return l;
        }
        let mut got = 0;
        for l in 1..self.count {
            if self
                .word(l, lane::OWNER)
                .compare_exchange(0, self.owner, Relaxed, Relaxed)
                .is_ok()
            {
                got = l;
                break;
            }
        }
        if got == 0 {
            for l in 1..self.count {
                let o = self.word(l, lane::OWNER).load(Relaxed);
                let pid = o.wrapping_sub(1) as u32;
                if o != 0
                    && o != self.owner
                    && !sys::process_alive(pid)
                    && self
                        .word(l, lane::OWNER)
                        .compare_exchange(o, self.owner, Relaxed, Relaxed)
                        .is_ok()
                {
                    self.retire_counts(l);
                    got = l;
                    break;
                }
            }
        }
        if got != 0 {
            self.claimed.lock().unwrap_or_else(|e| e.into_inner()).push(got);
        }
        got
    }
}

impl Drop for LaneSet {
    fn drop(&mut self) {
        let claimed = std::mem::take(self.claimed.get_mut().unwrap_or_else(|e| e.into_inner()));
        for l in claimed {
            self.retire_counts(l);
            self.word(l, lane::OWNER).store(0, Relaxed);
        }
    }
}

impl Lanes {
    /// The lanes of the cache in `seg` whose lane area starts at `lanes_off`.
    pub(crate) fn new(seg: Arc<Segment>, lanes_off: u64, count: u32) -> Lanes {
        let id = NEXT_SET.fetch_add(1, Relaxed);
        let base = seg.as_ptr().wrapping_add(lanes_off as usize);
        let count = count.max(1);
        Lanes {
            set: Arc::new(LaneSet {
                id,
                seg,
                lanes_off,
                count,
                owner: sys::pid() as u64 + 1,
                claimed: Mutex::new(Vec::new()),
                idle: Mutex::new(Vec::new()),
            }),
            id,
            base,
            count,
        }
    }

    /// This thread's lane, claimed on first use.
    fn mine(&self) -> u32 {
        let lane = self.mine_slow();
        let own = if lane != 0 && lane < self.count {
            self.base.wrapping_add(lane as usize * LANE_SIZE as usize)
        } else {
            std::ptr::null_mut()
        };
        let _ = LAST.try_with(|c| c.set((self.id, own)));
        lane
    }

    #[cold]
    fn mine_slow(&self) -> u32 {
        let id = self.set.id;
        MINE.try_with(|m| {
            if let Some(h) = m.borrow().iter().find(|h| h.set_id == id) {
                return h.lane;
            }
            let l = self.set.claim();
            if l != 0 {
                let mut m = m.borrow_mut();
                m.retain(|h| h.set.strong_count() > 0);
                m.push(Held {
                    set_id: id,
                    lane: l,
                    set: Arc::downgrade(&self.set),
                });
            }
            l
        })
        .unwrap_or(0)
    }

    /// Adds one to `c`.
    #[inline(always)]
    pub(crate) fn bump(&self, c: Counter) {
        if let Ok((set, own)) = LAST.try_with(Cell::get) {
            if set == self.id && !own.is_null() {
                // SAFETY: `own` was computed by `mine` for this set (set ids are never reused)
                // as the address of a lane < count in the lane area of the mapping that this
                // handle's segment keeps alive; the word is 8-aligned and only ever accessed
                // atomically.
                let w = unsafe { AtomicU64::from_ptr(own.add(c.off()).cast()) };
                // Only this thread writes its own lane.
                w.store(w.load(Relaxed).wrapping_add(1), Relaxed);
                return;
            }
        }
        self.bump_slow(c)
    }

    /// [`bump`](Self::bump) for a thread that has not counted for this set yet, or that
    /// shares lane 0.
    #[inline(never)]
    fn bump_slow(&self, c: Counter) {
        let l = match LAST.try_with(Cell::get) {
            // This thread counts for this set already, in the shared lane.
            Ok((set, _)) if set == self.id => 0,
            _ => self.mine(),
        };
        let l = if l < self.count { l } else { 0 };
        // SAFETY: l < count, so the word lies in the lane area inside the mapping the set's
        // segment keeps alive; it is 8-aligned and only ever accessed atomically.
        let w =
            unsafe { AtomicU64::from_ptr(self.base.add(l as usize * LANE_SIZE as usize + c.off()).cast()) };
        if l == 0 {
            w.fetch_add(1, Relaxed);
        } else {
            w.store(w.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// The total of `c` over every lane and every retired one.
    pub(crate) fn total(&self, c: Counter) -> u64 {
        let mut n = self.set.retired(c).load(Relaxed);
        for l in 0..self.set.count {
            n = n.wrapping_add(self.set.word(l, c.off()).load(Relaxed));
        }
        n
    }
}

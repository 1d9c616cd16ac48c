//! Byte budgets: a trace study of how caches of mixed value sizes use one memory budget.
//!
//! The models below keep only sizes and lists, no value bytes, and count every byte a shared
//! segment of the budget would hold (index, headers, rounding, tail waste, free space); the
//! `engine` designs are the real cache, with a byte budget of 32 MiB, holding the trace's keys
//! and values in a segment of its own. The bench replays a get-then-set-on-miss trace with a
//! 32 MiB budget through each design and reports the hit ratio and the memory per live
//! key+value byte, beside an exact LRU over key+value bytes (the reference) and a real Redis
//! server fed the same trace in the same run; then the engine's figures, met or not.
//!
//! Traces (all deterministic by `SIZED_SEED`, default 1; 24-byte keys; Zipf(0.99) requests,
//! the most popular keys spread over the key space by a seeded permutation):
//!
//! * `t1`: 60,000 keys, value sizes log-normal with median 2 KiB and sigma 1, truncated (by
//!   drawing again) to [200 B, 64 KiB];
//! * `small`: values uniform in [100 B, 300 B], 900,000 keys (so that the data is about six
//!   budgets, as in `t1`);
//! * `large`: values uniform in [64 KiB, 1 MiB], 400 keys (about seven budgets);
//! * `shift`: `t1`, but from the middle of the run on every value written is drawn with a
//!   median of 16 KiB (same sigma and truncation).
//!
//! Designs:
//!
//! * `exact`: an LRU over key+value bytes, nothing else counted;
//! * `log`: per shard, a circular log of fixed segments; objects (a 48-byte header, the key, the
//!   value, 8-byte aligned) are appended and may span a segment boundary; when the log is full
//!   the oldest segment is cleaned: an object read since it was written is appended again (its
//!   use bit cleared), any other is evicted. One segment per shard is held back as the space a
//!   cleaning copies into while readers may still read the old copy. Segments of 256 KiB, 1, 4
//!   and 8 MiB, with 1 and 4 shards (a shard needs two segments at least);
//! * `classes`: 1 MiB pages, each given to one size class (memcached's factor 1.25 from 96 B,
//!   or 8 classes per doubling with each chunk stretched to divide the page), the largest chunk
//!   half a page; an LRU per class; values above the largest chunk chained (a header chunk on
//!   the largest class's LRU, full chunks of the largest class and a last, smaller chunk, 48
//!   bytes of chunk header each); page automove as memcached's: every 1,000 requests the class
//!   that evicted most (a refused set counts as an eviction: a class with no page at all has
//!   nothing to evict) takes a page from the class whose LRU tail is oldest, when its own tail
//!   is younger than 0.8 times that one and the giver keeps a page at least;
//! * `pieces`: fixed pieces (256, 512 or 1024 B), the first holding a 48-byte header, each
//!   further one a 16-byte header (the stamp and the next link); one global LRU.
//!
//! * `engine`: [`Cache`] made with `CacheOptions::budget(32 MiB)`, with its default index (one
//!   that grows as entries need it), an entry per KiB, and an index that fits the trace (see
//!   [`fitting_capacity`]); its memory is the whole segment, its live bytes the trace's
//!   key+value bytes of the keys it holds, asked of it key by key. Its times of use are the
//!   system clock's (`SIZED_MS_CLOCK=1` adds the default on a clock of 1 ms per request).
//!
//! Every model but `exact` pays an index of 8 bytes per slot, with a slot for every 256 bytes
//! of the budget (1 MiB of 32 MiB; `SIZED_BYTES_PER_SLOT` changes the 256), out of the budget.
//!
//! `SIZED_TRACES` picks traces (comma-separated, default all), `SIZED_REDIS=0` leaves Redis out,
//! `SIZED_MODELS=0` the models (all but `exact`), `SIZED_ENGINE=0` the engine.
//! Redis (Debian's `redis-server`) is started on a free loopback port with `maxmemory 32mb`,
//! `allkeys-lru`, no persistence, and killed when its trace is done. Without `--bench` (as under
//! `cargo test --benches`), a short `t1` runs without Redis.

mod trace;

use shm_lru::{layout, Cache, CacheOptions, SegmentId, SetOptions};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trace::{key_bytes, t1_dist, zipf_requests, Rng, SizeDist, KEY_LEN, KIB};

const MIB: u64 = 1024 * 1024;
/// The memory budget of every design.
const BUDGET: u64 = 32 * MIB;
/// Per-object header of the log and the first piece (key word, use word, lengths, links).
const HEADER: u64 = 48;
/// Header of each further piece of a chained value (its stamp and the next piece's id).
const PIECE_HEADER: u64 = 16;
/// Index bytes per slot.
const INDEX_SLOT: u64 = 8;
/// Budget bytes per index slot unless `SIZED_BYTES_PER_SLOT` says otherwise.
const BYTES_PER_SLOT: u64 = 256;
/// Page size of the size-class designs.
const PAGE: u64 = MIB;
/// Requests between two automove decisions.
const AUTOMOVE_PERIOD: u64 = 1_000;
/// Segment sizes of the log designs, each with 1 and 4 shards.
const LOG_SEGMENTS: [u64; 4] = [256 * KIB, MIB, 4 * MIB, 8 * MIB];
/// No entry in a list.
const NIL: u32 = u32::MAX;

fn bytes_per_slot() -> u64 {
    static V: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("SIZED_BYTES_PER_SLOT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(BYTES_PER_SLOT)
    })
}

fn index_bytes() -> u64 {
    BUDGET / bytes_per_slot() * INDEX_SLOT
}

fn size_name(b: u64) -> String {
    if b % MIB == 0 {
        format!("{} MiB", b / MIB)
    } else {
        format!("{} KiB", b / KIB)
    }
}

fn align8(x: u64) -> u64 {
    (x + 7) & !7
}

// ---------------------------------------------------------------------------------------------
// Traces

struct Trace {
    name: &'static str,
    what: &'static str,
    keys: usize,
    /// Value size of each key, and from `shift_at` on, the second phase's.
    sizes: Vec<u32>,
    sizes2: Vec<u32>,
    shift_at: usize,
    requests: Vec<u32>,
    warmup: usize,
}

impl Trace {
    fn kv(&self, key: u32, i: usize) -> u64 {
        let v = if i >= self.shift_at {
            self.sizes2[key as usize]
        } else {
            self.sizes[key as usize]
        };
        KEY_LEN + v as u64
    }
}

fn make_trace(name: &str, seed: u64, quick: bool) -> Trace {
    let mut rng = Rng(seed ^ 0x5eed_0000);
    let (name, what, keys, dist, dist2, requests, warmup, shift): (_, _, usize, _, _, usize, usize, bool) =
        match name {
            "t1" => (
                "t1",
                "T1: 60,000 keys, log-normal values (median 2 KiB, sigma 1, [200 B, 64 KiB])",
                60_000,
                t1_dist(2048.0),
                None,
                1_000_000,
                200_000,
                false,
            ),
            "small" => (
                "small",
                "values uniform in [100 B, 300 B], 900,000 keys",
                900_000,
                SizeDist::Uniform { lo: 100, hi: 300 },
                None,
                1_500_000,
                500_000,
                false,
            ),
            "large" => (
                "large",
                "values uniform in [64 KiB, 1 MiB], 400 keys",
                400,
                SizeDist::Uniform {
                    lo: 64 * KIB,
                    hi: MIB,
                },
                None,
                6_000,
                1_000,
                false,
            ),
            "shift" => (
                "shift",
                "T1 whose median moves from 2 KiB to 16 KiB halfway",
                60_000,
                t1_dist(2048.0),
                Some(t1_dist(16384.0)),
                1_000_000,
                200_000,
                true,
            ),
            other => panic!("unknown trace {other:?} (t1, small, large, shift)"),
        };
    let (requests, warmup) = if quick {
        (requests / 50, warmup / 50)
    } else {
        (requests, warmup)
    };
    let sizes: Vec<u32> = (0..keys).map(|_| dist.draw(&mut rng)).collect();
    let sizes2: Vec<u32> = match dist2 {
        Some(d) => (0..keys).map(|_| d.draw(&mut rng)).collect(),
        None => sizes.clone(),
    };
    let reqs = zipf_requests(&mut rng, keys, 0.99, requests);
    Trace {
        name,
        what,
        keys,
        sizes,
        sizes2,
        shift_at: if shift { requests / 2 } else { usize::MAX },
        requests: reqs,
        warmup,
    }
}

// ---------------------------------------------------------------------------------------------
// Lists over key ids

/// Doubly-linked lists threaded through arrays indexed by key id; a key is on one list at most.
struct Links {
    prev: Vec<u32>,
    next: Vec<u32>,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List { head: NIL, tail: NIL };
}

impl Links {
    fn new(n: usize) -> Links {
        Links {
            prev: vec![NIL; n],
            next: vec![NIL; n],
        }
    }
    fn push_front(&mut self, l: &mut List, k: u32) {
        self.prev[k as usize] = NIL;
        self.next[k as usize] = l.head;
        if l.head != NIL {
            self.prev[l.head as usize] = k;
        } else {
            l.tail = k;
        }
        l.head = k;
    }
    fn remove(&mut self, l: &mut List, k: u32) {
        let (p, n) = (self.prev[k as usize], self.next[k as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            l.head = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        } else {
            l.tail = p;
        }
    }
    fn touch(&mut self, l: &mut List, k: u32) {
        if l.head != k {
            self.remove(l, k);
            self.push_front(l, k);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Designs

/// Memory a design holds: bytes counted against the budget, and for Redis its RSS.
struct Memory {
    counted: u64,
    rss: Option<u64>,
}

trait Design {
    fn name(&self) -> String;
    /// A get: true on a hit (which marks the entry used).
    fn get(&mut self, key: u32, now: u64) -> bool;
    /// A set of `kv` key+value bytes after a miss: false when refused.
    fn set(&mut self, key: u32, kv: u64, now: u64) -> bool;
    /// Key+value bytes held.
    fn live(&mut self) -> u64;
    /// What the design's memory counts as: a model's whole budget, unless it says otherwise.
    fn memory(&mut self) -> Memory {
        Memory {
            counted: BUDGET,
            rss: None,
        }
    }
    /// Called after every request.
    fn tick(&mut self, _now: u64) {}
    /// Anything worth a footnote (pages moved, server version).
    fn note(&mut self) -> String {
        String::new()
    }
}

/// An exact LRU over key+value bytes.
struct Exact {
    links: Links,
    list: List,
    len: Vec<u32>,
    used: u64,
}

impl Exact {
    fn new(keys: usize) -> Exact {
        Exact {
            links: Links::new(keys),
            list: List::EMPTY,
            len: vec![0; keys],
            used: 0,
        }
    }
}

impl Design for Exact {
    fn name(&self) -> String {
        "exact LRU over key+value bytes".into()
    }
    fn get(&mut self, key: u32, _now: u64) -> bool {
        if self.len[key as usize] == 0 {
            return false;
        }
        self.links.touch(&mut self.list, key);
        true
    }
    fn set(&mut self, key: u32, kv: u64, _now: u64) -> bool {
        if kv > BUDGET {
            return false;
        }
        while self.used + kv > BUDGET {
            let t = self.list.tail;
            self.links.remove(&mut self.list, t);
            self.used -= self.len[t as usize] as u64;
            self.len[t as usize] = 0;
        }
        self.links.push_front(&mut self.list, key);
        self.len[key as usize] = kv as u32;
        self.used += kv;
        true
    }
    fn live(&mut self) -> u64 {
        self.used
    }
}

/// Chained fixed pieces with one global LRU.
struct Pieces {
    piece: u64,
    total: u64,
    free: u64,
    links: Links,
    list: List,
    need: Vec<u32>,
    len: Vec<u32>,
    live: u64,
}

impl Pieces {
    fn new(keys: usize, piece: u64) -> Pieces {
        let total = (BUDGET - index_bytes()) / piece;
        Pieces {
            piece,
            total,
            free: total,
            links: Links::new(keys),
            list: List::EMPTY,
            need: vec![0; keys],
            len: vec![0; keys],
            live: 0,
        }
    }
    fn pieces(&self, kv: u64) -> u64 {
        let first = HEADER + kv;
        if first <= self.piece {
            1
        } else {
            1 + (first - self.piece).div_ceil(self.piece - PIECE_HEADER)
        }
    }
}

impl Design for Pieces {
    fn name(&self) -> String {
        format!("pieces of {} B, one LRU", self.piece)
    }
    fn get(&mut self, key: u32, _now: u64) -> bool {
        if self.need[key as usize] == 0 {
            return false;
        }
        self.links.touch(&mut self.list, key);
        true
    }
    fn set(&mut self, key: u32, kv: u64, _now: u64) -> bool {
        let n = self.pieces(kv);
        if n > self.total {
            return false;
        }
        while self.free < n {
            let t = self.list.tail;
            self.links.remove(&mut self.list, t);
            self.free += self.need[t as usize] as u64;
            self.live -= self.len[t as usize] as u64;
            self.need[t as usize] = 0;
        }
        self.free -= n;
        self.need[key as usize] = n as u32;
        self.len[key as usize] = kv as u32;
        self.live += kv;
        self.links.push_front(&mut self.list, key);
        true
    }
    fn live(&mut self) -> u64 {
        self.live
    }
}

/// One shard's log: objects in write order, `head` and `tail` as positions that only grow.
struct Shard {
    cap: u64,
    head: u64,
    tail: u64,
    /// (key, start, object bytes)
    q: VecDeque<(u32, u64, u64)>,
}

/// A log-structured store per shard, cleaned a segment at a time with a second chance.
struct Log {
    seg: u64,
    shards: Vec<Shard>,
    used: Vec<bool>,
    len: Vec<u32>,
    live: u64,
    reinserted: u64,
}

impl Log {
    /// None when a shard would hold fewer than two segments.
    fn new(keys: usize, seg: u64, shards: u64) -> Option<Log> {
        let per = (BUDGET - index_bytes()) / shards;
        let nseg = per / seg;
        if nseg < 2 {
            return None;
        }
        let shards = (0..shards).map(|_| Shard {
            cap: (nseg - 1) * seg,
            head: 0,
            tail: 0,
            q: VecDeque::new(),
        });
        Some(Log {
            seg,
            shards: shards.collect(),
            used: vec![false; keys],
            len: vec![0; keys],
            live: 0,
            reinserted: 0,
        })
    }
    fn shard_of(&self, key: u32) -> usize {
        let mut r = Rng(key as u64 ^ 0xabcd);
        (r.next_u64() % self.shards.len() as u64) as usize
    }
}

impl Design for Log {
    fn name(&self) -> String {
        format!(
            "log, {} segments, {} shard(s)",
            size_name(self.seg),
            self.shards.len()
        )
    }
    fn get(&mut self, key: u32, _now: u64) -> bool {
        if self.len[key as usize] == 0 {
            return false;
        }
        self.used[key as usize] = true;
        true
    }
    fn set(&mut self, key: u32, kv: u64, _now: u64) -> bool {
        let obj = align8(HEADER + kv);
        let si = self.shard_of(key);
        let seg = self.seg;
        let s = &mut self.shards[si];
        if obj > s.cap {
            return false;
        }
        while s.head + obj > s.tail + s.cap {
            // Clean the segment the tail is in: every object starting in it.
            let seg_end = (s.tail / seg + 1) * seg;
            let n = s.q.iter().take_while(|e| e.1 < seg_end).count();
            for _ in 0..n {
                let (k, start, size) = s.q.pop_front().expect("counted");
                s.tail = start + size;
                if self.used[k as usize] {
                    self.used[k as usize] = false;
                    s.q.push_back((k, s.head, size));
                    s.head += size;
                    self.reinserted += 1;
                } else {
                    self.live -= self.len[k as usize] as u64;
                    self.len[k as usize] = 0;
                }
            }
            if s.q.is_empty() {
                s.tail = s.head;
            }
        }
        s.q.push_back((key, s.head, obj));
        s.head += obj;
        self.len[key as usize] = kv as u32;
        self.used[key as usize] = false;
        self.live += kv;
        true
    }
    fn live(&mut self) -> u64 {
        self.live
    }
    fn note(&mut self) -> String {
        format!("{} reinsertions", self.reinserted)
    }
}

/// Size classes in pages, an LRU per class, chained values above the largest chunk, automove.
struct Classes {
    label: String,
    chunk: Vec<u64>,
    per_page: Vec<u64>,
    /// Class of each page (NIL: in the free pool).
    page_class: Vec<u32>,
    free_pages: Vec<u32>,
    /// Per class, one page id per free chunk.
    class_free: Vec<Vec<u32>>,
    class_pages: Vec<u64>,
    lru: Vec<List>,
    links: Links,
    /// Per key: pages of its chunks (empty: absent), home class, key+value bytes, last use.
    chunks: Vec<Vec<u32>>,
    home: Vec<u32>,
    len: Vec<u32>,
    last: Vec<u64>,
    evictions: Vec<u64>,
    live: u64,
    moves: u64,
    chained: u64,
}

impl Classes {
    fn new(keys: usize, factor: f64, stretch: bool, label: &str) -> Classes {
        let max = PAGE / 2;
        let mut chunk = Vec::new();
        let mut c = 96.0f64;
        loop {
            let mut size = align8(c as u64).min(max);
            if stretch {
                let n = PAGE / size;
                size = (PAGE / n) & !7;
            }
            if chunk.last() != Some(&size) {
                chunk.push(size);
            }
            if size >= max {
                break;
            }
            c = (c * factor).max(c + 8.0);
        }
        let per_page: Vec<u64> = chunk.iter().map(|&c| PAGE / c).collect();
        let pages = (BUDGET - index_bytes()) / PAGE;
        let nc = chunk.len();
        Classes {
            label: label.into(),
            chunk,
            per_page,
            page_class: vec![NIL; pages as usize],
            free_pages: (0..pages as u32).rev().collect(),
            class_free: vec![Vec::new(); nc],
            class_pages: vec![0; nc],
            lru: vec![List::EMPTY; nc],
            links: Links::new(keys),
            chunks: vec![Vec::new(); keys],
            home: vec![NIL; keys],
            len: vec![0; keys],
            last: vec![0; keys],
            evictions: vec![0; nc],
            live: 0,
            moves: 0,
            chained: 0,
        }
    }
    fn class_for(&self, bytes: u64) -> usize {
        self.chunk.partition_point(|&c| c < bytes)
    }
    fn evict(&mut self, key: u32) {
        let k = key as usize;
        let home = self.home[k] as usize;
        self.links.remove(&mut self.lru[home], key);
        for p in std::mem::take(&mut self.chunks[k]) {
            self.class_free[self.page_class[p as usize] as usize].push(p);
        }
        self.live -= self.len[k] as u64;
        self.home[k] = NIL;
    }
    fn alloc(&mut self, class: usize) -> Option<u32> {
        loop {
            if let Some(p) = self.class_free[class].pop() {
                return Some(p);
            }
            if let Some(p) = self.free_pages.pop() {
                self.page_class[p as usize] = class as u32;
                self.class_pages[class] += 1;
                for _ in 0..self.per_page[class] {
                    self.class_free[class].push(p);
                }
                continue;
            }
            let t = self.lru[class].tail;
            if t == NIL {
                return None;
            }
            self.evict(t);
            self.evictions[class] += 1;
        }
    }
    /// Moves the emptiest page of `from` to `to`, evicting whatever it holds.
    fn move_page(&mut self, from: usize, to: usize) {
        let mut free_in: std::collections::HashMap<u32, u64> = Default::default();
        for &p in &self.class_free[from] {
            *free_in.entry(p).or_default() += 1;
        }
        let Some(page) = (0..self.page_class.len() as u32)
            .filter(|&p| self.page_class[p as usize] == from as u32)
            .max_by_key(|p| free_in.get(p).copied().unwrap_or(0))
        else {
            return;
        };
        let victims: Vec<u32> = (0..self.chunks.len() as u32)
            .filter(|&k| self.chunks[k as usize].contains(&page))
            .collect();
        for v in victims {
            self.evict(v);
        }
        self.class_free[from].retain(|&p| p != page);
        self.class_pages[from] -= 1;
        self.page_class[page as usize] = to as u32;
        self.class_pages[to] += 1;
        for _ in 0..self.per_page[to] {
            self.class_free[to].push(page);
        }
        self.moves += 1;
    }
}

impl Design for Classes {
    fn name(&self) -> String {
        format!("size classes, {} ({} classes)", self.label, self.chunk.len())
    }
    fn get(&mut self, key: u32, now: u64) -> bool {
        let k = key as usize;
        if self.home[k] == NIL {
            return false;
        }
        self.links.touch(&mut self.lru[self.home[k] as usize], key);
        self.last[k] = now;
        true
    }
    fn set(&mut self, key: u32, kv: u64, now: u64) -> bool {
        let k = key as usize;
        let item = align8(HEADER + kv);
        let max = *self.chunk.last().expect("classes");
        // The classes of the chunks this value takes.
        let mut want = Vec::new();
        let home;
        if item <= max {
            home = self.class_for(item);
            want.push(home);
        } else {
            home = self.chunk.len() - 1;
            let data = kv;
            let per = max - HEADER;
            let full = data / per;
            let rest = data - full * per;
            want.push(self.class_for(align8(HEADER + KEY_LEN + 8 * (full + 1))));
            want.extend(std::iter::repeat_n(home, full as usize));
            if rest > 0 {
                want.push(self.class_for(align8(HEADER + rest)));
            }
            self.chained += 1;
        }
        let mut got = Vec::with_capacity(want.len());
        for c in want {
            match self.alloc(c) {
                Some(p) => got.push(p),
                None => {
                    self.evictions[c] += 1;
                    for p in got {
                        self.class_free[self.page_class[p as usize] as usize].push(p);
                    }
                    return false;
                }
            }
        }
        self.chunks[k] = got;
        self.home[k] = home as u32;
        self.len[k] = kv as u32;
        self.last[k] = now;
        self.live += kv;
        self.links.push_front(&mut self.lru[home], key);
        true
    }
    fn tick(&mut self, now: u64) {
        if now % AUTOMOVE_PERIOD != AUTOMOVE_PERIOD - 1 || !self.free_pages.is_empty() {
            return;
        }
        let age = |s: &Classes, c: usize| {
            let t = s.lru[c].tail;
            (t != NIL).then(|| now - s.last[t as usize])
        };
        let to = (0..self.chunk.len())
            .max_by_key(|&c| self.evictions[c])
            .expect("classes");
        if self.evictions[to] > 0 {
            let from = (0..self.chunk.len())
                .filter(|&c| c != to && self.class_pages[c] >= 2)
                .filter_map(|c| age(self, c).map(|a| (c, a)))
                .max_by_key(|&(_, a)| a);
            if let Some((from, old)) = from {
                let young = age(self, to).unwrap_or(0);
                if (young as f64) < 0.8 * old as f64 {
                    self.move_page(from, to);
                }
            }
        }
        self.evictions.iter_mut().for_each(|e| *e = 0);
    }
    fn live(&mut self) -> u64 {
        self.live
    }
    fn note(&mut self) -> String {
        let free: u64 = (0..self.chunk.len())
            .map(|c| self.class_free[c].len() as u64 * self.chunk[c])
            .sum();
        let tails: u64 = (0..self.chunk.len())
            .map(|c| self.class_pages[c] * (PAGE - self.per_page[c] * self.chunk[c]))
            .sum();
        format!(
            "{} pages moved, {} values chained; at the end free chunks {:.1} MiB, page tails {:.1} MiB",
            self.moves,
            self.chained,
            free as f64 / MIB as f64,
            tails as f64 / MIB as f64
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The engine

/// How an engine design sizes its index.
#[derive(Clone, Copy)]
enum Index {
    /// The engine's default (`capacity` 0: an index that grows as entries need it).
    Default,
    /// One entry per this many bytes of budget.
    PerBytes(u64),
    /// This many entries.
    Entries(u64),
}

/// The engine itself: a real [`Cache`] with a byte budget of [`BUDGET`], in a shared memory
/// segment of its own, given the trace's keys (24 bytes) and values (bytes of the trace's
/// sizes). Its memory is the whole segment; its live bytes are the trace's key+value bytes of
/// the keys it holds (asked of the cache, key by key, at each sample).
struct Engine {
    cache: Cache,
    label: String,
    /// Key+value bytes last set for each key.
    len: Vec<u32>,
    buf: Vec<u8>,
    value: Vec<u8>,
    /// With a clock of one ms per request instead of the system's: its start.
    clock: Option<(Arc<AtomicU64>, u64)>,
    /// Refused sets by error.
    errors: BTreeMap<String, u64>,
}

impl Engine {
    fn new(keys: usize, index: Index, ms_per_request: bool) -> Engine {
        let capacity = match index {
            Index::Default => 0,
            Index::PerBytes(b) => BUDGET / b,
            Index::Entries(n) => n,
        };
        let opts = CacheOptions {
            capacity,
            ..CacheOptions::budget(BUDGET)
        };
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let id: SegmentId = format!(
            "/shm-lru-sized-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        )
        .parse()
        .expect("segment name");
        let mut cache = Cache::create(&id, &opts).expect("create the engine's cache");
        let clock = ms_per_request.then(|| {
            let start = cache.now_ms();
            let c = Arc::new(AtomicU64::new(start));
            cache.use_manual_clock(c.clone());
            (c, start)
        });
        let label = match index {
            Index::Default => format!("default index ({} entries)", cache.capacity()),
            Index::PerBytes(b) => format!("index of 1 per {} KiB ({} entries)", b / KIB, cache.capacity()),
            Index::Entries(_) => format!("index of {} entries", cache.capacity()),
        };
        let label = if ms_per_request {
            format!("{label}, clock 1 ms per request")
        } else {
            label
        };
        Engine {
            cache,
            label,
            len: vec![0; keys],
            buf: vec![0; (MIB + KIB) as usize],
            value: vec![b'v'; (MIB + KIB) as usize],
            clock,
            errors: BTreeMap::new(),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.cache.destroy();
    }
}

impl Design for Engine {
    fn name(&self) -> String {
        format!("engine, {}", self.label)
    }
    fn get(&mut self, key: u32, _now: u64) -> bool {
        let k = key_bytes(key);
        match self.cache.get_into(&k[..], &mut self.buf) {
            Ok(r) => r.is_some(),
            Err(e) => panic!("get: {e}"),
        }
    }
    fn set(&mut self, key: u32, kv: u64, _now: u64) -> bool {
        let k = key_bytes(key);
        match self.cache.set(
            &k[..],
            &self.value[..(kv - KEY_LEN) as usize],
            &SetOptions::default(),
        ) {
            Ok(_) => {
                self.len[key as usize] = kv as u32;
                true
            }
            Err(e) => {
                *self.errors.entry(e.to_string()).or_default() += 1;
                false
            }
        }
    }
    fn live(&mut self) -> u64 {
        let mut total = 0;
        for (key, &kv) in self.len.iter().enumerate() {
            if kv > 0 && self.cache.contains(&key_bytes(key as u32)[..]).expect("contains") {
                total += kv as u64;
            }
        }
        total
    }
    fn memory(&mut self) -> Memory {
        Memory {
            counted: self.cache.segment().len(),
            rss: None,
        }
    }
    fn tick(&mut self, now: u64) {
        if let Some((c, start)) = &self.clock {
            c.store(start + now + 1, Ordering::Relaxed);
        }
    }
    fn note(&mut self) -> String {
        let st = self.cache.stats().expect("stats");
        let geo = self.cache.geometry();
        // The index is the stores' bytes that are not the rings of records.
        let index = geo.shards as u64 * geo.store_bytes - (st.bytes_used + st.bytes_free);
        let mut n = format!(
            "segment {:.2} MiB: headers {:.2} MiB, {} shard(s) of {:.2} MiB, of which the index \
             took {:.2} MiB; at the end {} entries, records {:.2} MiB live, {:.2} MiB used; {} \
             evictions",
            self.cache.segment().len() as f64 / MIB as f64,
            geo.store_off as f64 / MIB as f64,
            geo.shards,
            geo.store_bytes as f64 / MIB as f64,
            index as f64 / MIB as f64,
            st.len,
            st.bytes_live as f64 / MIB as f64,
            st.bytes_used as f64 / MIB as f64,
            st.evictions
        );
        for (e, count) in &self.errors {
            n += &format!("; {count} sets refused: {e}");
        }
        n
    }
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A redis-server of ours on a free loopback port, killed when dropped.
struct Redis {
    child: Child,
    w: BufWriter<TcpStream>,
    r: BufReader<TcpStream>,
    keys: usize,
    value: Vec<u8>,
    buf: Vec<u8>,
    dir: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Reply {
    Ok,
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

impl Redis {
    fn start(keys: usize) -> std::io::Result<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("shm-lru-sized-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--maxmemory",
                "32mb",
            ])
            .args([
                "--maxmemory-policy",
                "allkeys-lru",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--protected-mode", "yes", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = child;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_nodelay(true)?;
        let guard = Redis {
            child,
            w: BufWriter::new(stream.try_clone()?),
            r: BufReader::new(stream),
            keys,
            value: vec![b'v'; (MIB + KIB) as usize],
            buf: Vec::new(),
            dir,
        };
        Ok(guard)
    }
    fn send(&mut self, args: &[&[u8]]) {
        write!(self.w, "*{}\r\n", args.len()).expect("write");
        for a in args {
            write!(self.w, "${}\r\n", a.len()).expect("write");
            self.w.write_all(a).expect("write");
            self.w.write_all(b"\r\n").expect("write");
        }
    }
    fn reply(&mut self) -> Reply {
        self.buf.clear();
        self.r.read_until(b'\n', &mut self.buf).expect("read");
        let line = String::from_utf8_lossy(&self.buf[1..self.buf.len() - 2]).into_owned();
        match self.buf[0] {
            b'+' => Reply::Ok,
            b'-' => Reply::Err(line),
            b':' => Reply::Int(line.parse().expect("integer reply")),
            b'$' => {
                let n: i64 = line.parse().expect("bulk length");
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut v = vec![0; n as usize + 2];
                self.r.read_exact(&mut v).expect("read");
                v.truncate(n as usize);
                Reply::Bulk(Some(v))
            }
            c => panic!("unexpected reply {:?}", c as char),
        }
    }
    fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.w.flush().expect("flush");
        self.reply()
    }
    fn info(&mut self, section: &str, field: &str) -> String {
        let Reply::Bulk(Some(text)) = self.call(&[b"INFO", section.as_bytes()]) else {
            panic!("INFO failed");
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    }
}

impl Design for Redis {
    fn name(&self) -> String {
        "Redis, maxmemory 32 MiB, allkeys-lru".into()
    }
    fn get(&mut self, key: u32, _now: u64) -> bool {
        let k = key_bytes(key);
        match self.call(&[b"GET", &k[..]]) {
            Reply::Bulk(v) => v.is_some(),
            _ => panic!("GET failed"),
        }
    }
    fn set(&mut self, key: u32, kv: u64, _now: u64) -> bool {
        let k = key_bytes(key);
        let n = (kv - KEY_LEN) as usize;
        let value = std::mem::take(&mut self.value);
        let r = self.call(&[b"SET", &k[..], &value[..n]]);
        self.value = value;
        match r {
            Reply::Ok => true,
            Reply::Err(e) if e.starts_with("OOM") => false,
            Reply::Err(e) => panic!("SET: {e}"),
            _ => panic!("SET: unexpected reply"),
        }
    }
    fn live(&mut self) -> u64 {
        let mut total = 0;
        for lo in (0..self.keys).step_by(10_000) {
            let hi = (lo + 10_000).min(self.keys);
            for key in lo..hi {
                let k = key_bytes(key as u32);
                self.send(&[b"STRLEN", &k[..]]);
            }
            self.w.flush().expect("flush");
            for _ in lo..hi {
                if let Reply::Int(n) = self.reply() {
                    if n > 0 {
                        total += KEY_LEN + n as u64;
                    }
                }
            }
        }
        total
    }
    fn memory(&mut self) -> Memory {
        Memory {
            counted: self.info("memory", "used_memory").parse().expect("used_memory"),
            rss: self.info("memory", "used_memory_rss").parse().ok(),
        }
    }
    fn note(&mut self) -> String {
        format!(
            "redis {}, {} evicted keys, maxmemory-samples 5",
            self.info("server", "redis_version"),
            self.info("stats", "evicted_keys")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The replay

struct Outcome {
    name: String,
    hit: f64,
    /// Mean over the samples of counted memory / live key+value bytes, and RSS / live.
    mem: f64,
    rss: Option<f64>,
    refused: u64,
    /// Sets issued over the whole run (warm-up included).
    sets: u64,
    /// Hits before each request (for windows), and one past the end.
    cum: Vec<u32>,
    note: String,
    secs: f64,
}

fn replay(trace: &Trace, d: &mut dyn Design) -> Outcome {
    let t0 = Instant::now();
    let n = trace.requests.len();
    let mut cum = Vec::with_capacity(n + 1);
    let (mut all, mut hits, mut counted, mut refused, mut sets) = (0u32, 0u64, 0u64, 0u64, 0u64);
    let step = (n - trace.warmup) / 4;
    let mut mem = Vec::new();
    let mut rss = Vec::new();
    for (i, &key) in trace.requests.iter().enumerate() {
        cum.push(all);
        let now = i as u64;
        let hit = d.get(key, now);
        if !hit {
            sets += 1;
            if !d.set(key, trace.kv(key, i), now) {
                refused += 1;
            }
        }
        all += hit as u32;
        if i >= trace.warmup {
            counted += 1;
            hits += hit as u64;
        }
        d.tick(now);
        if i >= trace.warmup && (i + 1 - trace.warmup) % step == 0 {
            let live = d.live() as f64;
            let m = d.memory();
            mem.push(m.counted as f64 / live);
            if let Some(r) = m.rss {
                rss.push(r as f64 / live);
            }
        }
    }
    cum.push(all);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Outcome {
        name: d.name(),
        hit: hits as f64 / counted as f64,
        mem: mean(&mem),
        rss: (!rss.is_empty()).then(|| mean(&rss)),
        refused,
        sets,
        cum,
        note: d.note(),
        secs: t0.elapsed().as_secs_f64(),
    }
}

/// Request indices where the exact LRU has written k budgets' worth since the shift.
fn turnovers(trace: &Trace, count: usize) -> Vec<usize> {
    let mut e = Exact::new(trace.keys);
    let mut out = Vec::new();
    let mut written = 0;
    for (i, &key) in trace.requests.iter().enumerate() {
        if !e.get(key, i as u64) {
            let kv = trace.kv(key, i);
            e.set(key, kv, i as u64);
            if i >= trace.shift_at {
                written += kv;
                if written >= BUDGET * (out.len() as u64 + 1) {
                    out.push(i + 1);
                    if out.len() == count {
                        break;
                    }
                }
            }
        }
    }
    out
}

fn designs(keys: usize) -> Vec<Option<Box<dyn Design>>> {
    let mut v: Vec<Option<Box<dyn Design>>> = vec![Some(Box::new(Exact::new(keys)))];
    for seg in LOG_SEGMENTS {
        for shards in [1, 4] {
            v.push(Log::new(keys, seg, shards).map(|l| Box::new(l) as Box<dyn Design>));
        }
    }
    v.push(Some(Box::new(Classes::new(keys, 1.25, false, "factor 1.25"))));
    v.push(Some(Box::new(Classes::new(
        keys,
        2f64.powf(1.0 / 8.0),
        true,
        "8 per doubling, stretched",
    ))));
    for p in [256, 512, 1024] {
        v.push(Some(Box::new(Pieces::new(keys, p))));
    }
    v
}

/// Index entries enough for the trace: as many as the value store holds records of the mean
/// length of the trace's keys (record header, key, value, rounded to 8; of whichever phase has
/// the shorter ones), with a tenth to spare, rounded up to a multiple of 1,024. The index takes
/// part of the budget, so the count is found by a few rounds of sizing the layout.
fn fitting_capacity(trace: &Trace) -> u64 {
    let mean = |at: usize| {
        let records: u64 = (0..trace.keys as u32)
            .map(|k| align8(layout::RECORD_HEADER + trace.kv(k, at)))
            .sum();
        records as f64 / trace.keys as f64
    };
    let mean = mean(0).min(mean(trace.requests.len()));
    let mut cap = (BUDGET as f64 / mean) as u64;
    for _ in 0..4 {
        let geo = layout::Geometry::budget(BUDGET, MIB.min(BUDGET / 8), cap, None, true).expect("layout");
        let fit = (geo.store_bytes * geo.shards as u64) as f64 / mean;
        cap = ((fit * 1.1) as u64).div_ceil(1024) * 1024;
    }
    cap
}

/// The engine's designs: its default index (which grows as entries need it), an entry per KiB,
/// and an index that fits the trace ([`fitting_capacity`]); with `SIZED_MS_CLOCK=1`, the
/// default again on a clock that moves 1 ms per request (the engine's times of use and of
/// writing are in ms: on the system clock, a replay of a thousand requests a ms gives no second
/// chance to a record used in the ms it was written).
fn engine_designs(trace: &Trace) -> Vec<(Index, bool)> {
    if std::env::var("SIZED_ENGINE").is_ok_and(|v| v == "0") {
        return Vec::new();
    }
    let mut v = vec![
        (Index::Default, false),
        (Index::PerBytes(KIB), false),
        (Index::Entries(fitting_capacity(trace)), false),
    ];
    if std::env::var("SIZED_MS_CLOCK").is_ok_and(|v| v == "1") {
        v.push((Index::Default, true));
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = !args.iter().any(|a| a == "--bench");
    let seed: u64 = std::env::var("SIZED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let traces = std::env::var("SIZED_TRACES").unwrap_or_else(|_| "t1,small,large,shift".into());
    let traces: Vec<&str> = if quick {
        vec!["t1"]
    } else {
        traces.split(',').collect()
    };
    let with_redis = !quick && std::env::var("SIZED_REDIS").map(|v| v != "0").unwrap_or(true);
    println!(
        "# Byte budgets: {} MiB, index {} KiB ({} B per {} B of budget), object header {} B, seed {seed}",
        BUDGET / MIB,
        index_bytes() / KIB,
        INDEX_SLOT,
        bytes_per_slot(),
        HEADER
    );
    for name in traces {
        let trace = make_trace(name, seed, quick);
        let data: u64 = (0..trace.keys as u32).map(|k| trace.kv(k, 0)).sum();
        println!(
            "\n## {} ({}): {} requests, first {} not counted; all keys {:.1} MiB\n",
            trace.name,
            trace.what,
            trace.requests.len(),
            trace.warmup,
            data as f64 / MIB as f64
        );
        let mut outs: Vec<Outcome> = Vec::new();
        let mut missing = Vec::new();
        let log_shapes = [1, 4];
        let models = if std::env::var("SIZED_MODELS").is_ok_and(|v| v == "0") {
            1
        } else {
            usize::MAX
        };
        for (i, d) in designs(trace.keys).into_iter().enumerate().take(models) {
            match d {
                Some(mut d) => outs.push(replay(&trace, d.as_mut())),
                None => missing.push(format!(
                    "log, {} segments, {} shards: a shard would hold fewer than two segments",
                    size_name(LOG_SEGMENTS[(i - 1) / 2]),
                    log_shapes[(i - 1) % 2]
                )),
            }
        }
        let first_engine = outs.len();
        for (index, ms) in engine_designs(&trace) {
            let mut e = Engine::new(trace.keys, index, ms);
            outs.push(replay(&trace, &mut e));
        }
        let engines = first_engine..outs.len();
        let mut redis = None;
        if with_redis {
            match Redis::start(trace.keys) {
                Ok(mut r) => {
                    let o = replay(&trace, &mut r);
                    drop(r);
                    redis = Some(outs.len());
                    outs.push(o);
                }
                Err(e) => println!("redis-server not started: {e}"),
            }
        }
        let exact = outs[0].hit;
        println!(
            "| design | hit ratio | ÷ exact | memory ÷ live bytes | RSS ÷ live | sets | refused sets | notes |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for o in &outs {
            println!(
                "| {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} ({:.0} s) |",
                o.name,
                o.hit,
                o.hit / exact,
                o.mem,
                o.rss.map(|r| format!("{r:.3}")).unwrap_or_else(|| "".into()),
                o.sets,
                o.refused,
                o.note,
                o.secs
            );
        }
        for m in &missing {
            println!("\n- not run: {m}");
        }
        let rate = |o: &Outcome, a: usize, b: usize| (o.cum[b] - o.cum[a]) as f64 / (b - a) as f64;
        // The shift's figure: the window after two turnovers (turnovers 3 and 4).
        let mut after_two = None;
        if trace.shift_at < trace.requests.len() {
            let t = turnovers(&trace, 8);
            if t.len() == 8 {
                after_two = Some((t[1], t[3]));
            }
            let s = trace.shift_at;
            let n = trace.requests.len();
            println!(
                "\nTurnover after the shift (exact LRU writes 32 MiB): requests {:?} from {s}\n",
                t.iter().map(|&x| x - s).collect::<Vec<_>>()
            );
            let mut windows = vec![("before the shift (100k)", s - 100_000.min(s), s)];
            if t.len() == 8 {
                windows.push(("turnover 1", s, t[0]));
                windows.push(("turnover 2", t[0], t[1]));
                windows.push(("turnovers 3–4", t[1], t[3]));
                windows.push(("turnovers 5–8", t[3], t[7]));
            }
            windows.push(("last 100k", n - 100_000.min(n - s), n));
            print!("| design |");
            for w in &windows {
                print!(" {} |", w.0);
            }
            print!("\n| --- |");
            for _ in &windows {
                print!(" ---: |");
            }
            println!();
            for o in &outs {
                print!("| {} |", o.name);
                for w in &windows {
                    let (r, e) = (rate(o, w.1, w.2), rate(&outs[0], w.1, w.2));
                    if std::ptr::eq(o, &outs[0]) {
                        print!(" {r:.3} |");
                    } else {
                        print!(" {r:.3} ({:+.1} %) |", (r / e - 1.0) * 100.0);
                    }
                }
                println!();
            }
        }
        if engines.is_empty() {
            continue;
        }
        if quick {
            println!("\n(test mode: a short trace, not a steady state; no figures)");
            continue;
        }
        println!("\nThe engine against its figures:\n");
        let limit = match trace.name {
            "t1" => Some(1.15),
            "small" => Some(1.5),
            "large" => Some(1.05),
            _ => None,
        };
        for o in &outs[engines] {
            let mut f = Vec::new();
            if let Some(l) = limit {
                f.push(format!("memory {:.3} (≤ {l}): {}", o.mem, met(o.mem <= l)));
            }
            if trace.name == "t1" {
                let r = o.hit / exact;
                f.push(format!(
                    "hit {:.3}, {r:.3} × exact (≥ 0.97): {}",
                    o.hit,
                    met(r >= 0.97)
                ));
                if let Some(i) = redis {
                    f.push(format!("Redis {:.3}: {}", outs[i].hit, met(o.hit >= outs[i].hit)));
                }
            }
            if let Some((a, b)) = after_two {
                let r = rate(o, a, b) / rate(&outs[0], a, b);
                f.push(format!(
                    "after two turnovers {:+.1} % of exact (≥ −5 %): {}; refused sets {}: {}",
                    (r - 1.0) * 100.0,
                    met(r >= 0.95),
                    o.refused,
                    met(o.refused == 0)
                ));
            }
            println!("- {}: {}", o.name, f.join("; "));
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

//! Model-based tests: random sequences of every operation run against the cache and against a
//! plain in-process LRU written here, with a manual clock that moves so that entries expire.
//! The clock moves at least 1 ms per operation, so every two uses are more than the refresh
//! interval apart (it stays at 1 ms at this rate of promotions) and the documented guarantee
//! makes one shard an exact LRU: same answers, same victims, same order, same counters, and
//! `check()` clean after every operation. Only `len()` and `stats()` reclaim expired entries
//! on their own, and they are one operation among the others, so reads, writes, slot calls and
//! evictions meet entries that expired since they were written. On several shards only
//! membership is compared, since eviction is per shard.

use crate::util::{self, cache_with_clock, sharded};
use proptest::prelude::*;
use shm_lru::internals::fnv1a64;
use shm_lru::{Cache, CacheOptions, Entry, Error, Key, Order, SetMode, SetOptions, Stats, ValueKind};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

const RECORD: usize = 24;

/// The keys operations pick from: u64 keys, one of them equal to the FNV hash of a byte key
/// that is also used, and byte keys of several lengths.
fn key(i: u8) -> Key {
    match i {
        0..=3 => Key::Hash(i as u64),
        4 => Key::Hash(fnv1a64(b"k0")),
        5..=8 => Key::Bytes(format!("k{}", i - 5).into_bytes()),
        _ => Key::Bytes(b"a-longer-key".to_vec()),
    }
}
const NKEYS: u8 = 10;

fn key_len(k: &Key) -> usize {
    match k {
        Key::Hash(_) => 0,
        Key::Bytes(b) => b.len(),
    }
}

#[derive(Debug, Clone)]
enum SlotPick {
    /// The slot of the model's n-th entry (modulo their number), if any.
    Existing(usize),
    /// Any number, in range or not.
    Raw(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        value: Vec<u8>,
        mode: SetMode,
        ttl: Option<u64>,
        str_kind: bool,
    },
    Get(u8),
    Peek(u8),
    Contains(u8),
    GetInto {
        key: u8,
        buf: usize,
    },
    Remove(u8),
    Incr {
        key: u8,
        delta: i64,
        ttl: Option<u64>,
    },
    RemoveSlot(SlotPick),
    SlotEntry(SlotPick),
    SetShare {
        slot: SlotPick,
        share: u32,
    },
    EvictUsedBefore {
        back: u64,
        max: usize,
    },
    PurgeExpired,
    Entries {
        lru: bool,
        share: Option<u32>,
        limit: Option<usize>,
    },
    Clear,
    /// `len()` and `stats()`, which reclaim expired entries first: asked now and then, not
    /// after every step, so that the other operations meet expired entries.
    Count,
    Advance(u64),
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..=RECORD + 2),
        2 => (-1000i64..1000).prop_map(|n| n.to_string().into_bytes()),
        1 => prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(i64::MAX - 1)]
            .prop_map(|n| n.to_string().into_bytes()),
        1 => Just(b"12x".to_vec()),
    ]
}

fn ttl() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![3 => Just(None), 1 => Just(Some(0)), 2 => (1u64..60).prop_map(Some)]
}

fn slot_pick(cap: u64) -> impl Strategy<Value = SlotPick> {
    prop_oneof![
        2 => any::<usize>().prop_map(SlotPick::Existing),
        1 => (0..=cap + 2).prop_map(SlotPick::Raw),
    ]
}

fn op(cap: u64) -> impl Strategy<Value = Op> {
    let k = || 0..NKEYS;
    prop_oneof![
        8 => (k(), value(), prop_oneof![4 => Just(SetMode::Upsert), 1 => Just(SetMode::Add), 1 => Just(SetMode::Replace)], ttl(), any::<bool>())
            .prop_map(|(key, value, mode, ttl, str_kind)| Op::Set { key, value, mode, ttl, str_kind }),
        4 => k().prop_map(Op::Get),
        2 => k().prop_map(Op::Peek),
        1 => k().prop_map(Op::Contains),
        1 => (k(), 0..RECORD).prop_map(|(key, buf)| Op::GetInto { key, buf }),
        3 => k().prop_map(Op::Remove),
        3 => (k(), prop_oneof![4 => -5i64..5, 1 => Just(i64::MAX), 1 => Just(i64::MIN)], ttl())
            .prop_map(|(key, delta, ttl)| Op::Incr { key, delta, ttl }),
        2 => slot_pick(cap).prop_map(Op::RemoveSlot),
        1 => slot_pick(cap).prop_map(Op::SlotEntry),
        1 => (slot_pick(cap), 0u32..3).prop_map(|(slot, share)| Op::SetShare { slot, share }),
        1 => (0u64..60, 0usize..4).prop_map(|(back, max)| Op::EvictUsedBefore { back, max }),
        1 => Just(Op::PurgeExpired),
        1 => (any::<bool>(), proptest::option::of(0u32..3), proptest::option::of(0usize..5))
            .prop_map(|(lru, share, limit)| Op::Entries { lru, share, limit }),
        1 => Just(Op::Clear),
        1 => Just(Op::Count),
        3 => (0u64..25).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone)]
struct MEntry {
    key: Key,
    value: Vec<u8>,
    kind: ValueKind,
    used: u64,
    expires: Option<u64>,
    slot: u32,
    share: u32,
}

/// The reference: a recency-ordered Vec (index 0 = most recently used) holding every entry
/// that occupies a slot, expired or not, since the cache too reclaims expired entries lazily.
struct Model {
    cap: usize,
    slots: u64,
    evict: bool,
    now: u64,
    list: Vec<MEntry>,
    st: Stats,
}

fn err_text(e: &Error) -> String {
    e.to_string()
}

impl Model {
    fn pos(&self, k: &Key) -> Option<usize> {
        self.list.iter().position(|e| &e.key == k)
    }

    fn expired(&self, i: usize) -> bool {
        self.list[i].expires.is_some_and(|x| self.now >= x)
    }

    fn find_live(&mut self, k: &Key) -> Option<usize> {
        let i = self.pos(k)?;
        if self.expired(i) {
            self.list.remove(i);
            self.st.expirations += 1;
            return None;
        }
        Some(i)
    }

    /// Marks entry `i` used now; returns its new index (0).
    fn touch(&mut self, i: usize) -> usize {
        let mut e = self.list.remove(i);
        e.used = self.now;
        self.list.insert(0, e);
        0
    }

    /// Reclaims the expired entries, as `len()` and `stats()` do first; returns how many.
    fn purge(&mut self) -> u64 {
        let before = self.list.len();
        let now = self.now;
        self.list.retain(|e| e.expires.is_none_or(|x| now < x));
        let n = (before - self.list.len()) as u64;
        self.st.expirations += n;
        n
    }

    fn expires(&self, ttl: Option<u64>) -> Option<u64> {
        match ttl {
            None | Some(0) => None,
            Some(t) => Some(self.now + t),
        }
    }

    fn entry(&self, e: &MEntry) -> Entry {
        Entry {
            slot: e.slot,
            key: e.key.clone(),
            value: e.value.clone(),
            kind: e.kind,
            used_ms: e.used,
            expires_ms: e.expires,
            share_key: e.share,
        }
    }

    fn live(&self) -> Vec<Entry> {
        (0..self.list.len())
            .filter(|&i| !self.expired(i))
            .map(|i| self.entry(&self.list[i]))
            .collect()
    }

    /// What `set` must do, up to the point where a new entry needs a slot: `Ok(Some(i))` for an
    /// overwrite of entry `i`, `Ok(None)` for an insert (after evicting if `evicted`).
    fn set_plan(&mut self, k: &Key, value: &[u8], mode: SetMode) -> Result<(Option<usize>, bool), String> {
        let size = key_len(k) + value.len();
        if size > RECORD {
            return Err(err_text(&Error::ValueTooLarge {
                size: size as u64,
                max: RECORD as u64,
            }));
        }
        if let Some(i) = self.find_live(k) {
            if mode == SetMode::Add {
                return Err(err_text(&Error::KeyExists));
            }
            return Ok((Some(i), false));
        }
        if mode == SetMode::Replace {
            return Err(err_text(&Error::KeyNotFound));
        }
        if self.list.len() < self.cap {
            return Ok((None, false));
        }
        // A full shard reclaims its expired entries before it evicts or refuses.
        if self.purge() > 0 && self.list.len() < self.cap {
            return Ok((None, false));
        }
        if !self.evict {
            return Err(err_text(&Error::Full));
        }
        self.list.pop();
        self.st.evictions += 1;
        Ok((None, true))
    }

    fn overwrite(&mut self, i: usize, value: Vec<u8>, kind: ValueKind, expires: Option<u64>) {
        let i = self.touch(i);
        let e = &mut self.list[i];
        e.value = value;
        e.kind = kind;
        e.expires = expires;
        self.st.updates += 1;
    }

    fn insert(&mut self, k: Key, value: Vec<u8>, kind: ValueKind, expires: Option<u64>, slot: u32) {
        assert!(
            slot >= 1 && slot as u64 <= self.slots,
            "slot {slot} outside 1..={}",
            self.slots
        );
        assert!(
            self.list.iter().all(|e| e.slot != slot),
            "slot {slot} handed out while holding an entry"
        );
        self.list.insert(
            0,
            MEntry {
                key: k,
                value,
                kind,
                used: self.now,
                expires,
                slot,
                share: 0,
            },
        );
        self.st.inserts += 1;
    }

    fn pick(&self, p: &SlotPick) -> u64 {
        match *p {
            SlotPick::Existing(n) if !self.list.is_empty() => self.list[n % self.list.len()].slot as u64,
            SlotPick::Existing(n) => n as u64 % (self.slots + 2),
            SlotPick::Raw(s) => s,
        }
    }

    /// The entry in `slot` for an id-based call, reclaiming it if expired.
    fn by_slot(&mut self, slot: u64) -> Result<usize, String> {
        if slot == 0 || slot > self.slots {
            return Err(err_text(&Error::NoSuchSlot(slot)));
        }
        let Some(i) = self.list.iter().position(|e| e.slot as u64 == slot) else {
            return Err(err_text(&Error::SlotFree(slot)));
        };
        if self.expired(i) {
            self.list.remove(i);
            self.st.expirations += 1;
            return Err(err_text(&Error::SlotFree(slot)));
        }
        Ok(i)
    }
}

fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

fn same_entries(got: Vec<Entry>, want: Vec<Entry>, exact_order: bool, what: &str) {
    if exact_order {
        assert_eq!(got, want, "{what}");
    } else {
        assert_eq!(sorted(got), sorted(want), "{what}");
    }
}

/// Runs `ops` on a fresh cache made with `o` and on the model, comparing after every step.
/// With `exact_order` false (several shards), orders are compared as sets and operations
/// whose result depends on the order across shards are asked in a form that does not.
fn run(o: &CacheOptions, ops: &[Op], exact_order: bool) {
    let (c, clock) = cache_with_clock("model", o);
    let cap = c.capacity() as usize;
    let slots = c.slots();
    let mut m = Model {
        cap,
        slots,
        evict: o.evict_on_full,
        now: clock.load(Ordering::Relaxed),
        list: Vec::new(),
        st: Stats {
            capacity: cap as u64,
            ..Stats::default()
        },
    };
    for (step, op) in ops.iter().enumerate() {
        apply(&c, &mut m, op, exact_order);
        m.now += 1;
        clock.store(m.now, Ordering::Relaxed);
        // Nothing here reclaims expired entries (`check()` and `entries()` only skip them), so
        // the next operation may meet an entry that expired since it was written.
        let r = c.check().unwrap();
        assert!(r.is_ok(), "step {step} ({op:?}): check found problems:\n{r}");
        assert_eq!(
            r.entries,
            m.list.len() as u64,
            "step {step} ({op:?}): entries checked"
        );
        same_entries(
            c.entries(Order::MruFirst, None, None).unwrap(),
            m.live(),
            exact_order,
            &format!("step {step} ({op:?}): iteration"),
        );
    }
    // And at the end, the counters.
    apply(&c, &mut m, &Op::Count, exact_order);
}

fn apply(c: &Cache, m: &mut Model, op: &Op, exact_order: bool) {
    match op {
        Op::Advance(ms) => {
            m.now += ms;
        }
        Op::Set {
            key: ki,
            value,
            mode,
            ttl,
            str_kind,
        } => {
            let k = key(*ki);
            let kind = if *str_kind {
                ValueKind::Str
            } else {
                ValueKind::Bytes
            };
            // Keep the old expiry on overwrites of byte keys with an odd first byte: both ways
            // get exercised without another field in every case.
            let keep_ttl =
                matches!(&k, Key::Bytes(b) if b.first().is_some_and(|c| c % 2 == 1)) && value.len() % 2 == 1;
            let so = SetOptions {
                ttl_ms: *ttl,
                mode: *mode,
                kind,
                keep_ttl,
            };
            let got = c.set(k.as_ref(), value, &so);
            let expires = m.expires(*ttl);
            match m.set_plan(&k, value, *mode) {
                Err(want) => assert_eq!(got.map_err(|e| err_text(&e)).map(|_| ()), Err(want), "{op:?}"),
                Ok((Some(i), _)) => {
                    let slot = m.list[i].slot;
                    let out = got.unwrap();
                    assert_eq!((out.slot, out.inserted, out.evicted), (slot, false, false));
                    let expires = if keep_ttl { m.list[i].expires } else { expires };
                    m.overwrite(i, value.clone(), kind, expires);
                }
                Ok((None, evicted)) => {
                    let out = got.unwrap();
                    assert_eq!((out.inserted, out.evicted), (true, evicted), "{op:?}");
                    m.insert(k, value.clone(), kind, expires, out.slot);
                }
            }
        }
        Op::Get(ki) => {
            let k = key(*ki);
            let got = c.get(k.as_ref()).unwrap();
            let want = match m.find_live(&k) {
                Some(i) => {
                    let i = m.touch(i);
                    m.st.hits += 1;
                    Some(m.list[i].value.clone())
                }
                None => {
                    m.st.misses += 1;
                    None
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Peek(ki) => {
            let k = key(*ki);
            let got = c.peek_with(k.as_ref(), |v, kind| (v.to_vec(), kind)).unwrap();
            let want = m.find_live(&k).map(|i| (m.list[i].value.clone(), m.list[i].kind));
            assert_eq!(got, want, "{op:?}");
        }
        Op::Contains(ki) => {
            let k = key(*ki);
            let got = (c.contains(k.as_ref()).unwrap(), c.slot_of(k.as_ref()).unwrap());
            let want = m.find_live(&k).map(|i| m.list[i].slot);
            assert_eq!(got, (want.is_some(), want), "{op:?}");
        }
        Op::GetInto { key: ki, buf } => {
            let k = key(*ki);
            let mut b = vec![0u8; *buf];
            let got = c.get_into(k.as_ref(), &mut b).map_err(|e| err_text(&e));
            let want = match m.find_live(&k) {
                Some(i) => {
                    let i = m.touch(i);
                    m.st.hits += 1;
                    let e = &m.list[i];
                    if e.value.len() > *buf {
                        Err(err_text(&Error::BufferTooSmall {
                            needed: e.value.len(),
                        }))
                    } else {
                        assert_eq!(&b[..e.value.len()], &e.value[..]);
                        Ok(Some((e.value.len(), e.kind)))
                    }
                }
                None => {
                    m.st.misses += 1;
                    Ok(None)
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Remove(ki) => {
            let k = key(*ki);
            let got = c.remove(k.as_ref()).unwrap();
            let want = match m.find_live(&k) {
                Some(i) => {
                    m.list.remove(i);
                    m.st.removes += 1;
                    true
                }
                None => false,
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Incr { key: ki, delta, ttl } => {
            let k = key(*ki);
            let got = c.incr(k.as_ref(), *delta, *ttl).map_err(|e| err_text(&e));
            let want = match m.find_live(&k) {
                Some(i) => {
                    let cur = std::str::from_utf8(&m.list[i].value)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok());
                    match cur {
                        None => Err(err_text(&Error::NotANumber)),
                        Some(cur) => match cur.checked_add(*delta) {
                            None => Err(err_text(&Error::Overflow)),
                            Some(next) => {
                                let text = next.to_string().into_bytes();
                                let size = key_len(&k) + text.len();
                                if size > RECORD {
                                    Err(err_text(&Error::ValueTooLarge {
                                        size: size as u64,
                                        max: RECORD as u64,
                                    }))
                                } else {
                                    let exp = m.list[i].expires;
                                    m.overwrite(i, text, ValueKind::Str, exp);
                                    Ok(next)
                                }
                            }
                        },
                    }
                }
                None => {
                    let text = delta.to_string().into_bytes();
                    let expires = m.expires(*ttl);
                    match m.set_plan(&k, &text, SetMode::Add) {
                        Err(e) => Err(e),
                        Ok((Some(_), _)) => unreachable!("the key was just found absent"),
                        Ok((None, _)) => {
                            let slot = c.slot_of(k.as_ref()).unwrap().expect("incr inserted the key");
                            m.insert(k, text, ValueKind::Str, expires, slot);
                            Ok(*delta)
                        }
                    }
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::RemoveSlot(p) => {
            let s = m.pick(p);
            let got = c.remove_slot(s).map_err(|e| err_text(&e));
            let want = m.by_slot(s).map(|i| {
                m.list.remove(i);
                m.st.removes += 1;
            });
            assert_eq!(got, want, "{op:?} (slot {s})");
        }
        Op::SlotEntry(p) => {
            let s = m.pick(p);
            let got = c.slot_entry(s).map_err(|e| err_text(&e));
            let want = m.by_slot(s).map(|i| m.entry(&m.list[i]));
            assert_eq!(got, want, "{op:?} (slot {s})");
            if let Ok(i) = m.by_slot(s) {
                let e = &m.list[i];
                let v = c.get_slot_with(s, |v, k| (v.to_vec(), k)).unwrap();
                assert_eq!(v, (e.value.clone(), e.kind));
            }
        }
        Op::SetShare { slot, share } => {
            let s = m.pick(slot);
            let got = c.set_share_key(s, *share).map_err(|e| err_text(&e));
            let want = m.by_slot(s).map(|i| m.list[i].share = *share);
            assert_eq!(got, want, "{op:?} (slot {s})");
        }
        Op::EvictUsedBefore { back, max } => {
            let cutoff = m.now - back;
            let max = if exact_order { *max } else { usize::MAX };
            let got = c.evict_used_before(cutoff, max).unwrap();
            let mut want = Vec::new();
            while want.len() < max {
                match m.list.last() {
                    Some(e) if e.used < cutoff => {
                        want.push(m.entry(e));
                        m.list.pop();
                        m.st.evictions += 1;
                    }
                    _ => break,
                }
            }
            assert!(got.iter().all(|e| e.used_ms < cutoff));
            same_entries(got, want, exact_order, &format!("{op:?}"));
        }
        Op::PurgeExpired => {
            let got = c.purge_expired().unwrap();
            assert_eq!(got, m.purge());
        }
        Op::Entries { lru, share, limit } => {
            let order = if *lru { Order::LruFirst } else { Order::MruFirst };
            let limit = if exact_order { *limit } else { None };
            let got = c.entries(order, *share, limit).unwrap();
            let mut want: Vec<Entry> = m
                .live()
                .into_iter()
                .filter(|e| share.is_none_or(|s| e.share_key == s))
                .collect();
            if *lru {
                want.reverse();
            }
            want.truncate(limit.unwrap_or(usize::MAX));
            same_entries(got, want, exact_order, &format!("{op:?}"));
        }
        Op::Count => {
            m.purge();
            assert_eq!(c.len().unwrap(), m.list.len() as u64, "len");
            let mut want = m.st;
            want.len = m.list.len() as u64;
            let got = c.stats().unwrap();
            // A cache of fixed records counts its bytes in whole records.
            let stride = c.geometry().stride;
            assert_eq!(got.bytes_live, want.len * stride, "bytes live");
            assert_eq!(got.bytes_used + got.bytes_free, c.slots() * stride, "bytes");
            want.bytes_live = got.bytes_live;
            want.bytes_used = got.bytes_used;
            want.bytes_free = got.bytes_free;
            assert_eq!(got, want, "stats");
        }
        Op::Clear => {
            let got = c.clear().unwrap();
            let n = m.list.len() as u64;
            m.st.removes += n;
            m.list.clear();
            assert_eq!(got, n);
        }
    }
}

fn single_shard(capacity: u64, evict: bool) -> CacheOptions {
    util::single_shard(capacity, RECORD as u32, evict)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn single_shard_evicting_is_an_exact_lru(cap in 1u64..7, ops in proptest::collection::vec(op(8), 1..120)) {
        run(&single_shard(cap, true), &ops, true);
    }

    #[test]
    fn single_shard_refusing_is_an_exact_lru(cap in 1u64..7, ops in proptest::collection::vec(op(8), 1..120)) {
        run(&single_shard(cap, false), &ops, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Several shards with room for every key: the same entries, answers and counters, with
    /// no claim about the order across shards.
    #[test]
    fn many_shards_keep_the_same_entries(evict in any::<bool>(), ops in proptest::collection::vec(op(70), 1..120)) {
        let o = sharded(4, 64, RECORD as u32, evict);
        run(&o, &ops, false);
    }

    /// Several tiny evicting shards: whatever the cache returns is the latest value written
    /// under that key, it never holds a key the model does not, and it stays sound.
    #[test]
    fn many_small_evicting_shards_never_return_stale_values(ops in proptest::collection::vec((0..NKEYS, 0u8..4, any::<u16>()), 1..200)) {
        let o = sharded(4, 8, RECORD as u32, true);
        let (c, _clock) = cache_with_clock("model-small", &o);
        let mut model: HashMap<Key, Vec<u8>> = HashMap::new();
        for (ki, what, n) in ops {
            let k = key(ki);
            match what {
                0 => {
                    let v = n.to_string().into_bytes();
                    c.put(k.as_ref(), &v).unwrap();
                    model.insert(k.clone(), v);
                }
                1 => {
                    let got = c.get(k.as_ref()).unwrap();
                    if let Some(v) = &got {
                        prop_assert_eq!(Some(v), model.get(&k));
                    }
                }
                2 => {
                    let had = c.remove(k.as_ref()).unwrap();
                    let known = model.remove(&k).is_some();
                    prop_assert!(known || !had, "removed a key never written");
                }
                _ => {
                    let next = c.incr(k.as_ref(), 1, None);
                    match (next, model.get(&k).map(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()))) {
                        (Ok(n), Some(Some(cur))) => prop_assert_eq!(n, cur + 1),
                        (Ok(n), _) => prop_assert_eq!(n, 1),
                        (Err(e), _) => prop_assert!(false, "incr failed: {e}"),
                    }
                    let v = c.peek(k.as_ref()).unwrap().unwrap();
                    model.insert(k.clone(), v);
                }
            }
            let all = c.entries(Order::MruFirst, None, None).unwrap();
            prop_assert!(all.len() as u64 <= c.slots());
            for e in &all {
                prop_assert_eq!(Some(&e.value), model.get(&e.key), "{:?}", e.key);
            }
            // Keys the cache evicted are forgotten by the model, too.
            model.retain(|k, _| all.iter().any(|e| &e.key == k));
            let r = c.check().unwrap();
            prop_assert!(r.is_ok(), "{}", r);
        }
    }
}

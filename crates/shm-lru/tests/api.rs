//! Every public operation of `Cache`, `Segment` and `SegmentId`, one behaviour at a time, in
//! one process.

use crate::util::{self, assert_sound, cache, cache_with_clock, opts, sharded, SegGuard};
use shm_lru::internals::fnv1a64;
use shm_lru::{
    layout, Cache, CacheOptions, Entry, Error, InitMode, Key, KeyRef, Order, Segment, SegmentId, SetMode,
    SetOptions, ValueKind,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn ttl(ms: u64) -> SetOptions {
    SetOptions {
        ttl_ms: Some(ms),
        ..SetOptions::default()
    }
}

fn mode(m: SetMode) -> SetOptions {
    SetOptions {
        mode: m,
        ..SetOptions::default()
    }
}

fn keys_of(v: &[Entry]) -> Vec<Key> {
    v.iter().map(|e| e.key.clone()).collect()
}

#[test]
fn get_peek_contains_slot_of() {
    let c = cache("basic", &opts(16, 64, true));
    assert_eq!(c.get(1u64).unwrap(), None);
    assert!(!c.contains(1u64).unwrap());
    assert_eq!(c.slot_of(1u64).unwrap(), None);
    assert_eq!(c.peek(1u64).unwrap(), None);

    let slot = c.put(1u64, b"one").unwrap();
    assert!((1..=16).contains(&slot));
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(c.peek(1u64).unwrap().as_deref(), Some(&b"one"[..]));
    assert!(c.contains(1u64).unwrap());
    assert_eq!(c.slot_of(1u64).unwrap(), Some(slot));
    assert_eq!(
        c.get_with(1u64, |v, k| (v.len(), k)).unwrap(),
        Some((3, ValueKind::Bytes))
    );
    assert_eq!(c.peek_with(2u64, |v, _| v.len()).unwrap(), None);

    // Overwriting keeps the slot.
    assert_eq!(c.put(1u64, b"uno").unwrap(), slot);
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"uno"[..]));
    assert_eq!(c.len().unwrap(), 1);
    assert!(!c.is_empty().unwrap());
    assert_sound(&c);
}

#[test]
fn peek_and_contains_do_not_mark_used_but_get_does() {
    let c = cache("recency", &opts(3, 32, true));
    for k in 1..=3u64 {
        c.put(k, b"x").unwrap();
    }
    // 1 is the least recently used; peeking or asking about it must not save it.
    c.peek(1u64).unwrap();
    c.contains(1u64).unwrap();
    c.slot_of(1u64).unwrap();
    c.put(4u64, b"x").unwrap();
    assert!(!c.contains(1u64).unwrap());
    // Now 2 is the oldest; a get saves it, so 3 goes next.
    c.get(2u64).unwrap();
    let out = c.set(5u64, b"x", &SetOptions::default()).unwrap();
    assert!(out.inserted && out.evicted);
    assert!(c.contains(2u64).unwrap());
    assert!(!c.contains(3u64).unwrap());
    let order: Vec<Key> = keys_of(&c.entries(Order::MruFirst, None, None).unwrap());
    assert_eq!(order, vec![Key::Hash(5), Key::Hash(2), Key::Hash(4)]);
    assert_sound(&c);
}

#[test]
fn set_modes_and_outcomes() {
    let c = cache("modes", &opts(8, 64, false));
    let o = c.set("k", b"v1", &mode(SetMode::Add)).unwrap();
    assert!(o.inserted && !o.evicted);
    assert!(matches!(
        c.set("k", b"v2", &mode(SetMode::Add)),
        Err(Error::KeyExists)
    ));
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v1"[..]));

    let r = c.set("k", b"v3", &mode(SetMode::Replace)).unwrap();
    assert_eq!(r.slot, o.slot);
    assert!(!r.inserted && !r.evicted);
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v3"[..]));
    assert!(matches!(
        c.set("absent", b"v", &mode(SetMode::Replace)),
        Err(Error::KeyNotFound)
    ));
    assert!(!c.contains("absent").unwrap());

    let u = c.set("k", b"v4", &mode(SetMode::Upsert)).unwrap();
    assert!(!u.inserted);
    let u2 = c.set("k2", b"v", &mode(SetMode::Upsert)).unwrap();
    assert!(u2.inserted);
    assert_ne!(u2.slot, u.slot);

    // The kind comes back as stored, and an overwrite changes it.
    let s = SetOptions {
        kind: ValueKind::Str,
        ..SetOptions::default()
    };
    c.set("k", "héllo".as_bytes(), &s).unwrap();
    assert_eq!(
        c.get_with("k", |v, k| (v.to_vec(), k)).unwrap(),
        Some(("héllo".as_bytes().to_vec(), ValueKind::Str))
    );
    c.put("k", b"\xff\x00").unwrap();
    assert_eq!(c.peek_with("k", |_, k| k).unwrap(), Some(ValueKind::Bytes));
    let st = c.stats().unwrap();
    assert_eq!((st.inserts, st.updates), (2, 4));
    assert_sound(&c);
}

#[test]
fn values_of_every_length_read_back_whole_through_every_destination() {
    // The copy out of a slot is made of 16-byte pieces, overlapping at the ends: every length
    // from 0 to the record size, for integer and byte keys, must come back byte for byte.
    const RS: u32 = 200;
    let t = cache("every-length", &opts(512, RS + 8, false));
    let c = &t.cache;
    for len in 0..=RS as usize {
        let value: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        c.put(len as u64, &value).unwrap();
        c.put(format!("k{len}").as_str(), &value).unwrap();
        for key in [
            KeyRef::Hash(len as u64),
            KeyRef::Bytes(format!("k{len}").as_bytes()),
        ] {
            assert_eq!(
                c.get(key).unwrap().as_deref(),
                Some(&value[..]),
                "get, {len} bytes"
            );
            let mut buf = vec![0xeeu8; len + 3];
            let got = c.get_into(key, &mut buf).unwrap().map(|(n, _)| n);
            assert_eq!(got, Some(len), "get_into, {len} bytes");
            assert_eq!(&buf[..len], &value[..], "get_into, {len} bytes");
            assert!(
                buf[len..].iter().all(|&b| b == 0xee),
                "get_into wrote past {len} bytes"
            );
            let seen = c.get_with(key, |v, _| v.to_vec()).unwrap();
            assert_eq!(seen.as_deref(), Some(&value[..]), "get_with, {len} bytes");
        }
    }
    assert_sound(c);
}

#[test]
fn values_that_fill_their_record_read_back_whole_at_every_record_size() {
    // A value as long as its record is copied with offsets taken from the record size: at
    // every size (word copies below 16 bytes, one or two overlapping 16-byte pieces, four, and
    // the loop over 64-byte blocks) it must come back whole, and a destination longer than the
    // value must keep its bytes past it.
    for rs in [8u32, 16, 24, 32, 40, 48, 64, 72, 96, 136, 200, 1024] {
        let t = cache(&format!("full-{rs}"), &opts(16, rs, false));
        let c = &t.cache;
        for (key, len) in [(1u64, rs as usize), (2, rs as usize - 1), (3, rs as usize / 2)] {
            let value: Vec<u8> = (0..len).map(|i| (i * 13 + key as usize) as u8).collect();
            c.put(key, &value).unwrap();
            assert_eq!(
                c.get(key).unwrap().as_deref(),
                Some(&value[..]),
                "get, record {rs}, {len} bytes"
            );
            let mut exact = vec![0u8; len];
            assert_eq!(c.get_into(key, &mut exact).unwrap().map(|(n, _)| n), Some(len));
            assert_eq!(exact, value, "get_into, record {rs}, {len} bytes");
            let mut wide = vec![0xeeu8; len + 40];
            assert_eq!(c.get_into(key, &mut wide).unwrap().map(|(n, _)| n), Some(len));
            assert_eq!(&wide[..len], &value[..], "get_into, record {rs}, {len} bytes");
            assert!(
                wide[len..].iter().all(|&b| b == 0xee),
                "record {rs}: wrote past {len} bytes"
            );
            let seen = c.get_with(key, |v, _| v.to_vec()).unwrap();
            assert_eq!(
                seen.as_deref(),
                Some(&value[..]),
                "get_with, record {rs}, {len} bytes"
            );
        }
    }
}

#[test]
fn keys_that_overflow_their_home_bucket_are_found_one_and_two_buckets_on() {
    // One shard of four buckets, and keys whose home is the last one: fourteen fit there, the
    // next fourteen go on to the following bucket (which wraps around to the first), the rest
    // to the one after. With 20 keys the spilled ones all sit one bucket on, with 30 two
    // of them sit two buckets on. Every read path must find each key, and keys homed there that
    // were never stored, or were removed, must be misses.
    for (n, placed) in [(20usize, [14, 6, 0, 0]), (30, [14, 14, 2, 0])] {
        let t = cache(&format!("spill-{n}"), &sharded(1, 44, 16, false));
        let c = &t.cache;
        let g = c.geometry();
        assert_eq!(g.buckets_per_shard, 4);
        let home =
            |k: u64| (((shm_lru::internals::spread64(k) >> 32) * g.buckets_per_shard as u64) >> 32) as u32;
        let homed_last: Vec<u64> = (1u64..).filter(|&k| home(k) == 3).take(n + 10).collect();
        let (stored, never) = homed_last.split_at(n);
        for &k in stored {
            c.put(k, &k.to_le_bytes()).unwrap();
        }
        let entries_in = |b: u32| {
            (0..layout::BUCKET_ENTRIES)
                .filter(|&i| {
                    util::read_u32(
                        c.segment(),
                        util::bucket_off(&g, 0, b) + (layout::bucket::ENTRIES + 4 * i) as u64,
                    ) != 0
                })
                .count()
        };
        assert_eq!(
            [entries_in(3), entries_in(0), entries_in(1), entries_in(2)],
            placed,
            "{n} keys' placement"
        );
        let check = |present: &[u64], absent: &[u64]| {
            for &k in present {
                let want = Some(k.to_le_bytes().to_vec());
                assert_eq!(c.get(k).unwrap(), want, "get {k}");
                assert_eq!(c.peek(k).unwrap(), want, "peek {k}");
                assert!(c.contains(k).unwrap(), "contains {k}");
                let mut buf = [0u8; 16];
                assert_eq!(
                    c.get_into(k, &mut buf).unwrap().map(|(n, _)| n),
                    Some(8),
                    "get_into {k}"
                );
                assert_eq!(buf[..8], k.to_le_bytes());
            }
            for &k in absent {
                assert_eq!(c.get(k).unwrap(), None, "get {k}");
                assert!(!c.contains(k).unwrap(), "contains {k}");
                let mut buf = [0u8; 16];
                assert_eq!(c.get_into(k, &mut buf).unwrap(), None, "get_into {k}");
            }
        };
        check(stored, never);
        // Removing keys from the home bucket leaves the spilled ones where they are, still
        // found.
        for &k in &stored[..10] {
            assert!(c.remove(k).unwrap());
        }
        let gone: Vec<u64> = stored[..10].iter().chain(never).copied().collect();
        check(&stored[10..], &gone);
        assert_sound(c);
    }
}

#[test]
fn get_into_copies_or_reports_the_size() {
    let c = cache("getinto", &opts(8, 64, true));
    c.set(
        7u64,
        b"0123456789",
        &SetOptions {
            kind: ValueKind::Str,
            ..SetOptions::default()
        },
    )
    .unwrap();
    let mut buf = [0xaau8; 10];
    assert_eq!(c.get_into(7u64, &mut buf).unwrap(), Some((10, ValueKind::Str)));
    assert_eq!(&buf, b"0123456789");
    let mut big = [0u8; 32];
    assert_eq!(c.get_into(7u64, &mut big).unwrap(), Some((10, ValueKind::Str)));
    assert_eq!(&big[..10], b"0123456789");
    assert!(big[10..].iter().all(|&b| b == 0));
    let mut small = [0xaau8; 9];
    assert!(matches!(
        c.get_into(7u64, &mut small),
        Err(Error::BufferTooSmall { needed: 10 })
    ));
    assert!(
        small.iter().all(|&b| b == 0xaa),
        "nothing is copied on BufferTooSmall"
    );
    assert_eq!(c.get_into(8u64, &mut big).unwrap(), None);
    // An empty value fits an empty buffer.
    c.put(9u64, b"").unwrap();
    assert_eq!(c.get_into(9u64, &mut []).unwrap(), Some((0, ValueKind::Bytes)));
}

#[test]
fn incr_counts_and_refuses_what_it_cannot_add() {
    let c = cache("incr", &opts(8, 24, false));
    assert_eq!(c.incr("n", 5, None).unwrap(), 5);
    assert_eq!(c.incr("n", -7, None).unwrap(), -2);
    assert_eq!(c.incr(3u64, 0, None).unwrap(), 0);
    assert_eq!(
        c.get_with("n", |v, k| (v.to_vec(), k)).unwrap(),
        Some((b"-2".to_vec(), ValueKind::Str))
    );
    // A number written by set is a number.
    c.put("s", b"41").unwrap();
    assert_eq!(c.incr("s", 1, None).unwrap(), 42);
    assert_eq!(c.get("s").unwrap().as_deref(), Some(&b"42"[..]));

    c.put("bin", b"\x00\x01").unwrap();
    assert!(matches!(c.incr("bin", 1, None), Err(Error::NotANumber)));
    c.put("txt", b"12a").unwrap();
    assert!(matches!(c.incr("txt", 1, None), Err(Error::NotANumber)));
    assert_eq!(c.get("txt").unwrap().as_deref(), Some(&b"12a"[..]), "unchanged");

    c.put(1u64, i64::MAX.to_string().as_bytes()).unwrap();
    assert!(matches!(c.incr(1u64, 1, None), Err(Error::Overflow)));
    assert_eq!(c.incr(1u64, 0, None).unwrap(), i64::MAX);
    c.put(2u64, i64::MIN.to_string().as_bytes()).unwrap();
    assert!(matches!(c.incr(2u64, -1, None), Err(Error::Overflow)));
    assert_eq!(c.incr(2u64, 1, None).unwrap(), i64::MIN + 1);

    // Key bytes plus the number must fit the 24-byte record.
    let long_key = "k".repeat(20);
    assert_eq!(c.incr(long_key.as_str(), 999, None).unwrap(), 999);
    assert!(matches!(
        c.incr(long_key.as_str(), 9_001, None),
        Err(Error::ValueTooLarge { size: 25, max: 24 })
    ));
    assert_eq!(c.get(long_key.as_str()).unwrap().as_deref(), Some(&b"999"[..]));
    let huge = vec![b'x'; 65_536];
    assert!(matches!(
        c.incr(&huge[..], 1, None),
        Err(Error::KeyTooLarge(65_536))
    ));
    assert_sound(&c);
}

#[test]
fn incr_keeps_the_expiry_of_an_existing_entry() {
    let (c, clock) = cache_with_clock("incrttl", &opts(8, 32, true));
    assert_eq!(c.incr("n", 1, Some(100)).unwrap(), 1);
    clock.fetch_add(60, Ordering::Relaxed);
    // The ttl argument applies only when the counter is created.
    assert_eq!(c.incr("n", 1, Some(10_000)).unwrap(), 2);
    clock.fetch_add(40, Ordering::Relaxed);
    assert_eq!(c.get("n").unwrap(), None);
    assert_eq!(c.incr("n", 1, None).unwrap(), 1);
}

#[test]
fn remove_by_key() {
    let c = cache("remove", &opts(8, 32, true));
    c.put("a", b"1").unwrap();
    assert!(c.remove("a").unwrap());
    assert!(!c.remove("a").unwrap());
    assert_eq!(c.get("a").unwrap(), None);
    assert_eq!(c.len().unwrap(), 0);
    assert_eq!(c.stats().unwrap().removes, 1);
    assert_sound(&c);
}

#[test]
fn slot_operations_and_their_errors() {
    let c = cache("slots", &opts(8, 32, false));
    let s = c.put("a", b"alpha").unwrap() as u64;
    let t = c.put(5u64, b"beta").unwrap() as u64;

    assert!(matches!(
        c.get_slot_with(0, |v, _| v.len()),
        Err(Error::NoSuchSlot(0))
    ));
    assert!(matches!(c.slot_entry(9), Err(Error::NoSuchSlot(9))));
    assert!(matches!(
        c.remove_slot(u64::MAX),
        Err(Error::NoSuchSlot(u64::MAX))
    ));
    assert!(matches!(c.set_share_key(0, 1), Err(Error::NoSuchSlot(0))));
    let never = (1..=8).find(|&i| i != s && i != t).unwrap();
    assert!(matches!(c.slot_entry(never), Err(Error::SlotFree(n)) if n == never));
    assert!(matches!(c.remove_slot(never), Err(Error::SlotFree(_))));
    assert!(matches!(c.set_share_key(never, 3), Err(Error::SlotFree(_))));

    assert_eq!(
        c.get_slot_with(s, |v, k| (v.to_vec(), k)).unwrap(),
        (b"alpha".to_vec(), ValueKind::Bytes)
    );
    let e = c.slot_entry(t).unwrap();
    assert_eq!(
        (e.slot as u64, e.key, e.value, e.share_key),
        (t, Key::Hash(5), b"beta".to_vec(), 0)
    );
    assert_eq!(e.expires_ms, None);

    c.set_share_key(s, 77).unwrap();
    assert_eq!(c.slot_entry(s).unwrap().share_key, 77);
    // An overwrite keeps the share key.
    c.put("a", b"alpha2").unwrap();
    assert_eq!(c.slot_entry(s).unwrap().share_key, 77);

    c.remove_slot(s).unwrap();
    assert!(!c.contains("a").unwrap());
    assert!(matches!(c.remove_slot(s), Err(Error::SlotFree(n)) if n == s));
    assert!(matches!(c.get_slot_with(s, |_, _| ()), Err(Error::SlotFree(_))));
    // A new entry in the reused slot starts with share key 0.
    let s2 = c.put("b", b"x").unwrap() as u64;
    assert_eq!(s2, s);
    assert_eq!(c.slot_entry(s2).unwrap().share_key, 0);
    assert_eq!(c.stats().unwrap().removes, 1);
    assert_sound(&c);
}

#[test]
fn slot_of_an_expired_entry_is_free() {
    let (c, clock) = cache_with_clock("slotexp", &opts(4, 32, true));
    let s = c.set(1u64, b"x", &ttl(10)).unwrap().slot as u64;
    assert_eq!(
        c.slot_entry(s).unwrap().expires_ms,
        Some(clock.load(Ordering::Relaxed) + 10)
    );
    clock.fetch_add(10, Ordering::Relaxed);
    assert!(matches!(c.slot_entry(s), Err(Error::SlotFree(_))));
    assert_eq!(c.len().unwrap(), 0, "the expired entry was reclaimed");
    assert_eq!(c.stats().unwrap().expirations, 1);
}

#[test]
fn evict_used_before_never_takes_an_entry_used_at_or_after_the_cutoff() {
    let (c, clock) = cache_with_clock("evictbefore", &opts(32, 32, true));
    let t0 = clock.load(Ordering::Relaxed);
    for k in 0..10u64 {
        clock.store(t0 + k * 10, Ordering::Relaxed);
        c.put(k, b"v").unwrap();
    }
    // Key 2 is used again at t0+200; the clock then stays at t0+200.
    clock.store(t0 + 200, Ordering::Relaxed);
    c.get(2u64).unwrap();

    // Cutoff t0+50: keys 0,1,3,4 were last used before it; key 5 exactly at it.
    let got = c.evict_used_before(t0 + 50, 3).unwrap();
    assert_eq!(keys_of(&got), vec![Key::Hash(0), Key::Hash(1), Key::Hash(3)]);
    assert_eq!(
        got.iter().map(|e| e.used_ms).collect::<Vec<_>>(),
        vec![t0, t0 + 10, t0 + 30]
    );
    let got = c.evict_used_before(t0 + 50, 100).unwrap();
    assert_eq!(keys_of(&got), vec![Key::Hash(4)]);
    assert!(c.contains(5u64).unwrap(), "used exactly at the cutoff");
    assert!(c.contains(2u64).unwrap());
    assert_eq!(c.evict_used_before(t0 + 50, 100).unwrap(), vec![]);
    assert_eq!(c.evict_used_before(t0 + 60, 0).unwrap(), vec![]);

    // By age: now is t0+200; "older than 130 ms" means used before t0+70.
    let got = c.evict_older_than(130, 100).unwrap();
    assert_eq!(keys_of(&got), vec![Key::Hash(5), Key::Hash(6)]);
    assert_eq!(c.stats().unwrap().evictions, 6);
    assert_eq!(c.len().unwrap(), 4);
    assert_sound(&c);
}

#[test]
fn evict_used_before_on_many_shards() {
    let o = sharded(8, 256, 32, true);
    let (c, clock) = cache_with_clock("evictshards", &o);
    let t0 = clock.load(Ordering::Relaxed);
    for k in 0..100u64 {
        clock.store(t0 + k, Ordering::Relaxed);
        c.put(k, b"v").unwrap();
    }
    let got = c.evict_used_before(t0 + 40, usize::MAX).unwrap();
    let mut keys: Vec<u64> = got
        .iter()
        .map(|e| match e.key {
            Key::Hash(h) => h,
            _ => unreachable!(),
        })
        .collect();
    keys.sort();
    assert_eq!(keys, (0..40).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.used_ms < t0 + 40));
    assert_eq!(c.len().unwrap(), 60);
    let got = c.evict_used_before(t0 + 1_000, 7).unwrap();
    assert_eq!(got.len(), 7);
    assert_sound(&c);
}

#[test]
fn ttl_with_a_manual_clock() {
    let o = CacheOptions {
        default_ttl_ms: 500,
        ..opts(16, 32, true)
    };
    let (c, clock) = cache_with_clock("ttl", &o);
    assert_eq!(c.default_ttl_ms(), 500);
    let t0 = clock.load(Ordering::Relaxed);
    c.set(1u64, b"short", &ttl(100)).unwrap();
    c.put(2u64, b"default").unwrap();
    c.set(3u64, b"forever", &ttl(0)).unwrap();
    let e = c.entries(Order::MruFirst, None, None).unwrap();
    assert_eq!(
        e.iter().map(|e| e.expires_ms).collect::<Vec<_>>(),
        vec![None, Some(t0 + 500), Some(t0 + 100)]
    );

    clock.store(t0 + 99, Ordering::Relaxed);
    assert!(c.contains(1u64).unwrap());
    clock.store(t0 + 100, Ordering::Relaxed);
    assert_eq!(c.peek(1u64).unwrap(), None, "expired exactly at its time to live");
    assert_eq!(c.len().unwrap(), 2);

    clock.store(t0 + 10_000, Ordering::Relaxed);
    // Expired entries are hidden from iteration before they are reclaimed.
    assert_eq!(
        keys_of(&c.entries(Order::LruFirst, None, None).unwrap()),
        vec![Key::Hash(3)]
    );
    // `len` does not count them: it reclaims them first.
    assert_eq!(c.len().unwrap(), 1, "expired entries are not counted");
    assert_eq!(c.purge_expired().unwrap(), 0);
    assert_eq!(c.len().unwrap(), 1);
    assert_eq!(c.get(3u64).unwrap().as_deref(), Some(&b"forever"[..]));
    assert_eq!(c.stats().unwrap().expirations, 2);

    // Overwriting sets a new expiry.
    c.set(3u64, b"now short", &ttl(5)).unwrap();
    clock.fetch_add(5, Ordering::Relaxed);
    assert_eq!(c.get(3u64).unwrap(), None);
    // Add and Replace treat an expired key as absent.
    c.set(4u64, b"a", &ttl(1)).unwrap();
    clock.fetch_add(1, Ordering::Relaxed);
    assert!(matches!(
        c.set(
            4u64,
            b"b",
            &SetOptions {
                mode: SetMode::Replace,
                ..ttl(0)
            }
        ),
        Err(Error::KeyNotFound)
    ));
    c.set(
        4u64,
        b"c",
        &SetOptions {
            mode: SetMode::Add,
            ..ttl(0)
        },
    )
    .unwrap();
    assert_sound(&c);
}

#[test]
fn entries_in_both_orders_with_filter_and_limit() {
    let (c, clock) = cache_with_clock("entries", &opts(16, 32, true));
    for k in 0..6u64 {
        clock.fetch_add(1, Ordering::Relaxed);
        let s = c.put(k, &[k as u8]).unwrap();
        c.set_share_key(s as u64, (k % 2) as u32).unwrap();
    }
    let all = c.entries(Order::MruFirst, None, None).unwrap();
    assert_eq!(keys_of(&all), (0..6u64).rev().map(Key::Hash).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].used_ms > w[1].used_ms));
    let lru = c.entries(Order::LruFirst, None, None).unwrap();
    assert_eq!(keys_of(&lru), (0..6u64).map(Key::Hash).collect::<Vec<_>>());
    assert_eq!(lru[0].value, vec![0]);

    let odd = c.entries(Order::LruFirst, Some(1), None).unwrap();
    assert_eq!(keys_of(&odd), vec![Key::Hash(1), Key::Hash(3), Key::Hash(5)]);
    assert!(odd.iter().all(|e| e.share_key == 1));
    let two = c.entries(Order::MruFirst, Some(0), Some(2)).unwrap();
    assert_eq!(keys_of(&two), vec![Key::Hash(4), Key::Hash(2)]);
    assert_eq!(c.entries(Order::MruFirst, None, Some(0)).unwrap(), vec![]);
    assert_eq!(c.entries(Order::MruFirst, Some(9), None).unwrap(), vec![]);
    // Iteration does not mark anything used.
    assert_eq!(
        keys_of(&c.entries(Order::LruFirst, None, Some(1)).unwrap()),
        vec![Key::Hash(0)]
    );
}

#[test]
fn entries_merge_shards_by_time_of_use() {
    let o = sharded(4, 64, 32, true);
    let (c, clock) = cache_with_clock("merge", &o);
    for k in 0..20u64 {
        clock.fetch_add(1, Ordering::Relaxed);
        c.put(k, b"v").unwrap();
    }
    assert_eq!(
        keys_of(&c.entries(Order::MruFirst, None, None).unwrap()),
        (0..20u64).rev().map(Key::Hash).collect::<Vec<_>>()
    );
    assert_eq!(
        keys_of(&c.entries(Order::LruFirst, None, Some(5)).unwrap()),
        (0..5u64).map(Key::Hash).collect::<Vec<_>>()
    );
}

#[test]
fn clear_len_and_stats() {
    let c = cache("clear", &opts(8, 32, true));
    for k in 0..10u64 {
        c.put(k, b"v").unwrap();
    }
    assert_eq!(c.len().unwrap(), 8);
    c.get(9u64).unwrap();
    c.get(0u64).unwrap();
    c.put(9u64, b"w").unwrap();
    c.remove(8u64).unwrap();
    let st = c.stats().unwrap();
    assert_eq!(
        (
            st.hits,
            st.misses,
            st.inserts,
            st.updates,
            st.removes,
            st.evictions,
            st.expirations
        ),
        (1, 1, 10, 1, 1, 2, 0)
    );
    assert_eq!((st.len, st.capacity, st.recoveries), (7, 8, 0));

    assert_eq!(c.clear().unwrap(), 7);
    assert_eq!(c.len().unwrap(), 0);
    assert!(c.is_empty().unwrap());
    assert_eq!(c.get(9u64).unwrap(), None);
    assert_eq!(c.entries(Order::MruFirst, None, None).unwrap(), vec![]);
    assert_eq!(c.stats().unwrap().removes, 8);
    assert_sound(&c);
    // The cache fills up again to its capacity.
    for k in 100..108u64 {
        let o = c.set(k, b"again", &SetOptions::default()).unwrap();
        assert!(!o.evicted);
    }
    assert_eq!(c.len().unwrap(), 8);
    for k in 100..108u64 {
        assert_eq!(c.get(k).unwrap().as_deref(), Some(&b"again"[..]));
    }
    assert_sound(&c);
    assert_eq!(c.clear().unwrap(), 8);
    assert_eq!(c.clear().unwrap(), 0);
}

#[test]
fn app_mutex() {
    let c = Arc::new(cache("app", &opts(4, 16, true)));
    assert!(!c.app_lock().unwrap());
    let c2 = c.clone();
    let other = std::thread::spawn(move || {
        let busy = c2.app_try_lock().unwrap();
        // Unlocking a mutex this thread does not hold fails.
        let unlock = c2.app_unlock();
        (busy, unlock.is_err())
    })
    .join()
    .unwrap();
    assert_eq!(other, (None, true));
    c.app_unlock().unwrap();
    assert_eq!(c.app_try_lock().unwrap(), Some(false));
    c.app_unlock().unwrap();
    assert!(c.app_unlock().is_err(), "not held");
}

#[test]
fn byte_keys_and_u64_keys_do_not_collide() {
    let c = cache("keys", &opts(64, 64, false));
    for s in ["", "a", "abc", "key-17", "\u{1f600}"] {
        let h = fnv1a64(s.as_bytes());
        c.put(s, format!("bytes:{s}").as_bytes()).unwrap();
        c.put(h, format!("hash:{s}").as_bytes()).unwrap();
        assert_ne!(c.slot_of(s).unwrap(), c.slot_of(h).unwrap());
    }
    for s in ["", "a", "abc", "key-17", "\u{1f600}"] {
        let h = fnv1a64(s.as_bytes());
        assert_eq!(c.get(s).unwrap(), Some(format!("bytes:{s}").into_bytes()));
        assert_eq!(c.get(h).unwrap(), Some(format!("hash:{s}").into_bytes()));
        assert_eq!(
            c.get(s.as_bytes()).unwrap(),
            Some(format!("bytes:{s}").into_bytes())
        );
    }
    assert_eq!(c.len().unwrap(), 10);
    assert!(c.remove("abc").unwrap());
    assert_eq!(c.get(fnv1a64(b"abc")).unwrap().as_deref(), Some(&b"hash:abc"[..]));
    assert!(c.remove(fnv1a64(b"a")).unwrap());
    assert_eq!(c.get("a").unwrap().as_deref(), Some(&b"bytes:a"[..]));
    // Byte keys come back as bytes, u64 keys as u64s.
    let keys: Vec<Key> = keys_of(&c.entries(Order::MruFirst, None, None).unwrap());
    assert!(keys.contains(&Key::Bytes(b"key-17".to_vec())));
    assert!(keys.contains(&Key::Hash(fnv1a64(b"key-17"))));
    assert_eq!(Key::Bytes(b"x".to_vec()).as_ref(), KeyRef::Bytes(b"x"));
    assert_eq!(KeyRef::from(5u64).to_owned(), Key::Hash(5));
    // Keys that differ only in length or a byte are different keys.
    c.put(&b"ab\0"[..], b"1").unwrap();
    c.put(&b"ab"[..], b"2").unwrap();
    assert_eq!(c.get(&b"ab\0"[..]).unwrap().as_deref(), Some(&b"1"[..]));
    assert_sound(&c);
}

#[test]
fn binary_values_round_trip() {
    let c = cache("binary", &opts(8, 300, true));
    let all: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
    c.put(1u64, &all).unwrap();
    c.put(2u64, &[0u8; 300]).unwrap();
    c.put(3u64, b"").unwrap();
    c.put("k", &all[..298]).unwrap();
    assert_eq!(c.get(1u64).unwrap(), Some(all.clone()));
    assert_eq!(c.get(2u64).unwrap(), Some(vec![0u8; 300]));
    assert_eq!(c.get(3u64).unwrap(), Some(vec![]));
    assert_eq!(c.get("k").unwrap(), Some(all[..298].to_vec()));
    // A shorter overwrite does not leave the old tail behind.
    c.put(1u64, b"\x01\x02").unwrap();
    assert_eq!(c.get(1u64).unwrap(), Some(vec![1, 2]));
}

#[test]
fn too_large_keys_and_values_are_refused() {
    let c = cache("toolarge", &opts(8, 32, true));
    c.put(1u64, &[7u8; 32]).unwrap();
    assert!(matches!(
        c.put(2u64, &[7u8; 33]),
        Err(Error::ValueTooLarge { size: 33, max: 32 })
    ));
    // Byte keys share the record with the value.
    c.put("abcd", &[1u8; 28]).unwrap();
    assert!(matches!(
        c.put("abcd", &[1u8; 29]),
        Err(Error::ValueTooLarge { size: 33, max: 32 })
    ));
    assert_eq!(c.get("abcd").unwrap(), Some(vec![1u8; 28]), "unchanged");
    assert!(matches!(
        c.put(&[0u8; 33][..], b""),
        Err(Error::ValueTooLarge { .. })
    ));
    let huge = vec![1u8; 65_536];
    assert!(matches!(c.put(&huge[..], b""), Err(Error::KeyTooLarge(65_536))));
    assert_eq!(c.len().unwrap(), 2);
    assert_eq!(Error::Full.code(), "ERR_SHM_FULL");
    assert_eq!(Error::KeyTooLarge(1).code(), "ERR_SHM_KEY_TOO_LARGE");
    assert_sound(&c);
}

#[test]
fn full_without_eviction_and_eviction_with_it() {
    let c = cache("full", &opts(4, 16, false));
    assert!(!c.evict_on_full());
    for k in 0..4u64 {
        c.put(k, b"v").unwrap();
    }
    assert!(matches!(c.put(4u64, b"v"), Err(Error::Full)));
    assert!(matches!(c.incr("n", 1, None), Err(Error::Full)));
    c.put(0u64, b"overwrite ok").unwrap();
    c.remove(1u64).unwrap();
    c.put(4u64, b"v").unwrap();
    assert!(matches!(c.put(5u64, b"v"), Err(Error::Full)));
    assert_eq!(c.stats().unwrap().evictions, 0);

    let e = cache("evict", &opts(4, 16, true));
    assert!(e.evict_on_full());
    for k in 0..4u64 {
        assert!(!e.set(k, b"v", &SetOptions::default()).unwrap().evicted);
    }
    e.get(0u64).unwrap();
    let o = e.set(4u64, b"v", &SetOptions::default()).unwrap();
    assert!(o.inserted && o.evicted);
    assert!(!e.contains(1u64).unwrap(), "the least recently used entry goes");
    assert_eq!(e.stats().unwrap().evictions, 1);
    assert_eq!(e.len().unwrap(), 4);
    assert_sound(&e);
}

#[test]
fn capacity_is_exact_and_the_last_slot_fits() {
    for cap in [1u64, 7, 100, 1000] {
        let c = cache("exact", &opts(cap, 40, false));
        assert_eq!(c.capacity(), cap);
        let g = c.geometry();
        let mut slots = Vec::new();
        for k in 0..cap {
            slots.push(c.put(k, &[k as u8; 40]).unwrap() as u64);
        }
        assert!(matches!(c.put(cap, b"x"), Err(Error::Full)));
        slots.sort();
        assert_eq!(slots, (1..=cap).collect::<Vec<_>>());
        let end = g.slots_off + cap * g.stride;
        assert!(
            end <= c.region_size(),
            "last slot ends at {end}, past {}",
            c.region_size()
        );
        assert!(c.region_size() <= c.segment().len());
        for k in 0..cap {
            assert_eq!(c.get(k).unwrap(), Some(vec![k as u8; 40]));
        }
        assert_sound(&c);
    }
}

#[test]
fn init_in_a_region_of_a_larger_segment() {
    let (seg, _guard) = util::segment("region", 1 << 20);
    let region = 200_000u64;
    // Mark the bytes after the region: the cache must never touch them.
    // SAFETY: the segment has 1 MiB; nobody else maps it yet.
    unsafe {
        std::ptr::write_bytes(
            seg.as_ptr().add(region as usize),
            0x5a,
            (1 << 20) - region as usize,
        )
    };

    let o = opts(0, 100, false);
    let c = Cache::init_in(seg.clone(), region, &o, InitMode::AttachOrInit).unwrap();
    assert_eq!(c.region_size(), region);
    let g = c.geometry();
    assert!(g.total <= region);
    let cap = c.capacity();
    assert!(cap > 1000, "{cap}");
    for k in 0..cap {
        c.put(k, &[0xee; 100]).unwrap();
    }
    assert!(matches!(c.put(cap, b"x"), Err(Error::Full)));
    let end = g.slots_off + cap * g.stride;
    assert!(end <= region);
    // SAFETY: reading bytes inside the mapping that only this thread writes.
    let after =
        unsafe { std::slice::from_raw_parts(seg.as_ptr().add(region as usize), (1 << 20) - region as usize) };
    assert!(
        after.iter().all(|&b| b == 0x5a),
        "the cache wrote past its region"
    );
    assert_sound(&c);

    // Initialising again attaches to what is there.
    let again = Cache::init_in(seg.clone(), region, &o, InitMode::AttachOrInit).unwrap();
    assert_eq!(again.get(5u64).unwrap(), Some(vec![0xee; 100]));
    assert_eq!(again.capacity(), cap);
    let attached = Cache::init_in(seg.clone(), region, &o, InitMode::Attach).unwrap();
    assert_eq!(attached.len().unwrap(), cap);
    // Another record size is refused rather than silently used.
    let other = opts(0, 50, false);
    assert!(matches!(
        Cache::init_in(seg.clone(), region, &other, InitMode::AttachOrInit),
        Err(Error::InvalidArgument(_))
    ));
    // A region larger than the segment is refused.
    assert!(matches!(
        Cache::init_in(seg.clone(), 2 << 20, &o, InitMode::AttachOrInit),
        Err(Error::RegionTooSmall { needed, available }) if needed == 2 << 20 && available == 1 << 20
    ));
    // Reset lays out a new, empty cache that every handle sees.
    let reset = Cache::init_in(seg.clone(), region, &o, InitMode::Reset).unwrap();
    assert_eq!(reset.len().unwrap(), 0);
    assert_eq!(reset.get(5u64).unwrap(), None);
    for k in 0..cap {
        reset.put(k + 1_000_000, b"new").unwrap();
    }
    assert!(matches!(reset.put(1u64, b"x"), Err(Error::Full)));
    assert_eq!(reset.get(5u64).unwrap(), None);
    assert_sound(&reset);
    assert!(
        after.iter().all(|&b| b == 0x5a),
        "the cache wrote past its region"
    );
}

#[test]
fn init_in_a_region_too_small_for_one_slot() {
    let (seg, _guard) = util::segment("tiny", 4096);
    assert!(matches!(
        Cache::init_in(seg.clone(), 300, &opts(0, 100, false), InitMode::AttachOrInit),
        Err(Error::RegionTooSmall { .. })
    ));
    let c = Cache::init_in(seg, 4096, &opts(0, 100, false), InitMode::AttachOrInit).unwrap();
    assert!(c.capacity() >= 1);
}

#[test]
fn a_hundred_million_slots() {
    let o = CacheOptions {
        capacity: 100_000_000,
        record_size: 8,
        evict_on_full: false,
        ..CacheOptions::default()
    };
    let c = cache("huge", &o);
    assert_eq!(c.capacity(), 100_000_000);
    assert_eq!(c.shards(), 1);
    for k in 0..1000u64 {
        c.put(k, &k.to_le_bytes()).unwrap();
    }
    assert_eq!(c.get(999u64).unwrap(), Some(999u64.to_le_bytes().to_vec()));
    assert_eq!(c.incr("n", 3, None).unwrap(), 3);
    assert!(c.remove(0u64).unwrap());
    assert_eq!(c.len().unwrap(), 1000);
    let st = c.stats().unwrap();
    assert_eq!((st.capacity, st.inserts), (100_000_000, 1001));
    assert!(matches!(c.slot_entry(100_000_000), Err(Error::SlotFree(_))));
    assert!(matches!(c.slot_entry(100_000_001), Err(Error::NoSuchSlot(_))));
    assert_eq!(
        c.entries(Order::LruFirst, None, Some(1)).unwrap()[0].key,
        Key::Hash(1)
    );
    assert!(c.destroy().unwrap());
}

#[test]
fn open_sees_the_same_cache() {
    let c = cache("open", &opts(16, 32, true));
    c.put("a", b"1").unwrap();
    let d = Cache::open(c.segment().id()).unwrap();
    assert_eq!(d.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    d.put("b", b"2").unwrap();
    assert_eq!(c.get("b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!((d.capacity(), d.record_size(), d.evict_on_full()), (16, 32, true));
    assert_eq!(d.geometry(), c.geometry());
    let e = Cache::open_or_create(c.segment().id(), &opts(99, 99, false)).unwrap();
    assert_eq!(e.capacity(), 16, "an existing cache is opened, not replaced");
    assert!(matches!(
        Cache::create(c.segment().id(), &opts(16, 32, true)),
        Err(Error::SegmentExists(_))
    ));
    let id = util::unique_posix("ooc");
    let _g = SegGuard(id.clone());
    let f = Cache::open_or_create(&id, &opts(10, 10, false)).unwrap();
    assert_eq!(f.capacity(), 10);
    assert_eq!(
        Cache::required_size(&opts(10, 10, false)).unwrap(),
        f.geometry().total
    );
    assert!(matches!(
        Cache::create(&id, &opts(0, 10, false)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Cache::required_size(&opts(0, 10, false)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Cache::required_size(&opts(10, 0, false)),
        Err(Error::InvalidArgument(_))
    ));
    let bad_shards = sharded(3, 10, 10, true);
    assert!(matches!(
        Cache::required_size(&bad_shards),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn create_with_bad_options_leaves_no_segment() {
    let id = util::unique_posix("badopts");
    let _g = SegGuard(id.clone());
    assert!(matches!(
        Cache::create(&id, &opts(10, 0, false)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(Segment::open(&id), Err(Error::SegmentNotFound(_))));
}

#[test]
fn posix_segment_lifecycle() {
    let id = util::unique_posix("seg");
    let _g = SegGuard(id.clone());
    assert!(matches!(Segment::open(&id), Err(Error::SegmentNotFound(_))));
    assert!(matches!(Segment::info(&id), Err(Error::SegmentNotFound(_))));
    let s = Segment::create(&id, 10_000, 0o600).unwrap();
    assert!(s.created());
    assert_eq!((s.len(), s.is_empty()), (10_000, false));
    assert!(matches!(
        Segment::create(&id, 10_000, 0o600),
        Err(Error::SegmentExists(_))
    ));
    let info = Segment::info(&id).unwrap();
    assert_eq!(
        (info.size, info.attached, info.mode & 0o777),
        (10_000, None, 0o600)
    );
    let o = Segment::open(&id).unwrap();
    assert!(!o.created());
    // Both mappings see the same bytes.
    util::write_u64(&s, 4096, 0xdead_beef);
    assert_eq!(util::read_u64(&o, 4096), 0xdead_beef);
    assert_eq!(o.attached().unwrap(), None);
    assert_eq!(o.detach().unwrap(), 0);
    assert!(Segment::destroy(&id, false).unwrap());
    assert!(!Segment::destroy(&id, false).unwrap());
    // The creator's mapping stays valid after removal.
    assert_eq!(util::read_u64(&s, 4096), 0xdead_beef);
    assert!(matches!(Segment::open(&id), Err(Error::SegmentNotFound(_))));
    assert!(matches!(
        Segment::create(&id, 0, 0o600),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Segment::create(&id, 10, 0o1777),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn sysv_segment_lifecycle_busy_and_detach_count() {
    let id = util::unique_sysv();
    let _g = SegGuard(id.clone());
    assert!(matches!(Segment::open(&id), Err(Error::SegmentNotFound(_))));
    assert!(!Segment::destroy(&id, false).unwrap());
    let a = Segment::create(&id, 8192, 0o600).unwrap();
    assert!(matches!(
        Segment::create(&id, 8192, 0o600),
        Err(Error::SegmentExists(_))
    ));
    let b = Segment::open(&id).unwrap();
    let c = Segment::open(&id).unwrap();
    assert_eq!(a.attached().unwrap(), Some(3));
    assert_eq!(Segment::info(&id).unwrap().attached, Some(3));
    assert!(matches!(
        Segment::destroy(&id, false),
        Err(Error::Busy { attached: 3, .. })
    ));
    // Our own attachment does not count against destroy_self, the others do.
    assert!(matches!(
        a.destroy_self(false),
        Err(Error::Busy { attached: 2, .. })
    ));
    assert_eq!(c.detach().unwrap(), 2);
    assert_eq!(b.detach().unwrap(), 1);
    assert!(a.destroy_self(false).unwrap());
    assert!(matches!(Segment::open(&id), Err(Error::SegmentNotFound(_))));
    assert_eq!(a.detach().unwrap(), 0);

    // force removes while attached; the mapping lives on.
    let d = Segment::create(&id, 8192, 0o600).unwrap();
    let e = Segment::open(&id).unwrap();
    assert!(Segment::destroy(&id, true).unwrap());
    util::write_u32(&d, 0, 7);
    assert_eq!(util::read_u32(&e, 0), 7);
}

#[test]
fn sysv_cache() {
    let id = util::unique_sysv();
    let _g = SegGuard(id.clone());
    let c = Cache::create(&id, &opts(32, 16, true)).unwrap();
    c.put(1u64, b"v").unwrap();
    let d = Cache::open(&id).unwrap();
    assert_eq!(d.get(1u64).unwrap().as_deref(), Some(&b"v"[..]));
    drop(d);
    assert!(c.destroy().unwrap());
    assert!(matches!(Cache::open(&id), Err(Error::SegmentNotFound(_))));
}

#[test]
fn segment_ids_parse_and_validate() {
    let ok = |s: &str| s.parse::<SegmentId>().unwrap();
    let bad = |s: &str| {
        assert!(
            matches!(s.parse::<SegmentId>(), Err(Error::InvalidName(_))),
            "{s:?}"
        )
    };
    assert_eq!(ok("/a"), SegmentId::Posix("/a".into()));
    assert_eq!(ok("1234"), SegmentId::SysV(1234));
    assert_eq!(ok("0x10"), SegmentId::SysV(16));
    assert_eq!(ok("0XfF"), SegmentId::SysV(255));
    assert_eq!(ok("-5"), SegmentId::SysV(-5));
    assert_eq!(ok("4294967295"), SegmentId::SysV(-1));
    assert_eq!(ok("2147483647"), SegmentId::SysV(i32::MAX));
    assert_eq!(
        ok(&format!("/{}", "x".repeat(254))),
        SegmentId::Posix(format!("/{}", "x".repeat(254)))
    );
    for s in [
        "",
        "/",
        "a",
        "a/b",
        "/a/b",
        "//",
        "/.",
        "/..",
        "/a\0b",
        "0",
        "0x0",
        "0x",
        "-0",
        "4294967296",
        "-2147483649",
        "12ab",
        " 1",
        "1.5",
    ] {
        bad(s);
    }
    bad(&format!("/{}", "x".repeat(255)));
    assert!(matches!(SegmentId::sysv(0), Err(Error::InvalidName(_))));
    assert_eq!(SegmentId::sysv(-1).unwrap(), SegmentId::SysV(-1));
    assert_eq!(SegmentId::sysv(0xffff_ffff).unwrap(), SegmentId::SysV(-1));
    assert!(SegmentId::sysv(1 << 32).is_err());
    assert!(SegmentId::posix("noslash").is_err());
    for s in ["/name", "42", "-7"] {
        assert_eq!(ok(s).to_string(), s);
        assert_eq!(ok(&ok(s).to_string()), ok(s));
    }
    assert_eq!(ok("0x10").to_string(), "16");
    assert_eq!(bad_code("x"), "ERR_SHM_INVALID_NAME");
}

fn bad_code(s: &str) -> &'static str {
    s.parse::<SegmentId>().unwrap_err().code()
}

#[test]
fn totals_count_mappings() {
    // Other tests map and unmap concurrently, so only this test's own mapping is asserted on
    // through a difference that no other test can cancel: the segment's size is unusual.
    let id = util::unique_posix("totals");
    let _g = SegGuard(id.clone());
    let s = Segment::create(&id, 12_345, 0o600).unwrap();
    assert!(shm_lru::totals().mapped >= 12_345);
    assert!(shm_lru::totals().created >= 12_345);
    drop(s);
}

#[test]
fn a_lock_timeout_gives_up_on_a_live_holder_and_the_default_waits() {
    let t = cache("locktimeout", &util::single_shard(16, 32, true));
    t.cache.put(1u64, b"one").unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let c = Cache::open(&t.guard.0).unwrap();
        std::thread::spawn(move || {
            // Hold the shard's lock for a while, as a slow or stopped writer would.
            let m = util::shard_mutex(c.segment(), &c.geometry(), 0);
            // SAFETY: the mutex lies in the header of a validated cache that `c` keeps mapped.
            unsafe { shm_lru::internals::robust_mutex::lock(m) }.unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(400));
            // SAFETY: this thread holds it.
            unsafe { shm_lru::internals::robust_mutex::unlock(m) }.unwrap();
        })
    };
    held_rx.recv().unwrap();
    let mut impatient = Cache::open(&t.guard.0).unwrap();
    impatient.set_lock_timeout(Some(std::time::Duration::from_millis(50)));
    // Reads take no lock: they go on while a writer holds it.
    assert_eq!(impatient.get(1u64).unwrap().as_deref(), Some(&b"one"[..]));
    let started = std::time::Instant::now();
    let err = impatient.put(2u64, b"two").unwrap_err();
    assert!(matches!(err, Error::LockTimeout(_)), "{err}");
    assert_eq!(err.code(), "ERR_SHM_LOCK_TIMEOUT");
    assert!(started.elapsed() < std::time::Duration::from_millis(350));
    // Without a timeout the call waits for the holder and then succeeds.
    let patient = Cache::open(&t.guard.0).unwrap();
    patient.put(2u64, b"two").unwrap();
    holder.join().unwrap();
    // Once the lock is free, the impatient handle works too.
    impatient.put(3u64, b"three").unwrap();
    assert_eq!(impatient.get(2u64).unwrap().as_deref(), Some(&b"two"[..]));
    assert_sound(&t.cache);
}

#[test]
fn expiry_of_touch_and_keep_ttl() {
    let (c, clock) = cache_with_clock("expiry-of", &opts(16, 32, true));
    let t0 = clock.load(Ordering::Relaxed);
    c.set(1u64, b"a", &ttl(100)).unwrap();
    c.put(2u64, b"b").unwrap();
    assert_eq!(c.expiry_of(1u64).unwrap(), Some(Some(t0 + 100)));
    assert_eq!(c.expiry_of(2u64).unwrap(), Some(None));
    assert_eq!(c.expiry_of(3u64).unwrap(), None);
    // An overwrite with keep_ttl keeps the expiry; without, it takes the new one.
    let keep = SetOptions {
        keep_ttl: true,
        ..ttl(5_000)
    };
    c.set(1u64, b"a2", &keep).unwrap();
    assert_eq!(c.expiry_of(1u64).unwrap(), Some(Some(t0 + 100)));
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"a2"[..]));
    // keep_ttl on an insert uses the ttl given.
    c.set(4u64, b"d", &keep).unwrap();
    assert_eq!(c.expiry_of(4u64).unwrap(), Some(Some(t0 + 5_000)));
    // touch slides the expiry from now, or keeps it; absent keys report false.
    clock.store(t0 + 50, Ordering::Relaxed);
    assert!(c.touch(1u64, Some(100)).unwrap());
    assert_eq!(c.expiry_of(1u64).unwrap(), Some(Some(t0 + 150)));
    assert!(c.touch(1u64, None).unwrap());
    assert_eq!(c.expiry_of(1u64).unwrap(), Some(Some(t0 + 150)));
    assert!(c.touch(2u64, Some(0)).unwrap());
    assert_eq!(c.expiry_of(2u64).unwrap(), Some(None));
    assert!(!c.touch(9u64, Some(10)).unwrap());
    clock.store(t0 + 149, Ordering::Relaxed);
    assert!(c.contains(1u64).unwrap());
    clock.store(t0 + 150, Ordering::Relaxed);
    assert_eq!(c.expiry_of(1u64).unwrap(), None, "expired at its new time");
    assert_sound(&c);
}

#[test]
fn a_cache_of_capacity_n_holds_n_distinct_keys_and_no_more() {
    for evict in [true, false] {
        let n = 40_000u64;
        let o = sharded(16, n, 8, evict);
        let c = cache("capacity-n", &o);
        assert!(c.slots() > n, "several shards get slack");
        for k in 0..n {
            c.put(k, b"v").unwrap_or_else(|e| panic!("key {k} of {n}: {e}"));
        }
        assert_eq!(c.len().unwrap(), n);
        assert!((0..n).all(|k| c.contains(k).unwrap()), "every key is there");
        // One more: an evicting cache makes room, a refusing one refuses.
        match c.put(n, b"v") {
            Ok(_) => {
                assert!(evict);
                assert_eq!(c.len().unwrap(), n);
                assert_eq!(c.stats().unwrap().evictions, 1);
            }
            Err(e) => {
                assert!(!evict);
                assert!(matches!(e, Error::Full), "{e}");
            }
        }
        assert_sound(&c);
    }
}

#[test]
fn times_from_a_clock_behind_the_creators_are_kept_exactly() {
    let t = cache("clock-behind", &opts(16, 32, true));
    // Another handle whose clock is an hour behind the one that made the cache.
    let mut behind = Cache::open(&t.guard.0).unwrap();
    let hour_ago = t.cache.now_ms() - 3_600_000;
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(hour_ago));
    behind.use_manual_clock(clock.clone());
    behind
        .set(
            7u64,
            b"late",
            &SetOptions {
                ttl_ms: Some(60_000),
                ..SetOptions::default()
            },
        )
        .unwrap();
    // Its time to live is what it asked for, on its own clock: not lost, not clamped.
    assert_eq!(behind.expiry_of(7u64).unwrap(), Some(Some(hour_ago + 60_000)));
    assert_eq!(behind.get(7u64).unwrap().as_deref(), Some(&b"late"[..]));
    let e = behind.entries(Order::MruFirst, None, None).unwrap();
    assert_eq!(e[0].used_ms, hour_ago);
    clock.store(hour_ago + 59_999, Ordering::Relaxed);
    assert!(behind.contains(7u64).unwrap());
    clock.store(hour_ago + 60_000, Ordering::Relaxed);
    assert!(!behind.contains(7u64).unwrap());
    // A clock stepping back never moves a recorded use backwards.
    behind.put(8u64, b"x").unwrap();
    clock.store(hour_ago + 1, Ordering::Relaxed);
    behind.get(8u64).unwrap();
    let used = behind.entries(Order::MruFirst, None, None).unwrap()[0].used_ms;
    assert_eq!(used, hour_ago + 60_000);
}

#[test]
fn scan_walks_every_entry_once_in_batches_shard_by_shard() {
    let o = sharded(4, 2_000, 16, true);
    let c = cache("scan", &o);
    for k in 0..1_500u64 {
        c.put(k, &k.to_le_bytes()).unwrap();
    }
    for order in [Order::MruFirst, Order::LruFirst] {
        let mut seen = std::collections::BTreeSet::new();
        let mut from = None;
        let mut batches = 0;
        loop {
            let (batch, next) = c.scan(order, from, 100).unwrap();
            assert!(batch.len() <= 100);
            for e in &batch {
                let Key::Hash(k) = e.key else { panic!("{e:?}") };
                assert_eq!(e.value, k.to_le_bytes());
                assert!(seen.insert(k), "key {k} seen twice");
            }
            batches += 1;
            match next {
                Some(n) => from = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 1_500, "{order:?}");
        assert!(batches >= 15, "{batches} batches");
    }
    // Within a shard the walk follows recency: the entry just used comes first in its shard.
    c.get(7u64).unwrap();
    let (all, end) = c.scan(Order::MruFirst, None, 10_000).unwrap();
    assert_eq!((all.len(), end), (1_500, None));
    let per = c.geometry().slots_per_shard;
    let shard = |e: &shm_lru::Entry| (e.slot - 1) / per;
    let p = all.iter().position(|e| e.key == Key::Hash(7)).unwrap();
    assert!(
        p == 0 || shard(&all[p - 1]) != shard(&all[p]),
        "key 7 is not first in its shard"
    );
    // Entries removed while a walk is under way are not returned afterwards, and the walk ends.
    let (first, next) = c.scan(Order::MruFirst, None, 50).unwrap();
    for e in &first {
        c.remove(e.key.as_ref()).unwrap();
    }
    let mut from = next;
    let mut rest = 0;
    while let Some(f) = from {
        let (batch, next) = c.scan(Order::MruFirst, Some(f), 200).unwrap();
        assert!(batch.iter().all(|e| !first.iter().any(|g| g.key == e.key)));
        rest += batch.len();
        from = next;
    }
    assert_eq!(rest, 1_500 - first.len());
    assert_sound(&c);
}

#[test]
fn remove_prefix_takes_every_byte_key_under_it_in_one_pass() {
    let (c, clock) = cache_with_clock("prefix", &sharded(4, 256, 64, true));
    for i in 0..40 {
        c.set(format!("user:{i}").as_bytes(), b"u", &SetOptions::default())
            .unwrap();
    }
    for i in 0..30 {
        c.set(format!("session:{i}").as_bytes(), b"s", &SetOptions::default())
            .unwrap();
    }
    c.set(&b"user:short-lived"[..], b"e", &ttl(10)).unwrap();
    c.put(7u64, b"a hashed key has no bytes to match").unwrap();
    c.set(&b"use"[..], b"not under the prefix", &SetOptions::default())
        .unwrap();
    // Read before the clock moves on: stats() reclaims what has expired.
    let before = c.stats().unwrap();
    clock.fetch_add(20, Ordering::Relaxed);
    assert_eq!(c.remove_prefix(b"user:").unwrap(), 40, "live entries only");
    let after = c.stats().unwrap();
    assert_eq!(after.removes - before.removes, 40);
    assert_eq!(
        after.expirations - before.expirations,
        1,
        "the expired one is reclaimed as such"
    );
    assert_eq!(c.len().unwrap(), 32);
    assert_eq!(
        c.remove_prefix(b"").unwrap(),
        31,
        "every byte key; the hashed one stays"
    );
    assert_eq!(
        c.get(7u64).unwrap().as_deref(),
        Some(&b"a hashed key has no bytes to match"[..])
    );
    assert_eq!(c.remove_prefix(b"nothing").unwrap(), 0);
    assert_sound(&c);
}

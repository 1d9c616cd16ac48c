//! Attaching to bytes that are not a (valid, current, finished) cache gives a typed error and
//! never a crash; hostile slot ids and sizes given to id-based calls never panic.

use crate::util::{
    self, assert_sound, header_state, opts, read_u32, read_u64, write_u32, write_u64, SegGuard,
};
use proptest::prelude::*;
use shm_lru::layout::{self, region_header, HEADER_SIZE};
use shm_lru::{Cache, Error, InitMode, Order, Segment, SegmentId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A valid cache in a fresh segment, its id and guard.
fn valid(tag: &str) -> (Arc<Segment>, SegmentId, SegGuard) {
    let c = util::cache(tag, &opts(64, 32, true));
    c.put(1u64, b"v").unwrap();
    let id = c.segment().id().clone();
    let seg = c.segment().clone();
    let util::TestCache { cache, guard } = c;
    drop(cache);
    (seg, id, guard)
}

fn probe(seg: &Arc<Segment>) -> Result<Cache, Error> {
    Cache::probe(seg.clone())
}

#[test]
fn a_valid_header_attaches() {
    let (seg, id, _g) = valid("fmt-ok");
    let c = Cache::open(&id).unwrap();
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"v"[..]));
    assert!(probe(&seg).is_ok());
    assert_eq!(header_state(&seg), layout::STATE_READY);
    assert_eq!(read_u64(&seg, region_header::MAGIC as u64), layout::MAGIC);
}

#[test]
fn wrong_version_or_layout_is_a_version_mismatch() {
    let (seg, id, _g) = valid("fmt-version");
    write_u32(&seg, region_header::FORMAT as u64, layout::FORMAT_VERSION + 1);
    match Cache::open(&id) {
        Err(Error::VersionMismatch { found, expected }) => {
            assert_eq!(
                (found, expected),
                (layout::FORMAT_VERSION + 1, layout::FORMAT_VERSION)
            );
        }
        other => panic!("{other:?}"),
    }
    // The earlier formats: version 10 had a growing index's buckets and slots in groups at the
    // top of each store; version 9 had a growing index of two buckets and twelve slots a
    // unit that used every bucket it had, homes by linear hashing; version 8 had a byte budget's index outside its value stores, of
    // a size fixed when the cache was made; version 7 had 128 bytes of hints after each bucket
    // of a byte budget, version 6 no hints, version 5 no value store (nor its header fields), version 4 no
    // undo records after the slots, version 3 no rewrite
    // generation in a slot's flags byte either, version 2 another spread hash too, version 1
    // another layout; all are refused, naming both versions.
    for old in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
        write_u32(&seg, region_header::FORMAT as u64, old);
        let e = Cache::open(&id).unwrap_err();
        assert!(
            matches!(e, Error::VersionMismatch { found, expected } if found == old && expected == 11),
            "{e:?}"
        );
        assert!(e.to_string().contains(&format!("{old:#010x}")), "{e}");
    }
    write_u32(&seg, region_header::FORMAT as u64, layout::FORMAT_VERSION);
    write_u32(
        &seg,
        region_header::LAYOUT as u64,
        layout::layout_word() ^ (1 << 24),
    );
    let e = probe(&seg).unwrap_err();
    assert!(
        matches!(e, Error::VersionMismatch { expected, .. } if expected == layout::layout_word()),
        "{e:?}"
    );
    assert_eq!(e.code(), "ERR_SHM_VERSION_MISMATCH");
    write_u32(&seg, region_header::LAYOUT as u64, layout::layout_word());
    assert!(Cache::open(&id).is_ok());
}

#[test]
fn wrong_magic_or_random_bytes_are_a_bad_format() {
    let (seg, id, _g) = valid("fmt-magic");
    write_u64(&seg, region_header::MAGIC as u64, 0x1234);
    assert!(matches!(Cache::open(&id), Err(Error::BadFormat(_))));
    // AttachOrInit lays a new cache over bytes that are not ours; Attach refuses them.
    assert!(matches!(
        Cache::init_in(seg.clone(), seg.len(), &opts(0, 32, true), InitMode::Attach),
        Err(Error::BadFormat(_))
    ));
    let c = Cache::init_in(seg.clone(), seg.len(), &opts(0, 32, true), InitMode::AttachOrInit).unwrap();
    assert_eq!(c.len().unwrap(), 0);
    assert_sound(&c);
}

#[test]
fn all_zero_bytes_are_reported_by_probe() {
    let (seg, _g) = util::segment("fmt-zero", 4096);
    assert!(matches!(probe(&seg), Err(Error::BadFormat(_))));
}

#[test]
fn a_region_too_small_is_refused() {
    let (seg, _g) = util::segment("fmt-small", 100);
    assert!(matches!(
        Cache::open(seg.id()),
        Err(Error::RegionTooSmall {
            needed: HEADER_SIZE,
            available: 100
        })
    ));
    assert!(matches!(probe(&seg), Err(Error::RegionTooSmall { .. })));
    assert!(matches!(
        Cache::init_in(seg.clone(), 100, &opts(0, 8, false), InitMode::AttachOrInit),
        Err(Error::RegionTooSmall { .. })
    ));

    // A header claiming more bytes than the segment has.
    let (seg, id, _g2) = valid("fmt-claims");
    write_u64(&seg, region_header::REGION_SIZE as u64, seg.len() + 1);
    assert!(matches!(
        Cache::open(&id),
        Err(Error::RegionTooSmall { needed, available }) if needed == seg.len() + 1 && available == seg.len()
    ));
}

#[test]
fn header_fields_that_disagree_are_a_bad_format() {
    let (seg, id, _g) = valid("fmt-fields");
    let fields: [(usize, bool, u64); 10] = [
        (region_header::RECORD_SIZE, false, 0),
        (region_header::RECORD_SIZE, false, 33),
        (region_header::SHARD_COUNT, false, 3),
        (region_header::SHARD_COUNT, false, 0),
        (region_header::SLOTS_PER_SHARD, false, 1 << 30),
        (region_header::BUCKETS_PER_SHARD, false, 7),
        (region_header::SLOT_STRIDE, false, 80),
        (region_header::CAPACITY, true, 65),
        (region_header::SLOTS_OFF, true, 64),
        (region_header::BUCKETS_OFF, true, 0),
    ];
    for (off, wide, v) in fields {
        let off = off as u64;
        let old = if wide {
            read_u64(&seg, off)
        } else {
            read_u32(&seg, off) as u64
        };
        if wide {
            write_u64(&seg, off, v);
        } else {
            write_u32(&seg, off, v as u32);
        }
        let e = Cache::open(&id).unwrap_err();
        assert!(matches!(e, Error::BadFormat(_)), "field at {off} = {v}: {e:?}");
        assert_eq!(e.code(), "ERR_SHM_BAD_FORMAT");
        if wide {
            write_u64(&seg, off, old);
        } else {
            write_u32(&seg, off, old as u32);
        }
        assert!(Cache::open(&id).is_ok(), "restored field at {off}");
    }
}

#[test]
fn an_unfinished_initialisation_is_not_ready() {
    let (seg, id, _g) = valid("fmt-init");
    write_u32(&seg, region_header::STATE as u64, layout::STATE_INITIALIZING);
    let e = probe(&seg).unwrap_err();
    assert!(matches!(e, Error::NotReady(_)), "{e:?}");
    assert_eq!(e.code(), "ERR_SHM_NOT_READY");
    // An attacher waits for the initialiser to finish.
    let s2 = seg.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        write_u32(&s2, region_header::STATE as u64, layout::STATE_READY);
    });
    let start = Instant::now();
    let c = Cache::open(&id).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"v"[..]));
    t.join().unwrap();
    // Some other state word is not ours.
    write_u32(&seg, region_header::STATE as u64, 77);
    assert!(matches!(probe(&seg), Err(Error::BadFormat(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes: a typed error, never a panic, never a hang.
    #[test]
    fn random_bytes_never_attach(bytes in proptest::collection::vec(any::<u8>(), 256..2048)) {
        let (seg, _g) = util::segment("fmt-rand", bytes.len() as u64);
        // SAFETY: the segment has exactly bytes.len() bytes and is ours alone.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.as_ptr(), bytes.len()) };
        let state = header_state(&seg);
        match probe(&seg) {
            Err(Error::BadFormat(_)) => prop_assert_ne!(state, layout::STATE_INITIALIZING),
            Err(Error::NotReady(_)) => prop_assert_eq!(state, layout::STATE_INITIALIZING),
            other => prop_assert!(false, "{:?}", other.map(|_| ())),
        }
    }

    /// One header byte changed: either a typed error, or a cache that works and is sound.
    #[test]
    fn a_flipped_header_byte_is_caught_or_harmless(at in 0usize..128, xor in 1u8..=255) {
        let (seg, _id, _g) = valid("fmt-flip");
        // SAFETY: `at` < 128 is inside the header; nobody else uses the segment.
        unsafe { *seg.as_ptr().add(at) ^= xor };
        match probe(&seg) {
            Ok(c) => {
                // A flipped default time to live must not expire the entry under test.
                let forever = shm_lru::SetOptions { ttl_ms: Some(0), ..Default::default() };
                c.set(2u64, b"w", &forever).unwrap();
                prop_assert_eq!(c.get(2u64).unwrap(), Some(b"w".to_vec()));
                let r = c.check().unwrap();
                prop_assert!(r.is_ok(), "{}", r);
            }
            Err(Error::BadFormat(_) | Error::VersionMismatch { .. } | Error::RegionTooSmall { .. } | Error::NotReady(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    /// Any slot id, buffer size, cutoff and limit: an answer or a typed error, never a panic.
    #[test]
    fn id_based_calls_take_any_numbers(
        ops in proptest::collection::vec((0u8..7, any::<u64>(), 0u64..80, any::<u32>(), 0usize..100), 1..60),
    ) {
        let c = util::cache("fmt-ids", &opts(50, 24, true));
        for k in 0..30u64 {
            c.put(k, &k.to_le_bytes()).unwrap();
        }
        let cap = c.capacity();
        for (what, big, small, share, n) in ops {
            // Half the time a slot id near the valid range, else anything.
            let s = if big % 2 == 0 { small } else { big };
            let r: Result<(), Error> = match what {
                0 => c.get_slot_with(s, |v, _| v.len()).map(|_| ()),
                1 => c.slot_entry(s).map(|e| assert_eq!(e.slot as u64, s)),
                2 => c.remove_slot(s),
                3 => c.set_share_key(s, share),
                4 => c.evict_used_before(big, n).map(|v| assert!(v.len() <= n)),
                5 => c.entries(Order::LruFirst, Some(share % 3), Some(n)).map(|v| assert!(v.len() <= n)),
                _ => {
                    let mut buf = vec![0u8; n % 12];
                    match c.get_into(s % 40, &mut buf) {
                        Err(Error::BufferTooSmall { needed }) => { prop_assert!(needed > buf.len()); Ok(()) }
                        r => r.map(|_| ()),
                    }
                }
            };
            match r {
                Ok(()) => {}
                Err(Error::NoSuchSlot(x)) => prop_assert!(x == 0 || x > cap),
                Err(Error::SlotFree(x)) => prop_assert!(x >= 1 && x <= cap),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
        let r = c.check().unwrap();
        prop_assert!(r.is_ok(), "{}", r);
    }
}

#[test]
fn an_object_its_creator_has_not_yet_sized_is_waited_for() {
    use std::os::unix::fs::FileExt;
    // What a creator writes: a valid cache's bytes, its state word still INITIALIZING.
    let (_seg, tmpl, _g) = valid("fmt-template");
    let mut bytes = std::fs::read(util::shm_path(&tmpl)).unwrap();
    let state = region_header::STATE;
    bytes[state..state + 4].copy_from_slice(&layout::STATE_INITIALIZING.to_ne_bytes());

    // The creator's object between its shm_open and its ftruncate: there, of size 0.
    let id = util::unique_posix("fmt-unsized");
    let _g2 = SegGuard(id.clone());
    let SegmentId::Posix(name) = &id else {
        unreachable!()
    };
    let fd = shm_lru::internals::posix::open(name, true, 0o600)
        .unwrap()
        .unwrap();
    let path = util::shm_path(&id);
    let creator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        shm_lru::internals::posix::truncate(fd, bytes.len() as u64).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&bytes, 0).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        f.write_all_at(&layout::STATE_READY.to_ne_bytes(), state as u64)
            .unwrap();
        shm_lru::internals::posix::close(fd);
    });
    let start = Instant::now();
    let c = Cache::open(&id).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"v"[..]));
    creator.join().unwrap();
}

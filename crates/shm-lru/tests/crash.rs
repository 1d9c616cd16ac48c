//! Processes that die holding a lock: a shard's (the next locker rebuilds the shard from its
//! slots) and the application mutex (handed on, flagged). Also `check()` finding deliberate
//! corruption, and recovery repairing it.

use crate::util::{
    self, assert_sound, cache_with_clock, child_var, kill_child, open_child_cache, opts, read_u32,
    set_slot_flags, shard_field, shard_mutex, slot_field, slot_flags, spawn_child, tell_parent,
    wait_for_line, wait_to_be_killed, write_u32, write_u64, TestCache, F_WRITING,
};
use shm_lru::internals::robust_mutex::{self, Locked};
use shm_lru::layout::{shard_header, slot};
use shm_lru::{Cache, Entry, InitMode, Order, Segment};
use std::io::BufReader;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Child role: locks shard `SHARD`'s mutex directly, does `ACTION` to the shard's bytes as a
/// process cut short mid-operation would have left them, then dies as `HOW` says (`exit`, or
/// waits for SIGKILL).
pub fn hold_shard_lock() {
    let c = open_child_cache();
    let g = c.geometry();
    let seg = c.segment();
    let shard: u32 = child_var("SHARD").parse().unwrap();
    // SAFETY: the mutex lies in the header of a validated cache that `c` keeps mapped.
    let r = unsafe { robust_mutex::lock(shard_mutex(seg, &g, shard)) }.unwrap();
    assert_eq!(r, Locked::Clean);
    let action = child_var("ACTION");
    if let Some(s) = action.strip_prefix("mark-writing:") {
        // An overwrite cut short: flagged as mid-write, value bytes half replaced.
        let s: u32 = s.parse().unwrap();
        set_slot_flags(seg, &g, s, slot_flags(seg, &g, s) | F_WRITING);
        write_u64(seg, slot_field(&g, s, slot::DATA), 0x0bad_0bad_0bad_0bad);
    } else {
        assert_eq!(action, "none");
    }
    ready_then_die();
}

/// Tells the parent "READY", then dies as `HOW` says: `exit`, or waits for SIGKILL.
fn ready_then_die() -> ! {
    tell_parent("READY");
    match child_var("HOW").as_str() {
        "exit" => std::process::exit(0),
        _ => wait_to_be_killed(),
    }
}

/// Child role: takes the application mutex and dies holding it.
pub fn hold_app_lock() {
    let c = open_child_cache();
    assert!(!c.app_lock().unwrap());
    ready_then_die();
}

/// Child role: waits for the application mutex, says whether its previous holder died, and
/// gives it back.
pub fn wait_app_lock() {
    let c = open_child_cache();
    tell_parent("READY");
    let died = c.app_lock().unwrap();
    tell_parent(&format!("GOT died={died}"));
    c.app_unlock().unwrap();
}

/// Runs `hold_shard_lock` on shard 0 of `c` and makes it die (killed, or exiting) holding it.
fn die_holding_shard_lock(c: &Cache, action: &str, how: &str) {
    let mut child = spawn_child(
        "hold-shard-lock",
        &[
            ("SEG", c.segment().id().to_string()),
            ("SHARD", "0".into()),
            ("ACTION", action.into()),
            ("HOW", how.into()),
        ],
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "READY");
    if how == "kill" {
        let m = shard_mutex(c.segment(), &c.geometry(), 0);
        // SAFETY: the shard mutex of a validated cache, which the child holds (asserted), so
        // this try_lock cannot take it.
        let r = unsafe { robust_mutex::try_lock(m) }.unwrap();
        assert_eq!(r, Locked::WouldBlock, "the child holds the shard lock");
        kill_child(&mut child);
    } else {
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

/// A single-shard cache of capacity 32 with ten entries used at distinct times, two removed
/// (so the free list is not empty).
fn populated(tag: &str) -> TestCache {
    let (c, clock) = cache_with_clock(tag, &util::single_shard(32, 48, true));
    for k in 0..12u64 {
        clock.fetch_add(1, Ordering::Relaxed);
        c.put(k, format!("value-{k}").as_bytes()).unwrap();
    }
    c.remove(3u64).unwrap();
    c.remove(7u64).unwrap();
    c
}

fn timed<R>(f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    r
}

#[test]
fn a_process_killed_holding_a_shard_lock_is_recovered_from() {
    let c = populated("killed-holder");
    let before = c.entries(Order::MruFirst, None, None).unwrap();
    die_holding_shard_lock(&c, "none", "kill");
    // The next operation repairs the shard, and nothing is lost.
    assert_eq!(timed(|| c.get(5u64).unwrap()).as_deref(), Some(&b"value-5"[..]));
    assert_eq!(c.stats().unwrap().recoveries, 1);
    assert_sound(&c);
    let after = c.entries(Order::MruFirst, None, None).unwrap();
    assert_eq!(after.len(), before.len());
    // Everything is there; only key 5 moved (the get above).
    let strip = |v: &[Entry]| {
        let mut v: Vec<_> = v
            .iter()
            .map(|e| (e.key.clone(), e.value.clone(), e.slot))
            .collect();
        v.sort();
        v
    };
    assert_eq!(strip(&after), strip(&before));
    // The shard works on: fill it up and check again.
    for k in 100..140u64 {
        c.put(k, b"more").unwrap();
    }
    assert_sound(&c);
    assert_eq!(c.stats().unwrap().recoveries, 1);
}

#[test]
fn a_write_cut_short_is_dropped_not_returned() {
    let c = populated("cut-short");
    let s = c.slot_of(4u64).unwrap().unwrap();
    die_holding_shard_lock(&c, &format!("mark-writing:{s}"), "exit");
    assert_eq!(timed(|| c.get(4u64).unwrap()), None);
    assert_eq!(c.stats().unwrap().recoveries, 1);
    assert_eq!(c.len().unwrap(), 9);
    assert!(matches!(c.slot_entry(s as u64), Err(shm_lru::Error::SlotFree(_))));
    for k in [0u64, 1, 2, 5, 6, 8, 9, 10, 11] {
        assert_eq!(
            c.get(k).unwrap(),
            Some(format!("value-{k}").into_bytes()),
            "key {k}"
        );
    }
    assert_sound(&c);
    // The freed slot is used again.
    for k in 200..223u64 {
        c.put(k, b"x").unwrap();
    }
    assert_eq!(c.len().unwrap(), 32);
    assert_sound(&c);
}

#[test]
fn cleared_entries_stay_gone_after_a_crash() {
    let c = populated("clear-crash");
    assert_eq!(c.clear().unwrap(), 10);
    // Two new entries take the first two slots; the old entries' bytes (flags included) are
    // still in the slots above them.
    c.put(100u64, b"new").unwrap();
    c.put(101u64, b"new").unwrap();
    die_holding_shard_lock(&c, "none", "kill");
    let keys: Vec<_> = c
        .entries(Order::LruFirst, None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        keys,
        vec![shm_lru::Key::Hash(100), shm_lru::Key::Hash(101)],
        "only the new entries survive"
    );
    assert_eq!(c.stats().unwrap().recoveries, 1);
    for k in 0..12u64 {
        assert_eq!(c.get(k).unwrap(), None);
    }
    assert_sound(&c);
}

#[test]
fn a_reset_region_does_not_bring_old_entries_back_after_a_crash() {
    let (seg, _g) = util::segment("reset-crash", 64 * 1024);
    let o = util::single_shard(0, 32, false);
    let c = Cache::init_in(seg.clone(), 64 * 1024, &o, InitMode::AttachOrInit).unwrap();
    for k in 0..5u64 {
        c.put(k, b"old").unwrap();
    }
    let r = Cache::init_in(seg, 64 * 1024, &o, InitMode::Reset).unwrap();
    assert_eq!(r.len().unwrap(), 0);
    r.put(50u64, b"new").unwrap();
    die_holding_shard_lock(&r, "none", "exit");
    assert_eq!(r.len().unwrap(), 1);
    assert_eq!(r.stats().unwrap().recoveries, 1);
    for k in 0..5u64 {
        assert_eq!(r.get(k).unwrap(), None);
    }
    assert_eq!(r.get(50u64).unwrap().as_deref(), Some(&b"new"[..]));
    assert_sound(&r);
}

#[test]
fn check_finds_corruption_and_recovery_repairs_it() {
    type Corrupt = fn(&Segment, &shm_lru::layout::Geometry, &Cache);
    let cases: Vec<(&str, Corrupt, &str)> = vec![
        (
            "recency cycle",
            |seg, g, c| {
                let head = read_u32(seg, shard_field(g, 0, shard_header::HEAD));
                let second = c.entries(Order::MruFirst, None, Some(2)).unwrap()[1].slot;
                write_u32(seg, slot_field(g, second, slot::NEXT), head);
            },
            "cycle",
        ),
        (
            "wrong count",
            |seg, g, _| {
                let off = shard_field(g, 0, shard_header::LEN);
                write_u32(seg, off, read_u32(seg, off) + 3);
            },
            "count is",
        ),
        (
            "wrong prev",
            |seg, g, c| {
                let e = c.entries(Order::MruFirst, None, Some(3)).unwrap();
                write_u32(seg, slot_field(g, e[2].slot, slot::PREV), e[2].slot);
            },
            "prev is",
        ),
        (
            "wrong tail",
            |seg, g, _| {
                let head = read_u32(seg, shard_field(g, 0, shard_header::HEAD));
                write_u32(seg, shard_field(g, 0, shard_header::TAIL), head);
            },
            "tail is",
        ),
        (
            "head at a never-used slot",
            |seg, g, _| write_u32(seg, shard_field(g, 0, shard_header::HEAD), 20),
            "never-used",
        ),
        (
            "entry on the free list",
            |seg, g, c| {
                let live = c.slot_of(5u64).unwrap().unwrap();
                write_u32(seg, shard_field(g, 0, shard_header::FREE), live);
            },
            "both in use and free",
        ),
        (
            "entry chained in a wrong bucket",
            |seg, g, c| {
                let live = c.slot_of(5u64).unwrap().unwrap();
                // A second entry for it, in the last entry of the last bucket.
                let off = util::bucket_off(g, 0, g.buckets_per_shard - 1) + 60;
                write_u32(seg, off, live);
            },
            "bucket",
        ),
        (
            "link beyond the shard",
            |seg, g, c| {
                let e = c.entries(Order::MruFirst, None, Some(2)).unwrap();
                write_u32(seg, slot_field(g, e[0].slot, slot::NEXT), 1_000_000);
            },
            "count is",
        ),
    ];
    for (what, corrupt, expect) in cases {
        let c = populated("corrupt");
        let before = c.entries(Order::MruFirst, None, None).unwrap();
        assert_sound(&c);
        corrupt(c.segment(), &c.geometry(), &c);
        let r = c.check().unwrap();
        assert!(!r.is_ok(), "{what}: check found nothing");
        assert!(
            r.problems.iter().any(|p| p.contains(expect)),
            "{what}: expected a problem mentioning {expect:?}, got:\n{r}"
        );
        die_holding_shard_lock(&c, "none", "exit");
        // Recovery rebuilds the shard from its slots: the same entries in the same order.
        assert_eq!(c.len().unwrap(), 10, "{what}");
        assert_sound(&c);
        assert_eq!(c.entries(Order::MruFirst, None, None).unwrap(), before, "{what}");
        assert_eq!(c.stats().unwrap().recoveries, 1, "{what}");
    }
}

fn app_holder_dies(how: &str) {
    let c = util::cache("app-crash", &opts(4, 16, true));
    let mut child = spawn_child(
        "hold-app-lock",
        &[("SEG", c.segment().id().to_string()), ("HOW", how.into())],
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "READY");
    if how == "kill" {
        assert_eq!(c.app_try_lock().unwrap(), None, "the child holds the app mutex");
        kill_child(&mut child);
    } else {
        assert!(child.wait().unwrap().success());
    }
    assert!(
        timed(|| c.app_lock().unwrap()),
        "the previous holder's death is reported"
    );
    c.app_unlock().unwrap();
    assert!(!c.app_lock().unwrap(), "repaired: a normal lock again");
    c.app_unlock().unwrap();
    assert_eq!(c.app_try_lock().unwrap(), Some(false));
    c.app_unlock().unwrap();
    // The shard locks were never involved.
    assert_eq!(c.stats().unwrap().recoveries, 0);
}

#[test]
fn the_app_mutex_survives_its_holder_being_killed() {
    app_holder_dies("kill");
}

#[test]
fn the_app_mutex_survives_its_holder_exiting() {
    app_holder_dies("exit");
}

#[test]
fn a_lock_whose_bytes_name_a_thread_that_does_not_exist_is_reported_damaged() {
    let t = util::cache("lock-damaged", &util::single_shard(16, 32, true));
    t.cache.put(1u64, b"one").unwrap();
    let mut c = Cache::open(&t.guard.0).unwrap();
    c.set_lock_timeout(Some(Duration::from_millis(100)));
    // Flipped bytes: the lock word now names thread 0x3fff_fff0 as its holder.
    let m = shard_mutex(c.segment(), &c.geometry(), 0).cast::<u8>();
    let off = m as u64 - c.segment().as_ptr() as u64;
    write_u32(c.segment(), off, 0x3fff_fff0);
    let err = c.put(2u64, b"two").unwrap_err();
    assert_eq!(err.code(), "ERR_SHM_LOCK_TIMEOUT");
    assert!(
        matches!(&err, shm_lru::Error::LockDamaged { why, .. } if why.contains("no such thread")),
        "{err}"
    );
    assert!(err.to_string().contains("made again"), "{err}");
    // Reads take no lock: they still answer.
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"one"[..]));
    // Put the word back so that the cache can be dropped and destroyed cleanly.
    write_u32(c.segment(), off, 0);
}

#[test]
fn a_waiter_whose_wake_up_was_lost_still_gets_the_lock() {
    // When a holder dies, the kernel marks the lock word "owner died" and wakes one waiter; if
    // that waiter is killed too before it takes the lock, no other waiter is woken. Here that
    // state is made directly: the word is marked as the kernel marks it, with no wake-up, and
    // then the holder is killed (the kernel leaves alone a word that no longer names it).
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    let c = util::cache("lost-wake", &opts(4, 16, true));
    let seg = c.segment().id().to_string();
    let mut holder = spawn_child("hold-app-lock", &[("SEG", seg.clone()), ("HOW", "kill".into())]);
    wait_for_line(&mut BufReader::new(holder.stdout.take().unwrap()), "READY");
    let mut waiter = spawn_child("wait-app-lock", &[("SEG", seg)]);
    let mut out = BufReader::new(waiter.stdout.take().unwrap());
    wait_for_line(&mut out, "READY");
    let off = shm_lru::layout::region_header::APP_MUTEX as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    let word = loop {
        // The waiter is asleep on the lock once it has set the waiters bit.
        let w = read_u32(c.segment(), off);
        if w & FUTEX_WAITERS != 0 || Instant::now() > deadline {
            break w;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_ne!(word & FUTEX_WAITERS, 0, "the waiter never blocked: {word:#x}");
    assert_ne!(word & FUTEX_TID_MASK, 0, "the holder holds the lock: {word:#x}");
    std::thread::sleep(Duration::from_millis(100));
    write_u32(c.segment(), off, FUTEX_OWNER_DIED | FUTEX_WAITERS);
    kill_child(&mut holder);
    let _ = holder.wait();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut out, &mut line);
        // The pipe goes back with the line: the child still writes to it before it exits.
        let _ = tx.send((line, out));
    });
    let got = rx.recv_timeout(Duration::from_secs(10));
    if got.is_err() {
        kill_child(&mut waiter);
    }
    let (line, _out) = got.expect("the waiter was never woken to take the free lock");
    assert_eq!(line.trim(), "GOT died=true");
    assert!(waiter.wait().unwrap().success());
    assert_eq!(c.app_try_lock().unwrap(), Some(false), "a normal lock again");
    c.app_unlock().unwrap();
}

//! Processes that die holding a lock: a shard's (the next locker rebuilds the shard from its
//! slots) and the application mutex (handed on, flagged). Also `check()` finding deliberate
//! corruption, and recovery repairing it.

use crate::util::{
    self, assert_sound, cache_with_clock, child_var, kill_child, open_child_cache, opts, read_u32,
    set_slot_flags, shard_field, shard_mutex, slot_field, slot_flags, spawn_child, tell_parent,
    wait_for_line, wait_to_be_killed, write_u32, write_u64, TestCache, F_WRITING,
};
use shm_lru::internals::robust_mutex::{self, Locked};
use shm_lru::layout::{region_header, shard_header, slot};
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
    } else if let Some(s) = action.strip_prefix("rewrite-cut-short:") {
        // A rewrite in place cut short: the old contents saved in the undo record, then the
        // slot flagged mid-write and its value half replaced.
        let s: u32 = s.parse().unwrap();
        save_undo(seg, &g, shard, s);
        set_slot_flags(seg, &g, s, slot_flags(seg, &g, s) | F_WRITING);
        write_u64(seg, slot_field(&g, s, slot::DATA), 0x0bad_0bad_0bad_0bad);
    } else if let Some(s) = action.strip_prefix("rewrite-done:") {
        // A rewrite in place whose slot is whole again (the new value in, `writing` cleared),
        // cut short before the undo record was dropped.
        let s: u32 = s.parse().unwrap();
        save_undo(seg, &g, shard, s);
        write_u64(
            seg,
            slot_field(&g, s, slot::DATA),
            u64::from_le_bytes(*b"VALUE-4\0"),
        );
    } else {
        assert_eq!(action, "none");
    }
    ready_then_die();
}

/// Saves slot `s` of `shard` in the shard's undo record, as a rewrite in place does first.
fn save_undo(seg: &Segment, g: &shm_lru::layout::Geometry, shard: u32, s: u32) {
    let journal = g.journals_off + shard as u64 * g.stride;
    let from = slot_field(g, s, 0);
    for w in (0..g.stride).step_by(8) {
        write_u64(seg, journal + w, util::read_u64(seg, from + w));
    }
    write_u64(seg, journal + slot::KEY as u64, s as u64);
}

/// Child role: with a lock timeout of `MS` ms, sets a key of a shard whose lock the parent
/// holds; tells the parent the error, the CPU time the wait took and its own wall clock.
pub fn timed_locker() {
    let mut c = open_child_cache();
    c.set_lock_timeout(Some(Duration::from_millis(child_var("MS").parse().unwrap())));
    let cpu = || {
        // SAFETY: getrusage fills the zeroed, writable struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
        let ms = |t: libc::timeval| t.tv_sec * 1000 + t.tv_usec / 1000;
        ms(u.ru_utime) + ms(u.ru_stime)
    };
    let before = cpu();
    let err = c.put(1u64, b"x").unwrap_err();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tell_parent(&format!(
        "code={} cpu_ms={} wall_ms={wall}",
        err.code(),
        cpu() - before
    ));
}

/// Child role: makes the POSIX object `SEG` as a cache's creator does (sized, memory
/// reserved) and is killed before it lays the cache out.
pub fn create_and_die() {
    let id: shm_lru::SegmentId = child_var("SEG").parse().unwrap();
    let _seg = Segment::create(&id, 64 << 20, 0o600).unwrap();
    tell_parent("READY");
    wait_to_be_killed();
}

/// Child role: adds 1 to the counter "hits" for ever (until killed).
pub fn incr_loop() {
    let c = open_child_cache();
    c.incr("hits", 1, None).unwrap();
    tell_parent("READY");
    loop {
        c.incr("hits", 1, None).unwrap();
    }
}

/// Child role: rewrites the 60,000-byte value of key "big" in place for ever (until killed),
/// each time filled with one byte, the next one each time.
pub fn rewrite_loop() {
    let c = open_child_cache();
    let mut fill = 1u8;
    c.put("big", &vec![fill; 60_000]).unwrap();
    tell_parent("READY");
    loop {
        fill = fill.wrapping_add(1).max(1);
        c.put("big", &vec![fill; 60_000]).unwrap();
    }
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

/// A holder that dies inside a rewrite in place: while the slot is still marked mid-write,
/// recovery puts the old value back from the undo record; once the slot is whole again (the
/// undo record not yet dropped), the new value stays. Either way the entry and its slot stay.
#[test]
fn a_rewrite_in_place_cut_short_keeps_the_old_value_or_the_new_one() {
    for (action, want) in [
        ("rewrite-cut-short", &b"value-4"[..]),
        ("rewrite-done", &b"VALUE-4"[..]),
    ] {
        let c = populated(action);
        let s = c.slot_of(4u64).unwrap().unwrap();
        die_holding_shard_lock(&c, &format!("{action}:{s}"), "kill");
        assert_eq!(timed(|| c.get(4u64).unwrap()).as_deref(), Some(want), "{action}");
        assert_eq!(c.stats().unwrap().recoveries, 1, "{action}");
        assert_eq!(c.len().unwrap(), 10, "{action}");
        assert_eq!(c.slot_of(4u64).unwrap(), Some(s), "{action}");
        assert_sound(&c);
    }
}

/// Starts child `role` on `c` again and again, SIGKILLs it at a random moment once it says it
/// is ready, and calls `after(round)` each time; stops once `enough` kills caught the child
/// holding a shard's lock (or after `rounds`), and asserts that at least one did.
fn kill_at_random(
    c: &Cache,
    role: &str,
    max_pause_us: u64,
    rounds: u32,
    enough: u64,
    mut after: impl FnMut(u32),
) {
    let mut rng = util::Rng::new(util::time_seed());
    let mut recoveries = 0;
    for round in 0..rounds {
        let mut child = spawn_child(role, &[("SEG", c.segment().id().to_string())]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        wait_for_line(&mut out, "READY");
        std::thread::sleep(Duration::from_micros(100 + rng.below(max_pause_us)));
        kill_child(&mut child);
        after(round);
        recoveries = c.stats().unwrap().recoveries;
        if recoveries >= enough {
            break;
        }
    }
    // Kills that found the child holding the shard lock, mid-write: what these tests are about.
    assert!(recoveries >= 1, "no kill landed inside a write of {role}");
    assert_sound(c);
}

/// A counter whose `incr` is killed at a random instruction (real processes, SIGKILL) comes
/// back with its old value or its new one: it never goes back, and never goes missing.
#[test]
fn a_counter_survives_kills_mid_incr() {
    let c = util::cache("incr-kill", &opts(64, 32, true));
    let mut last = 0i64;
    kill_at_random(&c, "incr-loop", 3_000, 400, 40, |round| {
        let now = c
            .get("hits")
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap().parse::<i64>().unwrap());
        let Some(now) = now else {
            panic!("round {round}: the counter is gone (it was {last})");
        };
        assert!(now > last, "round {round}: the counter went from {last} to {now}");
        last = now;
    });
}

/// A large value rewritten in place by a process SIGKILLed at random (most kills land inside
/// the copy, which takes most of each write): after recovery the key holds a whole value, the
/// old one or the new one, never none and never a mix.
#[test]
fn a_value_rewritten_in_place_survives_kills_whole() {
    let c = util::cache("rewrite-kill", &opts(8, 60_004, true));
    kill_at_random(&c, "rewrite-loop", 2_000, 200, 20, |round| {
        let Some(v) = c.get("big").unwrap() else {
            panic!("round {round}: the key is gone");
        };
        assert_eq!(v.len(), 60_000, "round {round}");
        assert!(v.iter().all(|&b| b == v[0]), "round {round}: a mixed value");
    });
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

/// The counts outside the lists: the cache's shared count of entries (which bounds it to its
/// capacity) and a shard's earliest expiry (which lets a purge skip it) are checked and
/// repaired too.
#[test]
fn check_and_repair_cover_the_shared_count_and_the_earliest_expiry() {
    let c = util::cache("counts", &util::single_shard(64, 32, true));
    for k in 0..40u64 {
        c.put(k, b"v").unwrap();
    }
    c.set(
        99u64,
        b"soon",
        &shm_lru::SetOptions {
            ttl_ms: Some(60_000),
            ..Default::default()
        },
    )
    .unwrap();
    let (seg, g) = (c.segment(), c.geometry());
    // A count gone below zero: every insert would then find the cache full.
    write_u64(seg, region_header::LIVE as u64, u64::MAX - 5);
    let r = c.check().unwrap();
    assert!(r.problems.iter().any(|p| p.contains("counts")), "{r}");
    let fixed = c.repair().unwrap();
    assert!(fixed.recounted, "{fixed}");
    assert_sound(&c);
    for k in 100..123u64 {
        c.put(k, b"v").unwrap();
    }
    assert_eq!(c.len().unwrap(), 64, "the cache holds its capacity again");
    // An earliest expiry recorded later than an entry's: a purge would skip that entry.
    let s = (0..1).find(|&s| {
        c.expiry_of(99u64).unwrap().is_some() && {
            let off = shard_field(&g, s, shard_header::EARLIEST_EXPIRY);
            util::read_u64(seg, off) != u64::MAX
        }
    });
    let s = s.expect("the shard of the expiring entry records an expiry");
    write_u64(seg, shard_field(&g, s, shard_header::EARLIEST_EXPIRY), u64::MAX);
    let r = c.check().unwrap();
    assert!(r.problems.iter().any(|p| p.contains("earliest expiry")), "{r}");
    let fixed = c.repair().unwrap();
    assert_eq!(fixed.rebuilt, 1, "{fixed}");
    assert_sound(&c);
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
    assert_eq!(err.code(), "ERR_SHM_LOCK_DAMAGED");
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

/// A get that must fall back to the lock (its bucket left mid-write) and a blocking set, with
/// no lock timeout, on a lock whose word names a thread that does not exist: both answer with
/// `LockDamaged` after the grace instead of waiting for ever.
#[test]
fn a_damaged_lock_is_reported_to_callers_without_a_timeout() {
    let c = util::cache("lock-damaged-no-timeout", &util::single_shard(16, 32, true));
    c.put(1u64, b"one").unwrap();
    let (seg, g) = (c.segment(), c.geometry());
    let m = shard_mutex(seg, &g, 0).cast::<u8>();
    let lock_word = m as u64 - seg.as_ptr() as u64;
    write_u32(seg, lock_word, 0x3fff_fff0);
    for b in 0..g.buckets_per_shard {
        let off = util::bucket_off(&g, 0, b);
        write_u32(seg, off, read_u32(seg, off) | 1);
    }
    let (get, set) = std::thread::scope(|t| {
        let get = t.spawn(|| c.get(1u64));
        let set = t.spawn(|| c.put(2u64, b"two"));
        (get.join().unwrap(), set.join().unwrap())
    });
    for err in [get.unwrap_err(), set.unwrap_err()] {
        assert_eq!(err.code(), "ERR_SHM_LOCK_DAMAGED", "{err}");
        assert!(err.to_string().contains("no such thread"), "{err}");
    }
    write_u32(seg, lock_word, 0);
}

/// A creator killed while it made its segment leaves a half-made object; the next
/// `open_or_create` notices that its creator is gone, removes it and makes the cache again,
/// while a live creator's half-made object is waited for, never removed.
#[test]
fn a_segment_half_made_by_a_dead_creator_is_made_again() {
    let id = util::unique_posix("half-made");
    let _guard = util::SegGuard(id.clone());
    let mut child = spawn_child("create-and-die", &[("SEG", id.to_string())]);
    wait_for_line(&mut BufReader::new(child.stdout.take().unwrap()), "READY");
    // Alive: the object is its creator's, not to be taken.
    let err = Cache::open(&id).unwrap_err();
    assert_eq!(err.code(), "ERR_SHM_NOT_READY", "{err}");
    assert!(!matches!(err, shm_lru::Error::Abandoned(_)), "{err}");
    kill_child(&mut child);
    let c = timed_within(Duration::from_secs(4), || {
        Cache::open_or_create(&id, &util::opts(1_000, 64, true)).unwrap()
    });
    c.put(1u64, b"one").unwrap();
    assert_eq!(c.get(1u64).unwrap().as_deref(), Some(&b"one"[..]));
    assert_sound(&c);
}

/// A creator killed between making its POSIX object and sizing it leaves an object of size 0
/// and no lock on it: `open_or_create` removes it and makes the cache.
#[test]
fn an_object_never_sized_by_a_dead_creator_is_made_again() {
    let id = util::unique_posix("never-sized");
    let _guard = util::SegGuard(id.clone());
    let name = std::ffi::CString::new(id.to_string()).unwrap();
    // SAFETY: shm_open with a valid NUL-terminated name; the descriptor is closed at once.
    let fd = unsafe { libc::shm_open(name.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600) };
    assert!(fd >= 0);
    // SAFETY: a descriptor this test owns.
    unsafe { libc::close(fd) };
    std::thread::sleep(Duration::from_millis(2_100));
    let c = timed_within(Duration::from_secs(5), || {
        Cache::open_or_create(&id, &util::opts(100, 32, true)).unwrap()
    });
    c.put(1u64, b"one").unwrap();
    assert_sound(&c);
}

fn timed_within<R>(limit: Duration, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    r
}

/// libfaketime keeps a POSIX shared memory object and a semaphore per process, which it removes
/// at exit; a killed process leaves them behind.
fn remove_faketime_objects(pid: u32) {
    for name in [format!("faketime_shm_{pid}"), format!("sem.faketime_sem_{pid}")] {
        let _ = std::fs::remove_file(std::path::Path::new("/dev/shm").join(name));
    }
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A lock timeout is measured on the monotonic clock: a process whose clock functions say an
/// hour ahead still gives up after its timeout, and one an hour behind waits without spinning.
/// (libfaketime shifts the process's clock functions; Debian's `faketime` package.)
#[test]
fn lock_waits_do_not_follow_a_shifted_wall_clock() {
    if !std::path::Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test: install Debian's faketime package"
        );
        eprintln!("SKIPPED lock_waits_do_not_follow_a_shifted_wall_clock: {LIBFAKETIME} is missing");
        return;
    }
    let c = util::cache("faketime", &util::single_shard(16, 32, true));
    let m = shard_mutex(c.segment(), &c.geometry(), 0);
    // SAFETY: the shard mutex of a validated cache that `c` keeps mapped.
    assert_eq!(unsafe { robust_mutex::lock(m) }.unwrap(), Locked::Clean);
    for shift in ["+1h", "-1h"] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
            .env(util::ROLE_VAR, "timed-locker")
            .env("SHM_LRU_TEST_SEG", c.segment().id().to_string())
            .env("SHM_LRU_TEST_MS", "1000")
            .env("LD_PRELOAD", LIBFAKETIME)
            .env("FAKETIME", shift)
            .env("FAKETIME_DONT_RESET", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // The child's test harness may print on the same line first.
                if let Some(at) = line.find("code=") {
                    let _ = tx.send(line[at..].to_string());
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let pid = child.id();
                kill_child(&mut child);
                remove_faketime_objects(pid);
                panic!("{shift}: a 1 s lock timeout was still waiting after 30 s");
            }
        };
        child.wait().unwrap();
        remove_faketime_objects(child.id());
        let field = |k: &str| -> i64 {
            let v = line
                .split(' ')
                .find_map(|f| f.strip_prefix(&format!("{k}=")))
                .unwrap();
            v.parse().unwrap()
        };
        assert!(line.contains("code=ERR_SHM_LOCK_TIMEOUT"), "{shift}: {line}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (field("wall_ms") - now).abs() > 50 * 60_000,
            "{shift}: the child's clock was not shifted ({line})"
        );
        assert!(field("cpu_ms") < 500, "{shift}: the 1 s wait spun ({line})");
    }
    // SAFETY: this thread holds the mutex.
    unsafe { robust_mutex::unlock(m) }.unwrap();
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

#[test]
fn a_count_left_wrong_by_a_rebuilder_that_died_is_set_again_by_the_next_lock_holder() {
    // A process that rebuilt a shard sets the shared count of entries again from every shard's
    // after it lets the shard go; killed in between, it leaves the count wrong and the region's
    // recount flag set. The next process to take a lock sets the count again.
    let c = populated("crash-recount");
    let seg = c.segment();
    let live = util::read_u64(seg, region_header::LIVE as u64);
    util::write_u64(seg, region_header::LIVE as u64, live + 5);
    util::write_u32(seg, region_header::RECOUNT as u64, 1);
    c.put(1_000_000u64, b"after").unwrap();
    assert_eq!(util::read_u32(seg, region_header::RECOUNT as u64), 0);
    assert_eq!(
        util::read_u64(seg, region_header::LIVE as u64),
        c.stats().unwrap().len
    );
    assert_sound(&c);
}

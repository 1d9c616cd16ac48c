//! Running the executable, naming segments uniquely, guards that remove them, and the child
//! process that makes a cache and keeps it attached.

use assert_cmd::assert::Assert;
use assert_cmd::Command;
use shm_lru::{Cache, CacheOptions, Error, Segment, SegmentId, SetOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Selects a child role when the test binary is re-run (see `child_role` in `tests.rs`).
pub const ROLE_VAR: &str = "SHM_LRU_CLI_TEST_ROLE";
/// The segment the child works on.
pub const SEGMENT_VAR: &str = "SHM_LRU_CLI_TEST_SEGMENT";

/// The executable under test.
pub fn shm_lru() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shm-lru"))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Serialises tests that list segments with tests that count attached processes: `ls` maps
/// every cache it finds for a moment, which another test would see as an attachment.
pub fn attach_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which kind of segment to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SysV,
    Posix,
}

/// A segment id not used by any other test or test run on this machine right now (System V
/// keys are probed for by `create_*`, which retry on a clash).
pub fn fresh_id(kind: Kind) -> SegmentId {
    let pid = std::process::id();
    let n = next();
    match kind {
        Kind::Posix => SegmentId::posix(&format!("/shm-lru-cli-test-{pid}-{n}")).unwrap(),
        Kind::SysV => {
            let mixed = shm_lru::internals::mix64(((pid as u64) << 32) | n as u64);
            SegmentId::SysV(((mixed as i32) & 0x3fff_ffff) | 0x1000_0000)
        }
    }
}

/// Removes a segment when dropped.
#[derive(Debug)]
pub struct Guard(pub SegmentId);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Segment::destroy(&self.0, true);
    }
}

/// Whether a segment exists.
pub fn exists(id: &SegmentId) -> bool {
    match Segment::info(id) {
        Ok(_) => true,
        Err(Error::SegmentNotFound(_)) => false,
        Err(e) => panic!("info {id}: {e}"),
    }
}

/// A new cache made with `opts` under a fresh name of `kind`.
pub fn create_with(kind: Kind, opts: &CacheOptions) -> (Cache, Guard) {
    loop {
        let id = fresh_id(kind);
        match Cache::create(&id, opts) {
            Ok(c) => return (c, Guard(id)),
            Err(Error::SegmentExists(_)) => continue,
            Err(e) => panic!("create {id}: {e}"),
        }
    }
}

/// A new cache of one shard of `capacity` records of 64 bytes.
pub fn create_cache(kind: Kind, capacity: u64, shards: u32) -> (Cache, Guard) {
    let opts = CacheOptions {
        capacity,
        record_size: 64,
        shards: Some(shards),
        ..CacheOptions::default()
    };
    create_with(kind, &opts)
}

/// A new cache with a byte budget of `max_bytes`, entries of at most `max_value_size` bytes
/// (0: the engine's default) and one shard.
pub fn create_budget_cache(kind: Kind, max_bytes: u64, max_value_size: u64) -> (Cache, Guard) {
    let opts = CacheOptions {
        max_value_size,
        shards: Some(1),
        ..CacheOptions::budget(max_bytes)
    };
    create_with(kind, &opts)
}

/// A new cache as [`create_cache`] makes it, holding the u64 keys `0..entries`, each with the
/// value `v`.
pub fn filled_cache(kind: Kind, capacity: u64, shards: u32, entries: u64) -> (Cache, Guard) {
    let (cache, g) = create_cache(kind, capacity, shards);
    for k in 0..entries {
        cache.put(k, b"v").unwrap();
    }
    (cache, g)
}

/// Defines two tests, `$sysv` and `$posix`, that run `$check` on a System V segment and on a
/// POSIX object.
macro_rules! test_both_kinds {
    ($check:ident: $sysv:ident, $posix:ident) => {
        #[test]
        fn $sysv() {
            $check(crate::util::Kind::SysV);
        }

        #[test]
        fn $posix() {
            $check(crate::util::Kind::Posix);
        }
    };
}
pub(crate) use test_both_kinds;

/// A segment of `bytes.len()` bytes holding `bytes`: not a cache.
pub fn create_foreign(kind: Kind, bytes: &[u8]) -> (Segment, Guard) {
    loop {
        let id = fresh_id(kind);
        match Segment::create(&id, bytes.len() as u64, 0o600) {
            Ok(seg) => {
                // SAFETY: the segment was just created with exactly bytes.len() bytes, and no
                // other process knows its name yet.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.as_ptr(), bytes.len()) };
                return (seg, Guard(id));
            }
            Err(Error::SegmentExists(_)) => continue,
            Err(e) => panic!("create {id}: {e}"),
        }
    }
}

/// The bytes of a segment now.
pub fn snapshot(seg: &Segment) -> Vec<u8> {
    let mut v = vec![0u8; seg.len() as usize];
    // SAFETY: the mapping has seg.len() bytes and lives as long as `seg`; nobody else writes
    // this test's foreign segment (the point of the test is that the tool does not either).
    unsafe { std::ptr::copy_nonoverlapping(seg.as_ptr(), v.as_mut_ptr(), v.len()) };
    v
}

/// Pseudo-random bytes that are not a cache header: the state word is never "initialising"
/// and the magic never matches.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    v[16..20].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    v
}

/// Parses a command's stdout as JSON.
pub fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Runs the executable with `args` and asserts that it succeeds; the caller checks its output.
pub fn succeeds(args: &[&str]) -> Assert {
    shm_lru().args(args).assert().success()
}

/// Runs the executable with `args` and asserts that it exits with status `code`; the caller
/// checks its output.
pub fn exits_with(args: &[&str], code: i32) -> Assert {
    shm_lru().args(args).assert().code(code)
}

/// Runs the executable with `args`, asserts that it succeeds, and returns its stdout, which
/// must be UTF-8.
pub fn stdout_of(args: &[&str]) -> String {
    String::from_utf8(succeeds(args).get_output().stdout.clone()).expect("stdout is UTF-8")
}

/// Runs the executable with `args`, asserts that it succeeds, and parses its stdout as JSON.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    json(stdout_of(args).as_bytes())
}

/// Runs the executable with `args`, asserts that it exits with `code`, and parses its stdout
/// as JSON.
pub fn json_of_exit(args: &[&str], code: i32) -> serde_json::Value {
    json(&exits_with(args, code).get_output().stdout)
}

/// The row `ls --json` prints for segment `id`, if it lists it.
pub fn listed(id: &str) -> Option<serde_json::Value> {
    json_of(&["ls", "--json"])
        .as_array()
        .expect("ls --json prints an array")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
}

/// The `key` of every entry of a `dump --json` array, in order.
pub fn keys(dump: &serde_json::Value) -> Vec<String> {
    dump.as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

/// A child process (this test binary in the "holder" role) that created a cache, filled it,
/// and stays attached until dropped.
pub struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Removes the segment after the child is gone.
    pub guard: Guard,
}

impl Holder {
    /// Starts the child on a fresh segment of `kind` and waits until its cache is ready.
    pub fn start(kind: Kind) -> Holder {
        Holder::spawn(kind, false)
    }

    /// Like [`start`](Holder::start), but the child then keeps its cache's (only) shard locked,
    /// as a live process stopped mid-operation would, until dropped.
    pub fn start_holding_lock(kind: Kind) -> Holder {
        Holder::spawn(kind, true)
    }

    fn spawn(kind: Kind, hold_lock: bool) -> Holder {
        loop {
            let id = fresh_id(kind);
            if exists(&id) {
                continue;
            }
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["child_role", "--exact", "--nocapture", "--test-threads=1", "-q"])
                .env(ROLE_VAR, if hold_lock { "lock-holder" } else { "holder" })
                .env(SEGMENT_VAR, id.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn the holder");
            let stdin = child.stdin.take();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .find(|l| l == "READY" || l == "EXISTS");
            match ready.as_deref() {
                Some("READY") => {
                    return Holder {
                        child,
                        stdin,
                        guard: Guard(id),
                    }
                }
                Some(_) => {
                    let _ = child.wait();
                    continue;
                }
                None => {
                    let mut err = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                    let _ = child.wait();
                    panic!("holder failed: {err}");
                }
            }
        }
    }

    /// The holder's segment.
    pub fn id(&self) -> &SegmentId {
        &self.guard.0
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the holder puts in its cache, in this order, then reads (one hit, one miss): so the
/// recency order, most recent first, is alpha, 7, beta.
fn holder(id: &SegmentId, hold_lock: bool) {
    let opts = CacheOptions {
        capacity: 64,
        record_size: 64,
        shards: Some(1),
        ..CacheOptions::default()
    };
    let cache = match Cache::create(id, &opts) {
        Ok(c) => c,
        Err(Error::SegmentExists(_)) => {
            println!("EXISTS");
            return;
        }
        Err(e) => panic!("holder create {id}: {e}"),
    };
    let str_value = SetOptions {
        kind: shm_lru::ValueKind::Str,
        ..SetOptions::default()
    };
    cache.set("alpha", b"one", &str_value).unwrap();
    cache.set("beta", b"two", &str_value).unwrap();
    cache.set(7u64, &[0, 1, 2], &SetOptions::default()).unwrap();
    assert!(cache.get("alpha").unwrap().is_some());
    assert!(cache.get("missing").unwrap().is_none());
    let wait = || {
        println!("READY");
        std::io::stdout().flush().unwrap();
        // Stay attached until the parent closes our stdin (or kills us).
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    if hold_lock {
        // Hold the shard's lock, as a writer stopped mid-operation would. (Reads take no lock,
        // so this takes the mutex itself.)
        let at = cache.geometry().shards_off as usize + shm_lru::layout::shard_header::MUTEX;
        let m = cache.segment().as_ptr().wrapping_add(at).cast();
        // SAFETY: the mutex lies in the header of the validated cache `cache` keeps mapped.
        unsafe { shm_lru::internals::robust_mutex::lock(m) }.unwrap();
        wait();
    } else {
        wait();
    }
}

/// Entry point of a re-run test binary in a child role.
pub fn child_main(role: &str) {
    let id: SegmentId = std::env::var(SEGMENT_VAR).unwrap().parse().unwrap();
    match role {
        "holder" => holder(&id, false),
        "lock-holder" => holder(&id, true),
        other => panic!("unknown role {other}"),
    }
}

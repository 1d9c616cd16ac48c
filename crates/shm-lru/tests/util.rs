//! Helpers shared by the test modules: unique segment names with guards that remove them,
//! caches with a manual clock, child processes (this binary re-run in a role), raw access to
//! the segment's bytes for the format and crash tests, and self-validating values.

use shm_lru::internals::fnv1a64;
use shm_lru::layout::{self, region_header, shard_header, slot, Geometry, SHARD_SIZE};
use shm_lru::{Cache, CacheOptions, Segment, SegmentId};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const ROLE_VAR: &str = "SHM_LRU_TEST_ROLE";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A POSIX name no other test (in this or any other process) uses.
pub fn unique_posix(tag: &str) -> SegmentId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    SegmentId::posix(&format!("/shmlru-test-{}-{n}-{tag}", std::process::id())).unwrap()
}

/// A System V key no other test uses: the pid and a counter, with bit 30 set.
pub fn unique_sysv() -> SegmentId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff;
    let key = (1 << 30) | ((std::process::id() as i32 & 0x3f_ffff) << 8) | n as i32;
    SegmentId::SysV(key)
}

/// Removes its segment when dropped, whatever the test did.
#[derive(Debug)]
pub struct SegGuard(pub SegmentId);

impl Drop for SegGuard {
    fn drop(&mut self) {
        let _ = Segment::destroy(&self.0, true);
    }
}

/// Guards that remove each of `ids` when dropped.
pub fn guards<const N: usize>(ids: [&SegmentId; N]) -> [SegGuard; N] {
    ids.map(|id| SegGuard(id.clone()))
}

/// A fresh POSIX segment of `len` bytes (mode 0o600), and the guard that removes it.
pub fn segment(tag: &str, len: u64) -> (Arc<Segment>, SegGuard) {
    let id = unique_posix(tag);
    let guard = SegGuard(id.clone());
    (Arc::new(Segment::create(&id, len, 0o600).unwrap()), guard)
}

/// A cache in its own segment, removed on drop.
pub struct TestCache {
    pub cache: Cache,
    pub guard: SegGuard,
}

impl std::ops::Deref for TestCache {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

/// Creates a cache in a fresh POSIX segment.
pub fn cache(tag: &str, opts: &CacheOptions) -> TestCache {
    let id = unique_posix(tag);
    let guard = SegGuard(id.clone());
    let cache = Cache::create(&id, opts).unwrap();
    TestCache { cache, guard }
}

pub fn opts(capacity: u64, record_size: u32, evict_on_full: bool) -> CacheOptions {
    CacheOptions {
        capacity,
        record_size,
        evict_on_full,
        ..CacheOptions::default()
    }
}

/// Options for a cache of `shards` shards.
pub fn sharded(shards: u32, capacity: u64, record_size: u32, evict_on_full: bool) -> CacheOptions {
    CacheOptions {
        shards: Some(shards),
        ..opts(capacity, record_size, evict_on_full)
    }
}

/// Options for a cache of one shard (an exact LRU).
pub fn single_shard(capacity: u64, record_size: u32, evict_on_full: bool) -> CacheOptions {
    sharded(1, capacity, record_size, evict_on_full)
}

/// A cache whose handle reads time from the returned clock, which starts one second after the
/// cache's base time (so that no time saturates below it).
pub fn cache_with_clock(tag: &str, opts: &CacheOptions) -> (TestCache, Arc<AtomicU64>) {
    let mut c = cache(tag, opts);
    let clock = Arc::new(AtomicU64::new(c.now_ms() + 1_000));
    c.cache.use_manual_clock(clock.clone());
    (c, clock)
}

/// Asserts that the cache's invariants hold.
pub fn assert_sound(c: &Cache) {
    let r = c.check().unwrap();
    assert!(r.is_ok(), "check found problems:\n{r}");
}

// ---- raw bytes ----

/// Reads a `T` (a u32 or u64 field) at `off` bytes into the segment.
fn read_at<T: Copy>(seg: &Segment, off: u64) -> T {
    assert!(off + std::mem::size_of::<T>() as u64 <= seg.len());
    // SAFETY: in bounds (asserted) and aligned to `T` by the format's offsets; tests only poke
    // bytes no other thread is writing at the time.
    unsafe { seg.as_ptr().add(off as usize).cast::<T>().read_volatile() }
}

/// Writes a `T` (a u32 or u64 field) at `off` bytes into the segment.
fn write_at<T: Copy>(seg: &Segment, off: u64, v: T) {
    assert!(off + std::mem::size_of::<T>() as u64 <= seg.len());
    // SAFETY: as in `read_at`.
    unsafe { seg.as_ptr().add(off as usize).cast::<T>().write_volatile(v) }
}

/// Reads a u32 at `off` bytes into the segment.
pub fn read_u32(seg: &Segment, off: u64) -> u32 {
    read_at(seg, off)
}

/// Writes a u32 at `off` bytes into the segment.
pub fn write_u32(seg: &Segment, off: u64, v: u32) {
    write_at(seg, off, v)
}

/// Reads a u64 at `off` bytes into the segment.
pub fn read_u64(seg: &Segment, off: u64) -> u64 {
    read_at(seg, off)
}

/// Writes a u64 at `off` bytes into the segment.
pub fn write_u64(seg: &Segment, off: u64, v: u64) {
    write_at(seg, off, v)
}

/// Offset of shard `s`'s header field `field` (a `layout::shard_header` offset).
pub fn shard_field(g: &Geometry, s: u32, field: usize) -> u64 {
    g.shards_off + s as u64 * SHARD_SIZE + field as u64
}

/// Offset of field `field` (a `layout::slot` offset) of global slot id `id` (1-based).
pub fn slot_field(g: &Geometry, id: u32, field: usize) -> u64 {
    let per = g.slots_per_shard;
    let (s, local) = ((id - 1) / per, (id - 1) % per + 1);
    g.slot_offset(s, local) + field as u64
}

/// Offset of the start of shard `s`'s ring of records, in a cache with a byte budget: past the
/// buckets of a growing index (as many as its units take now), or the store's start.
pub fn ring_start(c: &Cache, s: u32) -> u64 {
    let g = c.geometry();
    let units = if g.grows {
        read_u32(
            c.segment(),
            shard_field(&g, s, shm_lru::layout::shard_header::UNITS),
        )
    } else {
        0
    };
    g.store_start(s) + shm_lru::layout::index_bucket_bytes(units)
}

/// Offset of bucket `b` of shard `s`.
pub fn bucket_off(g: &Geometry, s: u32, b: u32) -> u64 {
    g.bucket_offset(s, b)
}

/// The flags byte of a slot.
pub fn slot_flags(seg: &Segment, g: &Geometry, id: u32) -> u8 {
    (read_u32(seg, slot_field(g, id, slot::VLEN_FLAGS)) >> 24) as u8
}

/// Sets the flags byte of a slot.
pub fn set_slot_flags(seg: &Segment, g: &Geometry, id: u32, flags: u8) {
    let off = slot_field(g, id, slot::VLEN_FLAGS);
    let w = read_u32(seg, off);
    write_u32(seg, off, (w & 0x00ff_ffff) | ((flags as u32) << 24));
}

/// The shard mutex of shard `s`.
pub fn shard_mutex(seg: &Segment, g: &Geometry, s: u32) -> *mut libc::pthread_mutex_t {
    seg.as_ptr()
        .wrapping_add(shard_field(g, s, shard_header::MUTEX) as usize)
        .cast()
}

/// The header's state word.
pub fn header_state(seg: &Segment) -> u32 {
    read_u32(seg, region_header::STATE as u64)
}

pub use layout::F_WRITING;

/// The file behind a POSIX object.
pub fn shm_path(id: &SegmentId) -> std::path::PathBuf {
    match id {
        SegmentId::Posix(name) => format!("{}{name}", shm_lru::internals::posix::SHM_DIR).into(),
        SegmentId::SysV(_) => panic!("{id} is not a POSIX object"),
    }
}

// ---- child processes ----

/// The role this process was started in, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// A variable the parent passed to this child.
pub fn child_var(name: &str) -> String {
    std::env::var(format!("SHM_LRU_TEST_{name}"))
        .unwrap_or_else(|_| panic!("child started without SHM_LRU_TEST_{name}"))
}

/// In a child: the cache whose segment the parent named in `SEG`.
pub fn open_child_cache() -> Cache {
    let id: SegmentId = child_var("SEG").parse().unwrap();
    Cache::open(&id).unwrap()
}

/// Starts this test binary as a child in `role`, with `vars` (names without the
/// `SHM_LRU_TEST_` prefix). Its stdin and stdout are pipes.
pub fn spawn_child(role: &str, vars: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(format!("SHM_LRU_TEST_{k}"), v);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's stdout until a line equal to `want`; panics if it ends first.
pub fn wait_for_line(out: &mut BufReader<ChildStdout>, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "child's output ended before {want:?}");
        // The test harness may have written its "test child_main ... " before our line.
        if line.trim_end().ends_with(want) {
            return;
        }
    }
}

/// Sends SIGKILL to a child and reaps it.
pub fn kill_child(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    child.wait().unwrap();
}

/// Waits for a child to exit, collecting the `RESULT key=value ...` lines it printed, and
/// asserts it succeeded.
pub fn finish_child(child: Child) -> Vec<Vec<(String, String)>> {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed ({}):\n{text}", out.status);
    text.lines()
        .filter_map(|l| l.find("RESULT ").map(|i| &l[i + "RESULT ".len()..]))
        .map(|l| {
            l.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

/// One value from a `RESULT` line.
pub fn result_u64(line: &[(String, String)], key: &str) -> u64 {
    line.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .1
        .parse()
        .unwrap()
}

/// Prints a line for the parent and flushes it.
pub fn tell_parent(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Sleeps in the child until the parent kills it (bounded, so an orphan cannot linger).
pub fn wait_to_be_killed() -> ! {
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3)
}

/// A seed that differs between runs.
pub fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

// ---- a small deterministic random source for children ----

/// xorshift64*: enough randomness for workloads, reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- self-validating values ----

/// Bytes of a value's fixed part: key tag (8), writer (4), sequence (8), checksum (8).
pub const VALUE_MIN: usize = 28;

/// A value that names its key, its writer and its sequence number, with `extra` filler bytes,
/// and ends with a checksum of everything before it.
pub fn make_value(key_tag: u64, writer: u32, seq: u64, extra: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_MIN + extra);
    v.extend_from_slice(&key_tag.to_le_bytes());
    v.extend_from_slice(&writer.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    let mut x = key_tag ^ seq ^ writer as u64;
    for _ in 0..extra {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.push((x >> 56) as u8);
    }
    let sum = fnv1a64(&v);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

/// Checks a value read under the key whose tag is `key_tag`; returns the writer id.
pub fn validate_value(key_tag: u64, v: &[u8]) -> Result<u32, String> {
    if v.len() < VALUE_MIN {
        return Err(format!("value of {} bytes is shorter than {VALUE_MIN}", v.len()));
    }
    let (body, sum) = v.split_at(v.len() - 8);
    if fnv1a64(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        return Err(format!(
            "checksum mismatch (torn value?) for key tag {key_tag}: {v:02x?}"
        ));
    }
    let tag = u64::from_le_bytes(body[..8].try_into().unwrap());
    if tag != key_tag {
        return Err(format!("value names key tag {tag}, read under {key_tag}"));
    }
    Ok(u32::from_le_bytes(body[8..12].try_into().unwrap()))
}

// ---- groups of child processes ----

/// Waits for "go" on stdin, then returns a flag that turns true at the next line or EOF.
pub fn go_then_stop() -> Arc<AtomicBool> {
    tell_parent("READY");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        s.store(true, Ordering::Relaxed);
    });
    stop
}

/// A child started in a role, and its stdout.
pub type Kid = (Child, BufReader<ChildStdout>);

/// Starts a child in `role` on segment `seg`, as worker `id` seeded with `seed`.
pub fn spawn_role(role: &str, seg: &SegmentId, id: u64, seed: u64) -> Kid {
    let mut c = spawn_child(
        role,
        &[
            ("SEG", seg.to_string()),
            ("ID", id.to_string()),
            ("SEED", seed.to_string()),
        ],
    );
    let out = BufReader::new(c.stdout.take().unwrap());
    (c, out)
}

/// Starts workers `1..=n` in `role` on segment `seg`, worker `i` seeded with `base + i`.
pub fn spawn_roles(role: &str, seg: &SegmentId, n: u64, base: u64) -> Vec<Kid> {
    (1..=n).map(|i| spawn_role(role, seg, i, base + i)).collect()
}

/// A seed for one run's children, different in every run.
pub fn run_seed() -> u64 {
    shm_lru::internals::mix64(std::process::id() as u64 ^ time_seed())
}

/// Waits until every child is ready, then tells them all to go.
pub fn start_all(kids: &mut [Kid]) {
    for (_, out) in kids.iter_mut() {
        wait_for_line(out, "READY");
    }
    for (c, _) in kids.iter_mut() {
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), b"go\n").unwrap();
    }
}

/// Tells every child to stop and collects the `RESULT` lines of all of them, in order.
pub fn stop_all(kids: Vec<Kid>) -> Vec<Vec<(String, String)>> {
    let mut results = Vec::new();
    for (mut c, out) in kids {
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), b"stop\n").unwrap();
        c.stdout = Some(out.into_inner());
        results.extend(finish_child(c));
    }
    results
}

//! Segments that others can damage or plant: objects truncated under the cache, shared memory
//! too small for what is asked, names pre-created by another user, and modes lost to the
//! umask. Everything here uses real objects in `/dev/shm`, real System V segments, and real
//! processes running as another user. A test that cannot run here (without root, or where a
//! private mount namespace cannot be made) says so on stderr and returns; under CI (`CI=true`)
//! it fails instead, since CI must run every one.

use crate::util::{
    self, finish_child, result_u64, shm_path, spawn_child, tell_parent, unique_posix, unique_sysv, SegGuard,
};
use shm_lru::internals::posix;
use shm_lru::{Cache, CacheOptions, Error, OpenOptions, Segment, SegmentId, SetOptions};
use std::process::Command;
use std::sync::Arc;

/// A uid and gid that own nothing on the machine: the "other user" of these tests.
const OTHER: u32 = 54_321;

fn is_root() -> bool {
    shm_lru::internals::euid() == 0
}

/// Reports that `test` cannot run here, and why. Under CI (`CI=true`) that is a failure: CI
/// must run every test. Elsewhere it is written to the process's stderr (past the harness's
/// capture of `println!`/`eprintln!`, so that a plain `cargo test` shows it) and the caller
/// returns.
fn cannot_run(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} cannot run here, and CI must run it: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED, {why}");
}

/// Whether `test` must be skipped for want of root (see [`cannot_run`]).
fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    cannot_run(test, "it needs root to act as another user");
    true
}

/// Shrinks a POSIX object to 4096 bytes from another process, as an operator's `truncate -s`
/// would.
fn shrink_to_a_page(id: &SegmentId) {
    let status = Command::new("truncate")
        .args(["-s", "4096"])
        .arg(shm_path(id))
        .status()
        .unwrap();
    assert!(status.success());
}

/// A fresh POSIX name and a fresh System V key, both removed when the guards drop: most tests
/// here do the same to both kinds of segment.
fn both_kinds(tag: &str) -> (SegmentId, SegmentId, [SegGuard; 2]) {
    let (id, sid) = (unique_posix(tag), unique_sysv());
    let guards = util::guards([&id, &sid]);
    (id, sid, guards)
}

fn small_cache_opts(mode: u32) -> CacheOptions {
    CacheOptions {
        capacity: 64,
        record_size: 64,
        mode,
        ..CacheOptions::default()
    }
}

/// Sets a System V segment's owner and mode with `IPC_SET`, as its owner or creator may.
fn sysv_set(key: i32, uid: u32, mode: u32) {
    // SAFETY: shmget takes plain integers.
    let shmid = unsafe { libc::shmget(key, 0, 0) };
    assert!(shmid >= 0, "shmget: {}", std::io::Error::last_os_error());
    // SAFETY: shmid_ds is a plain C struct for which all-zero bytes are valid.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds; IPC_STAT writes only into it.
    let rc = unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) };
    assert_eq!(rc, 0, "IPC_STAT: {}", std::io::Error::last_os_error());
    ds.shm_perm.uid = uid;
    ds.shm_perm.mode = mode as _;
    // SAFETY: `ds` is the segment's own status with two fields changed; IPC_SET only reads it.
    let rc = unsafe { libc::shmctl(shmid, libc::IPC_SET, &mut ds) };
    assert_eq!(rc, 0, "IPC_SET: {}", std::io::Error::last_os_error());
}

fn assert_permission<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(e @ Error::Permission { .. }) => {
            assert_eq!(e.code(), "ERR_SHM_PERMISSION");
        }
        other => panic!("{what}: expected Error::Permission, got {other:?}"),
    }
}

// ---- modes ----

#[test]
fn the_requested_mode_is_applied_exactly_whatever_the_umask() {
    // The umask is per process, so a child sets a strict one and creates under it.
    let (posix_id, sysv_id, _g) = both_kinds("mode");
    let child = spawn_child(
        "hardening-umask-create",
        &[("POSIX", posix_id.to_string()), ("SYSV", sysv_id.to_string())],
    );
    let lines = finish_child(child);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(result_u64(&lines[0], "umask"), 0o077);
    // Read back here, by another process than the creator.
    assert_eq!(Segment::info(&posix_id).unwrap().mode, 0o666);
    assert_eq!(Segment::info(&sysv_id).unwrap().mode, 0o666);
    assert_eq!(result_u64(&lines[0], "posix640"), 0o640);
    assert_eq!(result_u64(&lines[0], "sysv640"), 0o640);
    // And in this process, whatever its umask is.
    let id = unique_posix("mode-here");
    let _g2 = SegGuard(id.clone());
    let _s = Segment::create(&id, 4096, 0o662).unwrap();
    assert_eq!(Segment::info(&id).unwrap().mode, 0o662);
}

/// Child: under umask 0o077, creates the POSIX and System V segments it is given with mode
/// 0o666, and two more with 0o640, and reports the modes the system shows.
pub fn umask_create() {
    // SAFETY: umask has no memory-safety preconditions.
    unsafe { libc::umask(0o077) };
    // SAFETY: as above; reading the mask back means setting it again.
    let mask = unsafe { libc::umask(0o077) };
    let posix_id: SegmentId = util::child_var("POSIX").parse().unwrap();
    let sysv_id: SegmentId = util::child_var("SYSV").parse().unwrap();
    let _a = Segment::create(&posix_id, 4096, 0o666).unwrap();
    let _b = Segment::create(&sysv_id, 4096, 0o666).unwrap();
    let (p2, s2, _g) = both_kinds("mode640");
    let _c = Segment::create(&p2, 4096, 0o640).unwrap();
    let _d = Segment::create(&s2, 4096, 0o640).unwrap();
    tell_parent(&format!(
        "RESULT umask={mask} posix640={} sysv640={}",
        Segment::info(&p2).unwrap().mode,
        Segment::info(&s2).unwrap().mode
    ));
}

// ---- truncation ----

#[test]
fn an_object_truncated_before_attach_is_refused() {
    let id = unique_posix("trunc");
    let _g = SegGuard(id.clone());
    let opts = CacheOptions {
        capacity: 10_000,
        record_size: 100,
        ..CacheOptions::default()
    };
    let size = Cache::required_size(&opts).unwrap();
    assert!(size > 64 * 1024);
    {
        let c = Cache::create(&id, &opts).unwrap();
        c.put("role", b"admin").unwrap();
    }
    let path = shm_path(&id);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();

    // Down to one page: the header is readable, the rest is gone.
    file.set_len(4096).unwrap();
    match Cache::open(&id) {
        Err(e @ Error::RegionTooSmall { .. }) => {
            assert_eq!(e.code(), "ERR_SHM_REGION_TOO_SMALL");
            let Error::RegionTooSmall { needed, available } = e else {
                unreachable!()
            };
            assert_eq!((needed, available), (size, 4096));
        }
        other => panic!("expected RegionTooSmall, got {other:?}"),
    }
    // Shorter than the header.
    file.set_len(10).unwrap();
    assert!(matches!(
        Cache::open(&id),
        Err(Error::RegionTooSmall {
            needed: 256,
            available: 10
        })
    ));
    // Nothing left: given a second to be sized (as a creator's new object would be), then
    // refused.
    file.set_len(0).unwrap();
    let start = std::time::Instant::now();
    match Cache::open(&id) {
        Err(e @ Error::BadFormat(_)) => assert!(e.to_string().contains("size 0"), "{e}"),
        other => panic!("expected BadFormat, got {other:?}"),
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(900));
}

#[test]
fn a_truncation_after_attach_is_reported_by_verify_size() {
    let id = unique_posix("trunc-after");
    let _g = SegGuard(id.clone());
    let made = Segment::create(&id, 1 << 20, 0o600).unwrap();
    let seg = Segment::open(&id).unwrap();
    seg.verify_size().unwrap();
    made.verify_size().unwrap();
    // Another process shrinks it. Neither mapping may touch the lost pages from now on.
    shrink_to_a_page(&id);
    for s in [&seg, &made] {
        match s.verify_size() {
            Err(e @ Error::Truncated { .. }) => {
                assert_eq!(e.code(), "ERR_SHM_TRUNCATED");
                let msg = e.to_string();
                assert!(
                    msg.contains("4096") && msg.contains(&(1u64 << 20).to_string()),
                    "{msg}"
                );
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
    // The first page is still there: reading it is fine.
    assert_eq!(util::read_u64(&seg, 0), 0);
    // Once grown back, the size checks out again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&id))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    seg.verify_size().unwrap();
    // System V segments cannot shrink.
    let sid = unique_sysv();
    let _g2 = SegGuard(sid.clone());
    Segment::create(&sid, 8192, 0o600).unwrap().verify_size().unwrap();
}

// ---- space ----

fn expect_no_space<T: std::fmt::Debug>(
    r: Result<T, Error>,
    needed_at_least: u64,
) -> (u64, u64, &'static str) {
    match r {
        Err(e @ Error::NoSpace { .. }) => {
            assert_eq!(e.code(), "ERR_SHM_NO_SPACE");
            let msg = e.to_string();
            let Error::NoSpace {
                needed,
                available,
                limit,
            } = e
            else {
                unreachable!()
            };
            assert!(needed >= needed_at_least, "{msg}");
            assert!(available < needed, "{msg}");
            assert!(
                msg.contains(&needed.to_string()) && msg.contains(&available.to_string()),
                "{msg}"
            );
            (needed, available, limit)
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
}

#[test]
fn a_segment_larger_than_the_free_shared_memory_is_refused_at_creation() {
    let free = posix::free_space().unwrap();
    let mem = shm_lru::internals::available_memory().unwrap();
    let too_much = free.max(mem) + (1 << 30);
    // POSIX: refused, and no name left behind.
    let id = unique_posix("nospace");
    let _g = SegGuard(id.clone());
    expect_no_space(Segment::create(&id, too_much, 0o600), too_much);
    assert!(matches!(Segment::info(&id), Err(Error::SegmentNotFound(_))));
    // System V, likewise.
    let sid = unique_sysv();
    let _g2 = SegGuard(sid.clone());
    expect_no_space(Segment::create(&sid, too_much, 0o600), too_much);
    assert!(matches!(Segment::info(&sid), Err(Error::SegmentNotFound(_))));
    // A cache of 10^8 records of 1000 bytes, about 100 GB: far more than the machine has.
    let big = CacheOptions {
        capacity: 100_000_000,
        record_size: 1000,
        ..CacheOptions::default()
    };
    let need = Cache::required_size(&big).unwrap();
    if need > free.min(mem) {
        expect_no_space(Cache::create(&id, &big), need);
        assert!(matches!(Segment::info(&id), Err(Error::SegmentNotFound(_))));
    } else {
        println!("this machine has room for {need} bytes: the 100 GB cache case is not run");
    }
}

/// Runs this test binary as a child in `role` inside a private mount namespace whose
/// `/dev/shm` is a fresh tmpfs of `size`. `None` where that cannot be made (without root,
/// without `unshare`, or where namespaces are not allowed), after [`cannot_run`] said so for
/// `test`.
fn in_small_tmpfs(test: &str, role: &str, size: &str) -> Option<std::process::Output> {
    if !is_root() {
        cannot_run(test, "mounting a tmpfs in a mount namespace needs root");
        return None;
    }
    let mount = format!(
        "mount -t tmpfs -o size={size},mode=1777 shm-lru-test {}",
        posix::SHM_DIR
    );
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &mount])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let why = format!(
                "cannot mount a private tmpfs ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
            cannot_run(test, &why);
            return None;
        }
        Err(e) => {
            cannot_run(test, &format!("cannot run unshare: {e}"));
            return None;
        }
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!("{mount} && exec \"$0\" --exact child_main --nocapture --test-threads=1");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(exe)
        .env(util::ROLE_VAR, role)
        .output()
        .unwrap();
    Some(out)
}

#[test]
fn a_full_tmpfs_fails_at_creation_not_with_sigbus_later() {
    let Some(out) = in_small_tmpfs(
        "a_full_tmpfs_fails_at_creation_not_with_sigbus_later",
        "hardening-small-tmpfs",
        "8m",
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("RESULT small-tmpfs=done"), "{text}");
}

/// Child, in a private 8 MiB tmpfs on `/dev/shm`: creation reserves the space it sizes, and
/// asking for more than is left fails with `NoSpace`.
pub fn small_tmpfs() {
    let total = posix::free_space().unwrap();
    assert!(total <= 8 << 20, "not in the small tmpfs: {total} bytes free");

    // A 4 MiB object takes its 4 MiB at once, though none of it was touched.
    let a = unique_posix("a");
    let seg = Segment::create(&a, 4 << 20, 0o600).unwrap();
    let after = posix::free_space().unwrap();
    assert!(total - after >= 4 << 20, "only {} bytes reserved", total - after);

    // So 5 MiB more cannot fit, and says so (without a reservation this succeeded, and the
    // first write past the free space raised SIGBUS).
    let b = unique_posix("b");
    let (needed, available, limit) = expect_no_space(Segment::create(&b, 5 << 20, 0o600), 5 << 20);
    assert_eq!((needed, available), (5 << 20, after));
    assert!(limit.contains("/dev/shm"), "{limit}");
    assert!(matches!(Segment::info(&b), Err(Error::SegmentNotFound(_))));

    // The reservation itself refuses what does not fit.
    let fd = posix::open("/raw", true, 0o600).unwrap().unwrap();
    posix::truncate(fd, 16 << 20).unwrap();
    let e = posix::reserve(fd, 16 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    posix::close(fd);
    posix::unlink("/raw").unwrap();

    // A cache larger than the tmpfs (like a 208 MB cache on a 64 MiB /dev/shm, scaled down).
    let big = CacheOptions {
        capacity: 200_000,
        record_size: 64,
        ..CacheOptions::default()
    };
    let need = Cache::required_size(&big).unwrap();
    assert!(need > 8 << 20);
    expect_no_space(Cache::create(&b, &big), need);

    // One that fits is filled to the last slot without a fault.
    let fits = CacheOptions {
        capacity: 20_000,
        record_size: 64,
        evict_on_full: true,
        ..CacheOptions::default()
    };
    assert!(Cache::required_size(&fits).unwrap() < after);
    let c = Cache::create(&b, &fits).unwrap();
    let value = [7u8; 40];
    for k in 0..40_000u64 {
        c.set(k, &value, &SetOptions::default()).unwrap();
    }
    assert!(c.check().unwrap().is_ok());
    drop(c);
    Segment::destroy(&b, true).unwrap();
    drop(seg);
    Segment::destroy(&a, true).unwrap();
    tell_parent("RESULT small-tmpfs=done");
}

// ---- squatted names ----

#[test]
fn a_segment_owned_by_another_user_is_refused_unless_trusted() {
    if skip_unless_root("a_segment_owned_by_another_user_is_refused_unless_trusted") {
        return;
    }
    // POSIX: made here, then handed to another uid with mode 0o666.
    let id = unique_posix("chown");
    let _g = SegGuard(id.clone());
    drop(Segment::create(&id, 8192, 0o600).unwrap());
    std::os::unix::fs::chown(shm_path(&id), Some(OTHER), Some(OTHER)).unwrap();
    std::fs::set_permissions(shm_path(&id), std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    // System V: likewise, with IPC_SET.
    let sid = unique_sysv();
    let _g2 = SegGuard(sid.clone());
    drop(Segment::create(&sid, 8192, 0o600).unwrap());
    let SegmentId::SysV(key) = sid else { unreachable!() };
    sysv_set(key, OTHER, 0o666);

    for id in [&id, &sid] {
        assert_permission(Segment::open(id), "default options");
        let msg = Segment::open(id).unwrap_err().to_string();
        assert!(
            msg.contains(&OTHER.to_string()) && msg.contains("trust_owner"),
            "{msg}"
        );
        let wrong = OpenOptions {
            trust_owner: Some(OTHER + 1),
            mode: None,
        };
        assert_permission(Segment::open_with(id, &wrong), "another trusted uid");
        let trusted = OpenOptions {
            trust_owner: Some(OTHER),
            mode: None,
        };
        assert_eq!(Segment::open_with(id, &trusted).unwrap().len(), 8192);
        // Trusting the owner does not accept a mode wider than asked for.
        let strict = OpenOptions {
            trust_owner: Some(OTHER),
            mode: Some(0o600),
        };
        let e = Segment::open_with(id, &strict).unwrap_err();
        assert!(e.to_string().contains("0o666"), "{e}");
        assert_permission(Err::<(), _>(e), "mode 0o600 asked, 0o666 found");
        let shared = OpenOptions {
            trust_owner: Some(OTHER),
            mode: Some(0o666),
        };
        Segment::open_with(id, &shared).unwrap();
    }
}

#[test]
fn a_mode_wider_than_asked_is_refused_even_for_ones_own_segment() {
    let (id, sid, _g) = both_kinds("wide");
    for id in [&id, &sid] {
        let _s = Segment::create(id, 4096, 0o660).unwrap();
        let asked = |mode| OpenOptions {
            trust_owner: None,
            mode: Some(mode),
        };
        assert_permission(Segment::open_with(id, &asked(0o600)), "group write not asked for");
        assert_permission(Segment::open_with(id, &asked(0o640)), "group write not asked for");
        Segment::open_with(id, &asked(0o660)).unwrap();
        Segment::open_with(id, &asked(0o666)).unwrap();
        // Read bits are not the opener's risk; the default does not look at the mode.
        Segment::open(id).unwrap();
    }
}

#[test]
fn a_cache_planted_by_another_user_is_not_opened() {
    if skip_unless_root("a_cache_planted_by_another_user_is_not_opened") {
        return;
    }
    let (id, sid, _g) = both_kinds("planted");
    let sid_given = unique_sysv();
    let _g2 = SegGuard(sid_given.clone());
    for (target, give_to_root) in [(&id, false), (&sid, false), (&sid_given, true)] {
        let child = spawn_child(
            "hardening-squatter",
            &[
                ("TARGET", target.to_string()),
                ("GIVE_TO_ROOT", (give_to_root as u8).to_string()),
            ],
        );
        let lines = finish_child(child);
        assert_eq!(result_u64(&lines[0], "uid"), OTHER as u64);
        let info = Segment::info(target).unwrap();
        assert_eq!(info.mode, 0o666);
        assert_eq!(info.uid, if give_to_root { 0 } else { OTHER });

        // Root's open_or_create with mode 0o600 must not read the planted entry.
        let r = Cache::open_or_create(target, &small_cache_opts(0o600));
        assert_permission(r, "open_or_create of a squatted name");
        assert_permission(Cache::open(target), "open of a squatted name");
        // Trusting the squatter opens it, and there is its entry.
        let trust = OpenOptions {
            trust_owner: Some(OTHER),
            mode: None,
        };
        let c = Cache::attach(Arc::new(Segment::open_with(target, &trust).unwrap()), None).unwrap();
        assert_eq!(c.get("role").unwrap().as_deref(), Some(&b"admin"[..]));
    }
}

/// Becomes the other user, for good.
fn become_other() {
    // SAFETY: setgroups with an empty list reads no memory; setgid/setuid take integers. glibc
    // applies them to every thread of the process.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(OTHER), 0);
        assert_eq!(libc::setuid(OTHER), 0);
    }
    assert_eq!(shm_lru::internals::euid(), OTHER);
}

/// Child: as the other user, creates a cache at `TARGET` with mode 0o666 and plants
/// `role=admin` in it; with `GIVE_TO_ROOT=1` (System V), then makes root its owner, as a
/// creator may.
pub fn squatter() {
    become_other();
    let id: SegmentId = util::child_var("TARGET").parse().unwrap();
    let c = Cache::create(&id, &small_cache_opts(0o666)).unwrap();
    c.put("role", b"admin").unwrap();
    if util::child_var("GIVE_TO_ROOT") == "1" {
        let SegmentId::SysV(key) = id else {
            panic!("only System V owners can be handed on")
        };
        sysv_set(key, 0, 0o666);
    }
    tell_parent(&format!("RESULT uid={}", shm_lru::internals::euid()));
}

#[test]
fn permission_denied_by_the_system_is_its_own_error() {
    if skip_unless_root("permission_denied_by_the_system_is_its_own_error") {
        return;
    }
    let (private, sprivate, _g) = both_kinds("private");
    let (shared, sshared, _g2) = both_kinds("shared");
    let _a = Cache::create(&private, &small_cache_opts(0o600)).unwrap();
    let _b = Cache::create(&sprivate, &small_cache_opts(0o600)).unwrap();
    let c = Cache::create(&shared, &small_cache_opts(0o666)).unwrap();
    let d = Cache::create(&sshared, &small_cache_opts(0o666)).unwrap();
    c.put("from", b"root").unwrap();
    d.put("from", b"root").unwrap();
    let child = spawn_child(
        "hardening-unprivileged",
        &[
            ("PRIVATE", private.to_string()),
            ("SPRIVATE", sprivate.to_string()),
            ("SHARED", shared.to_string()),
            ("SSHARED", sshared.to_string()),
        ],
    );
    let lines = finish_child(child);
    let codes: Vec<&str> = lines[0].iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        codes,
        [
            "ERR_SHM_PERMISSION",
            "ERR_SHM_PERMISSION",
            "root",
            "root",
            "ERR_SHM_PERMISSION"
        ],
        "{lines:?}"
    );
}

/// Child: as the other user, opens root's private caches (the system refuses), root's shared
/// ones (root is trusted: they open), and tries to remove a private one.
pub fn unprivileged() {
    become_other();
    let open = |var: &str| {
        let id: SegmentId = util::child_var(var).parse().unwrap();
        match Cache::open(&id) {
            Ok(c) => String::from_utf8(c.get("from").unwrap().unwrap()).unwrap(),
            Err(e) => e.code().to_string(),
        }
    };
    let removed = {
        let id: SegmentId = util::child_var("SPRIVATE").parse().unwrap();
        match Segment::destroy(&id, true) {
            Ok(r) => r.to_string(),
            Err(e) => e.code().to_string(),
        }
    };
    tell_parent(&format!(
        "RESULT private={} sprivate={} shared={} sshared={} rm={removed}",
        open("PRIVATE"),
        open("SPRIVATE"),
        open("SHARED"),
        open("SSHARED"),
    ));
}

/// Runs a child role of this module.
pub fn child(role: &str) {
    match role {
        "hardening-umask-create" => umask_create(),
        "hardening-small-tmpfs" => small_tmpfs(),
        "hardening-squatter" => squatter(),
        "hardening-unprivileged" => unprivileged(),
        other => panic!("unknown child role {other:?}"),
    }
}

#[test]
fn whole_cache_walks_refuse_a_segment_cut_short_instead_of_faulting() {
    let t = util::cache("trunc-walks", &util::opts(4096, 64, true));
    for k in 0..100u64 {
        t.cache.put(k, b"v").unwrap();
    }
    let id = t.cache.segment().id().clone();
    shrink_to_a_page(&id);
    // Each would touch every page of the region; each says why it will not.
    assert!(matches!(t.cache.check(), Err(Error::Truncated { .. })));
    assert!(matches!(t.cache.repair(), Err(Error::Truncated { .. })));
    assert!(matches!(
        t.cache.entries(shm_lru::Order::MruFirst, None, None),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        t.cache.scan(shm_lru::Order::MruFirst, None, 10),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(t.cache.clear(), Err(Error::Truncated { .. })));
}

//! A POSIX object truncated underneath a command that is reading it: the command says which
//! segment shrank and exits with status 2, instead of dying of SIGBUS (exit status 135).

use crate::util::{shm_lru, Holder, Kind};
use shm_lru::SegmentId;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn dev_shm_path(id: &SegmentId) -> PathBuf {
    match id {
        SegmentId::Posix(name) => PathBuf::from(format!("/dev/shm{name}")),
        SegmentId::SysV(_) => unreachable!("only POSIX objects can be truncated"),
    }
}

/// Truncates the object to nothing, as `truncate -s 0 /dev/shm/<name>` would.
fn truncate(path: &PathBuf) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .unwrap_or_else(|e| panic!("truncate {}: {e}", path.display()));
}

/// Waits up to 20 s for `child` to exit; kills it and fails if it does not.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command kept running after its segment was truncated");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    err
}

fn spawn(args: &[&str]) -> Child {
    Command::new(shm_lru().get_program())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shm-lru")
}

#[test]
fn stats_watch_reports_a_truncated_segment_and_exits() {
    let h = Holder::start(Kind::Posix);
    let id = h.id().to_string();
    let mut child = spawn(&["stats", &id, "--watch", "0.05"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The header, then one interval: the command is reading the cache.
    for _ in 0..2 {
        lines.next().expect("stats --watch printed nothing").unwrap();
    }
    truncate(&dev_shm_path(h.id()));
    let st = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(st.signal(), None, "killed by a signal: {st:?}; {err}");
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("segment {id} shrank underneath this process")),
        "{err}"
    );
    drop(h);
}

#[test]
fn bench_removes_its_segment_when_truncated_underneath() {
    let mut child = spawn(&["bench", "--ops", "4000000000", "--capacity", "1000"]);
    let id = SegmentId::posix(&format!("/shm-lru-bench-{}", child.id())).unwrap();
    let path = dev_shm_path(&id);
    // Its first progress line comes once the cache is made and the run has begun.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("bench: set"), "{first}");
    assert!(path.exists(), "bench runs, but not on {}", path.display());
    truncate(&path);
    let st = wait_exit(&mut child);
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(st.signal(), None, "killed by a signal: {st:?}; {err}");
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(
        err.contains("shrank underneath") && err.contains("the segment was removed"),
        "{err}"
    );
    assert!(!path.exists(), "{} was left behind", path.display());
}

//! Segments that are not shm-lru caches, and segments that do not exist: listed by nothing,
//! refused by everything with exit status 2, and never changed.

use crate::util::{attach_lock, create_foreign, exists, exits_with, listed, noise, snapshot, succeeds, Kind};
use predicates::prelude::*;
use std::time::{Duration, Instant};

fn foreign_is_left_alone(kind: Kind, bytes: Vec<u8>) {
    let (seg, g) = create_foreign(kind, &bytes);
    let id = g.0.to_string();
    {
        let _l = attach_lock();
        assert!(listed(&id).is_none(), "ls listed foreign segment {id}");
    }
    let refusals: [&[&str]; 8] = [
        &["rm", &id],
        &["rm", "--force", &id],
        &["check", &id],
        &["check", "--json", &id],
        &["dump", &id],
        &["stats", &id],
        &["get", &id, "k"],
        &["set", &id, "k", "v"],
    ];
    for args in refusals {
        let start = Instant::now();
        exits_with(args, 2)
            .stderr(predicate::str::contains(format!(
                "segment {id} is not a shm-lru cache"
            )))
            .stderr(predicate::str::contains("left untouched"))
            .stderr(predicate::str::contains("panicked").not());
        // Refused at once, not after waiting for an initialisation that will never come.
        assert!(start.elapsed() < Duration::from_secs(3), "{args:?} waited");
    }
    assert!(exists(&g.0), "{id} was removed");
    assert_eq!(snapshot(&seg), bytes, "{id} was written");
}

#[test]
fn foreign_sysv_segment_is_skipped_and_refused() {
    foreign_is_left_alone(Kind::SysV, noise(8192, 0x1234_5678));
}

#[test]
fn foreign_posix_object_is_skipped_and_refused() {
    foreign_is_left_alone(Kind::Posix, noise(4096, 0x8765_4321));
}

#[test]
fn zeroed_segment_is_not_waited_for() {
    foreign_is_left_alone(Kind::SysV, vec![0u8; 4096]);
}

#[test]
fn tiny_posix_object_is_refused() {
    foreign_is_left_alone(Kind::Posix, b"hello".to_vec());
}

#[test]
fn missing_segments_are_a_clear_error() {
    let name = format!("/shm-lru-cli-test-{}-missing", std::process::id());
    let commands: [&[&str]; 6] = [
        &["stats", &name],
        &["dump", &name],
        &["check", &name],
        &["rm", &name],
        &["get", &name, "k"],
        &["del", &name, "k"],
    ];
    for args in commands {
        exits_with(args, 2).stderr(format!("shm-lru: segment {name} does not exist\n"));
    }
    exits_with(&["check", "0x7ffffff3"], 2)
        .stderr(predicate::str::contains("segment 2147483635 does not exist"));
}

#[test]
fn bad_segment_names_are_usage_errors() {
    for bad in ["cache", "/a/b", "0", "0xZZ", "99999999999"] {
        exits_with(&["check", bad], 2).stderr(predicate::str::contains(format!("bad segment \"{bad}\"")));
    }
    exits_with(&["frobnicate"], 2);
}

#[test]
fn help_explains_commands_and_limits() {
    succeeds(&["--help"])
        .stdout(predicate::str::contains("Exit status").and(predicate::str::contains("bench")));
    succeeds(&["ls", "--help"]).stdout(predicate::str::contains("best effort"));
}

/// A header as a cache's initialiser leaves it: `state` and `magic` as given, the format word
/// this build reads.
fn header(state: u32, magic: u64, format: u32) -> Vec<u8> {
    use shm_lru::layout::region_header;
    let mut v = vec![0u8; 4096];
    v[region_header::MAGIC..region_header::MAGIC + 8].copy_from_slice(&magic.to_le_bytes());
    v[region_header::FORMAT..region_header::FORMAT + 4].copy_from_slice(&format.to_le_bytes());
    v[region_header::LAYOUT..region_header::LAYOUT + 4]
        .copy_from_slice(&shm_lru::layout::layout_word().to_le_bytes());
    v[region_header::STATE..region_header::STATE + 4].copy_from_slice(&state.to_le_bytes());
    v
}

fn ls_status(id: &str) -> Option<String> {
    let _l = attach_lock();
    listed(id).map(|r| r["status"].as_str().unwrap().to_string())
}

#[test]
fn unfinished_initialisation_is_listed_and_removed_only_by_force() {
    use shm_lru::layout::STATE_INITIALIZING;
    let bytes = header(STATE_INITIALIZING, 0, shm_lru::layout::FORMAT_VERSION);
    let (seg, g) = create_foreign(Kind::Posix, &bytes);
    let id = g.0.to_string();
    assert_eq!(ls_status(&id).as_deref(), Some("not-ready"));
    let start = Instant::now();
    exits_with(&["dump", &id], 2).stderr(predicate::str::contains(format!("segment {id} is not ready")));
    assert!(start.elapsed() < Duration::from_secs(3));
    exits_with(&["rm", &id], 2).stderr(predicate::str::contains(format!("shm-lru rm --force {id}")));
    assert_eq!(snapshot(&seg), bytes);
    drop(seg);
    succeeds(&["rm", "--force", &id]);
    assert!(!exists(&g.0));
}

#[test]
fn a_segment_half_made_by_a_creator_that_died_is_listed_and_removed_by_force() {
    // What a creator killed while it reserved the memory leaves: a sized object of zeros whose
    // creator's lock went with its descriptor.
    let (seg, g) = create_foreign(Kind::Posix, &vec![0u8; 1 << 20]);
    drop(seg);
    std::thread::sleep(Duration::from_millis(2_100));
    let id = g.0.to_string();
    assert_eq!(ls_status(&id).as_deref(), Some("half-made"));
    exits_with(&["rm", &id], 2).stderr(predicate::str::contains("half-made"));
    assert!(exists(&g.0));
    succeeds(&["rm", "--force", &id]);
    assert!(!exists(&g.0));
}

#[test]
fn other_format_versions_are_listed_refused_and_removable() {
    use shm_lru::layout::{MAGIC, STATE_READY};
    let bytes = header(STATE_READY, MAGIC, 99);
    let (seg, g) = create_foreign(Kind::SysV, &bytes);
    let id = g.0.to_string();
    assert_eq!(ls_status(&id).as_deref(), Some("other-format"));
    exits_with(&["check", &id], 2).stderr(predicate::str::contains(format!(
        "segment {id}: cache format 0x00000063"
    )));
    assert_eq!(snapshot(&seg), bytes);
    drop(seg);
    let _l = attach_lock();
    succeeds(&["rm", &id]);
    assert!(!exists(&g.0));
}

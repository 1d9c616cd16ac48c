//! `bench`: reports throughput and leaves no segment behind.

use crate::util::{exists, exits_with, json, succeeds};
use predicates::prelude::*;
use shm_lru::SegmentId;

#[test]
fn bench_reports_throughput_and_removes_its_segment() {
    let out = succeeds(&[
        "bench",
        "--ops",
        "20000",
        "--capacity",
        "1000",
        "--threads",
        "2",
        "--json",
    ])
    .stderr(predicate::str::contains("bench: set").and(predicate::str::contains("bench: get")))
    .get_output()
    .stdout
    .clone();
    let v = json(&out);
    assert_eq!(v["set"]["ops"], 20000);
    assert_eq!(v["get"]["ops"], 20000);
    assert!(v["set"]["mops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["get"]["hit_rate"].as_f64().unwrap() > 0.5);
    let seg: SegmentId = v["segment"].as_str().unwrap().parse().unwrap();
    assert!(!exists(&seg), "bench left {seg} behind");

    succeeds(&["bench", "--ops", "5000", "--capacity", "100"])
        .stdout(predicate::str::contains("Mops/s").and(predicate::str::contains("(removed)")));
}

#[test]
fn bench_rejects_values_larger_than_records() {
    exits_with(&["bench", "--record-size", "16", "--value-size", "32"], 2).stderr(predicate::str::contains(
        "--value-size 32 exceeds --record-size 16",
    ));
}

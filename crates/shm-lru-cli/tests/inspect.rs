//! `ls`, `dump`, `stats` and `rm` on a cache made and kept attached by another process.

use crate::util::{
    attach_lock, exists, exits_with, filled_cache, json, json_of, keys, listed, shm_lru, stdout_of, succeeds,
    test_both_kinds, Holder, Kind,
};
use predicates::prelude::*;
use serde_json::Value;

fn ls_sees_another_process(kind: Kind) {
    let h = Holder::start(kind);
    let id = h.id().to_string();
    let _l = attach_lock();
    let row = listed(&id).unwrap_or_else(|| panic!("{id} not listed"));
    assert_eq!(row["type"], if kind == Kind::SysV { "sysv" } else { "posix" });
    assert_eq!(row["capacity"], 64);
    assert_eq!(row["record_size"], 64);
    assert_eq!(row["entries"], 3);
    assert_eq!(row["status"], "ok");
    assert_eq!(row["mode"], "0600");
    assert!(row["attached"].as_u64().unwrap() >= 1, "{row}");
    assert!(row["size"].as_u64().unwrap() > 0);
    assert!(row["owner"].as_str().is_some_and(|o| !o.is_empty()));

    succeeds(&["ls"])
        .stdout(predicate::str::contains("SEGMENT").and(predicate::str::contains(format!("{id} "))));
}

test_both_kinds! {
    ls_sees_another_process:
    ls_lists_a_sysv_cache_of_another_process,
    ls_lists_a_posix_cache_of_another_process
}

#[test]
fn dump_shows_another_process_entries_in_recency_order() {
    let h = Holder::start(Kind::Posix);
    let id = h.id().to_string();
    let v = json_of(&["dump", &id, "--json"]);
    assert_eq!(keys(&v), ["alpha", "7", "beta"]);
    let e = &v[0];
    assert_eq!(e["key_encoding"], "utf8");
    assert_eq!(e["value"], "one");
    assert_eq!(e["kind"], "str");
    assert_eq!(e["expires_ms"], Value::Null);
    let hashed = &v[1];
    assert_eq!(hashed["key_encoding"], "hash");
    assert_eq!(hashed["value"], "000102");
    assert_eq!(hashed["value_encoding"], "hex");
    assert_eq!(hashed["kind"], "bytes");

    assert_eq!(
        keys(&json_of(&["dump", &id, "--json", "--lru-first"])),
        ["beta", "7", "alpha"]
    );
    assert_eq!(
        keys(&json_of(&["dump", &id, "--json", "--limit", "1"])),
        ["alpha"]
    );

    succeeds(&["dump", &id]).stdout(
        predicate::str::contains("\"alpha\"")
            .and(predicate::str::contains("\"one\""))
            .and(predicate::str::contains("0x000102"))
            .and(predicate::str::contains(
                "3 entries (most recently used first), 3 of 64 slots",
            )),
    );
    // Reading does not disturb the order.
    assert_eq!(keys(&json_of(&["dump", &id, "--json"])), ["alpha", "7", "beta"]);
}

#[test]
fn stats_count_what_every_process_did() {
    let h = Holder::start(Kind::SysV);
    let id = h.id().to_string();
    let v = json_of(&["stats", &id, "--json"]);
    assert_eq!(v["segment"], id.as_str());
    assert_eq!(v["entries"], 3);
    assert_eq!(v["capacity"], 64);
    assert_eq!(v["hits"], 1);
    assert_eq!(v["misses"], 1);
    assert_eq!(v["inserts"], 3);
    assert_eq!(v["hit_rate"], 0.5);
    assert_eq!(v["evict_on_full"], true);

    succeeds(&["stats", &id]).stdout(
        predicate::str::contains("hit rate     50.0%")
            .and(predicate::str::contains("entries      3 (4.7% full)"))
            .and(predicate::str::contains("64 records of 64 bytes in 1 shard(s)")),
    );
}

#[test]
fn stats_prints_openmetrics_for_prometheus() {
    let h = Holder::start(Kind::Posix);
    let id = h.id().to_string();
    let text = stdout_of(&["stats", &id, "--format", "prometheus"]);
    let label = format!("{{cache=\"{id}\"}}");
    for sample in [
        format!("shm_lru_hits_total{label} 1"),
        format!("shm_lru_misses_total{label} 1"),
        format!("shm_lru_inserts_total{label} 3"),
        format!("shm_lru_evictions_total{label} 0"),
        format!("shm_lru_recoveries_total{label} 0"),
        format!("shm_lru_entries{label} 3"),
        format!("shm_lru_capacity{label} 64"),
    ] {
        assert!(
            text.lines().any(|l| l == sample),
            "{sample} missing from:\n{text}"
        );
    }
    assert!(text.contains("# TYPE shm_lru_hits counter\n"), "{text}");
    assert!(text.contains("# TYPE shm_lru_entries gauge\n"), "{text}");
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    // Every line is a comment or a sample `name{labels} value`.
    for line in text.lines() {
        let sample = line
            .split_once("} ")
            .is_some_and(|(_, v)| v.parse::<u64>().is_ok());
        assert!(line.starts_with("# ") || sample, "{line}");
    }
    exits_with(&["stats", &id, "--format", "prometheus", "--watch", "1"], 2)
        .stderr(predicate::str::contains("prints once"));
    exits_with(&["stats", &id, "--format", "text", "--json"], 2);
    assert_eq!(json_of(&["stats", &id, "--format", "json"])["entries"], 3);
}

#[test]
fn stats_watch_prints_one_line_per_interval() {
    let h = Holder::start(Kind::Posix);
    let id = h.id().to_string();
    let text = stdout_of(&["stats", &id, "--watch", "0.05", "--count", "3"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("HIT-RATE") && lines[0].contains("EVICTIONS"),
        "{text}"
    );
    assert!(lines[1].contains("4.7%"), "{text}");

    let text = stdout_of(&["stats", &id, "--watch", "0.05", "--count", "2", "--json"]);
    let rows: Vec<Value> = text.lines().map(|l| json(l.as_bytes())).collect();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["entries"], 3);
        assert_eq!(r["hits"], 0);
        assert_eq!(r["hit_rate"], Value::Null);
        assert!(r["interval_ms"].as_u64().unwrap() >= 40);
    }
}

#[test]
fn stats_count_needs_watch() {
    exits_with(&["stats", "/whatever", "--count", "2"], 2)
        .stderr(predicate::str::contains("--count needs --watch"));
    exits_with(&["stats", "/whatever", "--watch", "0"], 2).stderr(predicate::str::contains("--watch"));
}

fn rm_waits_for_the_holder(kind: Kind) {
    let h = Holder::start(kind);
    let id = h.id().clone();
    let name = id.to_string();
    let _l = attach_lock();
    exits_with(&["rm", &name], 2).stderr(predicate::str::contains(format!(
        "segment {name} has 1 attached process"
    )));
    assert!(exists(&id));
    succeeds(&["rm", "--force", &name]).stdout(predicate::str::contains(format!("removed segment {name}")));
    assert!(!exists(&id));
    drop(h);
}

test_both_kinds! {
    rm_waits_for_the_holder:
    rm_refuses_a_sysv_cache_in_use_unless_forced,
    rm_refuses_a_posix_cache_in_use_unless_forced
}

#[test]
fn a_live_process_holding_a_lock_makes_commands_report_busy_not_hang() {
    let h = Holder::start_holding_lock(Kind::Posix);
    let id = h.id().to_string();
    let _l = attach_lock();
    let started = std::time::Instant::now();
    shm_lru()
        .args(["check", &id])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("locked for more than"));
    shm_lru()
        .args(["stats", &id])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(id.as_str()));
    let row = listed(&id).unwrap_or_else(|| panic!("{id} not listed"));
    assert_eq!(row["status"], "busy");
    // Reads take no lock: they answer at once while a writer holds it.
    shm_lru()
        .args(["get", &id, "alpha"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .success()
        .stdout(predicate::str::contains("one"));
    // Three commands, each giving up after its two-second wait.
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    drop(h);
}

#[test]
fn dump_of_a_large_cache_walks_it_in_batches() {
    let n = 70_000u64;
    let (_cache, g) = filled_cache(Kind::Posix, n, 4, n);
    let id = g.0.to_string();
    let rows = json_of(&["dump", "--json", &id]);
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(rows.len(), n as usize);
    let slots: std::collections::BTreeSet<u64> = rows.iter().map(|r| r["slot"].as_u64().unwrap()).collect();
    assert_eq!(slots.len(), n as usize, "every entry once");
    let text = stdout_of(&["dump", &id]);
    assert!(
        text.contains(&format!("{n} entries (shard after shard")),
        "{}",
        &text[text.len() - 200..]
    );
    // A limit small enough for one sorted snapshot keeps the exact order.
    let few = json_of(&["dump", "--json", "--limit", "3", &id]);
    assert_eq!(few.as_array().unwrap().len(), 3);
}

//! Caches with a byte budget: `ls`, `stats`, `dump` and `check` show the budget and the bytes
//! used, free and live (a cache of fixed records shows what it always did), and `bench` makes a
//! budget cache with `--max-bytes` and writes mixed sizes with `--sizes mixed`.

use crate::util::{
    attach_lock, create_budget_cache, create_cache, create_with, exists, exits_with, json_of, listed,
    stdout_of, succeeds, Kind,
};
use predicates::prelude::*;
use shm_lru::{Cache, CacheOptions, SegmentId, SetOptions};

const MIB: u64 = 1 << 20;

/// A budget cache of 4 MiB holding values of 10 B to 200 KiB.
fn budget_cache() -> (Cache, crate::util::Guard) {
    let (c, g) = create_budget_cache(Kind::Posix, 4 * MIB, 256 * 1024);
    for (i, n) in [10usize, 1000, 5000, 60_000, 200_000].into_iter().enumerate() {
        c.set(format!("k{i}").as_bytes(), &vec![b'v'; n], &SetOptions::default())
            .unwrap();
    }
    (c, g)
}

#[test]
fn ls_shows_the_budget_and_the_bytes_used() {
    let (c, g) = budget_cache();
    let id = g.0.to_string();
    let st = c.stats().unwrap();
    let _l = attach_lock();
    let row = listed(&id).unwrap_or_else(|| panic!("{id} not listed"));
    assert_eq!(row["record_size"], 0);
    assert_eq!(row["max_bytes"], 4 * MIB);
    assert_eq!(row["max_value_size"], 256 * 1024);
    assert_eq!(row["entries"], 5);
    assert_eq!(row["bytes_live"], st.bytes_live);
    assert_eq!(row["bytes_used"], st.bytes_used);
    assert_eq!(row["bytes_free"], st.bytes_free);
    assert!(st.bytes_live > 266_000, "{st:?}");

    let text = stdout_of(&["ls"]);
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("RECORD") && header.contains("BUDGET") && header.contains("USED"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .expect("listed");
    assert!(line.contains("4.0 MiB"), "{line}");
    assert!(line.contains(&shm_lru_size(st.bytes_used)), "{line}");
}

#[test]
fn ls_json_of_a_fixed_cache_says_it_has_no_budget() {
    // (The table's columns are tested in ls.rs: which caches `ls` finds is the machine's.)
    let (_c, g) = create_cache(Kind::Posix, 8, 1);
    let id = g.0.to_string();
    let _l = attach_lock();
    let row = listed(&id).unwrap_or_else(|| panic!("{id} not listed"));
    assert_eq!(row["max_bytes"], 0);
    assert_eq!(row["record_size"], 64);
    assert_eq!(row["max_value_size"], 64);
}

/// A size as the command shows it.
fn shm_lru_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = "KiB";
    for next in ["MiB", "GiB", "TiB"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    format!("{v:.1} {unit}")
}

#[test]
fn stats_shows_the_budget_and_bytes_in_every_format() {
    let (c, g) = budget_cache();
    let id = g.0.to_string();
    let st = c.stats().unwrap();
    let v = json_of(&["stats", &id, "--json"]);
    assert_eq!(v["max_bytes"], 4 * MIB);
    assert_eq!(v["max_value_size"], 256 * 1024);
    assert_eq!(v["record_size"], 0);
    assert_eq!(v["entries"], 5);
    assert_eq!(v["bytes_live"], st.bytes_live);
    assert_eq!(v["bytes_used"], st.bytes_used);
    assert_eq!(v["bytes_free"], st.bytes_free);

    succeeds(&["stats", &id]).stdout(
        predicate::str::contains("values up to 256.0 KiB, within a budget of 4.0 MiB").and(
            predicate::str::contains(format!(
                "bytes        {} used ({} live), {} free",
                shm_lru_size(st.bytes_used),
                shm_lru_size(st.bytes_live),
                shm_lru_size(st.bytes_free)
            )),
        ),
    );

    let text = stdout_of(&["stats", &id, "--format", "prometheus"]);
    let label = format!("{{cache=\"{id}\"}}");
    for sample in [
        format!("shm_lru_max_bytes{label} {}", 4 * MIB),
        format!("shm_lru_bytes_live{label} {}", st.bytes_live),
        format!("shm_lru_bytes_used{label} {}", st.bytes_used),
        format!("shm_lru_bytes_free{label} {}", st.bytes_free),
    ] {
        assert!(
            text.lines().any(|l| l == sample),
            "{sample} missing from:\n{text}"
        );
    }

    let watch = stdout_of(&["stats", &id, "--watch", "0.05", "--count", "1"]);
    let lines: Vec<&str> = watch.lines().collect();
    assert!(lines[0].ends_with("BYTES"), "{watch}");
    let used = format!(
        "{:.1}%",
        st.bytes_used as f64 * 100.0 / (st.bytes_used + st.bytes_free) as f64
    );
    assert!(lines[1].ends_with(&used), "{used} in {watch}");
}

#[test]
fn stats_says_when_the_index_not_the_budget_limits_a_cache() {
    // A 4 MiB budget given a capacity of 1,365 entries: values of 100 bytes fill its index with
    // most of the budget unused.
    let opts = CacheOptions {
        max_value_size: 256 * 1024,
        shards: Some(1),
        capacity: 1_365,
        ..CacheOptions::budget(4 * MIB)
    };
    let (c, g) = create_with(Kind::Posix, &opts);
    let id = g.0.to_string();
    for i in 0..5_000u32 {
        c.set(format!("k{i}").as_bytes(), &[b'v'; 100], &SetOptions::default())
            .unwrap();
    }
    let st = c.stats().unwrap();
    assert_eq!(st.len, st.capacity);
    let text = stdout_of(&["stats", &id]);
    let note = text
        .lines()
        .find(|l| l.starts_with("note"))
        .unwrap_or_else(|| panic!("no note in:\n{text}"));
    assert!(
        note.contains("the index is full while its entries take"),
        "{note}"
    );
    // What it proposes: no capacity, or one near the budget over a record's bytes (32 + key +
    // value, rounded to 8) plus an index entry's (about 70), so 4 MiB / ~205.
    assert!(note.contains("without a capacity"), "{note}");
    let want: u64 = note
        .rsplit("one near ")
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!((19_000..23_000).contains(&want), "{note}");
    // A cache its budget limits says nothing of the kind.
    let (_c2, g2) = budget_cache();
    let text = stdout_of(&["stats", &g2.0.to_string()]);
    assert!(!text.lines().any(|l| l.starts_with("note")), "{text}");
    // Nor one made without a capacity, whose index grew to hold every one of those entries.
    let (c3, g3) = create_budget_cache(Kind::Posix, 4 * MIB, 256 * 1024);
    for i in 0..5_000u32 {
        c3.set(format!("k{i}").as_bytes(), &[b'v'; 100], &SetOptions::default())
            .unwrap();
    }
    let st = c3.stats().unwrap();
    assert_eq!((st.len, st.evictions), (5_000, 0));
    let text = stdout_of(&["stats", &g3.0.to_string()]);
    assert!(!text.lines().any(|l| l.starts_with("note")), "{text}");
}

#[test]
fn stats_of_a_fixed_cache_shows_no_budget() {
    let (_c, g) = create_cache(Kind::Posix, 64, 1);
    let id = g.0.to_string();
    let v = json_of(&["stats", &id, "--json"]);
    assert_eq!(v["max_bytes"], 0);
    assert_eq!(v["max_value_size"], 64);
    succeeds(&["stats", &id]).stdout(
        predicate::str::contains("64 records of 64 bytes in 1 shard(s)")
            .and(predicate::str::contains("budget").not())
            .and(predicate::str::contains("bytes  ").not()),
    );
    let text = stdout_of(&["stats", &id, "--format", "prometheus"]);
    assert!(!text.contains("bytes"), "{text}");
    let watch = stdout_of(&["stats", &id, "--watch", "0.05", "--count", "1"]);
    assert!(watch.lines().next().unwrap().ends_with("EVICTIONS"), "{watch}");
}

#[test]
fn dump_and_check_show_the_bytes_of_a_budget() {
    let (c, g) = budget_cache();
    let id = g.0.to_string();
    let st = c.stats().unwrap();
    let within = format!(
        "{} of the value store used ({} live), {} free, within a budget of 4.0 MiB",
        shm_lru_size(st.bytes_used),
        shm_lru_size(st.bytes_live),
        shm_lru_size(st.bytes_free)
    );
    succeeds(&["dump", &id]).stdout(predicate::str::contains(format!(
        "5 entries (most recently used first), 5 of {} slots in use; {within}",
        c.capacity()
    )));
    let rows = json_of(&["dump", &id, "--json"]);
    let sizes: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [200_000, 60_000, 5000, 1000, 10]);

    succeeds(&["check", &id]).stdout(predicate::str::contains(format!(
        "value store: {} used ({} live), {} free, within a budget of 4.0 MiB",
        shm_lru_size(st.bytes_used),
        shm_lru_size(st.bytes_live),
        shm_lru_size(st.bytes_free)
    )));
    let v = json_of(&["check", &id, "--json"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["max_bytes"], 4 * MIB);
    assert_eq!(v["bytes_live"], st.bytes_live);
    assert_eq!(v["bytes_used"], st.bytes_used);
    assert_eq!(v["bytes_free"], st.bytes_free);

    // A cache of fixed records: the same lines as before, and JSON with no budget.
    let (_f, fg) = create_cache(Kind::Posix, 8, 1);
    let fid = fg.0.to_string();
    succeeds(&["dump", &fid]).stdout(predicate::str::ends_with("0 of 8 slots in use\n"));
    succeeds(&["check", &fid]).stdout(predicate::str::contains("budget").not());
    assert_eq!(json_of(&["check", &fid, "--json"])["max_bytes"], 0);
}

#[test]
fn bench_mixed_sizes_on_a_byte_budget() {
    let v = json_of(&[
        "bench",
        "--sizes",
        "mixed",
        "--max-bytes",
        &(8 * MIB).to_string(),
        "--ops",
        "20000",
        "--json",
    ]);
    assert_eq!(v["sizes"], "mixed");
    assert_eq!(v["max_bytes"], 8 * MIB);
    assert_eq!(v["max_value_size"], MIB);
    assert_eq!(v["record_size"], 0);
    // No capacity given: the index may grow to an entry per 70 bytes or so of the budget.
    let cap = v["capacity"].as_u64().unwrap();
    assert!(cap > 8 * MIB / 128 && cap < 8 * MIB / 64, "{cap}");
    assert_eq!(v["set"]["ops"], 20000);
    assert_eq!(v["get"]["ops"], 20000);
    let (min, median, max, mean) = (
        v["value_size_min"].as_u64().unwrap(),
        v["value_size_median"].as_u64().unwrap(),
        v["value_size_max"].as_u64().unwrap(),
        v["value_size"].as_u64().unwrap(),
    );
    assert!((200..260).contains(&min), "min {min}");
    assert!((1900..2200).contains(&median), "median {median}");
    assert!((40_000..=65_536).contains(&max), "max {max}");
    // A log-normal of sigma 1 has a mean of e^0.5 times its median.
    assert!((3000..3800).contains(&mean), "mean {mean}");
    // 8 MiB holds some 2,300 values of that mean, of a fifth more keys: some gets miss.
    let hits = v["get"]["hit_rate"].as_f64().unwrap();
    assert!(hits > 0.05 && hits < 0.97, "hit rate {hits}");
    let seg: SegmentId = v["segment"].as_str().unwrap().parse().unwrap();
    assert!(!exists(&seg), "bench left {seg} behind");

    succeeds(&["bench", "--sizes", "mixed", "--ops", "2000"]).stdout(
        predicate::str::contains("within a budget of 64.0 MiB (entries up to 1.0 MiB)")
            .and(predicate::str::contains(
                "mixed values (log-normal, median 2 KiB, 2",
            ))
            .and(predicate::str::contains("(removed)")),
    );
    // Fixed sizes on a budget.
    let f = json_of(&[
        "bench",
        "--max-bytes",
        &MIB.to_string(),
        "--value-size",
        "500",
        "--ops",
        "5000",
        "--json",
    ]);
    assert_eq!(
        (f["sizes"].as_str(), f["value_size"].as_u64()),
        (Some("fixed"), Some(500))
    );
    assert_eq!(f["max_bytes"], MIB);
    assert_eq!(f["value_size_min"], 500);
    assert_eq!(f["value_size_max"], 500);
}

#[test]
fn bench_refuses_options_that_do_not_go_together() {
    exits_with(&["bench", "--max-bytes", "1048576", "--record-size", "64"], 2)
        .stderr(predicate::str::contains("--record-size").and(predicate::str::contains("--max-bytes")));
    exits_with(&["bench", "--sizes", "mixed", "--record-size", "64"], 2).stderr(predicate::str::contains(
        "--sizes mixed needs a cache with a byte budget",
    ));
    exits_with(&["bench", "--max-value-size", "4096"], 2).stderr(predicate::str::contains("--max-bytes"));
    exits_with(
        &[
            "bench",
            "--sizes",
            "mixed",
            "--max-bytes",
            "8388608",
            "--max-value-size",
            "4096",
        ],
        2,
    )
    .stderr(predicate::str::contains(
        "do not fit in entries of at most 4096 bytes",
    ));
    exits_with(&["bench", "--sizes", "mixed", "--value-size", "100"], 2)
        .stderr(predicate::str::contains("not with --sizes mixed"));
    exits_with(&["bench", "--max-bytes", "0"], 2)
        .stderr(predicate::str::contains("--max-bytes must be at least 1"));
}

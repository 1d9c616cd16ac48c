//! `get`, `set`, `del` and `dump` filters, run as separate processes against caches made here.

use crate::util::{
    attach_lock, create_cache, exists, exits_with, json_of, json_of_exit, keys, succeeds, test_both_kinds,
    Kind,
};
use predicates::prelude::*;
use shm_lru::SetOptions;

#[test]
fn set_get_del_round_trip() {
    let (cache, g) = create_cache(Kind::Posix, 32, 1);
    let id = g.0.to_string();
    succeeds(&["set", &id, "user:1", "ada"])
        .stdout(predicate::str::starts_with("inserted \"user:1\" in slot 1"));
    // Written by another process, seen here.
    assert_eq!(cache.get("user:1").unwrap().as_deref(), Some(&b"ada"[..]));
    succeeds(&["set", &id, "user:1", "grace"]).stdout(predicate::str::starts_with("updated"));
    succeeds(&["get", &id, "user:1"]).stdout("grace\n");
    let v = json_of(&["get", &id, "user:1", "--json"]);
    assert_eq!(v["found"], true);
    assert_eq!(v["value"], "grace");
    assert_eq!(v["kind"], "str");
    assert_eq!(v["key"], "user:1");

    // get does not count or mark: only the engine's own get above counted a hit.
    assert_eq!(cache.stats().unwrap().hits, 1);

    exits_with(&["get", &id, "nobody"], 1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "key \"nobody\" not found in segment {id}"
        )));
    assert_eq!(json_of_exit(&["get", &id, "nobody", "--json"], 1)["found"], false);

    succeeds(&["del", &id, "user:1"]).stdout("removed \"user:1\"\n");
    exits_with(&["del", &id, "user:1"], 1);
    assert!(cache.get("user:1").unwrap().is_none());
}

#[test]
fn hash_keys_are_u64s() {
    let (cache, g) = create_cache(Kind::SysV, 32, 1);
    let id = g.0.to_string();
    succeeds(&["set", &id, "--hash", "0x10", "sixteen"]);
    assert_eq!(cache.get(16u64).unwrap().as_deref(), Some(&b"sixteen"[..]));
    assert!(cache.get("0x10").unwrap().is_none());
    succeeds(&["get", &id, "--hash", "16"]).stdout("sixteen\n");
    exits_with(&["get", &id, "16"], 1);
    exits_with(&["get", &id, "--hash", "sixteen"], 2).stderr(predicate::str::contains("bad --hash key"));
    succeeds(&["del", &id, "--hash", "16"]);
    assert!(cache.is_empty().unwrap());
}

#[test]
fn ttl_expires_entries() {
    let (_cache, g) = create_cache(Kind::Posix, 32, 1);
    let id = g.0.to_string();
    succeeds(&["set", &id, "short", "x", "--ttl", "1"]);
    succeeds(&["set", &id, "long", "y", "--ttl", "600000"]);
    std::thread::sleep(std::time::Duration::from_millis(30));
    exits_with(&["get", &id, "short"], 1);
    let v = json_of(&["dump", &id, "--json"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["key"], "long");
    let expires = v[0]["expires_ms"].as_u64().unwrap();
    assert!(expires > v[0]["used_ms"].as_u64().unwrap() + 590_000);
    succeeds(&["dump", &id]).stdout(predicate::str::contains("in 9m"));
}

#[test]
fn binary_values_show_as_hex() {
    let (cache, g) = create_cache(Kind::SysV, 32, 1);
    let id = g.0.to_string();
    cache.put("bin", &[0xde, 0xad, 0x00, 0x0a]).unwrap();
    cache.put(&[0xffu8, 0xfe][..], b"binary key").unwrap();
    succeeds(&["get", &id, "bin"]).stdout("0xdead000a\n");
    succeeds(&["get", &id, "bin", "--raw"]).stdout(predicate::eq(&[0xde, 0xad, 0x00, 0x0a][..]));
    let v = json_of(&["dump", &id, "--json"]);
    assert_eq!(v[0]["key"], "fffe");
    assert_eq!(v[0]["key_encoding"], "hex");
    assert_eq!(v[1]["value"], "dead000a");
    assert_eq!(v[1]["value_encoding"], "hex");
    succeeds(&["dump", &id])
        .stdout(predicate::str::contains("0xfffe").and(predicate::str::contains("0xdead000a")));
}

#[test]
fn dump_filters_by_share_key_and_shortens_long_values() {
    let (cache, g) = create_cache(Kind::Posix, 64, 1);
    let id = g.0.to_string();
    for i in 0..5u64 {
        let slot = cache.put(i, format!("value {i}").as_bytes()).unwrap();
        if i % 2 == 0 {
            cache.set_share_key(slot as u64, 42).unwrap();
        }
    }
    let long = "x".repeat(60);
    cache
        .set("long", long.as_bytes(), &SetOptions::default())
        .unwrap();
    let v = json_of(&["dump", &id, "--json", "--share-key", "42"]);
    assert_eq!(keys(&v), ["4", "2", "0"]);
    assert!(v.as_array().unwrap().iter().all(|e| e["share_key"] == 42));
    succeeds(&["dump", &id, "--limit", "1"])
        .stdout(predicate::str::contains("… (60 bytes)").and(predicate::str::contains("1 entry")));
    succeeds(&["dump", &id, "--limit", "1", "--full"])
        .stdout(predicate::str::contains(format!("\"{long}\"")));
    exits_with(&["dump", &id, "--share-key", "-1"], 2);
}

#[test]
fn set_names_the_segment_when_the_value_does_not_fit() {
    let (_cache, g) = create_cache(Kind::Posix, 8, 1);
    let id = g.0.to_string();
    exits_with(&["set", &id, "k", &"v".repeat(100)], 2)
        .stderr(predicate::str::contains(format!("segment {id}: value too large")));
}

fn rm_removes_an_idle_cache(kind: Kind) {
    let (cache, g) = create_cache(kind, 8, 1);
    let id = g.0.clone();
    // Our own mapping would count as an attachment.
    drop(cache);
    let _l = attach_lock();
    succeeds(&["rm", &id.to_string()]).stdout(format!("removed segment {id}\n"));
    assert!(!exists(&id));
    exits_with(&["rm", &id.to_string()], 2)
        .stderr(predicate::str::contains(format!("segment {id} does not exist")));
}

test_both_kinds! {
    rm_removes_an_idle_cache: rm_removes_an_idle_sysv_cache, rm_removes_an_idle_posix_cache
}

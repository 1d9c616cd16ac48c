//! `get`, `set`, `del` and `dump` filters, run as separate processes against caches made here.

use crate::util::{attach_lock, create_cache, exists, json_of, json_of_exit, keys, shm_lru, Kind};
use predicates::prelude::*;
use shm_lru::SetOptions;

#[test]
fn set_get_del_round_trip() {
    let (cache, g) = create_cache(Kind::Posix, 32, 1);
    let id = g.0.to_string();
    shm_lru()
        .args(["set", &id, "user:1", "ada"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("inserted \"user:1\" in slot 1"));
    // Written by another process, seen here.
    assert_eq!(cache.get("user:1").unwrap().as_deref(), Some(&b"ada"[..]));
    shm_lru()
        .args(["set", &id, "user:1", "grace"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("updated"));
    shm_lru()
        .args(["get", &id, "user:1"])
        .assert()
        .success()
        .stdout("grace\n");
    let v = json_of(&["get", &id, "user:1", "--json"]);
    assert_eq!(v["found"], true);
    assert_eq!(v["value"], "grace");
    assert_eq!(v["kind"], "str");
    assert_eq!(v["key"], "user:1");

    // get does not count or mark: only the engine's own get above counted a hit.
    assert_eq!(cache.stats().unwrap().hits, 1);

    shm_lru()
        .args(["get", &id, "nobody"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "key \"nobody\" not found in segment {id}"
        )));
    assert_eq!(json_of_exit(&["get", &id, "nobody", "--json"], 1)["found"], false);

    shm_lru()
        .args(["del", &id, "user:1"])
        .assert()
        .success()
        .stdout("removed \"user:1\"\n");
    shm_lru().args(["del", &id, "user:1"]).assert().code(1);
    assert!(cache.get("user:1").unwrap().is_none());
}

#[test]
fn hash_keys_are_u64s() {
    let (cache, g) = create_cache(Kind::SysV, 32, 1);
    let id = g.0.to_string();
    shm_lru()
        .args(["set", &id, "--hash", "0x10", "sixteen"])
        .assert()
        .success();
    assert_eq!(cache.get(16u64).unwrap().as_deref(), Some(&b"sixteen"[..]));
    assert!(cache.get("0x10").unwrap().is_none());
    shm_lru()
        .args(["get", &id, "--hash", "16"])
        .assert()
        .success()
        .stdout("sixteen\n");
    shm_lru().args(["get", &id, "16"]).assert().code(1);
    shm_lru()
        .args(["get", &id, "--hash", "sixteen"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad --hash key"));
    shm_lru().args(["del", &id, "--hash", "16"]).assert().success();
    assert!(cache.is_empty().unwrap());
}

#[test]
fn ttl_expires_entries() {
    let (_cache, g) = create_cache(Kind::Posix, 32, 1);
    let id = g.0.to_string();
    shm_lru()
        .args(["set", &id, "short", "x", "--ttl", "1"])
        .assert()
        .success();
    shm_lru()
        .args(["set", &id, "long", "y", "--ttl", "600000"])
        .assert()
        .success();
    std::thread::sleep(std::time::Duration::from_millis(30));
    shm_lru().args(["get", &id, "short"]).assert().code(1);
    let v = json_of(&["dump", &id, "--json"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["key"], "long");
    let expires = v[0]["expires_ms"].as_u64().unwrap();
    assert!(expires > v[0]["used_ms"].as_u64().unwrap() + 590_000);
    shm_lru()
        .args(["dump", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("in 9m"));
}

#[test]
fn binary_values_show_as_hex() {
    let (cache, g) = create_cache(Kind::SysV, 32, 1);
    let id = g.0.to_string();
    cache.put("bin", &[0xde, 0xad, 0x00, 0x0a]).unwrap();
    cache.put(&[0xffu8, 0xfe][..], b"binary key").unwrap();
    shm_lru()
        .args(["get", &id, "bin"])
        .assert()
        .success()
        .stdout("0xdead000a\n");
    shm_lru()
        .args(["get", &id, "bin", "--raw"])
        .assert()
        .success()
        .stdout(predicate::eq(&[0xde, 0xad, 0x00, 0x0a][..]));
    let v = json_of(&["dump", &id, "--json"]);
    assert_eq!(v[0]["key"], "fffe");
    assert_eq!(v[0]["key_encoding"], "hex");
    assert_eq!(v[1]["value"], "dead000a");
    assert_eq!(v[1]["value_encoding"], "hex");
    shm_lru()
        .args(["dump", &id])
        .assert()
        .success()
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
    shm_lru()
        .args(["dump", &id, "--limit", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("… (60 bytes)").and(predicate::str::contains("1 entry")));
    shm_lru()
        .args(["dump", &id, "--limit", "1", "--full"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("\"{long}\"")));
    shm_lru()
        .args(["dump", &id, "--share-key", "-1"])
        .assert()
        .code(2);
}

#[test]
fn set_names_the_segment_when_the_value_does_not_fit() {
    let (_cache, g) = create_cache(Kind::Posix, 8, 1);
    let id = g.0.to_string();
    shm_lru()
        .args(["set", &id, "k", &"v".repeat(100)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("segment {id}: value too large")));
}

fn rm_removes_an_idle_cache(kind: Kind) {
    let (cache, g) = create_cache(kind, 8, 1);
    let id = g.0.clone();
    // Our own mapping would count as an attachment.
    drop(cache);
    let _l = attach_lock();
    shm_lru()
        .args(["rm", &id.to_string()])
        .assert()
        .success()
        .stdout(format!("removed segment {id}\n"));
    assert!(!exists(&id));
    shm_lru()
        .args(["rm", &id.to_string()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("segment {id} does not exist")));
}

#[test]
fn rm_removes_an_idle_sysv_cache() {
    rm_removes_an_idle_cache(Kind::SysV);
}

#[test]
fn rm_removes_an_idle_posix_cache() {
    rm_removes_an_idle_cache(Kind::Posix);
}

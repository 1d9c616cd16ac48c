//! `check` on sound caches, and on caches whose links were deliberately broken through the
//! segment's bytes, using the engine's published layout.

use crate::util::{create_cache, exits_with, filled_cache, json_of, json_of_exit, succeeds, Guard, Kind};
use predicates::prelude::*;
use shm_lru::layout::{shard_header, slot, SHARD_SIZE};
use shm_lru::Cache;

/// The 4-byte word at byte `off` of the cache's region, which must be 4-aligned and inside the
/// cache's layout.
fn word(cache: &Cache, off: u64) -> *mut u32 {
    let geo = cache.geometry();
    assert!(off + 4 <= geo.total && off % 4 == 0);
    cache.segment().as_ptr().wrapping_add(off as usize).cast::<u32>()
}

/// Writes `v` at byte `off` of the cache's region.
fn poke_u32(cache: &Cache, off: u64, v: u32) {
    // SAFETY: `word` checked that the offset is 4-aligned and inside the cache's layout, which
    // lies inside the mapping `cache` keeps alive; no other process knows this test's segment,
    // and the engine reads these fields only through raw pointers under the shard lock, which
    // nobody holds.
    unsafe { word(cache, off).write_volatile(v) }
}

fn peek_u32(cache: &Cache, off: u64) -> u32 {
    // SAFETY: as in `poke_u32`.
    unsafe { word(cache, off).read_volatile() }
}

fn shard_field(cache: &Cache, shard: u32, field: usize) -> u64 {
    cache.geometry().shards_off + shard as u64 * SHARD_SIZE + field as u64
}

/// Offset of field `field` of local slot `id` (1-based) of shard `shard`.
fn slot_field(cache: &Cache, shard: u32, id: u32, field: usize) -> u64 {
    let g = cache.geometry();
    g.slot_offset(shard, id) + field as u64
}

/// A one-shard cache holding "a", "b" and "c", and the slot of its most recent entry.
fn cache_of_three() -> (Cache, Guard, u32) {
    let (cache, g) = create_cache(Kind::Posix, 16, 1);
    for k in ["a", "b", "c"] {
        cache.put(k, b"v").unwrap();
    }
    let head = peek_u32(&cache, shard_field(&cache, 0, shard_header::HEAD));
    (cache, g, head)
}

#[test]
fn sound_cache_checks_ok() {
    let (cache, g) = filled_cache(Kind::Posix, 64, 2, 20);
    let id = g.0.to_string();
    let free = cache.slots() - 20;
    succeeds(&["check", &id]).stdout(format!(
        "segment {id}: 2 shard(s), 20 entries, {free} free slots: ok\n"
    ));
    let v = json_of(&["check", &id, "--json"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 20);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

#[test]
fn check_finds_a_cycle_in_the_recency_list() {
    let (cache, g, head) = cache_of_three();
    assert_ne!(head, 0);
    // The most recent entry now claims to be followed by itself.
    poke_u32(&cache, slot_field(&cache, 0, head, slot::NEXT), head);
    let id = g.0.to_string();
    exits_with(&["check", &id], 1).stdout(
        predicate::str::contains(format!("shard 0: recency list has a cycle at slot {head}"))
            .and(predicate::str::contains("PROBLEMS"))
            .and(predicate::str::contains("problem(s) found")),
    );
    let v = json_of_exit(&["check", &id, "--json"], 1);
    assert_eq!(v["ok"], false);
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().contains("cycle")));
    // check only reads: the damage is still there.
    exits_with(&["check", &id], 1);
}

#[test]
fn check_finds_a_bad_count_in_a_shard_header() {
    let (cache, g) = filled_cache(Kind::SysV, 64, 2, 10);
    let off = shard_field(&cache, 1, shard_header::LEN);
    let len = peek_u32(&cache, off);
    poke_u32(&cache, off, len + 5);
    let id = g.0.to_string();
    exits_with(&["check", &id], 1).stdout(predicate::str::contains(format!(
        "shard 1: count is {} but the recency list has {len}",
        len + 5
    )));
}

#[test]
fn check_finds_a_tail_that_is_not_the_end() {
    let (cache, g, head) = cache_of_three();
    poke_u32(&cache, shard_field(&cache, 0, shard_header::TAIL), head);
    exits_with(&["check", &g.0.to_string()], 1).stdout(predicate::str::contains(format!(
        "shard 0: tail is {head} but the list ends at"
    )));
}

#[test]
fn check_repair_rebuilds_a_damaged_shard_and_keeps_its_entries() {
    let (cache, g) = filled_cache(Kind::Posix, 64, 2, 10);
    let off = shard_field(&cache, 1, shard_header::LEN);
    poke_u32(&cache, off, peek_u32(&cache, off) + 5);
    let id = g.0.to_string();
    succeeds(&["check", "--repair", &id])
        .stdout(predicate::str::contains("repaired: rebuilt 1 shard(s), kept"))
        .stdout(predicate::str::contains("after: 2 shard(s), 10 entries"));
    // Sound again, every entry still there; a second repair has nothing to do.
    succeeds(&["check", &id]);
    assert!((0..10u64).all(|k| cache.contains(k).unwrap()));
    let v = json_of(&["check", "--repair", "--json", &id]);
    assert_eq!(v["repaired"]["rebuilt_shards"], 0);
    assert_eq!(v["repaired"]["ok_after"], true);
}

'use strict';
// The shared state of a machine's tier, in a small shared-memory cache of its own (`<name>.tier`,
// never evicting) that every process opening the tier maps:
//
// - one invalidation counter per Redis hash slot (16,384: lib/tiered/slots.js), keys 's0' ...;
// - the machine feed's lease, heartbeat and status (lib/tiered/feed.js).
//
// A counter's parity says whether invalidations for its slot are reaching the machine: even,
// they are (the feed's connection to the node owning the slot has been up since the last
// change); odd, they may not be. An invalidation adds 2 (parity kept); only the feed's holder
// adds 1, when its feed for the slot goes down or comes up again. A fill stamps its L1 copy
// with the counter as read before its Redis GET, only if that was even; a hit is trusted only
// while the counter still equals the stamp. Counters only grow, and the segment never evicts,
// so a stamp cannot match by accident (see `bumpAll` for the one exception the engine allows).

const SharedLRU = require('../shared-lru');
const { SLOTS } = require('./slots');

const SLOT_KEYS = Array.from({ length: SLOTS }, (_, i) => `s${i}`);
// A counter lost to a crash mid-write is made again this far above every counter left.
const RECREATE_GAP = 2 ** 32;

class Stamps {
  #lru;

  constructor(lru) {
    this.#lru = lru;
  }

  /** Opens (or creates) the shared state of the tier whose L1 is `name`. */
  static open(name, mode) {
    const lru = SharedLRU.openOrCreate(Stamps.segmentName(name), {
      // Twice the counters over 4 shards: each shard holds its ~4,100 keys with room to spare,
      // so a non-evicting cache never refuses one. Records hold the lease's owner string too.
      capacity: SLOTS * 2,
      recordSize: 96,
      evictOnFull: false,
      shards: 4,
      mode,
    });
    const s = new Stamps(lru);
    if (lru.peek('ready') === undefined) {
      // New: every slot starts odd (no feed yet). Several openers may do this at once; `add`
      // keeps whichever came first.
      for (let i = 0; i < SLOTS; i++) lru.add(SLOT_KEYS[i], '1');
      lru.set('ready', '1');
    }
    return s;
  }

  static segmentName(name) {
    return `${name}.tier`;
  }

  /** The counter of a slot; -1 (odd: not trusted) if it is missing. */
  read(slot) {
    const v = this.#lru.peek(SLOT_KEYS[slot]);
    return v === undefined ? -1 : Number(v);
  }

  /** An invalidation of a key of `slot`: its copies stamped before are not trusted. */
  bump(slot) {
    this.#lru.incr(SLOT_KEYS[slot], 2);
  }

  /** Makes the counters of `slots` odd (down) or even (up): returns how many changed. */
  transition(slots, up) {
    let n = 0;
    for (const slot of slots) {
      const v = this.read(slot);
      if (v < 0) continue; // missing: repaired by recreate()
      if ((v % 2 === 0) !== up) {
        this.#lru.incr(SLOT_KEYS[slot], 1);
        n++;
      }
    }
    return n;
  }

  /**
   * After a crash inside a write to this segment (its `recoveries` count moved): a counter may
   * have been set back by one bump, or lost. Every counter gains 2, so no copy stamped before
   * is trusted; a lost one is made again far above every other, with the parity `up(slot)`.
   */
  bumpAll(up) {
    let max = 0;
    const missing = [];
    for (let i = 0; i < SLOTS; i++) {
      const v = this.read(i);
      if (v < 0) missing.push(i);
      else {
        max = Math.max(max, v);
        this.#lru.incr(SLOT_KEYS[i], 2);
      }
    }
    for (const i of missing) {
      let v = max + RECREATE_GAP;
      if ((v % 2 === 0) !== up(i)) v++;
      this.#lru.set(SLOT_KEYS[i], String(v));
    }
  }

  /** How many times the engine rebuilt a shard of this segment after a crash. */
  recoveries() {
    return this.#lru.stats().recoveries;
  }

  // ---- the feed's records ----

  get(field) {
    return this.#lru.peek(field);
  }

  set(field, value, ttl) {
    this.#lru.set(field, String(value), ttl === undefined ? undefined : { ttl });
  }

  /** Stores `value` only if `field` is absent (atomic across processes). */
  add(field, value, ttl) {
    return this.#lru.add(field, String(value), ttl === undefined ? undefined : { ttl });
  }

  incr(field, delta) {
    return this.#lru.incr(field, delta);
  }

  delete(field) {
    return this.#lru.delete(field);
  }

  close() {
    this.#lru.close();
  }
}

module.exports = { Stamps, SLOTS };

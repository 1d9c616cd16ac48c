'use strict';
// The invalidation counters of a machine's tier: 4,096 striped counters in a small shared-memory
// cache of their own (`<name>.tier`, never evicting), shared by every process that opens the
// tier. Each key maps to one stripe. An invalidation bumps the key's stripe before it deletes
// the L1 copy; a fill stamps the L1 copy with the stripe's value read before its Redis GET; a
// hit is trusted only while the stamp still equals the stripe. So a fill that read the old value
// can never be served after the invalidation for that key was handled, whenever the fill lands.
// Counters only grow, and the segment never evicts, so a stamp cannot match by accident.

const SharedLRU = require('../shared-lru');

const STRIPES = 4096;

// Stripe keys, made once: 's0' ... 's4095'.
const STRIPE_KEYS = Array.from({ length: STRIPES }, (_, i) => `s${i}`);

/** The stripe of `key`: FNV-1a over its UTF-16 code units, folded to 12 bits. */
function stripeOf(key) {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return ((h >>> 16) ^ h) & (STRIPES - 1);
}

class Stamps {
  #lru;

  constructor(lru) {
    this.#lru = lru;
  }

  /** Opens (or creates) the counters of the tier whose L1 is `name`. */
  static open(name, mode) {
    return new Stamps(
      SharedLRU.openOrCreate(Stamps.segmentName(name), {
        // Twice the stripes, over 4 shards: each shard holds its ~1,024 counters with room to
        // spare, so a non-evicting cache never refuses one.
        capacity: STRIPES * 2,
        recordSize: 24,
        evictOnFull: false,
        shards: 4,
        mode,
      }),
    );
  }

  static segmentName(name) {
    return `${name}.tier`;
  }

  /** The current value of a stripe (0 before its first bump). */
  read(stripe) {
    const v = this.#lru.peek(STRIPE_KEYS[stripe]);
    return v === undefined ? 0 : Number(v);
  }

  /** Bumps a stripe; returns its new value. */
  bump(stripe) {
    return this.#lru.incr(STRIPE_KEYS[stripe]);
  }

  /** Bumps every stripe: no stamp taken before this call is trusted after it. */
  bumpAll() {
    for (let i = 0; i < STRIPES; i++) this.#lru.incr(STRIPE_KEYS[i]);
  }

  close() {
    this.#lru.close();
  }
}

module.exports = { Stamps, stripeOf, STRIPES };

'use strict';
// The machine's invalidation feed: one set of tracking connections (one per Redis node) for
// every process of the machine that opens the tier, held by one of them under a lease in the
// tier's shared state (lib/tiered/stamps.js). The holder applies each invalidation to the shared
// L1 once for the machine; every other process (a follower) only watches the lease.
//
// Shared records (keys of the `<name>.tier` segment):
//   L   the lease: "<pid>:<start time>:<token>" of the holder (start time from /proc, so a reused
//       pid is not mistaken for the holder)
//   H   the holder's heartbeat: ms since the epoch, written every `checkInterval`
//   D   when the holder last took a slot down (ms), for staleIfError
//   N   how many node feeds are not up (0: all invalidations reach the machine)
//   G   resyncs so far; C the L1 entries the last one cleared (for the 'up' event)
//   Q   a holder that is closing asks for a successor: its lease
//   W   how many processes have the tier open (a hint for a closing holder: a killed one stays)
//   M   the cluster's masters, left by a closing holder for its successor
//   T:<lease>  a takeover ticket: only the process that adds it may replace that lease
//   P:<lease>  a hand-over ticket: only the process that adds it prepares to succeed
//
// A follower trusts L1 copies while the holder is alive (its pid and start time match /proc)
// and its heartbeat is younger than `feedTimeout`, re-checked at most every `checkInterval`. It
// takes the lease over when the holder is gone (at once, seen through /proc) or silent for
// 3 x `feedTimeout` (hung). The holder takes every slot down first (nothing it did not hear is
// trusted), then brings each node's slots up once that node's feed is up. A holder that closes
// hands over without a gap: a successor switches its own tracking on first, then takes the lease.

const crypto = require('node:crypto');
const { EventEmitter } = require('node:events');
const { NodeFeed } = require('./node-feed');
const { feedClient } = require('./redis');
const { slotOf, SLOTS } = require('./slots');
const { startTime } = require('../owner');

const ALL_SLOTS = Array.from({ length: SLOTS }, (_, i) => i);

function parseLease(s) {
  if (typeof s !== 'string') return null;
  const [pid, start] = s.split(':');
  return { pid: Number(pid), start };
}

class Feed extends EventEmitter {
  #stamps;
  #local;
  #target;
  #prefix;
  #o;
  #me;
  #timer = null;
  #closed = false;
  // ---- this process's view ----
  #trustUntil = 0;
  #untrustedSince = Date.now();
  #connected = false;
  #seenGen = null;
  #lastCheck = 0;
  #holderStart = new Map(); // lease -> whether its process was alive at the last look
  // ---- as holder ----
  #holding = false;
  #feeds = new Map(); // node address -> NodeFeed
  #owner = null; // slot -> node address (cluster), from the last topology read
  #lastPing = 0;
  #recoveries = 0;
  #polling = false;
  #upKey = ''; // the feeds that were up at the last look for slots to bring up
  #scanAgain = false;
  // ---- as successor in a hand-over ----
  #successor = null; // { lease, feeds } while preparing

  /** This process's counters, owned by TieredCache. */
  stats;

  /**
   * @param {object} o stamps, local, target, prefix, data (the data client, for cluster
   *   topology), commandTimeout, backoffMin, backoffMax, feedTimeout, checkInterval, stats
   */
  constructor(o) {
    super();
    this.#stamps = o.stamps;
    this.#local = o.local;
    this.#target = o.target;
    this.#prefix = o.prefix;
    this.#o = o;
    this.stats = o.stats;
    const self = startTime(process.pid) || '0';
    this.#me = `${process.pid}:${self}:${crypto.randomBytes(6).toString('hex')}`;
  }

  start() {
    this.#stamps.incr('W', 1);
    this.#counted = true;
    this.#check();
    this.#timer = setInterval(() => this.#check(), this.#o.checkInterval);
    this.#timer.unref();
  }

  /** Whether this process holds the machine's feed. */
  get holding() {
    return this.#holding;
  }

  /** Whether every node's invalidations reach this machine, as this process last saw. */
  get connected() {
    return this.#connected && Date.now() <= this.#trustUntil;
  }

  /** Whether L1 copies whose counter is even may be trusted now. */
  trusted(now) {
    if (now <= this.#trustUntil) return true;
    if (now === this.#lastCheck) return false; // looked in this millisecond already
    this.#view(now);
    return now <= this.#trustUntil;
  }

  /** Since when (ms) this process has not trusted the feed (0 while it does), for staleIfError. */
  untrustedSince() {
    return this.#untrustedSince;
  }

  /** The time of the last slot-down, as the holder recorded it (0 if none). */
  slotDownSince() {
    return Number(this.#stamps.get('D') || 0);
  }

  // ---- the periodic check, every process ----

  #check() {
    if (this.#closed) return;
    const now = Date.now();
    try {
      if (this.#holding) this.#holderTick(now);
      else this.#followerTick(now);
      this.#view(now);
      this.#events();
    } catch (err) {
      // A closed segment (the tier closing) or a damaged record: the next check tries again.
      this.lastError = err;
    }
  }

  // Computes this process's trust from the shared records.
  #view(now) {
    this.#lastCheck = now;
    const lease = this.#stamps.get('L');
    const h = Number(this.#stamps.get('H') || 0);
    let alive = false;
    if (this.#holding && lease === this.#me) alive = true;
    else if (lease !== undefined) alive = this.#alive(lease);
    const until = alive ? Math.min(h + this.#o.feedTimeout, now + this.#o.checkInterval) : 0;
    if (until >= now) this.#untrustedSince = 0;
    else if (this.#untrustedSince === 0) {
      // Trusted until the last view's bound at most, or since the heartbeat went stale.
      this.#untrustedSince = Math.min(now, Math.max(this.#trustUntil, alive ? h + this.#o.feedTimeout : 0) || now);
    }
    this.#trustUntil = until;
    this.#connected = until >= now && Number(this.#stamps.get('N') || 1) === 0;
  }

  #alive(lease) {
    const l = parseLease(lease);
    if (l === null) return false;
    return startTime(l.pid) === l.start;
  }

  // 'down' and 'up' as this process sees them.
  #events() {
    const gen = this.#stamps.get('G');
    const up = this.#connected;
    if (this.#seenGen === null) {
      this.#seenGen = gen;
      this.#wasUp = up;
      return;
    }
    if (gen !== this.#seenGen) {
      this.#seenGen = gen;
      if (this.#wasUp) this.emit('down', 'the feed was interrupted');
      this.#wasUp = false;
      if (up) {
        this.#wasUp = true;
        this.emit('up', { cleared: Number(this.#stamps.get('C') || 0) });
      }
      return;
    }
    if (up !== this.#wasUp) {
      this.#wasUp = up;
      if (up) this.emit('up', { cleared: 0 });
      else this.emit('down', this.#trustUntil < Date.now() ? 'the feed holder is silent or gone' : 'a node feed is down');
    }
  }

  #wasUp = false;
  #counted = false;
  #closing = false;

  #followerTick(now) {
    const lease = this.#stamps.get('L');
    if (lease === undefined) {
      // Free (its last holder closed, having taken every slot down, or there was none).
      if (this.#stamps.add('L', this.#me)) {
        this.#takeDown();
        this.#become();
      }
      return;
    }
    const alive = this.#alive(lease);
    const h = Number(this.#stamps.get('H') || 0);
    if (!alive || now - h > 3 * this.#o.feedTimeout) {
      // Gone or hung: one process wins the ticket and replaces the lease (if it is unchanged).
      if (this.#stamps.add(`T:${lease}`, this.#me, 10_000) && this.#stamps.get('L') === lease) {
        // Every slot goes down before the lease changes hands: until then readers see the
        // old lease, whose holder is gone, and trust nothing.
        this.#takeDown();
        this.#stamps.set('H', Date.now());
        this.#stamps.set('L', this.#me);
        this.#abandonSuccession();
        this.#become();
      }
      return;
    }
    // A closing holder asks for a successor.
    const q = this.#stamps.get('Q');
    if (q === lease && this.#successor === null && this.#stamps.add(`P:${lease}`, this.#me, 5_000)) this.#prepare(lease);
  }

  // ---- holding ----

  // Every slot down: the previous holder's feed may have had a gap. They come up as each
  // node's feed does.
  #takeDown() {
    if (this.#stamps.transition(ALL_SLOTS, false) > 0) this.#stamps.set('D', Date.now());
    this.#stamps.set('N', 1);
  }

  // Becomes the holder (the lease is this process's now). `feeds`: a successor's feeds, up.
  #become(feeds) {
    this.#holding = true;
    this.#recoveries = this.#stamps.recoveries();
    this.#stamps.set('H', Date.now());
    this.#stamps.delete('Q');
    if (feeds !== undefined) {
      for (const [addr, f] of feeds) this.#adopt(addr, f);
      // Slots left down by the previous holder come up now that these feeds are up.
      if (!this.#target.cluster) this.#nodeUp('');
    }
    if (this.#target.cluster) this.#poll();
    else if (!this.#feeds.has('')) this.#addFeed('');
    this.#publishDown();
  }

  #mine() {
    return this.#holding && this.#stamps.get('L') === this.#me;
  }

  #holderTick(now) {
    if (!this.#mine()) {
      // Another process took the lease (this one was silent too long): step down, touching
      // nothing shared. (A closing holder that handed over closes its feeds itself.)
      if (!this.#closing) this.#resign();
      return;
    }
    this.#stamps.set('H', now);
    const rec = this.#stamps.recoveries();
    if (rec !== this.#recoveries) {
      // A process died inside a write to the counters: one may have gone back.
      this.#recoveries = rec;
      this.#stamps.bumpAll((slot) => this.#slotUp(slot));
    }
    if (this.#target.cluster && this.#owner === null) this.#poll();
    if (now - this.#lastPing >= this.#o.pingInterval) {
      this.#lastPing = now;
      for (const f of this.#feeds.values()) {
        if (f.up && now - f.lastHeard > this.#o.feedTimeout) f.reset(`no answer from Redis for ${now - f.lastHeard} ms`);
        else f.ping();
      }
      if (this.#target.cluster) this.#poll();
    }
  }

  #slotUp(slot) {
    const addr = this.#target.cluster ? (this.#owner === null ? undefined : this.#owner[slot]) : '';
    const f = addr === undefined ? undefined : this.#feeds.get(addr);
    return f !== undefined && f.up;
  }

  #addFeed(addr) {
    const f = new NodeFeed(feedClient(this.#target, addr || null, this.#o), addr, this.#prefix);
    this.#adopt(addr, f);
    f.start();
    return f;
  }

  #adopt(addr, f) {
    f.removeAllListeners('up');
    f.removeAllListeners('down');
    f.removeAllListeners('invalidate');
    this.#feeds.set(addr, f);
    f.on('invalidate', (keys) => this.#apply(keys, addr));
    f.on('up', () => this.#nodeUp(addr));
    f.on('down', () => this.#nodeDown(addr));
  }

  // The slots whose invalidations come from `addr`.
  #slotsOf(addr) {
    if (!this.#target.cluster) return ALL_SLOTS;
    if (this.#owner === null) return [];
    const out = [];
    for (let i = 0; i < SLOTS; i++) if (this.#owner[i] === addr) out.push(i);
    return out;
  }

  #nodeDown(addr) {
    if (!this.#mine()) return;
    const n = this.#stamps.transition(this.#slotsOf(addr), false);
    if (n > 0) this.#stamps.set('D', Date.now());
    this.#publishDown();
  }

  async #nodeUp(addr) {
    this.#scanAgain = true;
    if (this.#target.cluster) await this.#poll();
    if (!this.#mine()) return;
    const f = this.#feeds.get(addr);
    if (f === undefined || !f.up) return;
    const slots = this.#slotsOf(addr);
    const n = this.#stamps.transition(slots, true);
    if (n > 0) this.#resynced(slots);
    this.#publishDown();
  }

  // Slots came up after a gap: their old copies are already distrusted (their counters moved);
  // drop them from L1 to free the room, and tell every process.
  #resynced(slots) {
    let cleared = 0;
    if (slots.length === SLOTS) {
      cleared = this.#local.clear();
    } else {
      const mark = new Uint8Array(SLOTS);
      for (const s of slots) mark[s] = 1;
      const prefix = this.#prefix;
      for (const key of [...this.#local.keys()]) {
        if (typeof key === 'string' && mark[slotOf(prefix + key)] === 1 && this.#local.delete(key)) cleared++;
      }
    }
    this.stats.resyncs++;
    this.#stamps.set('C', cleared);
    this.#stamps.set('G', Number(this.#stamps.get('G') || 0) + 1);
  }

  #publishDown() {
    let down = 0;
    if (!this.#target.cluster) down = this.#feeds.has('') && this.#feeds.get('').up ? 0 : 1;
    else if (this.#owner === null) down = 1;
    else {
      const masters = new Set(this.#owner.filter((a) => a !== undefined));
      if (masters.size === 0 || this.#owner.some((a) => a === undefined)) down++;
      for (const addr of masters) if (!this.#feeds.has(addr) || !this.#feeds.get(addr).up) down++;
    }
    this.#stamps.set('N', down);
  }

  // Invalidations from node `addr`, applied once for the machine: bump the slot's counter
  // first (a fill racing with this cannot be trusted afterwards), then delete the copy.
  // A successor about to take the feed applies them too (`early`): between its tracking going
  // on and its taking the lease, the holder and it both apply every invalidation (twice is
  // harmless), so none falls between them.
  #apply(keys, addr, early = false) {
    if (this.#closed || !(this.#holding || early)) return;
    if (keys === null) {
      const slots = early && this.#target.cluster ? ALL_SLOTS : this.#slotsOf(addr);
      for (const s of slots) this.#stamps.bump(s);
      this.stats.invalidations++;
      this.#resynced(slots);
      this.emit('flushed');
      return;
    }
    const prefix = this.#prefix;
    for (const redisKey of keys) {
      if (!redisKey.startsWith(prefix)) continue;
      const key = redisKey.slice(prefix.length);
      this.stats.invalidations++;
      this.#stamps.bump(slotOf(redisKey));
      this.#local.delete(key);
      this.emit('invalidated', key);
    }
  }

  // Reads the cluster's slot map and reconciles the feeds with it: a feed per master; a slot
  // whose master changed to one whose feed was not up before the change goes down.
  async #poll() {
    if (this.#polling) return;
    this.#polling = true;
    try {
      let ranges;
      try {
        ranges = await this.#o.data.cluster('SLOTS');
      } catch {
        return; // the cluster cannot be read now: the next tick tries again
      }
      if (!this.#mine()) return;
      const owner = new Array(SLOTS);
      for (const [from, to, master] of ranges) {
        const addr = `${master[0]}:${master[1]}`;
        for (let i = from; i <= to; i++) owner[i] = addr;
      }
      const old = this.#owner;
      const upBefore = new Set([...this.#feeds].filter(([, f]) => f.up).map(([a]) => a));
      this.#owner = owner;
      const moved = [];
      if (old !== null) {
        for (let i = 0; i < SLOTS; i++) {
          if (owner[i] !== old[i] && !(owner[i] !== undefined && upBefore.has(owner[i]))) moved.push(i);
        }
      }
      if (moved.length > 0) {
        if (this.#stamps.transition(moved, false) > 0) this.#stamps.set('D', Date.now());
      }
      const masters = new Set(owner.filter((a) => a !== undefined));
      for (const addr of masters) if (!this.#feeds.has(addr)) this.#addFeed(addr);
      for (const [addr, f] of this.#feeds) {
        if (!masters.has(addr)) {
          this.#feeds.delete(addr);
          f.close();
        }
      }
      // Slots now owned by a node whose feed is up, but still down, come up. (Only looked for
      // when a feed came up or a slot moved since the last look: it reads every counter.)
      const upNow = [...this.#feeds].filter(([, f]) => f.up).map(([a]) => a);
      const upKey = upNow.sort().join(',');
      if (old === null || moved.length > 0 || upKey !== this.#upKey || this.#scanAgain) {
        this.#upKey = upKey;
        this.#scanAgain = false;
        const upSlots = [];
        for (let i = 0; i < SLOTS; i++) {
          const f = owner[i] === undefined ? undefined : this.#feeds.get(owner[i]);
          if (f !== undefined && f.up && this.#stamps.read(i) % 2 !== 0) upSlots.push(i);
        }
        if (upSlots.length > 0 && this.#stamps.transition(upSlots, true) > 0) this.#resynced(upSlots);
      }
      this.#publishDown();
    } finally {
      this.#polling = false;
    }
  }

  #resign() {
    this.#holding = false;
    const feeds = [...this.#feeds.values()];
    this.#feeds.clear();
    this.#owner = null;
    for (const f of feeds) f.close();
  }

  // ---- hand-over: a successor switches its tracking on before the closing holder stops ----

  #prepare(lease) {
    const feeds = new Map();
    this.#successor = { lease, feeds };
    const addrs = this.#target.cluster ? this.#currentMasters() : [''];
    if (addrs === null) {
      this.#abandonSuccession();
      return;
    }
    for (const addr of addrs) {
      const f = new NodeFeed(feedClient(this.#target, addr || null, this.#o), addr, this.#prefix);
      feeds.set(addr, f);
      f.on('invalidate', (keys) => this.#apply(keys, addr, true));
      f.on('up', () => this.#maybeSucceed());
      f.on('down', () => this.#abandonSuccession());
      f.start();
    }
  }

  #currentMasters() {
    const raw = this.#stamps.get('M');
    return raw === undefined ? null : raw.split(',');
  }

  #maybeSucceed() {
    const s = this.#successor;
    if (s === null || this.#closed) return;
    for (const f of s.feeds.values()) if (!f.up) return;
    // Every node's tracking is on here: take the lease if it is still the closing holder's.
    if (this.#stamps.get('L') !== s.lease || this.#stamps.get('Q') !== s.lease) {
      this.#abandonSuccession();
      return;
    }
    this.#stamps.set('L', this.#me);
    this.#successor = null;
    this.#become(s.feeds);
    this.#view(Date.now());
  }

  #abandonSuccession() {
    const s = this.#successor;
    if (s === null) return;
    this.#successor = null;
    for (const f of s.feeds.values()) f.close();
  }

  /**
   * Stops. A holder first asks for a successor and waits up to `handoverTimeout` ms for one to
   * take the lease (no gap in the feed); failing that, it takes every slot down and frees the
   * lease for the next process to take (which then resyncs).
   */
  async close() {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.#abandonSuccession();
    if (this.#holding && this.#mine()) {
      if (this.#target.cluster && this.#owner !== null) {
        this.#stamps.set('M', [...new Set(this.#owner.filter((a) => a !== undefined))].join(','));
      }
      this.#stamps.set('Q', this.#me);
      const end = Date.now() + this.#o.handoverTimeout;
      // W counts the processes that have the tier open (a hint: a killed one stays counted).
      while (Date.now() < end && this.#stamps.get('L') === this.#me && Number(this.#stamps.get('W')) > 1) {
        this.#stamps.set('H', Date.now());
        await new Promise((r) => setTimeout(r, 5));
      }
      if (this.#stamps.get('L') !== this.#me) {
        // Handed over. Invalidations Redis sent this feed before the successor's tracking was
        // on may still sit in its socket: let the event loop read them before closing.
        await new Promise((r) => setTimeout(r, 2));
        await new Promise((r) => setImmediate(r));
      } else {
        if (this.#stamps.transition(ALL_SLOTS, false) > 0) this.#stamps.set('D', Date.now());
        this.#stamps.set('N', 1);
        this.#stamps.delete('Q');
        this.#stamps.delete('L');
      }
    }
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#counted) this.#stamps.incr('W', -1);
    const feeds = [...this.#feeds.values()];
    this.#feeds.clear();
    this.#holding = false;
    await Promise.all(feeds.map((f) => f.close()));
  }
}

module.exports = { Feed };

'use strict';
// shm-typed-lru/tiered: TieredCache, a machine's shared-memory cache (L1, a SharedLRU shared by
// every process on the machine) in front of a Redis or Redis Cluster (L2, shared by every
// machine), kept coherent by Redis's server-assisted client-side caching (CLIENT TRACKING with
// BCAST and PREFIX).
//
// Reads: an L1 copy is served only if its stamp still equals its key's slot counter
// (lib/tiered/stamps.js) and the machine's invalidation feed is known to be up
// (lib/tiered/feed.js); otherwise the value comes from Redis (GET and PTTL in one script) and is
// filled into L1 stamped with the counter read before the GET (if it was even: the slot's
// invalidations were reaching the machine). Writes go to Redis, then drop the machine's L1 copy
// at once (the invalidation echo that follows would drop it anyway). One process per machine
// holds the feed (one connection per Redis node); the others only watch it. See the README's
// "Several machines" for the guarantees and limits.
//
// The Redis client (ioredis) is a peer dependency, loaded only here.

const { EventEmitter } = require('node:events');
const SharedLRU = require('./shared-lru');
const { Stamps } = require('./tiered/stamps');
const { Feed } = require('./tiered/feed');
const { slotOf } = require('./tiered/slots');
const { parseTarget, dataClient } = require('./tiered/redis');
const { defineScripts, errorRecord, loaderError } = require('./tiered/lease');
const { newToken } = require('./owner');
const { codedError: codeError } = require('./errors');
const { optionMs, withDefaultBudget } = require('./args');

// GET and PTTL at once: the L1 copy must not outlive the Redis key.
const GET_WITH_PTTL = `return { redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1]) }`;

// How long a loader's error stays readable for the waiters of that attempt.
const ERROR_RECORD_MS = 10_000;
// Waiters' polling delays (ms): from the first, growing by half each time, up to the last.
const WAIT_FIRST_MS = 2;
const WAIT_MAX_MS = 100;

const CONSTRUCT = Symbol('TieredCache.connect');

function unavailable(what, cause) {
  const why = cause && cause.message ? `: ${cause.message}` : '';
  return codeError(Error, 'ERR_TIERED_UNAVAILABLE', `${what} failed: Redis is unreachable${why}`, cause);
}


function checkKey(key) {
  if (typeof key !== 'string') {
    throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', `the key must be a string, got ${key === null ? 'null' : typeof key}`);
  }
}

function checkValue(value) {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', `the value must be a string or a Buffer, got ${value === null ? 'null' : typeof value}`);
  }
}

function ttlOption(options, dflt) {
  if (options === undefined || options.ttl === undefined) return dflt;
  return optionMs(options, 'ttl', dflt, { min: 0 });
}

/**
 * A machine-wide shared-memory L1 in front of a Redis L2, coherent across machines. Make one with
 * `await TieredCache.connect(options)` in every process that uses it.
 */
class TieredCache extends EventEmitter {
  #local;
  #stamps;
  #feed;
  #redis;
  #prefix;
  #ttl;
  #buffers;
  #staleIfError;
  #leaseTtl;
  #leasePrefix;
  #timeout;
  #beforeFill;
  #closed = false;
  #fetching = new Map(); // key -> this process's fetch in progress
  #wakers = new Map(); // key -> Set of functions that end a fetch waiter's sleep
  #stats = { hits: 0, staleHits: 0, misses: 0, fills: 0, fillsSkipped: 0, invalidations: 0, resyncs: 0, loads: 0 };

  constructor(token, options) {
    super();
    if (token !== CONSTRUCT) {
      throw codeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'use await TieredCache.connect(options)');
    }
    const o = options;
    if (typeof o.name !== 'string' || !o.name.startsWith('/')) {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', `options.name must be a POSIX name such as "/pages", got ${String(o.name)}`);
    }
    this.#prefix = o.prefix === undefined ? '' : o.prefix;
    if (typeof this.#prefix !== 'string') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.prefix must be a string');
    }
    if (o.valueType !== undefined && o.valueType !== 'string' && o.valueType !== 'buffer') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_VALUE', `options.valueType must be 'string' or 'buffer', got ${String(o.valueType)}`);
    }
    this.#buffers = o.valueType === 'buffer';
    this.#ttl = optionMs(o, 'ttl', 0, { min: 0 });
    this.#staleIfError = optionMs(o, 'staleIfError', 0, { min: 0 });
    this.#leaseTtl = optionMs(o, 'leaseTtl', 10_000, { min: 10 });
    // `fetchTimeout` is the former name of `timeout`.
    this.#timeout = o.timeout !== undefined ? optionMs(o, 'timeout', 60_000, { min: 1 }) : optionMs(o, 'fetchTimeout', 60_000, { min: 1 });
    this.#leasePrefix = o.leasePrefix === undefined ? `lease:${this.#prefix}` : String(o.leasePrefix);
    this.#beforeFill = o.hooks && typeof o.hooks.beforeFill === 'function' ? o.hooks.beforeFill : null;
    const commandTimeout = optionMs(o, 'commandTimeout', 1000, { min: 1 });
    const feedTimeout = optionMs(o, 'feedTimeout', 2000, { min: 10 });
    const checkInterval = optionMs(o, 'feedCheckInterval', 50, { min: 1 });
    const handoverTimeout = optionMs(o, 'handoverTimeout', 1000, { min: 0 });
    const backoffMin = optionMs(o, 'backoffMin', 50, { min: 1 });
    const backoffMax = optionMs(o, 'backoffMax', 2000, { min: 1 });
    const target = parseTarget(o.redis);

    // A byte budget unless the options ask for records of one size (lib/args.js).
    const geometry = withDefaultBudget({
      capacity: o.capacity,
      recordSize: o.recordSize,
      maxBytes: o.maxBytes,
      maxValueSize: o.maxValueSize,
    });
    this.#local = SharedLRU.openOrCreate(o.name, {
      ...geometry,
      ttl: 0,
      evictOnFull: true,
      mode: o.mode,
      shards: o.shards,
    });
    try {
      this.#stamps = Stamps.open(o.name, o.mode);
      this.#redis = dataClient(target, { commandTimeout, backoffMin, backoffMax });
    } catch (err) {
      this.#local.close();
      if (this.#stamps) this.#stamps.close();
      throw err;
    }
    this.#redis.on('error', () => {});
    defineScripts(this.#redis);
    this.#redis.defineCommand('tieredGetWithPttl', { numberOfKeys: 1, lua: GET_WITH_PTTL });
    this.#feed = new Feed({
      stamps: this.#stamps,
      local: this.#local,
      target,
      prefix: this.#prefix,
      data: this.#redis,
      commandTimeout,
      backoffMin,
      backoffMax,
      feedTimeout,
      pingInterval: Math.max(1, Math.floor(feedTimeout / 4)),
      checkInterval,
      handoverTimeout,
      stats: this.#stats,
    });
    this.#feed.on('invalidated', (key) => this.#wake(key));
    this.#feed.on('flushed', () => {
      for (const key of [...this.#wakers.keys()]) this.#wake(key);
    });
    this.#feed.on('up', (info) => this.emit('up', info));
    this.#feed.on('down', (reason) => this.emit('down', { reason, error: this.#feed.lastError || null }));
  }

  /**
   * Opens (or creates) the machine's L1, connects to Redis and joins (or takes) the machine's
   * invalidation feed; resolves once invalidations reach the machine. Rejects with
   * ERR_TIERED_UNAVAILABLE if that does not happen within `options.connectTimeout` ms (default
   * 5000).
   */
  static async connect(options) {
    if (options === null || typeof options !== 'object') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'TieredCache.connect needs an options object');
    }
    const connectTimeout = optionMs(options, 'connectTimeout', 5000, { min: 1 });
    const t = new TieredCache(CONSTRUCT, options);
    const end = Date.now() + connectTimeout;
    t.#redis.connect().catch(() => {});
    t.#feed.start();
    while (!(t.#feed.connected && t.#redis.status === 'ready')) {
      if (Date.now() > end) {
        const cause = t.#feed.lastError || null;
        await t.close();
        throw unavailable(`connecting within ${connectTimeout} ms`, cause || undefined);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return t;
  }

  /** Removes a tier's L1 and its shared state from this machine. */
  static destroy(name) {
    const a = SharedLRU.destroy(name);
    const b = SharedLRU.destroy(Stamps.segmentName(name));
    return a || b;
  }

  /** The machine's SharedLRU underneath (its values carry the tier's stamps). */
  get local() {
    return this.#local;
  }

  /** Whether invalidations from every Redis node reach this machine (L1 copies are trusted). */
  get connected() {
    return this.#feed.connected;
  }

  /** Whether this process holds the machine's invalidation feed. */
  get feedHolder() {
    return this.#feed.holding;
  }

  /** The Redis key of `key`. */
  redisKey(key) {
    return this.#prefix + key;
  }

  /**
   * The value of `key`: from L1 when a trusted copy is there, else from Redis (then filled into
   * L1); undefined if Redis has no such key. While invalidations may not be reaching the
   * machine, an L1 copy is served for at most `staleIfError` ms after that began; past that a
   * read goes to Redis, and rejects with ERR_TIERED_UNAVAILABLE if Redis does not answer.
   */
  async get(key) {
    checkKey(key);
    this.#open();
    const slot = slotOf(this.#prefix + key);
    const copy = this.#copy(key, slot);
    if (copy !== undefined) {
      const now = Date.now();
      if (copy.current && this.#feed.trusted(now)) {
        this.#stats.hits++;
        return copy.value;
      }
      // (staleIfError 0 serves nothing stale, even in the millisecond the feed went down.)
      const since = copy.current ? this.#feed.untrustedSince() : this.#feed.slotDownSince();
      if (this.#staleIfError > 0 && now - since <= this.#staleIfError) {
        this.#stats.staleHits++;
        return copy.value;
      }
    }
    return this.#load(key, slot);
  }

  /**
   * Stores `value` under `key` in Redis (with PX when a ttl applies: `options.ttl`, else the
   * tier's `ttl`; 0 = none), then drops the machine's L1 copy. Rejects with
   * ERR_TIERED_UNAVAILABLE if Redis does not confirm the write.
   */
  async set(key, value, options) {
    checkKey(key);
    checkValue(value);
    this.#open();
    const ttl = ttlOption(options, this.#ttl);
    try {
      if (ttl > 0) await this.#redis.set(this.#prefix + key, value, 'PX', ttl);
      else await this.#redis.set(this.#prefix + key, value);
    } catch (err) {
      throw unavailable(`set(${JSON.stringify(key)}) (the write may or may not have been applied)`, err);
    } finally {
      this.#dropLocal(key);
    }
  }

  /** Deletes `key` from Redis and the machine's L1; resolves to whether Redis had it. */
  async delete(key) {
    checkKey(key);
    this.#open();
    try {
      return (await this.#redis.del(this.#prefix + key)) > 0;
    } catch (err) {
      throw unavailable(`delete(${JSON.stringify(key)}) (the delete may or may not have been applied)`, err);
    } finally {
      this.#dropLocal(key);
    }
  }

  /**
   * The value of `key`; if there is none, runs `loader(key)` once across every process of every
   * machine sharing the Redis (a Redis lease, renewed while the loader runs), stores its result
   * (with `options.ttl`) and resolves every waiting caller to it. If the loader throws, every
   * caller waiting on that attempt rejects (others' with ERR_TIERED_LOADER_FAILED) and nothing
   * is stored. A loader resolving to undefined stores nothing. If the lease holder dies, a
   * waiter takes over when its lease expires (`leaseTtl`). A caller waits at most
   * `options.timeout` ms (default: the tier's `timeout`) for another process's loader, then
   * rejects with ERR_FETCH_TIMEOUT.
   */
  fetch(key, loader, options) {
    checkKey(key);
    if (typeof loader !== 'function') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'the loader must be a function');
    }
    this.#open();
    const running = this.#fetching.get(key);
    if (running !== undefined) return running;
    const timeout = options === undefined || options.timeout === undefined ? this.#timeout : optionMs(options, 'timeout', this.#timeout, { min: 1 });
    const p = this.#fetch(key, loader, ttlOption(options, this.#ttl), timeout).finally(() => {
      this.#fetching.delete(key);
    });
    this.#fetching.set(key, p);
    return p;
  }

  /**
   * This process's counters: hits, staleHits, misses, fills, fillsSkipped, loads; and, while it
   * holds the machine's feed, invalidations and resyncs applied for the machine.
   */
  stats() {
    return { ...this.#stats, connected: this.#feed.connected, feedHolder: this.#feed.holding };
  }

  /**
   * Closes this process's connections and L1 handle; the L1 and Redis keep their data. If this
   * process holds the machine's feed, another process of the machine takes it over first (for
   * up to `handoverTimeout` ms), so that the feed has no gap and L1 stays warm.
   */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const set of this.#wakers.values()) for (const wake of set) wake();
    await this.#feed.close();
    const r = this.#redis;
    if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
    else r.disconnect();
    this.#local.close();
    this.#stamps.close();
  }

  get [Symbol.toStringTag]() {
    return 'TieredCache';
  }

  // ---- internals ----

  #open() {
    if (this.#closed) throw codeError(Error, 'ERR_TIERED_CLOSED', 'this TieredCache is closed');
  }

  // The L1 copy of `key`: { value, current } where current says its stamp equals the slot's
  // counter; undefined if there is none, or if it is older than the slot's last going down.
  #copy(key, slot) {
    const raw = this.#local.get(key);
    if (raw === undefined) return undefined;
    let stamp;
    let value;
    if (typeof raw === 'string') {
      const at = raw.indexOf(':');
      stamp = Number(raw.slice(0, at));
      value = raw.slice(at + 1);
    } else {
      stamp = raw.readDoubleLE(0);
      value = raw.subarray(8);
    }
    const counter = this.#stamps.read(slot);
    if (stamp === counter) return { value, current: true };
    // Trusted when its slot went down, and nothing invalidated since: staleIfError may serve it.
    if (counter === stamp + 1) return { value, current: false };
    return undefined;
  }

  async #load(key, slot) {
    this.#stats.misses++;
    const stamp = this.#stamps.read(slot);
    // Only a counter read while the slot's invalidations reached the machine makes a stamp.
    const fillable = stamp >= 0 && stamp % 2 === 0 && this.#feed.trusted(Date.now());
    let reply;
    try {
      reply = this.#buffers
        ? await this.#redis.tieredGetWithPttlBuffer(this.#prefix + key)
        : await this.#redis.tieredGetWithPttl(this.#prefix + key);
    } catch (err) {
      throw unavailable(`get(${JSON.stringify(key)})`, err);
    }
    const value = reply[0];
    if (value === null || value === undefined) return undefined;
    const pttl = Number(reply[1]);
    if (this.#beforeFill !== null) await this.#beforeFill(key);
    // Fill only if no invalidation for this slot came since the stamp was read, and the feed
    // is still trusted. (Readers check the stamp anyway; this saves a useless write.)
    if (!fillable || this.#closed || pttl === -2 || this.#stamps.read(slot) !== stamp || !this.#feed.trusted(Date.now())) {
      this.#stats.fillsSkipped++;
      return value;
    }
    let ttl = this.#ttl;
    if (pttl > 0 && (ttl === 0 || pttl < ttl)) ttl = pttl;
    try {
      this.#local.set(key, this.#encode(stamp, value), { ttl });
      this.#stats.fills++;
    } catch (err) {
      // A value too large for the L1 (its records, or its maxValueSize) is served from Redis only.
      if (err.code !== 'ERR_SHM_VALUE_TOO_LARGE') throw err;
      this.#stats.fillsSkipped++;
    }
    return value;
  }

  #encode(stamp, value) {
    if (typeof value === 'string') return `${stamp}:${value}`;
    const out = Buffer.allocUnsafe(8 + value.length);
    out.writeDoubleLE(stamp, 0);
    out.set(value, 8);
    return out;
  }

  // Distrusts this machine's L1 copy of `key` (bump its slot's counter first, so a fill racing
  // with this cannot be served afterwards), then deletes it.
  #dropLocal(key) {
    if (this.#closed) return;
    this.#stamps.bump(slotOf(this.#prefix + key));
    this.#local.delete(key);
  }

  #wake(key) {
    const set = this.#wakers.get(key);
    if (set === undefined) return;
    for (const wake of set) wake();
  }

  // Sleeps up to `ms`, or until `key` is invalidated (its slot's counter moves) or the tier
  // closes.
  #nap(key, ms) {
    return new Promise((resolve) => {
      let set = this.#wakers.get(key);
      if (set === undefined) {
        set = new Set();
        this.#wakers.set(key, set);
      }
      const slot = slotOf(this.#prefix + key);
      const counter = this.#stamps.read(slot);
      const done = () => {
        clearTimeout(timer);
        clearInterval(watch);
        set.delete(done);
        if (set.size === 0 && this.#wakers.get(key) === set) this.#wakers.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      // The feed's holder may be another process: watch the counter.
      const watch = setInterval(() => {
        if (this.#closed || this.#stamps.read(slot) !== counter) done();
      }, 5);
      set.add(done);
    });
  }

  async #fetch(key, loader, ttl, timeout) {
    const deadline = Date.now() + timeout;
    const leaseKey = this.#leasePrefix + key;
    const redis = this.#redis;
    for (;;) {
      const found = await this.get(key);
      if (found !== undefined) return found;
      const token = newToken();
      let owner;
      try {
        const got = await redis.set(leaseKey, token, 'PX', this.#leaseTtl, 'NX');
        owner = got === 'OK' ? token : await redis.get(leaseKey);
      } catch (err) {
        throw unavailable(`fetch(${JSON.stringify(key)})`, err);
      }
      if (owner === token) return this.#runLoader(key, loader, ttl, leaseKey, token);
      if (owner === null) continue; // released in between: look again
      // Someone else loads it: wait for its value, its error, or its lease to go.
      let delay = WAIT_FIRST_MS;
      for (;;) {
        if (this.#closed) throw codeError(Error, 'ERR_TIERED_CLOSED', 'this TieredCache is closed');
        if (Date.now() > deadline) {
          throw codeError(Error, 'ERR_FETCH_TIMEOUT', `fetch(${JSON.stringify(key)}) waited ${timeout} ms for another process's loader`);
        }
        await this.#nap(key, delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 1.5, WAIT_MAX_MS);
        const v = await this.get(key);
        if (v !== undefined) return v;
        let now;
        let failure;
        try {
          // Two commands, not a pipeline: on a cluster the two keys may live on two nodes.
          [now, failure] = await Promise.all([redis.get(leaseKey), redis.get(`${leaseKey}:err:${owner}`)]);
        } catch (err) {
          throw unavailable(`fetch(${JSON.stringify(key)})`, err);
        }
        if (failure !== null && failure !== undefined) throw loaderError(failure, key);
        if (now !== owner) break; // the owner finished, died or lost its lease
      }
    }
  }

  async #runLoader(key, loader, ttl, leaseKey, token) {
    const redis = this.#redis;
    const release = () => redis.tieredLeaseRelease(leaseKey, token).catch(() => {});
    // It may have been stored between our look and our lease.
    const already = await this.get(key).catch(async (err) => {
      await release();
      throw err;
    });
    if (already !== undefined) {
      await release();
      return already;
    }
    const renew = setInterval(() => {
      redis.tieredLeaseRenew(leaseKey, token, this.#leaseTtl).catch(() => {});
    }, Math.max(5, Math.floor(this.#leaseTtl / 3)));
    renew.unref();
    let value;
    try {
      this.#stats.loads++;
      value = await loader(key);
    } catch (err) {
      clearInterval(renew);
      await redis
        .set(`${leaseKey}:err:${token}`, errorRecord(err), 'PX', ERROR_RECORD_MS)
        .catch(() => {});
      await release();
      throw err;
    }
    clearInterval(renew);
    try {
      if (value !== undefined) await this.set(key, value, { ttl });
    } finally {
      await release();
    }
    return value;
  }
}

module.exports = { TieredCache };

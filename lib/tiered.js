'use strict';
// shm-typed-lru/tiered: TieredCache, a machine's shared-memory cache (L1, a SharedLRU shared by
// every process on the machine) in front of a Redis (L2, shared by every machine), kept coherent
// by Redis's server-assisted client-side caching (CLIENT TRACKING with BCAST and PREFIX).
//
// Reads: an L1 copy is served only if its stamp still equals its key's invalidation stripe
// (lib/tiered/stamps.js) and this process's invalidation feed is up (lib/tiered/tracking.js);
// otherwise the value comes from Redis (GET and PTTL in one script) and is filled into L1
// stamped with the stripe read before the GET. Writes go to Redis, then drop the machine's L1
// copy at once (the invalidation echo that follows would drop it anyway). Each process keeps its
// own feed: see the README's "Several machines" for why, and for the guarantees and limits.
//
// The Redis client (ioredis) is a peer dependency, loaded only here.

const { EventEmitter } = require('node:events');
const SharedLRU = require('./shared-lru');
const { Stamps, stripeOf } = require('./tiered/stamps');
const { Tracking } = require('./tiered/tracking');
const { defineScripts, newToken, errorRecord, loaderError } = require('./tiered/lease');

// GET and PTTL at once: the L1 copy must not outlive the Redis key.
const GET_WITH_PTTL = `return { redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1]) }`;

// How long a loader's error stays readable for the waiters of that attempt.
const ERROR_RECORD_MS = 10_000;
// Waiters' polling delays (ms): from the first, growing by half each time, up to the last.
const WAIT_FIRST_MS = 2;
const WAIT_MAX_MS = 100;

const CONSTRUCT = Symbol('TieredCache.connect');

function codeError(Ctor, code, message, cause) {
  const e = new Ctor(message, cause === undefined ? undefined : { cause });
  e.code = code;
  return e;
}

function unavailable(what, cause) {
  const why = cause && cause.message ? `: ${cause.message}` : '';
  return codeError(Error, 'ERR_TIERED_UNAVAILABLE', `${what} failed: Redis is unreachable${why}`, cause);
}

function int(opts, field, min, dflt) {
  const v = opts[field];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw codeError(RangeError, 'ERR_OUT_OF_RANGE', `options.${field} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
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
  return int(options, 'ttl', 0, dflt);
}

/**
 * A machine-wide shared-memory L1 in front of a Redis L2, coherent across machines. Make one with
 * `await TieredCache.connect(options)` in every process that uses it.
 */
class TieredCache extends EventEmitter {
  #local;
  #stamps;
  #tracking;
  #redis;
  #prefix;
  #ttl;
  #buffers;
  #staleIfError;
  #leaseTtl;
  #leasePrefix;
  #fetchTimeout;
  #beforeFill;
  #downSince = 0;
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
    this.#ttl = int(o, 'ttl', 0, 0);
    this.#staleIfError = int(o, 'staleIfError', 0, 0);
    this.#leaseTtl = int(o, 'leaseTtl', 10, 10_000);
    this.#fetchTimeout = int(o, 'fetchTimeout', 1, 60_000);
    this.#leasePrefix = o.leasePrefix === undefined ? `lease:${this.#prefix}` : String(o.leasePrefix);
    this.#beforeFill = o.hooks && typeof o.hooks.beforeFill === 'function' ? o.hooks.beforeFill : null;
    const commandTimeout = int(o, 'commandTimeout', 1, 1000);

    this.#local = SharedLRU.openOrCreate(o.name, {
      capacity: o.capacity,
      recordSize: o.recordSize,
      ttl: 0,
      evictOnFull: true,
      mode: o.mode,
      shards: o.shards,
    });
    try {
      this.#stamps = Stamps.open(o.name, o.mode);
      this.#tracking = new Tracking(o.redis === undefined ? 'redis://127.0.0.1:6379' : o.redis, {
        prefix: this.#prefix,
        commandTimeout,
        backoffMin: int(o, 'backoffMin', 1, 50),
        backoffMax: int(o, 'backoffMax', 1, 2000),
        connectionName: `shm-tiered:${process.pid}`,
      });
    } catch (err) {
      this.#local.close();
      if (this.#stamps) this.#stamps.close();
      throw err;
    }
    this.#redis = this.#tracking.data;
    defineScripts(this.#redis);
    this.#redis.defineCommand('tieredGetWithPttl', { numberOfKeys: 1, lua: GET_WITH_PTTL });

    this.#tracking.on('invalidate', (keys) => this.#invalidate(keys));
    this.#tracking.on('up', () => this.#resync());
    this.#tracking.on('down', (reason) => {
      this.#downSince = Date.now();
      this.emit('down', { reason, error: this.#tracking.lastError });
    });
  }

  /**
   * Opens (or creates) the machine's L1 and connects to Redis; resolves once invalidations
   * reach this process. Rejects with ERR_TIERED_UNAVAILABLE if Redis cannot be reached within
   * `options.connectTimeout` ms (default 5000).
   */
  static async connect(options) {
    if (options === null || typeof options !== 'object') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'TieredCache.connect needs an options object');
    }
    const connectTimeout = int(options, 'connectTimeout', 1, 5000);
    const t = new TieredCache(CONSTRUCT, options);
    const ready = new Promise((resolve) => t.#tracking.once('up', resolve));
    t.#tracking.start();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, connectTimeout, 'timeout');
    });
    const r = await Promise.race([ready, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      const cause = t.#tracking.lastError;
      await t.close();
      throw unavailable(`connecting within ${connectTimeout} ms`, cause || undefined);
    }
    return t;
  }

  /** Removes a tier's L1 and its invalidation counters from this machine. */
  static destroy(name) {
    const a = SharedLRU.destroy(name);
    const b = SharedLRU.destroy(Stamps.segmentName(name));
    return a || b;
  }

  /** The machine's SharedLRU underneath (its values carry the tier's stamps). */
  get local() {
    return this.#local;
  }

  /** Whether this process's invalidation feed is up (L1 copies are trusted). */
  get connected() {
    return this.#tracking.up;
  }

  /** The Redis key of `key`. */
  redisKey(key) {
    return this.#prefix + key;
  }

  /**
   * The value of `key`: from L1 when a trusted copy is there, else from Redis (then filled into
   * L1); undefined if Redis has no such key. While invalidations are not reaching this process,
   * an L1 copy is served for at most `staleIfError` ms after the feed went down; past that a
   * read goes to Redis, and rejects with ERR_TIERED_UNAVAILABLE if Redis does not answer.
   */
  async get(key) {
    checkKey(key);
    this.#open();
    const stripe = stripeOf(key);
    const copy = this.#copy(key, stripe);
    if (copy !== undefined) {
      if (this.#tracking.up) {
        this.#stats.hits++;
        return copy;
      }
      if (Date.now() - this.#downSince <= this.#staleIfError) {
        this.#stats.staleHits++;
        return copy;
      }
    }
    return this.#load(key, stripe, copy);
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
   * machine sharing the Redis (a Redis lease), stores its result (with `options.ttl`) and
   * resolves every waiting caller to it. If the loader throws, every caller waiting on that
   * attempt rejects (others' with ERR_TIERED_LOADER_FAILED) and nothing is stored. A loader
   * resolving to undefined stores nothing. If the lease holder dies, a waiter takes over when
   * its lease expires (`leaseTtl`).
   */
  fetch(key, loader, options) {
    checkKey(key);
    if (typeof loader !== 'function') {
      throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'the loader must be a function');
    }
    this.#open();
    const running = this.#fetching.get(key);
    if (running !== undefined) return running;
    const p = this.#fetch(key, loader, ttlOption(options, this.#ttl)).finally(() => {
      this.#fetching.delete(key);
    });
    this.#fetching.set(key, p);
    return p;
  }

  /** This process's counters: hits, staleHits, misses, fills, fillsSkipped, invalidations, resyncs, loads. */
  stats() {
    return { ...this.#stats, connected: this.#tracking.up };
  }

  /** Closes this process's connections and L1 handle; the L1 and Redis keep their data. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const set of this.#wakers.values()) for (const wake of set) wake();
    await this.#tracking.close();
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

  // The L1 copy of `key` if its stamp is still current, else undefined.
  #copy(key, stripe) {
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
    return stamp === this.#stamps.read(stripe) ? value : undefined;
  }

  async #load(key, stripe, copy) {
    this.#stats.misses++;
    const feedUp = this.#tracking.up;
    const generation = this.#tracking.generation;
    const stamp = this.#stamps.read(stripe);
    let reply;
    try {
      reply = this.#buffers
        ? await this.#redis.tieredGetWithPttlBuffer(this.#prefix + key)
        : await this.#redis.tieredGetWithPttl(this.#prefix + key);
    } catch (err) {
      if (copy !== undefined && Date.now() - this.#downSince <= this.#staleIfError) {
        this.#stats.staleHits++;
        return copy;
      }
      throw unavailable(`get(${JSON.stringify(key)})`, err);
    }
    const value = reply[0];
    if (value === null || value === undefined) return undefined;
    const pttl = Number(reply[1]);
    if (this.#beforeFill !== null) await this.#beforeFill(key);
    // Fill only if invalidations reached this process all along, and none for this stripe came
    // since the stamp was read. (Readers check the stamp anyway; this saves a useless write.)
    if (!feedUp || !this.#tracking.up || generation !== this.#tracking.generation || this.#closed || pttl === -2) {
      this.#stats.fillsSkipped++;
      return value;
    }
    if (this.#stamps.read(stripe) !== stamp) {
      this.#stats.fillsSkipped++;
      return value;
    }
    let ttl = this.#ttl;
    if (pttl > 0 && (ttl === 0 || pttl < ttl)) ttl = pttl;
    try {
      this.#local.set(key, this.#encode(stamp, value), { ttl });
      this.#stats.fills++;
    } catch (err) {
      // A value too large for the L1's records is served from Redis only.
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

  // Distrusts this machine's L1 copy of `key` (bump its stripe first, so a fill racing with
  // this cannot be served afterwards), then deletes it.
  #dropLocal(key) {
    if (this.#closed) return;
    this.#stamps.bump(stripeOf(key));
    this.#local.delete(key);
  }

  #invalidate(keys) {
    if (this.#closed) return;
    if (keys === null) {
      this.#stats.invalidations++;
      this.#stamps.bumpAll();
      this.#local.clear();
      for (const key of [...this.#wakers.keys()]) this.#wake(key);
      return;
    }
    const prefix = this.#prefix;
    for (const redisKey of keys) {
      if (!redisKey.startsWith(prefix)) continue;
      const key = redisKey.slice(prefix.length);
      this.#stats.invalidations++;
      this.#dropLocal(key);
      this.#wake(key);
    }
  }

  // Invalidations may have been lost: no L1 copy stamped before now is trusted again.
  #resync() {
    if (this.#closed) return;
    this.#stamps.bumpAll();
    const cleared = this.#local.clear();
    this.#stats.resyncs++;
    this.emit('up', { cleared });
  }

  #wake(key) {
    const set = this.#wakers.get(key);
    if (set === undefined) return;
    for (const wake of set) wake();
  }

  // Sleeps up to `ms`, or until `key` is invalidated or the tier closes.
  #nap(key, ms) {
    return new Promise((resolve) => {
      let set = this.#wakers.get(key);
      if (set === undefined) {
        set = new Set();
        this.#wakers.set(key, set);
      }
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#wakers.get(key) === set) this.#wakers.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  async #fetch(key, loader, ttl) {
    const deadline = Date.now() + this.#fetchTimeout;
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
          throw codeError(Error, 'ERR_TIERED_FETCH_TIMEOUT', `fetch(${JSON.stringify(key)}) waited ${this.#fetchTimeout} ms for another process's loader`);
        }
        await this.#nap(key, delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 1.5, WAIT_MAX_MS);
        const v = await this.get(key);
        if (v !== undefined) return v;
        let now;
        let failure;
        try {
          [[, now], [, failure]] = await redis.pipeline().get(leaseKey).get(`${leaseKey}:err:${owner}`).exec();
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

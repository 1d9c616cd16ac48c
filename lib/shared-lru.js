'use strict';
// The class API: a shared-memory LRU cache in the vocabulary of the `lru-cache` package. Every
// method is one call into the addon, which reads the options objects (of create, openOrCreate and
// the per-call `{ ttl }`) itself, applies the engine's defaults and checks every argument; this
// file picks the call, keeps the handle and the geometry read at open, and holds no cache state.

const native = require('./native');
const { codedError, argType, argValue } = require('./errors');
const { fetchSlow, Room } = require('./fetch');
const { registerMetrics } = require('./metrics');

const {
  cacheCreate,
  cacheOpen,
  cacheOpenOrCreate,
  cacheDestroyName,
  cacheClose,
  cacheGet,
  cacheGetMany,
  cacheGetJoined,
  cachePeek,
  cacheSet,
  cacheHas,
  cacheGetInto,
  cacheDelete,
  cacheDeletePrefix,
  cacheIncr,
  cacheClear,
  cacheLen,
  cacheInfo,
  cacheEntries,
  cacheEvictOlderThan,
  cacheStats,
  cacheCheck,
  cacheRepair,
  cacheScan,
  cacheTouch,
  cacheExpiry,
  cachePop,
  cacheDump,
  cachePurgeExpired,
} = native;

const DECODE = Symbol('decode');
const ENCODE = Symbol('encode');

// Modes of cacheSet.
const UPSERT = 0;
const ADD = 1;
const REPLACE = 2;

/**
 * A least-recently-used cache in shared memory, of records of one size (`recordSize`) or of
 * values of any size within a byte budget (`maxBytes`). Every process (and worker thread) that
 * opens the same name sees the same entries at once.
 *
 * Keys are strings or Buffers/Uint8Arrays, compared byte for byte (a string is its UTF-8 bytes,
 * so `'a'` and `Buffer.from('a')` are the same key). Iteration gives a key back as a string
 * when its bytes are valid UTF-8, else as a Buffer. Values are strings or Buffers and come
 * back as the type they were stored as. Key bytes plus value bytes must fit in `recordSize`,
 * or with a byte budget in `maxValueSize`.
 */
class SharedLRU {
  #handle;
  #info;
  #access;

  constructor(handle, access) {
    // Geometry never changes after creation: read it once. Anything but a handle from the
    // static methods (an lru-cache habit such as `new SharedLRU({ max: 10 })`) is refused.
    let info;
    try {
      info = handle !== null && typeof handle === 'object' ? cacheInfo(handle) : undefined;
    } catch (e) {
      if (e.code !== 'ERR_INVALID_ARG_TYPE') throw e;
    }
    if (info === undefined) {
      throw codedError(
        TypeError,
        'ERR_ILLEGAL_CONSTRUCTOR',
        'a SharedLRU is not made with `new`: use SharedLRU.create(name, options) to make a cache, ' +
          'SharedLRU.open(name) to open one, or SharedLRU.openOrCreate(name, options) for either ' +
          '(options: { capacity, recordSize, ... } for records of one size, or { maxBytes, ... } for a ' +
          'byte budget; capacity is what lru-cache calls max)',
      );
    }
    this.#handle = handle;
    this.#info = info;
    this.#access = access === undefined ? NO_ACCESS : access;
  }

  /** Creates a new cache; fails with code ERR_SHM_EXISTS if `name` exists. */
  static create(name, options) {
    const settings = handleSettings(options);
    return withSettings(cacheCreate(name, options), settings, options);
  }

  /**
   * Opens an existing cache; fails with code ERR_SHM_NOT_FOUND if there is none, and with
   * ERR_SHM_PERMISSION if its owner is not this process's user, root or `options.trustOwner`
   * (a uid), or if it lets more users write than `options.mode` would. `options.lockTimeout`
   * (ms) makes calls throw ERR_SHM_LOCK_TIMEOUT instead of waiting longer for a lock. `options`
   * may also carry this handle's own settings (serializer, oversize, updateAgeOnGet).
   */
  static open(name, options) {
    const settings = handleSettings(options);
    return withSettings(cacheOpen(name, options), settings, options);
  }

  /**
   * Opens the cache if it exists, else creates it with `options`. An existing cache whose
   * capacity, recordSize, evictOnFull, ttl or (when given) shards differ from `options` (with a
   * byte budget: maxBytes, and capacity and maxValueSize when given) is refused with
   * ERR_SHM_MISMATCH naming each, unless `options.reuse` is 'any'. Takes
   * `trustOwner` and `lockTimeout` as open does; `mode` is also the most an existing segment
   * may let others write.
   */
  static openOrCreate(name, options) {
    const settings = handleSettings(options);
    return withSettings(cacheOpenOrCreate(name, options), settings, options);
  }

  /**
   * Removes the named cache from the system, with the room its fetches keep their leases in.
   * Processes that have it open keep using their mapping until they close it. Returns whether
   * it existed.
   */
  static destroy(name) {
    const existed = cacheDestroyName(name);
    Room.destroy(name);
    return existed;
  }

  /**
   * Registers the counters of `caches` (a SharedLRU or an array of them) as prom-client
   * metrics: pass the prom-client module (`require('prom-client')`) as `client`. Counters
   * `shm_lru_{hits,misses,inserts,updates,removes,evictions,expirations,recoveries}_total` and
   * gauges `shm_lru_entries` and `shm_lru_capacity` (with a byte budget, `shm_lru_max_bytes` and
   * `shm_lru_bytes_{live,used,free}` too), labelled `cache`, read at each scrape.
   * `options.registry` (default: prom-client's global one), `options.prefix` (default
   * `shm_lru_`). The counters are every process's: register them in one process. Returns
   * `{ unregister() }`.
   */
  static registerMetrics(client, caches, options) {
    return registerMetrics(client, caches, options);
  }

  /**
   * The value of `key`, or undefined; marks the entry most recently used. With
   * `{ updateAgeOnGet: true }` a hit also restarts the entry's time to live (`options.ttl`,
   * else the cache's default), lru-cache's sliding expiry.
   */
  get(key, options) {
    if (options !== undefined) return this.#getWith(key, options);
    return cacheGet(this.#handle, key);
  }

  /**
   * The value of each key of `keys` (an array), undefined for those absent, in one call into
   * the addon; each present entry is marked used, and each key counts a hit or a miss.
   */
  getMany(keys) {
    if (!Array.isArray(keys)) return cacheGetMany(this.#handle, keys); // which throws the TypeError
    // String keys (the common case) go joined, with their lengths, and their string values come
    // back joined: two Node-API calls in and out instead of one per key, which is where the
    // time of a call per key goes. Any other key takes the array.
    const n = keys.length;
    if (n === 1 && typeof keys[0] === 'string') return [cacheGet(this.#handle, keys[0])];
    if (scratch.lengths.length < n) scratch.grow(n);
    const { lengths, spans } = scratch;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      if (typeof k !== 'string') return cacheGetMany(this.#handle, keys);
      lengths[i] = k.length;
    }
    const got = cacheGetJoined(this.#handle, keys.join(''), lengths, spans, n);
    const text = typeof got === 'string' ? got : got[0];
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const at = spans[2 * i];
      out[i] = at >= 0 ? text.slice(at, spans[2 * i + 1]) : at === -1 ? undefined : got[1][spans[2 * i + 1]];
    }
    return out;
  }

  /**
   * Sets each `[key, value]` of `entries` (an array or any iterable of pairs), in order, with
   * the same `options` as `set`. Returns the cache.
   */
  setMany(entries, options) {
    if (entries === null || typeof entries !== 'object' || typeof entries[Symbol.iterator] !== 'function') {
      throw argType('entries', 'an iterable of [key, value] pairs', entries);
    }
    for (const pair of entries) {
      if (!Array.isArray(pair)) throw argType('entries[i]', 'a [key, value] pair', pair);
      this.set(pair[0], pair[1], options);
    }
    return this;
  }

  /** The value of `key`, or undefined, without marking it used. */
  peek(key) {
    return cachePeek(this.#handle, key);
  }

  /**
   * Stores `value` under `key`. `options.ttl` in ms (or `options` itself as a number) overrides
   * the cache's default (0 = never expires); `options.noUpdateTTL` keeps an overwritten entry's
   * expiry. Returns the cache, as `lru-cache` does.
   */
  set(key, value, options) {
    if (options !== undefined && options !== null && options.oversize !== undefined) {
      this.#setSkipping(key, value, options, UPSERT);
    } else {
      cacheSet(this.#handle, key, value, options, UPSERT);
    }
    return this;
  }

  /** Stores `value` only if `key` is absent; returns whether it did. */
  add(key, value, options) {
    if (options !== undefined && options !== null && options.oversize !== undefined) {
      return this.#setSkipping(key, value, options, ADD);
    }
    return cacheSet(this.#handle, key, value, options, ADD);
  }

  /** Stores `value` only if `key` is present; returns whether it did. */
  replace(key, value, options) {
    if (options !== undefined && options !== null && options.oversize !== undefined) {
      return this.#setSkipping(key, value, options, REPLACE);
    }
    return cacheSet(this.#handle, key, value, options, REPLACE);
  }

  /**
   * Adds `delta` to the decimal integer stored under `key` (an absent key counts as 0) and
   * returns the result. The value is stored as a string. Atomic across processes.
   */
  incr(key, delta = 1, options) {
    return cacheIncr(this.#handle, key, delta, options);
  }

  /** Whether `key` is present (and not expired). Does not mark it used. */
  has(key) {
    return cacheHas(this.#handle, key);
  }

  /**
   * Copies the value of `key` into `buffer` (from offset 0) and returns its length in bytes,
   * or -1 if the key is absent; marks the entry used. Throws a RangeError with code
   * ERR_SHM_BUFFER_TOO_SMALL (copying nothing) if the value does not fit. A string value is
   * copied as its UTF-8 bytes.
   */
  getInto(key, buffer) {
    return cacheGetInto(this.#handle, key, buffer);
  }

  /** Removes `key`; returns whether it was present. */
  delete(key) {
    return cacheDelete(this.#handle, key);
  }

  /**
   * Removes every entry whose key starts with `prefix` (a string or bytes, compared byte for
   * byte) in one pass over the cache; returns how many it removed.
   */
  deletePrefix(prefix) {
    return cacheDeletePrefix(this.#handle, prefix);
  }

  /** Removes every entry; returns how many there were. */
  clear() {
    return cacheClear(this.#handle);
  }

  /** Entries now held (every process's). */
  get size() {
    return cacheLen(this.#handle);
  }

  /** The most entries the cache can hold. */
  get capacity() {
    return this.#info.capacity;
  }

  /** Bytes per record: key bytes plus value bytes must fit. 0 in a cache with a byte budget. */
  get recordSize() {
    return this.#info.recordSize;
  }

  /** The byte budget: the most bytes of shared memory the cache occupies. 0 in a cache of fixed records. */
  get maxBytes() {
    return this.#info.maxBytes;
  }

  /** The most bytes of key plus value one entry may hold (in a cache of fixed records, its recordSize). */
  get maxValueSize() {
    return this.#info.maxValueSize;
  }

  /** The name the cache was created under. */
  get name() {
    return this.#info.name;
  }

  /**
   * Geometry and settings: name, capacity, recordSize, maxBytes, maxValueSize, shards,
   * evictOnFull, defaultTtl, regionSize.
   */
  settings() {
    // Asked of the handle, so that a closed one throws ERR_SHM_CLOSED.
    return cacheInfo(this.#handle);
  }

  /** [key, value] pairs, most recently used first (a snapshot). */
  entries() {
    return this.#snapshot(false, null);
  }

  /** Keys, most recently used first (a snapshot). */
  keys() {
    return this.#snapshot(false, firstOf);
  }

  /** Values, most recently used first (a snapshot). */
  values() {
    return this.#snapshot(false, secondOf);
  }

  /** [key, value] pairs, least recently used first (a snapshot). */
  rentries() {
    return this.#snapshot(true, null);
  }

  /** Keys, least recently used first (a snapshot). */
  rkeys() {
    return this.#snapshot(true, firstOf);
  }

  /** Values, least recently used first (a snapshot). */
  rvalues() {
    return this.#snapshot(true, secondOf);
  }

  // An iterator over every entry now held, in recency order, each mapped by `pick` if given: a
  // sorted snapshot while the cache is small, a walk in batches (constant memory, one shard
  // after another, each in its recency order) once it holds more than LAZY_OVER entries.
  #snapshot(lruFirst, pick) {
    if (this.size > LAZY_OVER) return walk(this.#handle, lruFirst, pick);
    const pairs = cacheEntries(this.#handle, lruFirst, undefined);
    return (pick === null ? pairs : pairs.map(pick))[Symbol.iterator]();
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  /**
   * Evicts, least recently used first, up to `max` (default: no limit) entries not used in
   * the last `ms` milliseconds, and returns them as [key, value] pairs.
   */
  evictOlderThan(ms, max) {
    return cacheEvictOlderThan(this.#handle, ms, max);
  }

  /**
   * Counters of every process's operations, with the entries held now (`size`), `capacity`,
   * and the bytes: `maxBytes` (0 without a budget), `bytesLive` (what the entries occupy),
   * `bytesUsed` (not free: live, and removed but not yet reclaimed) and `bytesFree`. A `fetch`
   * counts one hit or one miss, as a `get` does.
   */
  stats() {
    return cacheStats(this.#handle);
  }

  /** Verifies the cache's structure: `{ ok, problems }`. */
  check() {
    return cacheCheck(this.#handle);
  }

  /**
   * Checks every shard and rebuilds each damaged one from its slots, as recovery after a crash
   * does, dropping entries that cannot be trusted: `{ before, rebuilt, kept, dropped, after }`,
   * where `before` and `after` are what check() gives.
   */
  repair() {
    return cacheRepair(this.#handle);
  }

  /**
   * Unmaps the cache from this process; the cache itself stays (see SharedLRU.destroy). Later
   * calls on this object throw with code ERR_SHM_CLOSED. Closing twice is harmless.
   */
  close() {
    cacheClose(this.#handle);
    if (this.#room !== undefined) this.#room.close();
  }

  get [Symbol.toStringTag]() {
    return 'SharedLRU';
  }

  /** `close()`, for `using cache = SharedLRU.open(name)`: closed when the block is left. */
  [Symbol.dispose]() {
    this.close();
  }

  // ---- what lru-cache users reach for, and fetch ----

  /**
   * lru-cache's `info(key)`: `{ value, ttl, start }` for a present key (`ttl` the ms left and
   * `start` now, only for an entry that expires), else undefined. Does not mark it used. The
   * cache's own geometry is `settings()`.
   */
  info(key) {
    if (arguments.length === 0) {
      throw argType('key', 'a string or Buffer (info(key) describes one entry; the cache\'s geometry is settings())', key);
    }
    const value = this.peek(key);
    if (value === undefined) return undefined;
    const at = cacheExpiry(this.#handle, key);
    if (at === undefined || at === 0) return { value };
    const now = Date.now();
    return { value, ttl: Math.max(0, at - now), start: now };
  }

  /** Milliseconds `key` has left to live: 0 if absent, Infinity if it never expires. */
  getRemainingTTL(key) {
    const at = cacheExpiry(this.#handle, key);
    if (at === undefined) return 0;
    if (at === 0) return Infinity;
    return Math.max(0, at - Date.now());
  }

  /** Reclaims every expired entry now; returns whether there were any (lru-cache's answer). */
  purgeStale() {
    return cachePurgeExpired(this.#handle) > 0;
  }

  /** Calls `fn(value, key, cache)` for each entry, most recently used first (a snapshot). */
  forEach(fn, thisArg) {
    if (typeof fn !== 'function') throw argType('fn', 'a function', fn);
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  /** Calls `fn(value, key, cache)` for each entry, least recently used first (a snapshot). */
  rforEach(fn, thisArg) {
    if (typeof fn !== 'function') throw argType('fn', 'a function', fn);
    for (const [k, v] of this.rentries()) fn.call(thisArg, v, k, this);
  }

  /**
   * The first value, most recently used first, for which `fn(value, key, cache)` is true, read
   * again with `get(key, options)` (so it is marked used), as lru-cache does; else undefined.
   */
  find(fn, options) {
    if (typeof fn !== 'function') throw argType('fn', 'a function', fn);
    for (const [k, v] of this.entries()) {
      if (fn(v, k, this)) return this.get(k, options);
    }
    return undefined;
  }

  /** Removes the least recently used entry and returns its value; undefined when empty. */
  pop() {
    const pair = cachePop(this.#handle);
    return pair === undefined ? undefined : this[DECODE](pair[1]);
  }

  /**
   * Every entry as `[key, { value, ttl?, start? }]`, least recently used first, for `load` (of
   * this cache or another, say a bigger one): lru-cache's format, `start + ttl` being the
   * entry's expiry in epoch ms.
   */
  dump() {
    const now = Date.now();
    const out = [];
    for (const [k, v, at] of cacheDump(this.#handle)) {
      const entry = { value: this[DECODE](v) };
      if (at !== 0) {
        entry.ttl = Math.max(1, at - now);
        entry.start = now;
      }
      out.push([k, entry]);
    }
    return out;
  }

  /**
   * Clears the cache and sets each `[key, { value, ttl?, start? }]` of `entries` in order (the
   * last one ends up most recently used), as lru-cache's `load` does. An entry whose time is
   * already up is left out. Every entry is checked before the cache is touched: a bad one
   * (not a pair, a key or value of the wrong type, a value too large for an entry when the
   * handle does not skip those) throws and leaves the cache as it was.
   */
  load(entries) {
    if (entries === null || typeof entries !== 'object' || typeof entries[Symbol.iterator] !== 'function') {
      throw argType('entries', 'an iterable of [key, { value, ttl?, start? }] pairs, as dump() gives', entries);
    }
    const now = Date.now();
    const skip = this.#oversizeSkips();
    const room = this.#info.maxValueSize;
    const ready = [];
    let i = 0;
    for (const pair of entries) {
      const at = `entries[${i++}]`;
      if (!Array.isArray(pair) || pair.length < 2) throw argType(at, 'a [key, { value, ttl?, start? }] pair', pair);
      const [k, entry] = pair;
      if (typeof k !== 'string' && !(k instanceof Uint8Array)) throw argType(`${at}[0]`, 'a string, Buffer or Uint8Array', k);
      if (entry === null || typeof entry !== 'object') throw argType(`${at}[1]`, 'an object { value, ttl?, start? }', entry);
      const { value, ttl: given, start } = entry;
      for (const [field, n] of [['ttl', given], ['start', start]]) {
        if (n !== undefined && (typeof n !== 'number' || Number.isNaN(n))) throw argType(`${at}[1].${field}`, 'a number', n);
      }
      const stored = this[ENCODE](value);
      if (typeof stored !== 'string' && !(stored instanceof Uint8Array)) {
        throw argType(`${at}[1].value`, 'a string, Buffer or Uint8Array (or a value the serializer takes)', value);
      }
      if (byteLength(k) + byteLength(stored) > room) {
        if (skip) continue;
        throw codedError(
          RangeError,
          'ERR_SHM_VALUE_TOO_LARGE',
          `${at}: ${byteLength(k) + byteLength(stored)} bytes of key and value exceed the ${this.#info.maxBytes === 0 ? 'record size' : 'maxValueSize'} of ${room} bytes; nothing was loaded`,
        );
      }
      let ttl = 0;
      if (given) {
        ttl = start ? start + given - now : given;
        if (ttl <= 0) continue;
        ttl = Math.ceil(ttl);
      }
      ready.push([k, stored, ttl]);
    }
    this.clear();
    for (const [k, stored, ttl] of ready) cacheSet(this.#handle, k, stored, { ttl }, UPSERT);
  }

  /**
   * The value of `key`; on a miss, `loader(key, { signal, staleValue })` runs in exactly one
   * caller on the machine and every other caller, in any process, waits for its result. See
   * lib/fetch.js for the protocol and index.d.ts for the options.
   */
  fetch(key, loader, options) {
    if (typeof loader !== 'function') return Promise.reject(argType('loader', 'a function', loader));
    let looked = false;
    let ctx;
    try {
      if (options === undefined) {
        const v = this.get(key);
        if (v !== undefined) return Promise.resolve(v);
        looked = true;
      }
      ctx = this.#fetchContext();
    } catch (e) {
      return Promise.reject(e);
    }
    return fetchSlow(this, ctx, key, loader, options, looked);
  }

  #fetchCtx;
  #room;

  #fetchContext() {
    if (this.#fetchCtx === undefined) {
      cacheLen(this.#handle); // a closed handle throws ERR_SHM_CLOSED here
      this.#room = new Room(this.#info, this.#access);
      this.#fetchCtx = {
        raw: this.#handle,
        room: this.#room,
        defaultTtl: this.#info.defaultTtl,
        encode: (v) => this[ENCODE](v),
        decode: (v) => this[DECODE](v),
      };
    }
    return this.#fetchCtx;
  }

  // How a value read from the engine becomes the caller's (a serializer's decode).
  [DECODE](v) {
    return v;
  }

  // How a caller's value becomes what the engine stores (a serializer's encode).
  [ENCODE](v) {
    return v;
  }

  // Whether sets through this handle skip values too large for an entry.
  #oversizeSkips() {
    return this.#access.oversize === 'skip';
  }

  #getWith(key, options) {
    if (options === null || typeof options !== 'object') throw argType('options', 'an object', options);
    const v = cacheGet(this.#handle, key);
    if (v !== undefined && options.updateAgeOnGet === true) {
      // With no time to live to restart (no options.ttl, no default), the expiry stays as it is.
      const ttl = options.ttl === undefined ? this.#info.defaultTtl : options.ttl;
      if (ttl !== 0) cacheTouch(this.#handle, key, ttl);
    }
    return v;
  }

  // A set under { oversize: 'skip' }: a value too large for an entry is not cached, and the
  // key's older value is removed (it would be stale), as lru-cache does for maxEntrySize.
  #setSkipping(key, value, options, mode) {
    if (options.oversize !== 'skip' && options.oversize !== 'throw') {
      throw argValue('options.oversize', "'skip' or 'throw'", options.oversize);
    }
    try {
      return cacheSet(this.#handle, key, value, options, mode);
    } catch (e) {
      if (options.oversize !== 'skip' || (e.code !== 'ERR_SHM_VALUE_TOO_LARGE' && e.code !== 'ERR_SHM_KEY_TOO_LARGE')) throw e;
      if (mode !== ADD && e.code === 'ERR_SHM_VALUE_TOO_LARGE') cacheDelete(this.#handle, key);
      return false;
    }
  }
}

// Caches holding more entries than this are iterated lazily.
const LAZY_OVER = 65_536;
const WALK_BATCH = 1024;

// The entries of a large cache, a batch at a time (see #snapshot).
function* walk(handle, lruFirst, pick) {
  let cursor;
  do {
    const [pairs, next] =
      cursor === undefined
        ? cacheScan(handle, lruFirst, undefined, undefined, undefined, WALK_BATCH)
        : cacheScan(handle, lruFirst, cursor[0], cursor[1], cursor[2], WALK_BATCH);
    for (const p of pairs) yield pick === null ? p : pick(p);
    cursor = next;
  } while (cursor !== null);
}

// getMany's key lengths and value spans, kept between calls (one thread runs this module's
// copy, and no JS runs during the native call that fills them).
const scratch = {
  lengths: new Uint32Array(64),
  spans: new Int32Array(128),
  grow(n) {
    const size = 2 ** Math.ceil(Math.log2(n));
    this.lengths = new Uint32Array(size);
    this.spans = new Int32Array(2 * size);
  },
};

function byteLength(v) {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.byteLength;
}

// A handle opened without options: nothing of its own to apply.
const NO_ACCESS = Object.freeze({});

// ---- per-handle settings: serializer, oversize, updateAgeOnGet ----

const SERIALIZERS = {
  json: { serialize: (v) => JSON.stringify(v), deserialize: (s) => JSON.parse(s) },
  v8: {
    serialize: (v) => require('v8').serialize(v),
    deserialize: (b) => require('v8').deserialize(typeof b === 'string' ? Buffer.from(b) : b),
  },
};

function serializerOf(s) {
  if (s === undefined) return undefined;
  if (typeof s === 'string' && Object.hasOwn(SERIALIZERS, s)) return SERIALIZERS[s];
  if (s !== null && typeof s === 'object' && typeof s.serialize === 'function' && typeof s.deserialize === 'function') {
    return { serialize: s.serialize, deserialize: s.deserialize };
  }
  throw argValue('options.serializer', "'json', 'v8' or { serialize, deserialize }", s);
}

/**
 * The handle settings of `options` (serializer, oversize, updateAgeOnGet, and the mode and
 * trustOwner a fetch's room is made and vetted with), checked before anything is created or
 * opened: a bad one throws and leaves nothing behind.
 */
function handleSettings(options) {
  if (options === undefined || options === null || typeof options !== 'object') return undefined;
  const { serializer, oversize, updateAgeOnGet, mode, trustOwner } = options;
  if (oversize !== undefined && oversize !== 'skip' && oversize !== 'throw') {
    throw argValue('options.oversize', "'skip' or 'throw'", oversize);
  }
  if (updateAgeOnGet !== undefined && typeof updateAgeOnGet !== 'boolean') {
    throw argType('options.updateAgeOnGet', 'a boolean', updateAgeOnGet);
  }
  return { serializer: serializerOf(serializer), oversize, updateAgeOnGet, mode, trustOwner };
}

/** The class for `handle`: the plain one, or the one that applies the handle's settings. */
function withSettings(handle, settings) {
  if (settings === undefined) return new SharedLRU(handle);
  const access = Object.freeze({ mode: settings.mode, trustOwner: settings.trustOwner, oversize: settings.oversize });
  if (settings.serializer === undefined && settings.oversize === undefined && settings.updateAgeOnGet === undefined) {
    return new SharedLRU(handle, access);
  }
  return new SharedLRUWith(handle, access, settings);
}

const SLIDE = Object.freeze({ updateAgeOnGet: true });

/**
 * A SharedLRU opened with settings of its own handle: values pass through a serializer, sets
 * default to an oversize policy, gets default to sliding expiry. Methods not overridden here
 * reach values through the ones that are (or through DECODE/ENCODE).
 */
class SharedLRUWith extends SharedLRU {
  #encode;
  #decode;
  #oversize;
  #sliding;

  constructor(handle, access, { serializer, oversize, updateAgeOnGet }) {
    super(handle, access);
    this.#encode = serializer === undefined ? undefined : serializer.serialize;
    this.#decode = serializer === undefined ? undefined : serializer.deserialize;
    this.#oversize = oversize;
    this.#sliding = updateAgeOnGet === true;
  }

  #in(value) {
    return this.#encode === undefined ? value : this.#encode(value);
  }

  #opts(options) {
    if (this.#oversize === undefined) return options;
    if (options === undefined || options === null) return { oversize: this.#oversize };
    if (typeof options === 'number') return { ttl: options, oversize: this.#oversize };
    return options.oversize === undefined ? { ...options, oversize: this.#oversize } : options;
  }

  [DECODE](v) {
    return v === undefined || this.#decode === undefined ? v : this.#decode(v);
  }

  get(key, options) {
    return this[DECODE](super.get(key, options === undefined && this.#sliding ? SLIDE : options));
  }

  peek(key) {
    return this[DECODE](super.peek(key));
  }

  getMany(keys) {
    // A sliding handle restarts each hit's time to live, as its get does: key by key.
    if (this.#sliding && Array.isArray(keys)) return keys.map((k) => this.get(k));
    const values = super.getMany(keys);
    if (this.#decode === undefined) return values;
    return values.map((v) => this[DECODE](v));
  }

  set(key, value, options) {
    super.set(key, this.#in(value), this.#opts(options));
    return this;
  }

  add(key, value, options) {
    return super.add(key, this.#in(value), this.#opts(options));
  }

  replace(key, value, options) {
    return super.replace(key, this.#in(value), this.#opts(options));
  }

  [ENCODE](v) {
    return this.#in(v);
  }

  entries() {
    return this.#decoded(super.entries());
  }

  rentries() {
    return this.#decoded(super.rentries());
  }

  values() {
    return this.#decodedValues(super.values());
  }

  rvalues() {
    return this.#decodedValues(super.rvalues());
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  evictOlderThan(ms, max) {
    return super.evictOlderThan(ms, max).map(([k, v]) => [k, this[DECODE](v)]);
  }

  // Decoded as they are reached, so that a walk over a cache of any size stays lazy.
  #decoded(it) {
    if (this.#decode === undefined) return it;
    const [self, decode] = [this, this.#decode];
    return (function* decodedEntries() {
      for (const [k, v] of it) yield [k, decode.call(self, v)];
    })();
  }

  #decodedValues(it) {
    if (this.#decode === undefined) return it;
    const [self, decode] = [this, this.#decode];
    return (function* decodedValues() {
      for (const v of it) yield decode.call(self, v);
    })();
  }
}

function firstOf(pair) {
  return pair[0];
}

function secondOf(pair) {
  return pair[1];
}

module.exports = SharedLRU;

'use strict';
// The class API: a shared-memory LRU cache in the vocabulary of the `lru-cache` package. Every
// method is one call into the addon, which reads the options objects (of create, openOrCreate and
// the per-call `{ ttl }`) itself, applies the engine's defaults and checks every argument; this
// file picks the call, keeps the handle and the geometry read at open, and holds no cache state.

const native = require('./native');
const { codedError } = require('./errors');

const {
  cacheCreate,
  cacheOpen,
  cacheOpenOrCreate,
  cacheDestroyName,
  cacheClose,
  cacheGet,
  cachePeek,
  cacheSet,
  cacheHas,
  cacheGetInto,
  cacheDelete,
  cacheIncr,
  cacheClear,
  cacheLen,
  cacheInfo,
  cacheEntries,
  cacheEvictOlderThan,
  cacheStats,
  cacheCheck,
} = native;

// Modes of cacheSet.
const UPSERT = 0;
const ADD = 1;
const REPLACE = 2;

/**
 * A least-recently-used cache of fixed-size records in shared memory. Every process (and worker
 * thread) that opens the same name sees the same entries at once.
 *
 * Keys are strings or Buffers/Uint8Arrays, compared byte for byte (a string is its UTF-8 bytes,
 * so `'a'` and `Buffer.from('a')` are the same key). Iteration gives a key back as a string
 * when its bytes are valid UTF-8, else as a Buffer. Values are strings or Buffers and come
 * back as the type they were stored as. Key bytes plus value bytes must fit in `recordSize`.
 */
class SharedLRU {
  #handle;
  #info;

  constructor(handle) {
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
          '(options: { capacity, recordSize, ... }; capacity is what lru-cache calls max)',
      );
    }
    this.#handle = handle;
    this.#info = info;
  }

  /** Creates a new cache; fails with code ERR_SHM_EXISTS if `name` exists. */
  static create(name, options) {
    return new SharedLRU(cacheCreate(name, options));
  }

  /**
   * Opens an existing cache; fails with code ERR_SHM_NOT_FOUND if there is none, and with
   * ERR_SHM_PERMISSION if its owner is not this process's user, root or `options.trustOwner`
   * (a uid), or if it lets more users write than `options.mode` would. `options.lockTimeout`
   * (ms) makes calls throw ERR_SHM_LOCK_TIMEOUT instead of waiting longer for a lock.
   */
  static open(name, options) {
    return new SharedLRU(cacheOpen(name, options));
  }

  /**
   * Opens the cache if it exists, else creates it with `options`. An existing cache whose
   * capacity, recordSize, evictOnFull, ttl or (when given) shards differ from `options` is
   * refused with ERR_SHM_MISMATCH naming each, unless `options.reuse` is 'any'. Takes
   * `trustOwner` and `lockTimeout` as open does; `mode` is also the most an existing segment
   * may let others write.
   */
  static openOrCreate(name, options) {
    return new SharedLRU(cacheOpenOrCreate(name, options));
  }

  /**
   * Removes the named cache from the system. Processes that have it open keep using their
   * mapping until they close it. Returns whether it existed.
   */
  static destroy(name) {
    return cacheDestroyName(name);
  }

  /** The value of `key`, or undefined; marks the entry most recently used. */
  get(key) {
    return cacheGet(this.#handle, key);
  }

  /** The value of `key`, or undefined, without marking it used. */
  peek(key) {
    return cachePeek(this.#handle, key);
  }

  /**
   * Stores `value` under `key`. `options.ttl` in ms overrides the cache's default (0 = never
   * expires). Returns the cache, as `lru-cache` does.
   */
  set(key, value, options) {
    cacheSet(this.#handle, key, value, options, UPSERT);
    return this;
  }

  /** Stores `value` only if `key` is absent; returns whether it did. */
  add(key, value, options) {
    return cacheSet(this.#handle, key, value, options, ADD);
  }

  /** Stores `value` only if `key` is present; returns whether it did. */
  replace(key, value, options) {
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

  /** Bytes per record: key bytes plus value bytes must fit. */
  get recordSize() {
    return this.#info.recordSize;
  }

  /** The name the cache was created under. */
  get name() {
    return this.#info.name;
  }

  /** Geometry and settings: name, capacity, recordSize, shards, evictOnFull, defaultTtl, regionSize. */
  info() {
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

  // An iterator over every entry now held, in recency order, each mapped by `pick` if given.
  #snapshot(lruFirst, pick) {
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

  /** Counters of every process's operations, and the current length and capacity. */
  stats() {
    return cacheStats(this.#handle);
  }

  /** Verifies the cache's structure: `{ ok, problems }`. */
  check() {
    return cacheCheck(this.#handle);
  }

  /**
   * Unmaps the cache from this process; the cache itself stays (see SharedLRU.destroy). Later
   * calls on this object throw with code ERR_SHM_CLOSED. Closing twice is harmless.
   */
  close() {
    cacheClose(this.#handle);
  }

  get [Symbol.toStringTag]() {
    return 'SharedLRU';
  }
}

function firstOf(pair) {
  return pair[0];
}

function secondOf(pair) {
  return pair[1];
}

module.exports = SharedLRU;

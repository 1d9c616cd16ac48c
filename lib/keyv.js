'use strict';
// `require('shm-typed-lru/keyv')`: a keyv storage adapter over a SharedLRU, so that keyv (and
// cache-manager, which builds on keyv) keep their entries in shared memory, seen at once by every
// process on the machine. Keyv hands the store strings it has serialized itself (its value and
// expiry) and its keys prefixed with `namespace:`; the store keeps them as they come, each with
// keyv's time to live, and `clear()` removes only the current namespace's keys.
//
// The cache the store makes has a byte budget unless told otherwise (lib/args.js): keyv's values
// are JSON of any length, which records of one size would fit badly. A value too large for the
// cache is an error of the set that stored it (ERR_SHM_VALUE_TOO_LARGE), never a later miss.

const { EventEmitter } = require('node:events');
const SharedLRU = require('./shared-lru');
const { argType } = require('./errors');
const { withDefaultBudget } = require('./args');

/**
 * A keyv store in a shared-memory cache. `new KeyvSharedLRU({ name })` opens the cache `name` or
 * creates it with a byte budget of 64 MiB (values up to 1 MiB); `maxBytes`, `maxValueSize` and
 * `capacity` choose another, or `capacity` and `recordSize` a cache of fixed records (any other
 * SharedLRU option passes through). `new KeyvSharedLRU({ cache })` uses an open SharedLRU.
 */
class KeyvSharedLRU extends EventEmitter {
  constructor(options) {
    super();
    if (options === null || typeof options !== 'object') {
      throw argType('options', 'an object with name (and maxBytes, or capacity and recordSize), or with cache', options);
    }
    const { cache, name, ...rest } = options;
    this.cache = cache !== undefined ? cache : SharedLRU.openOrCreate(name, { serializer: 'json', ...withDefaultBudget(rest) });
    // keyv reads opts.dialect and opts.url to decide whether to use the store's iterator; it
    // does so only for the adapters it knows, so keyv.iterator() is not offered here.
    this.opts = { name: this.cache.name, dialect: 'shm-typed-lru', url: `shm-typed-lru:${this.cache.name}` };
    this.namespace = undefined;
  }

  async get(key) {
    return this.cache.get(key);
  }

  async getMany(keys) {
    return this.cache.getMany(keys);
  }

  /**
   * Stores `value`; rejects with ERR_SHM_VALUE_TOO_LARGE (after removing the key's older
   * value, which would be stale) when key and value exceed the cache's largest entry.
   */
  async set(key, value, ttl) {
    this.#store(key, value, ttl);
    return true;
  }

  /** Stores each entry; rejects with the first entry's error once the others are stored. */
  async setMany(entries) {
    let failed;
    for (const { key, value, ttl } of entries) {
      try {
        this.#store(key, value, ttl);
      } catch (err) {
        if (failed === undefined) failed = err;
      }
    }
    if (failed !== undefined) throw failed;
    return entries.map(() => true);
  }

  #store(key, value, ttl) {
    try {
      this.cache.set(key, value, typeof ttl === 'number' && ttl > 0 ? { ttl: Math.ceil(ttl) } : undefined);
    } catch (err) {
      if (err.code === 'ERR_SHM_VALUE_TOO_LARGE') this.cache.delete(key);
      throw err;
    }
  }

  async delete(key) {
    return this.cache.delete(key);
  }

  async deleteMany(keys) {
    let any = false;
    for (const k of keys) any = this.cache.delete(k) || any;
    return any;
  }

  async has(key) {
    return this.cache.has(key);
  }

  async hasMany(keys) {
    return keys.map((k) => this.cache.has(k));
  }

  /** Removes the current namespace's keys, or every key when there is no namespace. */
  async clear() {
    if (this.namespace === undefined) {
      this.cache.clear();
      return;
    }
    this.cache.deletePrefix(`${this.namespace}:`);
  }

  /** The entries of `namespace` (all entries when it is undefined), most recently used first. */
  async *iterator(namespace) {
    const prefix = namespace === undefined ? undefined : `${namespace}:`;
    for (const [k, v] of this.cache.entries()) {
      if (prefix === undefined || (typeof k === 'string' && k.startsWith(prefix))) yield [k, v];
    }
  }

  /** Unmaps the cache from this process (the cache itself stays). */
  async disconnect() {
    this.cache.close();
  }
}

module.exports = { KeyvSharedLRU };

'use strict';
// `require('shm-typed-lru/keyv')`: a keyv storage adapter over a SharedLRU, so that keyv (and
// cache-manager, which builds on keyv) keep their entries in shared memory, seen at once by every
// process on the machine. Keyv hands the store strings it has serialized itself (its value and
// expiry) and its keys prefixed with `namespace:`; the store keeps them as they come, each with
// keyv's time to live, and `clear()` removes only the current namespace's keys.

const { EventEmitter } = require('node:events');
const SharedLRU = require('./shared-lru');
const { argType } = require('./errors');

/**
 * A keyv store in a shared-memory cache. `new KeyvSharedLRU({ name, capacity, recordSize })`
 * opens the cache `name` or creates it with those options (any other SharedLRU option passes
 * through); `new KeyvSharedLRU({ cache })` uses an open SharedLRU.
 */
class KeyvSharedLRU extends EventEmitter {
  constructor(options) {
    super();
    if (options === null || typeof options !== 'object') {
      throw argType('options', 'an object with name, capacity and recordSize, or with cache', options);
    }
    const { cache, name, ...rest } = options;
    this.cache = cache !== undefined ? cache : SharedLRU.openOrCreate(name, { serializer: 'json', ...rest });
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

  async set(key, value, ttl) {
    this.cache.set(key, value, typeof ttl === 'number' && ttl > 0 ? { ttl: Math.ceil(ttl) } : undefined);
    return true;
  }

  async setMany(entries) {
    return entries.map(({ key, value, ttl }) => {
      this.cache.set(key, value, typeof ttl === 'number' && ttl > 0 ? { ttl: Math.ceil(ttl) } : undefined);
      return true;
    });
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

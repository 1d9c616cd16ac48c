'use strict';
// `SharedLRU.registerMetrics(client, caches, options)`: the caches' counters as prom-client
// metrics, read from the segments at each scrape. prom-client is the caller's (passed in, never
// required here), so the package does not depend on it.
//
// The counters are the cache's, not the process's: every process's operations land in the same
// segment. In a cluster, register them in one process (or scrape `shm-lru stats --format
// prometheus`); registering them in every worker would report each cache once per worker.

const { argType } = require('./errors');

const COUNTERS = [
  ['hits', 'Lookups that found their key, by every process'],
  ['misses', 'Lookups that did not find their key, by every process'],
  ['inserts', 'Entries stored under a new key'],
  ['updates', 'Entries overwritten'],
  ['removes', 'Entries removed by a delete'],
  ['evictions', 'Entries evicted to make room'],
  ['expirations', 'Entries reclaimed after their time to live'],
  ['recoveries', 'Shards rebuilt after a process died holding their lock'],
];

const GAUGES = [
  ['entries', 'Entries held now', 'size'],
  ['capacity', 'The most entries the cache holds', 'capacity'],
];

// Gauges of a cache with a byte budget only (a cache of fixed records has no samples of them).
const BUDGET_GAUGES = [
  ['max_bytes', "The byte budget: the most bytes the cache's segment takes", 'maxBytes'],
  ['bytes_live', 'Bytes the entries held now occupy', 'bytesLive'],
  ['bytes_used', 'Bytes of the value store not free: live, and not yet reclaimed', 'bytesUsed'],
  ['bytes_free', 'Bytes of the value store free for new entries', 'bytesFree'],
];

/**
 * Registers, in `options.registry` (default `client.register`), a counter `<prefix>hits_total`,
 * `misses_total`, `inserts_total`, `updates_total`, `removes_total`, `evictions_total`,
 * `expirations_total`, `recoveries_total` and a gauge `<prefix>entries` and `capacity` (and for
 * a cache with a byte budget `max_bytes`, `bytes_live`, `bytes_used`, `bytes_free`), each
 * labelled `cache` with the cache's name; `prefix` defaults to `shm_lru_`. A cache closed since
 * is left out of later scrapes. Returns `{ unregister() }`, which removes the metrics.
 */
function registerMetrics(client, caches, options = {}) {
  if (client === null || typeof client !== 'object' || typeof client.Counter !== 'function' || typeof client.Gauge !== 'function') {
    throw argType('client', "the prom-client module (require('prom-client'))", client);
  }
  const list = caches !== null && typeof caches === 'object' && Symbol.iterator in caches ? [...caches] : [caches];
  for (const c of list) {
    if (c === null || typeof c !== 'object' || typeof c.stats !== 'function' || typeof c.name !== 'string') {
      throw argType('caches', 'a SharedLRU or an array of them', c);
    }
  }
  if (options === null || typeof options !== 'object') throw argType('options', 'an object', options);
  const registry = options.registry === undefined ? client.register : options.registry;
  const prefix = options.prefix === undefined ? 'shm_lru_' : options.prefix;
  if (typeof prefix !== 'string') throw argType('options.prefix', 'a string', prefix);

  // Every metric reads the caches when it is collected: a scrape asks each of them once.
  const snapshot = () => {
    const read = [];
    for (const c of list) {
      try {
        read.push([c.name, c.stats()]);
      } catch (e) {
        if (e === null || typeof e !== 'object' || e.code !== 'ERR_SHM_CLOSED') throw e;
      }
    }
    return read;
  };

  const names = [];
  // One metric per field, labelled by cache, read from the caches' stats when scraped.
  const register = (Metric, name, help, field, record, budgetOnly = false) => {
    names.push(name);
    new Metric({
      name,
      help: `${help}.`,
      labelNames: ['cache'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [cache, s] of snapshot()) if (!budgetOnly || s.maxBytes > 0) record(this, { cache }, s[field]);
      },
    });
  };
  for (const [field, help] of COUNTERS) {
    register(client.Counter, `${prefix}${field}_total`, help, field, (m, labels, v) => m.inc(labels, v));
  }
  for (const [metric, help, field] of GAUGES) {
    register(client.Gauge, `${prefix}${metric}`, help, field, (m, labels, v) => m.set(labels, v));
  }
  for (const [metric, help, field] of BUDGET_GAUGES) {
    register(client.Gauge, `${prefix}${metric}`, help, field, (m, labels, v) => m.set(labels, v), true);
  }
  return {
    unregister() {
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

module.exports = { registerMetrics };

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

/**
 * Registers, in `options.registry` (default `client.register`), a counter `<prefix>hits_total`,
 * `misses_total`, `inserts_total`, `updates_total`, `removes_total`, `evictions_total`,
 * `expirations_total`, `recoveries_total` and a gauge `<prefix>entries` and `capacity`, each
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
  const register = (Metric, name, help, field, record) => {
    names.push(name);
    new Metric({
      name,
      help: `${help}.`,
      labelNames: ['cache'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [cache, s] of snapshot()) record(this, { cache }, s[field]);
      },
    });
  };
  for (const [field, help] of COUNTERS) {
    register(client.Counter, `${prefix}${field}_total`, help, field, (m, labels, v) => m.inc(labels, v));
  }
  for (const [metric, help, field] of GAUGES) {
    register(client.Gauge, `${prefix}${metric}`, help, field, (m, labels, v) => m.set(labels, v));
  }
  return {
    unregister() {
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

module.exports = { registerMetrics };

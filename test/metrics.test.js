'use strict';
// SharedLRU.registerMetrics with the real prom-client: every cache's counters, entries and
// capacity in one registry, read afresh at each scrape, labelled by cache.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { SharedLRU } = require('..');
const { uniqueNames } = require('../test-support/helpers');
const { devSkip } = require('../test-support/dev-deps');

const uniqueName = uniqueNames('metrics');
const skip = devSkip('prom-client');

/** The sample lines of a scrape, as `{ 'name{labels}': value }`. */
function samples(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

test('one call registers every cache; each scrape reads the segments afresh', { skip }, async (t) => {
  const client = require('prom-client');
  const registry = new client.Registry();
  const a = SharedLRU.create(uniqueName('a'), { capacity: 2, recordSize: 64 });
  const b = SharedLRU.create(uniqueName('b'), { capacity: 100, recordSize: 64 });
  t.after(() => {
    a.close();
    b.close();
  });
  a.set('x', '1').set('y', '2').set('z', '3'); // one eviction
  a.get('z');
  a.get('x'); // evicted: a miss
  await a.fetch('w', async () => 'loaded'); // a miss and an insert, and nothing else
  b.set('k', 'v');
  const metrics = SharedLRU.registerMetrics(client, [a, b], { registry });

  const A = `{cache="${a.name}"}`;
  const B = `{cache="${b.name}"}`;
  let s = samples(await registry.metrics());
  assert.equal(s[`shm_lru_hits_total${A}`], 1);
  assert.equal(s[`shm_lru_misses_total${A}`], 2);
  assert.equal(s[`shm_lru_inserts_total${A}`], 4);
  assert.equal(s[`shm_lru_evictions_total${A}`], 2);
  assert.equal(s[`shm_lru_recoveries_total${A}`], 0);
  assert.equal(s[`shm_lru_entries${A}`], 2);
  assert.equal(s[`shm_lru_capacity${A}`], 2);
  assert.equal(s[`shm_lru_entries${B}`], 1);
  assert.equal(s[`shm_lru_capacity${B}`], 100);

  // Another process's operations show at the next scrape: they land in the same segment.
  const other = SharedLRU.open(b.name);
  other.get('k');
  other.get('k');
  other.close();
  s = samples(await registry.metrics());
  assert.equal(s[`shm_lru_hits_total${B}`], 2);

  // A closed cache drops out; unregister removes every metric.
  b.close();
  s = samples(await registry.metrics());
  assert.equal(s[`shm_lru_entries${B}`], undefined);
  assert.equal(s[`shm_lru_entries${A}`], 2);
  const text = await registry.metrics();
  assert.match(text, /# TYPE shm_lru_hits_total counter/);
  assert.match(text, /# TYPE shm_lru_entries gauge/);
  metrics.unregister();
  assert.equal(await registry.metrics(), '\n');
  assert.throws(() => SharedLRU.registerMetrics({}, [a]), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => SharedLRU.registerMetrics(client, ['not a cache'], { registry }), { code: 'ERR_INVALID_ARG_TYPE' });
});

test("a cache with a byte budget adds its bytes; a cache of fixed records has none", { skip }, async (t) => {
  const client = require('prom-client');
  const registry = new client.Registry();
  const fixed = SharedLRU.create(uniqueName('fixed'), { capacity: 4, recordSize: 64 });
  const budget = SharedLRU.create(uniqueName('budget'), { maxBytes: 1024 * 1024 });
  t.after(() => {
    fixed.close();
    budget.close();
  });
  budget.set('page', 'x'.repeat(5000));
  const metrics = SharedLRU.registerMetrics(client, [fixed, budget], { registry });
  const s = samples(await registry.metrics());
  const st = budget.stats();
  const B = `{cache="${budget.name}"}`;
  assert.equal(s[`shm_lru_max_bytes${B}`], 1024 * 1024);
  assert.equal(s[`shm_lru_bytes_live${B}`], st.bytesLive);
  assert.equal(s[`shm_lru_bytes_used${B}`], st.bytesUsed);
  assert.equal(s[`shm_lru_bytes_free${B}`], st.bytesFree);
  assert.ok(st.bytesLive > 5000);
  assert.equal(s[`shm_lru_entries${B}`], 1);
  const F = `{cache="${fixed.name}"}`;
  assert.equal(s[`shm_lru_capacity${F}`], 4);
  for (const name of ['max_bytes', 'bytes_live', 'bytes_used', 'bytes_free']) {
    assert.equal(s[`shm_lru_${name}${F}`], undefined, `no ${name} for a cache of fixed records`);
  }
  metrics.unregister();
});

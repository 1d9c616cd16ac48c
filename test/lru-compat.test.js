'use strict';
// The methods lru-cache users reach for, checked against the real lru-cache (a devDependency)
// where the behaviour should match: forEach/rforEach order and arguments, find, pop, dump/load,
// info(key), getRemainingTTL, noUpdateTTL, updateAgeOnGet, purgeStale; and the handle settings
// lru-cache has no twin for: serializer and oversize.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const skip = require('../test-support/dev-deps').devSkip('lru-cache');
if (skip) {
  test('behaviour compared with lru-cache', { skip }, () => {});
  return;
}

const { LRUCache } = require('lru-cache');
const { SharedLRU } = require(path.resolve(__dirname, '..'));

let seq = 0;
function fresh(t, options = {}, handle) {
  const name = `/shmlru-compat-${process.pid}-${++seq}`;
  SharedLRU.destroy(name);
  const c = SharedLRU.create(name, { capacity: 64, recordSize: 256, shards: 1, ...options, ...handle });
  t.after(() => {
    c.close();
    SharedLRU.destroy(name);
  });
  return c;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Same operations on both caches; each use gets its own millisecond so recency is unambiguous.
async function both(t, ops, options) {
  const ours = fresh(t, options);
  const theirs = new LRUCache({ max: 64, ttlAutopurge: false, ...(options && options.ttl ? { ttl: options.ttl } : {}) });
  for (const [op, ...args] of ops) {
    ours[op](...args);
    theirs[op](...args);
    await sleep(2);
  }
  return { ours, theirs };
}

const OPS = [
  ['set', 'a', '1'],
  ['set', 'b', '2'],
  ['set', 'c', '3'],
  ['get', 'a'],
  ['set', 'd', '4'],
  ['get', 'b'],
];

test('forEach and rforEach: same order and arguments as lru-cache', async (t) => {
  const { ours, theirs } = await both(t, OPS);
  const seen = (c, m) => {
    const out = [];
    c[m](function (v, k, self) {
      out.push([k, v, self === c, this.tag]);
    }, { tag: 'this' });
    return out;
  };
  assert.deepEqual(seen(ours, 'forEach'), seen(theirs, 'forEach'));
  assert.deepEqual(seen(ours, 'rforEach'), seen(theirs, 'rforEach'));
  assert.deepEqual(seen(ours, 'forEach').map((e) => e[0]), ['b', 'd', 'a', 'c']);
});

test('find returns the first match, most recent first, and marks it used, as lru-cache does', async (t) => {
  const { ours, theirs } = await both(t, OPS);
  const odd = (v) => Number(v) % 2 === 1;
  assert.equal(ours.find(odd), theirs.find(odd));
  assert.equal(ours.find(() => false), theirs.find(() => false));
  assert.deepEqual([...ours.keys()], [...theirs.keys()]);
});

test('pop removes and returns the least recently used, as lru-cache does', async (t) => {
  const { ours, theirs } = await both(t, OPS);
  for (let i = 0; i < 5; i++) assert.equal(ours.pop(), theirs.pop());
  assert.equal(ours.size, 0);
});

test('dump and load move entries, recency and times to live into another (bigger) cache', async (t) => {
  const { ours, theirs } = await both(t, [...OPS, ['set', 'e', '5', { ttl: 10_000 }]]);
  const dumped = ours.dump();
  const theirDump = theirs.dump();
  assert.deepEqual(dumped.map(([k, e]) => [k, e.value]), theirDump.map(([k, e]) => [k, e.value]));
  const [, e] = dumped.find(([k]) => k === 'e');
  assert.ok(e.ttl > 9000 && e.ttl <= 10_000 && Math.abs(e.start - Date.now()) < 1000);
  assert.equal(dumped.find(([k]) => k === 'a')[1].ttl, undefined);
  const bigger = fresh(t, { capacity: 1024 });
  bigger.set('stale', 'x');
  bigger.load(dumped);
  assert.deepEqual([...bigger.entries()], [...ours.entries()]);
  assert.ok(bigger.getRemainingTTL('e') > 9000);
  // lru-cache's own dump loads into ours, and ours into lru-cache.
  const fromTheirs = fresh(t);
  fromTheirs.load(theirDump);
  assert.deepEqual([...fromTheirs.keys()], [...theirs.keys()]);
  const intoTheirs = new LRUCache({ max: 64 });
  intoTheirs.load(dumped);
  assert.deepEqual([...intoTheirs.keys()], [...ours.keys()]);
});

test('info(key), getRemainingTTL and purgeStale answer as lru-cache does', async (t) => {
  const { ours, theirs } = await both(t, [['set', 'f', 'forever'], ['set', 'x', 'short', { ttl: 30 }], ['set', 'l', 'long', { ttl: 60_000 }]], { ttl: 0 });
  assert.deepEqual(ours.info('f'), theirs.info('f'));
  assert.equal(ours.info('nope'), theirs.info('nope'));
  assert.equal(ours.info('l').value, 'long');
  // The two caches were filled a moment apart: a loaded machine may make it a long moment.
  assert.ok(Math.abs(ours.info('l').ttl - theirs.info('l').ttl) < 1000);
  assert.equal(ours.getRemainingTTL('f'), theirs.getRemainingTTL('f'));
  assert.equal(ours.getRemainingTTL('nope'), theirs.getRemainingTTL('nope'));
  assert.ok(Math.abs(ours.getRemainingTTL('l') - theirs.getRemainingTTL('l')) < 1000);
  assert.throws(() => ours.info(), /settings\(\)/);
  assert.equal(ours.settings().capacity, 64);
  await sleep(40);
  assert.equal(ours.purgeStale(), theirs.purgeStale());
  assert.equal(ours.purgeStale(), false, 'nothing left to purge');
  assert.deepEqual([...ours.keys()].sort(), ['f', 'l']);
});

test('set(key, value, ttlMs), noUpdateTTL and updateAgeOnGet', async (t) => {
  const c = fresh(t, { ttl: 1000 });
  c.set('n', 'v', 50);
  assert.ok(c.getRemainingTTL('n') <= 50);
  c.set('n', 'w', { ttl: 60_000, noUpdateTTL: true });
  assert.equal(c.get('n'), 'w');
  assert.ok(c.getRemainingTTL('n') <= 50, 'noUpdateTTL kept the expiry');
  const theirs = new LRUCache({ max: 4, ttl: 1000 });
  theirs.set('n', 'v', { ttl: 50 });
  theirs.set('n', 'w', { ttl: 60_000, noUpdateTTL: true });
  assert.ok(theirs.getRemainingTTL('n') <= 50, 'lru-cache does the same');

  // Margins of 150 ms either side, so that a loaded machine's late timers do not decide it.
  c.set('s', 'slide', { ttl: 400 });
  await sleep(250);
  assert.equal(c.get('s', { updateAgeOnGet: true, ttl: 400 }), 'slide');
  await sleep(250);
  assert.equal(c.get('s'), 'slide', 'the get restarted its time to live');
  await sleep(250);
  assert.equal(c.get('s'), undefined);

  const sliding = SharedLRU.open(c.name, { updateAgeOnGet: true });
  t.after(() => sliding.close());
  c.set('d', 'default ttl', { ttl: 100 });
  await sleep(60);
  sliding.get('d'); // restarts with the cache's default, 1000 ms
  assert.ok(c.getRemainingTTL('d') > 900);
  c.set('e', 'many', { ttl: 100 });
  assert.deepEqual(sliding.getMany(['e', 'absent']), ['many', undefined]);
  assert.ok(c.getRemainingTTL('e') > 900, 'getMany slides as get does');
});

test("serializer 'json', 'v8' and custom: objects round-trip, through every read", async (t) => {
  const json = fresh(t, {}, { serializer: 'json' });
  const v = { a: [1, 'two', { three: 3 }], n: null };
  json.set('o', v);
  assert.deepEqual(json.get('o'), v);
  assert.deepEqual(json.peek('o'), v);
  assert.deepEqual([...json.values()], [v]);
  assert.deepEqual([...json.entries()], [['o', v]]);
  assert.deepEqual(json.dump()[0][1].value, v);
  assert.equal(json.add('o', 1), false);
  assert.equal(json.incr('count', 2), 2);
  assert.equal(json.get('count'), 2, 'a counter reads back as a number');
  assert.deepEqual(json.pop(), v);

  const v8 = fresh(t, {}, { serializer: 'v8' });
  const m = new Map([[1, new Date(0)]]);
  v8.set('m', m);
  assert.deepEqual(v8.get('m'), m);
  assert.deepEqual(await v8.fetch('f', async () => new Set([1, 2])), new Set([1, 2]));
  assert.deepEqual(await v8.fetch('f', async () => 'not called'), new Set([1, 2]));

  const upper = fresh(t, {}, { serializer: { serialize: (s) => s.toUpperCase(), deserialize: (s) => `<${s}>` } });
  upper.set('k', 'abc');
  assert.equal(upper.get('k'), '<ABC>');
  assert.throws(() => fresh(t, {}, { serializer: 'yaml' }), { code: 'ERR_INVALID_ARG_VALUE' });
});

test("oversize: 'skip' leaves a too-large value out (and its key's old value) instead of throwing", async (t) => {
  const plain = fresh(t);
  const big = 'x'.repeat(1000);
  assert.throws(() => plain.set('k', big), { code: 'ERR_SHM_VALUE_TOO_LARGE' });
  plain.set('k', 'small');
  plain.set('k', big, { oversize: 'skip' });
  assert.equal(plain.has('k'), false, 'the old value is gone too, as lru-cache does for maxEntrySize');
  const skipping = SharedLRU.open(plain.name, { oversize: 'skip' });
  t.after(() => skipping.close());
  assert.equal(skipping.set('k', big), skipping);
  assert.equal(skipping.add('k2', big), false);
  assert.equal(await skipping.fetch('k3', async () => big), big, 'fetch still returns the loaded value');
  assert.equal(skipping.has('k3'), false);
});

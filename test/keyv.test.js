'use strict';
// The keyv store (`shm-typed-lru/keyv`) under keyv and under cache-manager 7: cache-manager's
// wrap() in two real processes sharing one cache (the second gets the first's value without
// running its function), with small values in fixed records and with 60 KB JSON values in the
// store's default cache (a byte budget), values keyv serializes, time to live, namespaces, the
// store's own iterator, and a value too large for the cache reaching its caller as an error.
// keyv's compliance suite runs under vitest (vitest/keyv.test.mjs). Children run this same file
// in a role named by SHMLRU_KEYV_ROLE.

const path = require('node:path');

const skip = require('../test-support/dev-deps').devSkip('keyv', 'cache-manager');
if (skip) {
  require('node:test').test('the keyv store under keyv and cache-manager', { skip }, () => {});
  return;
}

const PKG = path.resolve(__dirname, '..');
const { KeyvSharedLRU } = require('shm-typed-lru/keyv');
const { SharedLRU } = require(PKG);
const { Keyv } = require('keyv');
const { createCache } = require('cache-manager');

if (process.env.SHMLRU_KEYV_ROLE) {
  runRole(process.env.SHMLRU_KEYV_NAME, process.env.SHMLRU_KEYV_ROLE);
} else {
  defineTests();
}

// A JSON document of some 60 KB: `rows` rows, each naming who made it.
function bigReport(by, rows = 500) {
  return {
    by,
    pid: process.pid,
    rows: Array.from({ length: rows }, (_, i) => ({ id: i, name: `row ${i} by ${by}`, text: 'lorem ipsum dolor sit amet '.repeat(4) })),
  };
}

async function runRole(name, tag) {
  // `big-*` roles use the store's default cache (a byte budget) and a 60 KB value; the others
  // a cache of 1 KiB records and a small one.
  const big = tag.startsWith('big-');
  const store = big ? new KeyvSharedLRU({ name }) : new KeyvSharedLRU({ name, capacity: 256, recordSize: 1024 });
  if (tag === 'big-set') {
    // keyv itself, no cache-manager: the parent reads what this process stored.
    await new Keyv({ store, throwOnErrors: true }).set('doc', bigReport(tag));
    process.send({ stored: true }, () => process.disconnect());
    return;
  }
  const cache = createCache({ stores: [new Keyv({ store, throwOnErrors: true })] });
  let ran = false;
  const value = await cache.wrap(
    'report',
    async () => {
      ran = true;
      await new Promise((r) => setTimeout(r, 50));
      return big ? bigReport(tag) : { by: tag, pid: process.pid, rows: [1, 2, 3] };
    },
    60_000,
  );
  process.send({ value, ran }, () => process.disconnect());
}

function inChild(name, tag) {
  const { answerFrom } = require('../test-support/helpers');
  return answerFrom(__filename, { SHMLRU_KEYV_ROLE: tag, SHMLRU_KEYV_NAME: name });
}

function defineTests() {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');

  let seq = 0;
  function freshName(t) {
    const name = `/shmlru-keyv-${process.pid}-${++seq}`;
    SharedLRU.destroy(name);
    t.after(() => SharedLRU.destroy(name));
    return name;
  }

  test('cache-manager wrap() across two processes: the second gets the first one\'s value', async (t) => {
    const name = freshName(t);
    const first = await inChild(name, 'first');
    assert.equal(first.ran, true);
    assert.deepEqual(first.value.rows, [1, 2, 3]);
    const second = await inChild(name, 'second');
    assert.equal(second.ran, false, 'the second process did not run its function');
    assert.deepEqual(second.value, first.value);
    // And this process sees it through cache-manager too.
    const here = createCache({ stores: [new Keyv({ store: new KeyvSharedLRU({ name, capacity: 256, recordSize: 1024 }) })] });
    assert.deepEqual(await here.get('report'), first.value);
  });

  test('cache-manager wrap() and keyv with 60 KB JSON values across processes, in the store\'s default cache', async (t) => {
    const name = freshName(t);
    const first = await inChild(name, 'big-first');
    assert.equal(first.ran, true);
    assert.ok(JSON.stringify(first.value).length > 60_000, `${JSON.stringify(first.value).length} bytes of JSON`);
    const second = await inChild(name, 'big-second');
    assert.equal(second.ran, false, 'the second process did not run its function');
    assert.deepEqual(second.value, first.value);

    const store = new KeyvSharedLRU({ name });
    assert.equal(store.cache.maxBytes, 64 * 1024 * 1024, 'the default budget: 64 MiB');
    assert.equal(store.cache.maxValueSize, 1024 * 1024, 'the default largest entry: 1 MiB');
    assert.ok(store.cache.stats().bytesLive > 60_000);
    const here = createCache({ stores: [new Keyv({ store })] });
    assert.deepEqual(await here.get('report'), first.value);

    assert.deepEqual(await inChild(name, 'big-set'), { stored: true });
    const doc = await new Keyv({ store }).get('doc');
    assert.equal(doc.by, 'big-set');
    assert.deepEqual(doc, JSON.parse(JSON.stringify({ ...bigReport('big-set'), pid: doc.pid })));
    await store.disconnect();
  });

  test('a value above maxValueSize reaches its caller as an error, and leaves no stale value behind', async (t) => {
    const name = freshName(t);
    const store = new KeyvSharedLRU({ name, maxBytes: 4 * 1024 * 1024, maxValueSize: 64 * 1024 });
    const small = JSON.stringify({ value: 'small' });
    const large = JSON.stringify({ value: bigReport('large', 1000) }); // some 120 KB
    await store.set('k', small);
    assert.equal(await store.get('k'), small);
    await assert.rejects(store.set('k', large), { code: 'ERR_SHM_VALUE_TOO_LARGE' });
    assert.equal(await store.get('k'), undefined, 'the older value, now stale, is gone');
    await store.set('a', small);
    await assert.rejects(store.setMany([{ key: 'a', value: large }, { key: 'b', value: small }]), { code: 'ERR_SHM_VALUE_TOO_LARGE' });
    assert.equal(await store.get('a'), undefined);
    assert.equal(await store.get('b'), small, 'the other entries of setMany are stored');

    // keyv with throwOnErrors rejects, and so does cache-manager's wrap() over it.
    const strict = new Keyv({ store, throwOnErrors: true });
    await assert.rejects(strict.set('doc', bigReport('x', 1000)), { code: 'ERR_SHM_VALUE_TOO_LARGE' });
    const cm = createCache({ stores: [strict] });
    let ran = 0;
    await assert.rejects(
      cm.wrap('doc', async () => {
        ran++;
        return bigReport('wrapped', 1000);
      }),
      { code: 'ERR_SHM_VALUE_TOO_LARGE' },
    );
    assert.equal(ran, 1);
    // Plain keyv reports store errors as its 'error' event and resolves false.
    const plain = new Keyv({ store });
    const errors = [];
    plain.on('error', (e) => errors.push(e));
    assert.equal(await plain.set('doc', bigReport('y', 1000)), false);
    assert.deepEqual(errors.map((e) => e.code), ['ERR_SHM_VALUE_TOO_LARGE']);
    // A value that fits is cached as ever.
    await strict.set('doc', { fits: true });
    assert.deepEqual(await strict.get('doc'), { fits: true });
    await store.disconnect();
  });

  test('keyv over the store: values, ttl, namespaces, iterator', async (t) => {
    const name = freshName(t);
    const store = new KeyvSharedLRU({ name, capacity: 64, recordSize: 512 });
    const a = new Keyv({ store, namespace: 'a' });
    const b = new Keyv({ store: new KeyvSharedLRU({ cache: SharedLRU.open(name, { serializer: 'json' }) }), namespace: 'b' });
    await a.set('k', { n: 1 });
    await b.set('k', [2]);
    await a.set('short', 'x', 50);
    assert.deepEqual(await a.get('k'), { n: 1 });
    assert.deepEqual(await b.get('k'), [2]);
    assert.ok(store.cache.getRemainingTTL('a:short') <= 50);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(await a.get('short'), undefined);
    const keys = [];
    for await (const [k] of store.iterator('a')) keys.push(k);
    assert.deepEqual(keys, ['a:k']);
    await a.clear();
    assert.equal(await a.get('k'), undefined);
    assert.deepEqual(await b.get('k'), [2], "clear() keeps other namespaces' keys");
    await store.disconnect();
  });
}

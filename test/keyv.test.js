'use strict';
// The keyv store (`shm-typed-lru/keyv`) under keyv and under cache-manager 7: cache-manager's
// wrap() in two real processes sharing one cache (the second gets the first's value without
// running its function), values keyv serializes, time to live, namespaces and the store's own
// iterator. keyv's compliance suite runs under vitest (vitest/keyv.test.mjs). Children run this
// same file in a role named by SHMLRU_KEYV_ROLE.

const path = require('node:path');
const { fork } = require('node:child_process');

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

async function runRole(name, tag) {
  const store = new KeyvSharedLRU({ name, capacity: 256, recordSize: 1024 });
  const cache = createCache({ stores: [new Keyv({ store })] });
  let ran = false;
  const value = await cache.wrap(
    'report',
    async () => {
      ran = true;
      await new Promise((r) => setTimeout(r, 50));
      return { by: tag, pid: process.pid, rows: [1, 2, 3] };
    },
    60_000,
  );
  process.send({ value, ran }, () => process.disconnect());
}

function inChild(name, tag) {
  return new Promise((resolve, reject) => {
    const c = fork(__filename, [], {
      env: { ...process.env, SHMLRU_KEYV_ROLE: tag, SHMLRU_KEYV_NAME: name },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let got;
    c.on('message', (m) => (got = m));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`child exited ${code}`))));
  });
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

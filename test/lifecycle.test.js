'use strict';
// A cache's life across real processes: many of them calling SharedLRU.openOrCreate on one name
// at the same instant, and a cache destroyed while processes use it (theirs keeps working; the
// next openOrCreate makes a new one). The children run this same file in the role named by
// SHMLRU_TEST_ROLE.

const path = require('node:path');
const { fork } = require('node:child_process');

const PKG = path.resolve(__dirname, '..');
const { SharedLRU } = require(PKG);

// What every process passes to openOrCreate.
const OPTIONS = { capacity: 4096, recordSize: 64, shards: 4 };

if (process.env.SHMLRU_TEST_ROLE) {
  runRole(process.env.SHMLRU_TEST_ROLE, process.env.SHMLRU_TEST_NAME, Number(process.env.SHMLRU_TEST_ID));
} else {
  defineTests();
}

// ---- children ----

function runRole(role, name, id) {
  switch (role) {
    // On 'go', opens or creates the cache, writes its own key and bumps a shared counter; stays
    // attached until 'bye'.
    case 'join': {
      let cache;
      process.on('message', (m) => {
        if (m.type === 'go') {
          cache = SharedLRU.openOrCreate(name, OPTIONS);
          cache.set(`joined:${id}`, `process ${id}`);
          cache.incr('joiners');
          process.send({ type: 'joined', id });
        } else if (m.type === 'bye') {
          cache.close();
          process.disconnect();
        }
      });
      process.send({ type: 'ready', id });
      break;
    }
    // Opens the cache, then writes and reads back keys of its own until 'stop'; reports its
    // operations and what it sees of `old` (written before the destroy) and `new` (written to
    // the cache made after it).
    case 'keep-using': {
      const cache = SharedLRU.open(name);
      let ops = 0;
      let stopped = false;
      let bad = null;
      const work = () => {
        if (stopped) return;
        for (let i = 0; i < 200 && bad === null; i++, ops++) {
          const k = `own:${id}:${ops % 100}`;
          cache.set(k, String(ops));
          if (cache.get(k) !== String(ops)) bad = `${k} read back as ${cache.get(k)}`;
        }
        setImmediate(work);
      };
      process.on('message', (m) => {
        if (m.type === 'go') work();
        if (m.type === 'stop') {
          stopped = true;
          const report = { type: 'report', id, ops, bad, old: cache.get('old'), hasNew: cache.has('new'), ok: cache.check().ok };
          cache.close();
          process.send(report, () => process.disconnect());
        }
      });
      process.send({ type: 'ready', id });
      break;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

// ---- the tests ----

function defineTests() {
  const { test, afterEach } = require('node:test');
  const assert = require('node:assert/strict');
  const { uniqueNames } = require('../test-support/helpers');

  const uniqueName = uniqueNames('life');

  // Children still running when a test ends (it failed) are killed, so that a failure is
  // reported instead of waiting on them.
  const running = new Set();
  afterEach(() => {
    for (const c of running) c.kill('SIGKILL');
    running.clear();
  });

  function start(role, name, id) {
    const env = { ...process.env, SHMLRU_TEST_ROLE: role, SHMLRU_TEST_NAME: name, SHMLRU_TEST_ID: String(id) };
    delete env.NODE_TEST_CONTEXT;
    const child = fork(__filename, [], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    running.add(child);
    child.ended = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      });
    });
    return child;
  }

  function nextMessage(child, type) {
    return new Promise((resolve, reject) => {
      const onMsg = (m) => {
        if (m && m.type === type) {
          child.off('message', onMsg);
          resolve(m);
        }
      };
      child.on('message', onMsg);
      child.ended.then(({ code }) => {
        setTimeout(() => reject(new Error(`child exited (${code}) before sending ${type}`)), 200);
      });
    });
  }

  test('many processes calling openOrCreate at once share one new cache', async () => {
    const kids = 8;
    for (let round = 0; round < 3; round++) {
      const name = uniqueName(`race${round}`);
      const children = Array.from({ length: kids }, (_, id) => start('join', name, id));
      await Promise.all(children.map((c) => nextMessage(c, 'ready')));
      // All at once: every child's openOrCreate starts on the same message.
      const joined = children.map((c) => nextMessage(c, 'joined'));
      for (const c of children) c.send({ type: 'go' });
      await Promise.all(joined);
      // One cache, holding what every process wrote.
      const cache = SharedLRU.open(name);
      for (let id = 0; id < kids; id++) assert.equal(cache.get(`joined:${id}`), `process ${id}`, `round ${round}`);
      assert.equal(cache.get('joiners'), String(kids), `round ${round}: every increment counted`);
      assert.equal(cache.size, kids + 1);
      assert.equal(cache.check().ok, true);
      for (const c of children) c.send({ type: 'bye' });
      const ends = await Promise.all(children.map((c) => c.ended));
      assert.deepEqual(ends.map((e) => e.code), Array(kids).fill(0));
      cache.close();
    }
  });

  test('destroying a cache in use is safe, and the next openOrCreate makes a new one', async () => {
    const name = uniqueName('destroy');
    const old = SharedLRU.openOrCreate(name, OPTIONS);
    old.set('old', 'before');
    const children = [0, 1].map((id) => start('keep-using', name, id));
    await Promise.all(children.map((c) => nextMessage(c, 'ready')));
    for (const c of children) c.send({ type: 'go' });
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Destroyed while two processes (and this one) are using it.
    assert.equal(SharedLRU.destroy(name), true);
    assert.throws(() => SharedLRU.open(name), { code: 'ERR_SHM_NOT_FOUND' });
    // The next openOrCreate makes a new, empty cache under the name.
    const fresh = SharedLRU.openOrCreate(name, OPTIONS);
    assert.equal(fresh.size, 0);
    assert.equal(fresh.get('old'), undefined);
    fresh.set('new', 'after');
    await new Promise((resolve) => setTimeout(resolve, 100));

    // The processes that had it kept working on the old one and never saw the new one.
    const reports = children.map((c) => nextMessage(c, 'report'));
    for (const c of children) c.send({ type: 'stop' });
    for (const r of await Promise.all(reports)) {
      assert.equal(r.bad, null, `process ${r.id}`);
      assert.ok(r.ops > 0, `process ${r.id} did work`);
      assert.equal(r.old, 'before', `process ${r.id}`);
      assert.equal(r.hasNew, false, `process ${r.id}`);
      assert.equal(r.ok, true, `process ${r.id}`);
    }
    assert.deepEqual((await Promise.all(children.map((c) => c.ended))).map((e) => e.code), [0, 0]);
    // So did this process's old handle.
    assert.equal(old.get('old'), 'before');
    assert.equal(old.has('new'), false);
    assert.equal(old.check().ok, true);
    old.close();
    // And a process that opens the name now gets the new cache.
    const again = SharedLRU.openOrCreate(name, OPTIONS);
    assert.equal(again.get('new'), 'after');
    again.close();
    fresh.close();
  });
}

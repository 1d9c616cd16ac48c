'use strict';
// The two-host tests of shm-typed-lru/tiered, run against a single redis-server
// (test/tiered.test.js) and against a Redis Cluster (test/tiered-cluster.test.js) alike.
// `ctx()` gives { hosts: a Hosts, raw: an ioredis client (or Cluster) playing any other Redis
// user }. Run as a file by itself it does nothing.

const assert = require('node:assert/strict');
const { eventually, total, holderOf, valid, versionOf, sleep } = require('./tiered-hosts');

function twoHostSuite(test, ctx, skip) {
  test('a value set on host A is read on host B, and B drops its L1 copy when A overwrites it', { skip }, async () => {
    const h = await ctx().hosts.twoHosts('ab');
    try {
      const [a0] = h.A;
      const [b0, b1] = h.B;
      await a0.call('set', { key: 'k', value: 'v1' });
      assert.equal(await b0.call('get', { key: 'k' }), 'v1');
      // The fill is shared by the machine: B's other process hits it in L1. (A process trusts
      // L1 only while the machine's feed is provably up; on a loaded machine a late heartbeat
      // can send one read to Redis, so the hit is looked for over a few reads.)
      await eventually("B's other process to hit the machine's L1", async () => {
        const before = await b1.call('stats');
        assert.equal(await b1.call('get', { key: 'k' }), 'v1');
        return (await b1.call('stats')).hits === before.hits + 1;
      });
      assert.equal(await b0.call('peekLocal', { key: 'k' }), true);

      await a0.call('set', { key: 'k', value: 'v2' });
      await eventually('B to read v2', async () => (await b1.call('get', { key: 'k' })) === 'v2');
      assert.equal(await b0.call('get', { key: 'k' }), 'v2');

      await a0.call('delete', { key: 'k' });
      await eventually('B to see the delete', async () => (await b0.call('get', { key: 'k' })) === undefined);
    } finally {
      await h.close();
    }
  });

  test('a write by another Redis client reaches both hosts, through one feed per host', { skip }, async () => {
    const { hosts, raw } = ctx();
    const h = await hosts.twoHosts('cli');
    try {
      await raw.set(`${h.prefix}k`, 'old');
      for (const p of h.all) assert.equal(await p.call('get', { key: 'k' }), 'old');
      for (const p of h.all) assert.equal(await p.call('peekLocal', { key: 'k' }), true);
      const applied = [await total(h.A, 'invalidations'), await total(h.B, 'invalidations')];
      await raw.set(`${h.prefix}k`, 'new');
      for (const p of h.all) {
        await eventually(`host process ${p.pid} to read the new value`, async () => (await p.call('get', { key: 'k' })) === 'new');
      }
      // Each host applied that write's invalidation once, by its feed's holder.
      await sleep(50);
      assert.equal(await total(h.A, 'invalidations'), applied[0] + 1);
      assert.equal(await total(h.B, 'invalidations'), applied[1] + 1);
      await holderOf(h.A);
      await holderOf(h.B);
      // Keys outside the prefix are not the tier's.
      await raw.set('elsewhere:k', 'x');
      assert.equal(await h.A[0].call('get', { key: 'elsewhere:k' }), undefined);
    } finally {
      await h.close();
    }
  });

  test('concurrent writers and readers on both hosts: every host ends on the last value', { skip }, async () => {
    const { hosts, raw } = ctx();
    const h = await hosts.twoHosts('race');
    try {
      const keys = ['k0', 'k1', 'k2', 'k3'];
      const [a0, a1] = h.A;
      const [b0, b1] = h.B;
      // Each key has one writer per host; both write increasing versions.
      const runs = await Promise.all([
        a0.call('writeLoop', { keys, ms: 1500, tag: 'A' }),
        b0.call('writeLoop', { keys, ms: 1500, tag: 'B' }),
        a1.call('readLoop', { keys, ms: 1600 }),
        b1.call('readLoop', { keys, ms: 1600 }),
      ]);
      const [versionsA, versionsB, readsA, readsB] = runs;
      assert.ok(versionsA > 10 && versionsB > 10, `writers made progress (${versionsA}, ${versionsB})`);
      assert.ok(readsA.reads > 0 && readsB.reads > 0);
      assert.deepEqual(readsA.bad, []);
      assert.deepEqual(readsB.bad, []);
      // The writes have stopped: once Redis's invalidations drain, every process reads what
      // Redis holds, from L1 or not.
      for (const key of keys) {
        const last = await raw.get(`${h.prefix}${key}`);
        assert.ok(valid(key, last));
        for (const p of h.all) {
          await eventually(`${p.pid} to read ${last}`, async () => (await p.call('get', { key })) === last, 3000);
        }
      }
      // And they keep reading it (no late stale fill lands afterwards).
      await sleep(100);
      for (const key of keys) {
        const last = await raw.get(`${h.prefix}${key}`);
        for (const p of h.all) assert.equal(await p.call('get', { key }), last);
      }
      const stats = await Promise.all(h.all.map((p) => p.call('stats')));
      assert.ok(stats.some((s) => s.hits > 0), 'L1 served some reads');
      assert.ok((await total(h.A, 'invalidations')) > 0 && (await total(h.B, 'invalidations')) > 0);
      assert.ok(versionOf(await raw.get(`${h.prefix}k0`)) >= 1);
    } finally {
      await h.close();
    }
  });

  test('a fill that read the old value does not land after that key was invalidated', { skip }, async () => {
    const h = await ctx().hosts.twoHosts('fill', { B: { holdFills: ['k'] } });
    try {
      const [a0] = h.A;
      const [b0, b1] = h.B;
      await a0.call('set', { key: 'k', value: 'old' });
      // b0 reads 'old' from Redis; its fill is held between the GET and the L1 write.
      const read = b0.call('get', { key: 'k' });
      await eventually('the fill to be held', async () => (await b0.call('held', { key: 'k' })) === 1);
      const inv0 = await total(h.B, 'invalidations');
      await a0.call('set', { key: 'k', value: 'new' });
      await eventually('B to handle the invalidation', async () => (await total(h.B, 'invalidations')) > inv0);
      // Now the stale fill goes on.
      await b0.call('release', { key: 'k' });
      assert.equal(await read, 'old', 'the read itself answers what it read');
      await b0.call('holdFills', { keys: [] });
      await b1.call('holdFills', { keys: [] });
      for (const p of [b0, b1]) assert.equal(await p.call('get', { key: 'k' }), 'new');
      assert.ok((await b0.call('stats')).fillsSkipped >= 1, 'the stale fill was refused');
    } finally {
      await h.close();
    }
  });

  test('fetch across both hosts runs the loader once', { skip }, async () => {
    const { hosts, raw } = ctx();
    const h = await hosts.twoHosts('fetch');
    try {
      const results = await Promise.all(
        h.all.flatMap((p) => [p.call('fetch', { key: 'f', value: 'loaded', delay: 300 }), p.call('fetch', { key: 'f', value: 'loaded', delay: 300 })]),
      );
      assert.equal(new Set(results).size, 1, `one value for all: ${results}`);
      assert.match(results[0], /^loaded@\d+$/);
      assert.equal(await total(h.all, 'loads'), 1);
      assert.equal(await raw.get(`${h.prefix}f`), results[0]);
      // Later fetches find the value.
      assert.equal(await h.B[1].call('fetch', { key: 'f', value: 'again', delay: 0 }), results[0]);
    } finally {
      await h.close();
    }
  });

  test('fetch renews its lease while the loader runs: a loader longer than leaseTtl runs once', { skip }, async () => {
    const { hosts, raw } = ctx();
    // Renewed every 200 ms (a stall of up to 400 ms on a busy machine is tolerated): without
    // renewal the lease lapses at 600 ms, long before the others ask.
    const h = await hosts.twoHosts('renew', { all: { leaseTtl: 600 } });
    try {
      const first = h.A[0].call('fetch', { key: 'r', value: 'slow', delay: 2000 });
      await eventually('A to hold the lease', async () => (await raw.get(`lease:${h.prefix}r`)) !== null);
      // Others ask once the lease has been renewed several times over.
      await sleep(1000);
      const others = [h.B[0], h.B[1], h.A[1]].map((p) => p.call('fetch', { key: 'r', value: 'second', delay: 0 }));
      const results = await Promise.all([first, ...others]);
      assert.equal(new Set(results).size, 1, `one value for all: ${results}`);
      assert.match(results[0], /^slow@/);
      assert.equal(await total(h.all, 'loads'), 1);
    } finally {
      await h.close();
    }
  });

  test('a loader that throws: every waiting caller rejects and nothing is cached', { skip }, async () => {
    const { hosts, raw } = ctx();
    const h = await hosts.twoHosts('fetchfail');
    try {
      const settled = await Promise.allSettled(h.all.map((p) => p.call('fetch', { key: 'f', value: 'x', delay: 300, fail: true })));
      for (const s of settled) {
        assert.equal(s.status, 'rejected');
        assert.match(s.reason.message, /loader failed in \d+/);
      }
      assert.equal(await total(h.all, 'loads'), 1);
      assert.equal(await raw.get(`${h.prefix}f`), null);
      for (const p of h.all) assert.equal(await p.call('peekLocal', { key: 'f' }), false);
      // The next fetch tries again.
      assert.match(await h.A[0].call('fetch', { key: 'f', value: 'ok', delay: 0 }), /^ok@/);
    } finally {
      await h.close();
    }
  });

  test('fetch: when the lease holder dies, a waiter takes over once its lease expires', { skip }, async () => {
    const { hosts, raw } = ctx();
    const h = await hosts.twoHosts('fetchdie', { all: { leaseTtl: 400 } });
    try {
      const [a0] = h.A;
      const [b0] = h.B;
      await a0.call('fetchForever', { key: 'f' });
      await eventually('A to hold the lease', async () => (await raw.get(`lease:${h.prefix}f`)) !== null);
      const waiting = b0.call('fetch', { key: 'f', value: 'rescued', delay: 0 });
      await sleep(100);
      a0.child.kill('SIGKILL');
      assert.match(await waiting, /^rescued@/);
      assert.equal((await b0.call('stats')).loads, 1);
    } finally {
      await h.close();
    }
  });
}

module.exports = { twoHostSuite };

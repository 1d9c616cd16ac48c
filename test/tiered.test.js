'use strict';
// TieredCache across real processes and a real redis-server (started here, on a free loopback
// port). Two "hosts" live on this machine: each is two forked processes sharing one L1 under
// its own name, and both talk to the one Redis, as two machines would. The children run this
// same file with TIERED_ROLE=host and answer requests over IPC. Skipped, saying why, when
// redis-server is not installed (but not in CI, where that is a failure).

const path = require('node:path');
const { fork } = require('node:child_process');

const ROLE = process.env.TIERED_ROLE;

if (ROLE === 'host') {
  runHost();
} else {
  runTests();
}

// ---- a host process: one TieredCache, driven by its parent ----

function runHost() {
  const { TieredCache } = require('shm-typed-lru/tiered');
  const cfg = JSON.parse(process.env.TIERED_CONFIG);
  const gates = new Map(); // key -> release functions of fills held by the beforeFill hook
  let holdFills = new Set(cfg.holdFills || []);
  const events = { down: 0, up: 0 };
  let tier;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const ops = {
    get: ({ key }) => tier.get(key),
    set: ({ key, value, ttl }) => tier.set(key, value, ttl === undefined ? undefined : { ttl }),
    delete: ({ key }) => tier.delete(key),
    peekLocal: ({ key }) => tier.local.peek(key) !== undefined,
    stats: () => ({ ...tier.stats(), events }),
    holdFills: ({ keys }) => {
      holdFills = new Set(keys);
    },
    held: ({ key }) => (gates.get(key) || []).length,
    release: ({ key }) => {
      for (const open of gates.get(key) || []) open();
      gates.delete(key);
    },
    fetch: ({ key, value, delay, fail }) =>
      tier.fetch(key, async () => {
        await sleep(delay);
        if (fail) throw new Error(`loader failed in ${process.pid}`);
        return `${value}@${process.pid}`;
      }),
    fetchForever: ({ key }) => {
      // The loader never settles: the process is killed while it holds the lease.
      tier.fetch(key, () => new Promise(() => {})).catch(() => {});
      return null;
    },
    // Reads `keys` in a loop for `ms`, checking each value's self-validation; reports counts.
    readLoop: async ({ keys, ms }) => {
      const end = Date.now() + ms;
      let reads = 0;
      let bad = [];
      while (Date.now() < end) {
        for (const key of keys) {
          const v = await tier.get(key);
          reads++;
          if (v !== undefined && !valid(key, v)) bad.push(v);
        }
        await sleep(0);
      }
      return { reads, bad: bad.slice(0, 5) };
    },
    // Writes increasing versions of `keys` for `ms`; reports the last version written.
    writeLoop: async ({ keys, ms, tag }) => {
      const end = Date.now() + ms;
      let version = 0;
      while (Date.now() < end) {
        version++;
        for (const key of keys) await tier.set(key, versioned(key, tag, version));
        await sleep(1);
      }
      return version;
    },
    // Calls get on `key` every few ms until told to stop; counts how each call ended and the
    // longest any took.
    probe: async ({ key, ms }) => {
      const end = Date.now() + ms;
      const out = { ok: 0, stale: 0, unavailable: 0, other: [], longest: 0 };
      while (Date.now() < end) {
        const t0 = Date.now();
        try {
          await tier.get(key);
          out.ok++;
        } catch (err) {
          if (err.code === 'ERR_TIERED_UNAVAILABLE') out.unavailable++;
          else out.other.push(`${err.code}: ${err.message}`);
        }
        out.longest = Math.max(out.longest, Date.now() - t0);
        await sleep(5);
      }
      return out;
    },
    close: async () => {
      await tier.close();
      setImmediate(() => process.exit(0));
      return null;
    },
  };

  process.on('message', async ({ id, op, args }) => {
    try {
      const value = await ops[op](args || {});
      process.send({ id, ok: true, value: value === undefined ? { undefined: true } : { value } });
    } catch (err) {
      process.send({ id, ok: false, error: { code: err.code, message: err.message } });
    }
  });

  TieredCache.connect({
    name: cfg.name,
    capacity: 1024,
    recordSize: 256,
    redis: cfg.url,
    prefix: cfg.prefix,
    staleIfError: cfg.staleIfError || 0,
    leaseTtl: cfg.leaseTtl,
    commandTimeout: 500,
    backoffMin: 20,
    backoffMax: 200,
    hooks: {
      beforeFill: async (key) => {
        if (!holdFills.has(key)) return;
        await new Promise((open) => {
          if (!gates.has(key)) gates.set(key, []);
          gates.get(key).push(open);
        });
      },
    },
  }).then(
    (t) => {
      tier = t;
      tier.on('down', () => events.down++);
      tier.on('up', () => events.up++);
      process.send({ ready: true });
    },
    (err) => {
      process.send({ ready: false, error: err.message });
      process.exit(1);
    },
  );
}

// A self-validating versioned value: the key, the writer's tag, the version, and a checksum of
// the three, so a torn or mixed-up value is recognised.
function versioned(key, tag, version) {
  const body = `${key}|${tag}|${version}`;
  return `${body}|${checksum(body)}`;
}

function checksum(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

function valid(key, v) {
  const parts = v.split('|');
  return parts.length === 4 && parts[0] === key && checksum(parts.slice(0, 3).join('|')) === parts[3];
}

function versionOf(v) {
  return Number(v.split('|')[2]);
}

// ---- the tests ----

function runTests() {
  const { test, before, after } = require('node:test');
  const assert = require('node:assert/strict');
  const { RedisServer, redisSkipReason } = require('../test-support/redis-server');

  const skip = redisSkipReason() || false;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let redis = null;
  let raw = null; // a plain ioredis client, playing any other Redis user
  const names = new Set();
  const children = new Set();
  let seq = 0;

  before(async () => {
    if (skip) return;
    redis = await RedisServer.start();
    const Redis = require('ioredis');
    raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    raw.on('error', () => {});
    await raw.connect();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (raw) raw.disconnect();
    if (redis) await redis.stop();
    const { TieredCache } = require('shm-typed-lru/tiered');
    for (const name of names) TieredCache.destroy(name);
  });

  // A host process: `call(op, args)` resolves to its answer or rejects with its error.
  function spawnHost(cfg) {
    const child = fork(__filename, [], {
      env: { ...process.env, TIERED_ROLE: 'host', TIERED_CONFIG: JSON.stringify({ url: redis.url, ...cfg }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    const pending = new Map();
    let next = 0;
    const ready = new Promise((resolve, reject) => {
      child.on('message', (m) => {
        if ('ready' in m) return m.ready ? resolve() : reject(new Error(m.error));
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.ok) p.resolve('undefined' in m.value ? undefined : m.value.value);
        else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      });
      child.on('exit', (code, signal) => {
        children.delete(child);
        const err = new Error(`host ${child.pid} exited (${code ?? signal})`);
        reject(err);
        for (const p of pending.values()) p.reject(err);
        pending.clear();
      });
    });
    const call = (op, args) =>
      new Promise((resolve, reject) => {
        if (!child.connected) return reject(new Error(`host ${child.pid} is gone`));
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, op, args });
      });
    return { child, ready, call, pid: child.pid };
  }

  // Two hosts of two processes each: { A: [a0, a1], B: [b0, b1], all, prefix }.
  async function twoHosts(tag, extra = {}) {
    const prefix = `t${seq++}-${tag}:`;
    const hosts = {};
    for (const h of ['A', 'B']) {
      const name = `/shmlru-test-${process.pid}-tiered-${tag}-${h}`;
      names.add(name);
      const cfg = { name, prefix, ...(extra[h] || {}), ...(extra.all || {}) };
      hosts[h] = [spawnHost(cfg), spawnHost(cfg)];
    }
    const all = [...hosts.A, ...hosts.B];
    await Promise.all(all.map((p) => p.ready));
    const close = () => Promise.all(all.map((p) => p.call('close').catch(() => {})));
    return { ...hosts, all, prefix, close };
  }

  // Polls `fn` until it returns true; fails with `what` after `ms`.
  async function eventually(what, fn, ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
      if (await fn()) return;
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  test('a value set on host A is read on host B, and B drops its L1 copy when A overwrites it', { skip }, async () => {
    const h = await twoHosts('ab');
    try {
      const [a0] = h.A;
      const [b0, b1] = h.B;
      await a0.call('set', { key: 'k', value: 'v1' });
      assert.equal(await b0.call('get', { key: 'k' }), 'v1');
      // The fill is shared by the machine: B's other process hits it in L1.
      const before = await b1.call('stats');
      assert.equal(await b1.call('get', { key: 'k' }), 'v1');
      assert.equal((await b1.call('stats')).hits, before.hits + 1);
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

  test('a write by another Redis client reaches both hosts', { skip }, async () => {
    const h = await twoHosts('cli');
    try {
      await raw.set(`${h.prefix}k`, 'old');
      for (const p of h.all) assert.equal(await p.call('get', { key: 'k' }), 'old');
      for (const p of h.all) assert.equal(await p.call('peekLocal', { key: 'k' }), true);
      await raw.set(`${h.prefix}k`, 'new');
      for (const p of h.all) {
        await eventually(`host process ${p.pid} to read the new value`, async () => (await p.call('get', { key: 'k' })) === 'new');
      }
      // Keys outside the prefix are not the tier's.
      await raw.set('elsewhere:k', 'x');
      assert.equal(await h.A[0].call('get', { key: 'elsewhere:k' }), undefined);
    } finally {
      await h.close();
    }
  });

  test('concurrent writers and readers on both hosts: every host ends on the last value', { skip }, async () => {
    const h = await twoHosts('race');
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
      assert.ok(stats.every((s) => s.invalidations > 0));
      assert.ok(versionOf(await raw.get(`${h.prefix}k0`)) >= 1);
    } finally {
      await h.close();
    }
  });

  test('a fill that read the old value does not land after that key was invalidated', { skip }, async () => {
    const h = await twoHosts('fill', { B: { holdFills: ['k'] } });
    try {
      const [a0] = h.A;
      const [b0, b1] = h.B;
      await a0.call('set', { key: 'k', value: 'old' });
      // b0 reads 'old' from Redis; its fill is held between the GET and the L1 write.
      const read = b0.call('get', { key: 'k' });
      await eventually('the fill to be held', async () => (await b0.call('held', { key: 'k' })) === 1);
      const inv0 = (await b0.call('stats')).invalidations;
      await a0.call('set', { key: 'k', value: 'new' });
      await eventually('B to handle the invalidation', async () => (await b0.call('stats')).invalidations > inv0);
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

  test('Redis killed and restarted: reads and writes fail fast, the tier reconnects and drops its L1', { skip }, async () => {
    const h = await twoHosts('crash', { A: { staleIfError: 60_000 } });
    try {
      const [a0, a1] = h.A;
      const [b0, b1] = h.B;
      await a0.call('set', { key: 'k', value: 'before' });
      for (const p of h.all) assert.equal(await p.call('get', { key: 'k' }), 'before');

      const probes = [a1.call('probe', { key: 'k', ms: 2500 }), b1.call('probe', { key: 'k', ms: 2500 })];
      await sleep(200);
      await redis.kill();
      for (const p of [a0, b0]) await eventually('the tier to notice', async () => (await p.call('stats')).connected === false);

      // A serves its L1 copy for up to staleIfError; B (staleIfError 0) refuses.
      assert.equal(await a0.call('get', { key: 'k' }), 'before');
      await assert.rejects(b0.call('get', { key: 'k' }), { code: 'ERR_TIERED_UNAVAILABLE' });
      // Writes reject, clearly, on both.
      await assert.rejects(a0.call('set', { key: 'k', value: 'lost?' }), { code: 'ERR_TIERED_UNAVAILABLE' });
      await assert.rejects(b0.call('delete', { key: 'k' }), { code: 'ERR_TIERED_UNAVAILABLE' });

      await sleep(300);
      await redis.restart(); // empty: 'k' is gone from Redis
      for (const p of h.all) {
        await eventually(`${p.pid} to reconnect`, async () => (await p.call('stats')).connected === true);
      }
      // The L1 copies from before the crash are not served: Redis has no 'k' now.
      for (const p of h.all) assert.equal(await p.call('get', { key: 'k' }), undefined);
      await b0.call('set', { key: 'k', value: 'after' });
      for (const p of h.all) {
        await eventually(`${p.pid} to read the new value`, async () => (await p.call('get', { key: 'k' })) === 'after');
      }

      const [pa, pb] = await Promise.all(probes);
      for (const pr of [pa, pb]) {
        assert.deepEqual(pr.other, []);
        // Every call settled; none waited for the restart (command timeout 500 ms).
        assert.ok(pr.longest < 2000, `a read took ${pr.longest} ms`);
        assert.ok(pr.ok > 0);
      }
      assert.ok(pb.unavailable > 0, 'B reported Redis unavailable while it was down');
      for (const p of h.all) {
        const s = await p.call('stats');
        assert.ok(s.events.down >= 1 && s.events.up >= 1, `down/up events: ${JSON.stringify(s.events)}`);
      }
    } finally {
      await h.close();
    }
  });

  test('fetch across both hosts runs the loader once', { skip }, async () => {
    const h = await twoHosts('fetch');
    try {
      const results = await Promise.all(
        h.all.flatMap((p) => [p.call('fetch', { key: 'f', value: 'loaded', delay: 300 }), p.call('fetch', { key: 'f', value: 'loaded', delay: 300 })]),
      );
      assert.equal(new Set(results).size, 1, `one value for all: ${results}`);
      assert.match(results[0], /^loaded@\d+$/);
      const loads = (await Promise.all(h.all.map((p) => p.call('stats')))).reduce((n, s) => n + s.loads, 0);
      assert.equal(loads, 1);
      assert.equal(await raw.get(`${h.prefix}f`), results[0]);
      // Later fetches find the value.
      assert.equal(await h.B[1].call('fetch', { key: 'f', value: 'again', delay: 0 }), results[0]);
    } finally {
      await h.close();
    }
  });

  test('a loader that throws: every waiting caller rejects and nothing is cached', { skip }, async () => {
    const h = await twoHosts('fetchfail');
    try {
      const settled = await Promise.allSettled(h.all.map((p) => p.call('fetch', { key: 'f', value: 'x', delay: 300, fail: true })));
      for (const s of settled) {
        assert.equal(s.status, 'rejected');
        assert.match(s.reason.message, /loader failed in \d+/);
      }
      const loads = (await Promise.all(h.all.map((p) => p.call('stats')))).reduce((n, s) => n + s.loads, 0);
      assert.equal(loads, 1);
      assert.equal(await raw.get(`${h.prefix}f`), null);
      for (const p of h.all) assert.equal(await p.call('peekLocal', { key: 'f' }), false);
      // The next fetch tries again.
      assert.match(await h.A[0].call('fetch', { key: 'f', value: 'ok', delay: 0 }), /^ok@/);
    } finally {
      await h.close();
    }
  });

  test('fetch: when the lease holder dies, a waiter takes over once its lease expires', { skip }, async () => {
    const h = await twoHosts('fetchdie', { all: { leaseTtl: 400 } });
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

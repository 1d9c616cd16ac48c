'use strict';
// TieredCache against a real Redis Cluster: three masters and three replicas, each a
// `redis-server --cluster-enabled yes` on a free loopback port, joined with `redis-cli
// --cluster create` (test-support/redis-server.js). The two-host tests run here as against one node;
// then the feed's connections per master, and a master's failover. Skipped, saying why, when
// redis-server is not installed (but not in CI, where that is a failure).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { RedisCluster, redisSkipReason } = require('../test-support/redis-server');
const { Hosts, eventually, holderOf, sleep } = require('./tiered-hosts');
const { twoHostSuite } = require('./tiered-suite');
const { slotOf } = require('../lib/tiered/slots');

const skip = redisSkipReason() || false;
let cluster = null;
let raw = null; // an ioredis Cluster client, playing any other Redis user
let hosts = null;

before(async () => {
  if (skip) return;
  cluster = await RedisCluster.start({ masters: 3, replicas: 1 });
  hosts = new Hosts({ cluster: cluster.seeds.slice(0, 3) });
  const Redis = require('ioredis');
  raw = new Redis.Cluster(cluster.seeds, { lazyConnect: true, clusterRetryStrategy: () => 100 });
  raw.on('error', () => {});
  await raw.connect();
});

after(async () => {
  if (hosts) hosts.killAll();
  if (raw) raw.disconnect();
  if (cluster) await cluster.stop();
  if (hosts) hosts.destroyAll();
});

twoHostSuite(test, () => ({ hosts, raw }), skip);

function inRanges(slot, ranges) {
  return ranges.some((r) => {
    const [from, to] = r.split('-').map(Number);
    return slot >= from && slot <= (to === undefined ? from : to);
  });
}

test('one feed connection per master per machine, whatever the processes', { skip }, async () => {
  const prefix = `t${hosts.seq++}-conns:`;
  const cfg = { name: hosts.name('conns', 'M'), prefix };
  const procs = [0, 1, 2, 3].map(() => hosts.spawn(cfg));
  try {
    await Promise.all(procs.map((p) => p.ready));
    await holderOf(procs);
    const Redis = require('ioredis');
    for (const { node } of await cluster.masters()) {
      const c = new Redis(node.url);
      const list = await c.client('LIST');
      c.disconnect();
      const feeds = list.split('\n').filter((l) => /name=shm-tiered:\d+:feed/.test(l) && l.includes('sub=1'));
      assert.equal(feeds.length, 1, `master ${node.addr}: ${feeds.length} feed connections`);
    }
  } finally {
    await Promise.all(procs.map((p) => p.call('close').catch(() => {})));
  }
});

test("a master fails over: only its slots' L1 copies are distrusted, and writes to the promoted replica are seen", { skip }, async () => {
  const prefix = `t${hosts.seq++}-failover:`;
  const cfg = { name: hosts.name('failover', 'M'), prefix, capacity: 2048 };
  const procs = [hosts.spawn(cfg), hosts.spawn(cfg)];
  try {
    await Promise.all(procs.map((p) => p.ready));
    const keys = Array.from({ length: 90 }, (_, i) => `k${i}`);
    for (const k of keys) await raw.set(prefix + k, `v-${k}`);
    await sleep(50);
    for (const k of keys) assert.equal(await procs[0].call('get', { key: k }), `v-${k}`);

    const masters = await cluster.masters();
    const victim = masters[0];
    const lost = keys.filter((k) => inRanges(slotOf(prefix + k), victim.ranges));
    const kept = keys.filter((k) => !lost.includes(k));
    assert.ok(lost.length > 10 && kept.length > 20, `keys spread over the masters (${lost.length} on the victim)`);

    await victim.node.kill();
    await eventually('the tier to see the master gone', async () => (await procs[1].call('stats')).connected === false, 5000);
    // The other masters' keys are still L1 hits on both processes.
    for (const p of procs) {
      const h0 = (await p.call('stats')).hits;
      for (const k of kept) assert.equal(await p.call('get', { key: k }), `v-${k}`);
      assert.equal((await p.call('stats')).hits - h0, kept.length, 'every read of a surviving master key was an L1 hit');
    }
    // The victim's keys are not served from L1 (their invalidations cannot arrive).
    for (const p of procs) {
      const h0 = (await p.call('stats')).hits;
      for (const k of lost.slice(0, 5)) await p.call('get', { key: k }).catch(() => {});
      assert.equal((await p.call('stats')).hits, h0);
    }

    // A replica is promoted; the feed subscribes to it and the slots come back.
    await cluster.waitOk(30_000);
    for (const p of procs) await eventually(`${p.pid} to reconnect`, async () => (await p.call('stats')).connected === true, 15_000);
    const target = lost[0];
    await raw.set(prefix + target, 'after-failover');
    for (const p of procs) await eventually(`${p.pid} to read the write made on the promoted replica`, async () => (await p.call('get', { key: target })) === 'after-failover', 5000);
    // Refilled from the new master, then invalidated by it.
    for (const k of lost.slice(1, 4)) await procs[0].call('get', { key: k });
    await raw.set(prefix + lost[1], 'again');
    for (const p of procs) await eventually('the new master to invalidate', async () => (await p.call('get', { key: lost[1] })) === 'again', 5000);
    // The surviving masters' copies stayed in L1 all along.
    for (const k of kept) assert.equal(await procs[1].call('peekLocal', { key: k }), true, `${k} kept`);

    // The old master comes back (as a replica of its successor).
    await victim.node.start();
    await cluster.waitOk(30_000);
  } finally {
    await Promise.all(procs.map((p) => p.call('close').catch(() => {})));
  }
});

'use strict';
// Benchmark of shm-typed-lru/tiered against a throwaway redis-server on loopback (Debian's
// redis-server, started here, like the tests do). Host A is this process; host B is a forked
// child with its own L1, both on the one Redis. Reports:
//   1. an L1 hit through TieredCache.get against a Redis GET round trip (ioredis), and the ratio;
//   2. invalidation latency: host A's set starts -> host B's L1 copy is gone (p50, p99);
//   3. the L1 hit ratio of a Zipf(1) read workload with 1% writes, run on both hosts at once.
//
//   node bench/tiered.js [--quick]      (about 10 s; --quick: a smoke test)

const path = require('node:path');
const { fork } = require('node:child_process');

const QUICK = process.argv.includes('--quick');
const L1_ENTRIES = 2_000;
const KEYS = 10_000; // the Zipf workload's key space: five times what an L1 holds
const ZIPF_OPS = QUICK ? 5_000 : 40_000;
const WRITE_SHARE = 0.01;

function zipfSampler(n, s, rand) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] /= sum;
  return () => {
    const u = rand();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

// A small seeded generator, so both hosts' runs are repeatable.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function zipfRun(tier, seed) {
  const rand = mulberry32(seed);
  const next = zipfSampler(KEYS, 1.0, rand);
  const before = tier.stats();
  for (let i = 0; i < ZIPF_OPS; i++) {
    const key = `z${next()}`;
    if (rand() < WRITE_SHARE) await tier.set(key, `v${i}-${seed}`);
    else await tier.get(key);
  }
  const after = tier.stats();
  return { hits: after.hits - before.hits, misses: after.misses - before.misses };
}

function options(name, url) {
  return { name, capacity: L1_ENTRIES, recordSize: 128, redis: url, prefix: 'bench:' };
}

// ---- host B ----

async function hostB() {
  const { TieredCache } = require('shm-typed-lru/tiered');
  const { name, url } = JSON.parse(process.env.TIERED_BENCH);
  const tier = await TieredCache.connect(options(name, url));
  process.on('message', async (m) => {
    if (m.op === 'get') process.send({ id: m.id, value: await tier.get(m.key) });
    if (m.op === 'zipf') process.send({ id: m.id, value: await zipfRun(tier, m.seed) });
    if (m.op === 'close') {
      await tier.close();
      process.send({ id: m.id, value: null });
      process.exit(0);
    }
  });
  process.send({ ready: true });
}

// ---- host A, the driver ----

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function fmtNs(ns) {
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`;
}

async function main() {
  const { RedisServer, findRedisServer } = require(path.join(__dirname, '..', 'test-support', 'redis-server'));
  if (findRedisServer() === null) {
    console.error('bench/tiered.js needs redis-server (apt-get install redis-server)');
    process.exit(2);
  }
  const { TieredCache } = require('shm-typed-lru/tiered');
  const { SharedLRU } = require('..');
  const Redis = require('ioredis');

  const redis = await RedisServer.start();
  const nameA = `/shmlru-bench-${process.pid}-A`;
  const nameB = `/shmlru-bench-${process.pid}-B`;
  let child = null;
  try {
    const a = await TieredCache.connect(options(nameA, redis.url));
    const raw = new Redis(redis.url);

    child = fork(__filename, [], { env: { ...process.env, TIERED_BENCH: JSON.stringify({ name: nameB, url: redis.url }) } });
    const pending = new Map();
    let seq = 0;
    await new Promise((resolve) => {
      child.on('message', (m) => {
        if (m.ready) return resolve();
        pending.get(m.id)(m.value);
        pending.delete(m.id);
      });
    });
    const ask = (op, extra) =>
      new Promise((resolve) => {
        const id = seq++;
        pending.set(id, resolve);
        child.send({ op, id, ...extra });
      });

    console.log(`shm-typed-lru/tiered on ${require('node:os').cpus()[0].model.trim()}, node ${process.version}, redis-server on loopback`);

    // 1. L1 hit against a Redis round trip.
    const HOT = 100;
    for (let i = 0; i < HOT; i++) await a.set(`h${i}`, 'x'.repeat(64));
    await new Promise((r) => setTimeout(r, 50)); // let the writes' own invalidations pass
    for (let i = 0; i < HOT; i++) await a.get(`h${i}`); // fills
    const hitOps = QUICK ? 20_000 : 200_000;
    const rttOps = QUICK ? 2_000 : 20_000;
    const runs = QUICK ? 1 : 3;
    let bestHit = Infinity;
    let bestRtt = Infinity;
    for (let r = 0; r < runs; r++) {
      const before = a.stats().hits;
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < hitOps; i++) await a.get(`h${i % HOT}`);
      const hitNs = Number(process.hrtime.bigint() - t0) / hitOps;
      if (a.stats().hits - before !== hitOps) throw new Error('the hot keys were not all L1 hits');
      t0 = process.hrtime.bigint();
      for (let i = 0; i < rttOps; i++) await raw.get(`bench:h${i % HOT}`);
      const rttNs = Number(process.hrtime.bigint() - t0) / rttOps;
      bestHit = Math.min(bestHit, hitNs);
      bestRtt = Math.min(bestRtt, rttNs);
    }
    console.log(`\n1. read of a 64-byte value (best of ${runs} runs)`);
    console.log(`   TieredCache.get, L1 hit     ${fmtNs(bestHit).padStart(10)}/op`);
    console.log(`   Redis GET round trip        ${fmtNs(bestRtt).padStart(10)}/op   (ioredis, awaited one at a time)`);
    console.log(`   ratio                       ${(bestRtt / bestHit).toFixed(1).padStart(10)}x   (target >= 20x)`);

    // 2. Invalidation latency, A's write -> B's L1 copy gone. This process watches B's L1
    // directly (it is shared memory), spinning, while B's own process handles its feed.
    const watchB = SharedLRU.open(nameB);
    const samples = [];
    const N = QUICK ? 50 : 400;
    for (let i = 0; i < N; i++) {
      const key = `inv${i % 20}`;
      await a.set(key, `v${i}`);
      await new Promise((r) => setTimeout(r, 2)); // let that write's own invalidation reach B
      await ask('get', { key });
      if (!watchB.has(key)) continue; // B did not keep a copy (an invalidation raced): skip
      const t0 = process.hrtime.bigint();
      const write = a.set(key, `w${i}`);
      const deadline = Date.now() + 1000;
      while (watchB.has(key) && Date.now() < deadline);
      samples.push(Number(process.hrtime.bigint() - t0));
      await write;
    }
    watchB.close();
    samples.sort((x, y) => x - y);
    console.log(`\n2. invalidation latency, host A set() issued -> host B's L1 copy gone (${samples.length} samples)`);
    console.log(`   p50 ${fmtNs(percentile(samples, 0.5))}   p99 ${fmtNs(percentile(samples, 0.99))}   max ${fmtNs(samples[samples.length - 1])}`);

    // 3. Zipf hit ratio over two hosts.
    const pipe = raw.pipeline();
    for (let i = 0; i < KEYS; i++) pipe.set(`bench:z${i}`, `v${i}`);
    await pipe.exec();
    await new Promise((r) => setTimeout(r, 100));
    const [ra, rb] = await Promise.all([zipfRun(a, 1), ask('zipf', { seed: 2 })]);
    const ratio = (r) => ((100 * r.hits) / (r.hits + r.misses)).toFixed(1);
    const both = { hits: ra.hits + rb.hits, misses: ra.misses + rb.misses };
    console.log(`\n3. Zipf(1) over ${KEYS} keys, L1 of ${L1_ENTRIES} entries per host, ${ZIPF_OPS} ops per host, ${WRITE_SHARE * 100}% writes`);
    console.log(`   L1 hit ratio: host A ${ratio(ra)}%, host B ${ratio(rb)}%, both ${ratio(both)}%`);

    await ask('close');
    child = null;
    raw.disconnect();
    await a.close();
  } finally {
    if (child) child.kill('SIGKILL');
    await redis.stop();
    TieredCache.destroy(nameA);
    TieredCache.destroy(nameB);
  }
}

if (process.env.TIERED_BENCH) {
  hostB().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

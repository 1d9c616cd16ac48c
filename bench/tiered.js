'use strict';
// Benchmark of shm-typed-lru/tiered against throwaway redis-servers on loopback (Debian's
// redis-server, started here, like the tests do). Host A is this process; host B is a forked
// child with its own L1, both on the one Redis. Reports:
//   1. an L1 hit through TieredCache.get against a Redis GET round trip (ioredis), and the ratio;
//   2. invalidation latency: host A's set starts -> host B's L1 copy is gone (p50, p99), on one
//      Redis and on a 3-master Redis Cluster;
//   3. the L1 hit ratio of a Zipf(1) read workload with 1% writes, run on both hosts at once;
//   4. a rolling restart of N worker processes under read load: the L1 hit ratio through it,
//      against the tier of a feed per process (build 9670cd6, loaded from git into a temporary directory);
//   5. Redis connections and invalidation messages per machine for 1, 4 and 16 processes, the
//      same against that tier;
//   6. the feed's hand-over: a holder SIGKILLed (takeover) and one SIGTERMed (hand-over).
//
//   node bench/tiered.js [--quick]      (a minute or two; --quick: a smoke test)
//   TIERED_BENCH_WORKERS=16 node bench/tiered.js   (rolling restart of 16 workers; default 8)

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

function options(name, redis) {
  return { name, capacity: L1_ENTRIES, recordSize: 128, redis, prefix: 'bench:' };
}

const os = require('node:os');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');

// The build the tier is compared with: the last one whose processes each held their own
// invalidation connection (SHM_TIERED_BASE names another git revision).
const BASE_REV = process.env.SHM_TIERED_BASE || '9670cd6';

// The baseline's tier, in a temporary directory: its lib/tiered.js and lib/tiered/*
// from git, on this checkout's SharedLRU and ioredis. Null when git or the revision is missing.

function baselineDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shm-tiered-base-'));
  try {
    const show = (f) => execFileSync('git', ['show', `${BASE_REV}:${f}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    fs.mkdirSync(path.join(dir, 'lib', 'tiered'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'lib', 'tiered.js'), show('lib/tiered.js'));
    const files = execFileSync('git', ['ls-tree', '--name-only', BASE_REV, 'lib/tiered/'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n');
    for (const f of files) fs.writeFileSync(path.join(dir, f), show(f));
    fs.writeFileSync(path.join(dir, 'lib', 'shared-lru.js'), `module.exports = require(${JSON.stringify(path.join(ROOT, 'lib', 'shared-lru.js'))});\n`);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    return dir;
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

function loadTier(impl, base) {
  return impl === 'base' ? require(path.join(base, 'lib', 'tiered.js')).TieredCache : require('shm-typed-lru/tiered').TieredCache;
}

// ---- child processes ----

async function hostB(cfg) {
  const { TieredCache } = require('shm-typed-lru/tiered');
  const tier = await TieredCache.connect(options(cfg.name, cfg.redis));
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

// A worker of the rolling restart, or of the connection count: opens the tier (this build's or
// the baseline's), then, if asked, reads keys for ever, reporting its hits and misses every
// 100 ms; SIGTERM closes it (a graceful restart) and exits.
async function worker(cfg) {
  const TieredCache = loadTier(cfg.impl, cfg.base);
  const tier = await TieredCache.connect({ name: cfg.name, capacity: cfg.capacity || L1_ENTRIES, recordSize: 128, redis: cfg.redis, prefix: cfg.prefix });
  let stopping = false;
  let last = { hits: 0, misses: 0 };
  const report = () => {
    const s = tier.stats();
    process.send({ hits: s.hits - last.hits, misses: s.misses - last.misses, invalidations: s.invalidations });
    last = s;
  };
  process.on('SIGTERM', async () => {
    if (stopping) return;
    stopping = true;
    report();
    await tier.close();
    process.exit(0);
  });
  process.on('message', (m) => {
    if (m.op === 'stats') process.send({ id: m.id, value: tier.stats() });
  });
  process.send({ ready: true });
  if (!cfg.read) return;
  setInterval(report, 100).unref();
  const rand = mulberry32(process.pid);
  while (!stopping) {
    for (let i = 0; i < 50 && !stopping; i++) await tier.get(`r${Math.floor(rand() * cfg.keys)}`);
    await new Promise((r) => setTimeout(r, 1)); // leave CPU to the others
  }
}

function spawnChild(role, cfg, onMessage) {
  const child = fork(__filename, [], { env: { ...process.env, TIERED_BENCH_ROLE: role, TIERED_BENCH: JSON.stringify(cfg) } });
  const ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.ready) resolve();
      else if (onMessage) onMessage(m);
    });
    child.once('exit', () => reject(new Error('a bench child exited early')));
  });
  ready.catch(() => {});
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, ready, exited };
}

// ---- the driver ----

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function fmtNs(ns) {
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Requests to children and their answers: `onMessage` takes every child's answers, and
// `ask(w, op, extra)` sends `op` to child `w` and resolves to its answer.
function requests() {
  const pending = new Map();
  let seq = 0;
  const onMessage = (m) => {
    if (m.id !== undefined && pending.has(m.id)) {
      pending.get(m.id)(m.value);
      pending.delete(m.id);
    }
  };
  const ask = (w, op, extra) =>
    new Promise((resolve) => {
      const id = seq++;
      pending.set(id, resolve);
      w.child.send({ op, id, ...extra });
    });
  return { onMessage, ask };
}

// Host B as a child on `redis`; `ask(op, extra)` resolves to its answer.
async function startHostB(name, redis) {
  const r = requests();
  const b = spawnChild('hostB', { name, redis }, r.onMessage);
  await b.ready;
  return { ...b, ask: (op, extra) => r.ask(b, op, extra) };
}

// Invalidation latency, A's write -> B's L1 copy gone. This process watches B's L1 directly
// (it is shared memory), spinning, while B's own feed holder handles the invalidation.
async function invalidationLatency(a, ask, nameB) {
  const { SharedLRU } = require('..');
  const watchB = SharedLRU.open(nameB);
  const samples = [];
  const N = QUICK ? 50 : 400;
  for (let i = 0; i < N; i++) {
    const key = `inv${i % 20}`;
    await a.set(key, `v${i}`);
    await sleep(2); // let that write's own invalidation reach B
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
  return samples.sort((x, y) => x - y);
}

function latencyLine(samples) {
  return `p50 ${fmtNs(percentile(samples, 0.5))}   p99 ${fmtNs(percentile(samples, 0.99))}   max ${fmtNs(samples[samples.length - 1])}   (${samples.length} samples)`;
}

// A rolling restart of `n` readers of one machine: each is SIGTERMed, waited for, and replaced,
// one at a time, while all read. Returns the L1 hit ratio per phase.
async function rollingRestart(impl, base, url, n) {
  const name = `/shmlru-bench-${process.pid}-roll-${impl}`;
  const cfg = { impl, base, name, redis: url, prefix: 'roll:', keys: 1_500, capacity: 4_000, read: true };
  const count = { hits: 0, misses: 0 };
  const onMessage = (m) => {
    if (m.hits !== undefined) {
      count.hits += m.hits;
      count.misses += m.misses;
    }
  };
  const workers = [];
  try {
    for (let i = 0; i < n; i++) {
      workers.push(spawnChild('worker', cfg, onMessage));
      await workers[i].ready;
    }
    await sleep(QUICK ? 500 : 1500); // warm
    const take = () => {
      const r = { ...count };
      count.hits = 0;
      count.misses = 0;
      return r;
    };
    take();
    await sleep(QUICK ? 500 : 1000);
    const steady = take();
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const w = workers[i];
      w.child.kill('SIGTERM');
      await w.exited;
      workers[i] = spawnChild('worker', cfg, onMessage);
      await workers[i].ready;
      await sleep(QUICK ? 50 : 200); // pm2 reload's pace, give or take
    }
    const during = take();
    const ms = Date.now() - t0;
    return { steady, during, ms };
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    SharedLRU_destroy(name);
  }
}

function SharedLRU_destroy(name) {
  const { SharedLRU } = require('..');
  SharedLRU.destroy(name);
  SharedLRU.destroy(`${name}.tier`);
}

const ratio = (r) => (r.hits + r.misses === 0 ? 'n/a' : `${((100 * r.hits) / (r.hits + r.misses)).toFixed(1)}%`);

// Connections and invalidation messages of one machine of `n` processes: Redis's client list
// (tracking connections, and all of the tier's), then 200 writes by another client and the
// invalidations the machine's processes received for them.
async function perMachine(impl, base, url, raw, n) {
  const name = `/shmlru-bench-${process.pid}-conn-${impl}-${n}`;
  const cfg = { impl, base, name, redis: url, prefix: `conn${n}${impl}:` };
  const workers = [];
  const { onMessage, ask } = requests();
  try {
    for (let i = 0; i < n; i++) workers.push(spawnChild('worker', cfg, onMessage));
    await Promise.all(workers.map((w) => w.ready));
    await sleep(200);
    const list = (await raw.client('LIST')).split('\n').filter((l) => /name=shm-tiered:\d+:/.test(l));
    const mine = list.filter((l) => workers.some((w) => l.includes(`name=shm-tiered:${w.child.pid}:`)));
    const tracking = mine.filter((l) => /flags=\S*t/.test(l)).length;
    const stats = () => Promise.all(workers.map((w) => ask(w, 'stats')));
    const before = (await stats()).reduce((x, s) => x + s.invalidations, 0);
    const WRITES = 200;
    for (let i = 0; i < WRITES; i++) await raw.set(`${cfg.prefix}w${i}`, 'x');
    await sleep(300);
    const after = (await stats()).reduce((x, s) => x + s.invalidations, 0);
    return { connections: mine.length, tracking, messagesPerWrite: (after - before) / WRITES };
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    SharedLRU_destroy(name);
  }
}

// The feed's hand-over, watched through the tier's shared records: from a holder's SIGKILL
// (or SIGTERM) until another process holds the lease with every node's feed up.
async function handover(url, signal, rounds) {
  const { SharedLRU } = require('..');
  const name = `/shmlru-bench-${process.pid}-handover`;
  const cfg = { impl: 'new', name, redis: url, prefix: 'ho:' };
  const { onMessage, ask } = requests();
  const statsOf = (w) => ask(w, 'stats');
  const workers = [];
  const times = [];
  let gaps = 0;
  try {
    for (let i = 0; i < 3; i++) workers.push(spawnChild('worker', cfg, onMessage));
    await Promise.all(workers.map((w) => w.ready));
    const state = SharedLRU.open(`${name}.tier`);
    for (let r = 0; r < rounds; r++) {
      const all = await Promise.all(workers.map(statsOf));
      const i = all.findIndex((s) => s.feedHolder);
      const lease = state.peek('L');
      const t0 = process.hrtime.bigint();
      workers[i].child.kill(signal);
      let sawGap = false;
      const end = Date.now() + 5000;
      for (;;) {
        const l = state.peek('L');
        const down = state.peek('N') !== '0';
        if (down) sawGap = true;
        if (l !== undefined && l !== lease && !down) break;
        if (Date.now() > end) throw new Error('no takeover within 5 s');
      }
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (sawGap) gaps++;
      await workers[i].exited;
      workers[i] = spawnChild('worker', cfg, onMessage);
      await workers[i].ready;
    }
    state.close();
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    SharedLRU_destroy(name);
  }
  times.sort((x, y) => x - y);
  return { median: times[Math.floor(times.length / 2)], max: times[times.length - 1], gaps, rounds };
}

async function main() {
  const { RedisServer, RedisCluster, findRedisServer } = require(path.join(ROOT, 'test-support', 'redis-server'));
  if (findRedisServer() === null) {
    console.error('bench/tiered.js needs redis-server (apt-get install redis-server)');
    process.exit(2);
  }
  const { TieredCache } = require('shm-typed-lru/tiered');
  const Redis = require('ioredis');

  const redis = await RedisServer.start();
  let cluster = null;
  const base = baselineDir();
  const nameA = `/shmlru-bench-${process.pid}-A`;
  const nameB = `/shmlru-bench-${process.pid}-B`;
  let b = null;
  try {
    const a = await TieredCache.connect(options(nameA, redis.url));
    const raw = new Redis(redis.url);
    b = await startHostB(nameB, redis.url);

    console.log(`shm-typed-lru/tiered on ${os.cpus()[0].model.trim()} (${os.cpus().length} CPUs), node ${process.version}, redis-server on loopback`);

    // 1. L1 hit against a Redis round trip.
    const HOT = 100;
    for (let i = 0; i < HOT; i++) await a.set(`h${i}`, 'x'.repeat(64));
    await sleep(50); // let the writes' own invalidations pass
    for (let i = 0; i < HOT; i++) await a.get(`h${i}`); // fills
    const hitOps = QUICK ? 20_000 : 200_000;
    const rttOps = QUICK ? 2_000 : 20_000;
    const runs = QUICK ? 1 : 3;
    // The baseline's tier beside it, on an L1 of its own.
    const baseA = base === null ? null : await loadTier('base', base).connect(options(`${nameA}base`, redis.url));
    if (baseA !== null) for (let i = 0; i < HOT; i++) await baseA.get(`h${i}`);
    const hitLoop = async (t) => {
      const before = t.stats().hits;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < hitOps; i++) await t.get(`h${i % HOT}`);
      const ns = Number(process.hrtime.bigint() - t0) / hitOps;
      if (t.stats().hits - before !== hitOps) throw new Error('the hot keys were not all L1 hits');
      return ns;
    };
    let bestHit = Infinity;
    let bestBase = Infinity;
    let bestRtt = Infinity;
    for (let r = 0; r < runs; r++) {
      bestHit = Math.min(bestHit, await hitLoop(a));
      if (baseA !== null) bestBase = Math.min(bestBase, await hitLoop(baseA));
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < rttOps; i++) await raw.get(`bench:h${i % HOT}`);
      bestRtt = Math.min(bestRtt, Number(process.hrtime.bigint() - t0) / rttOps);
    }
    if (baseA !== null) await baseA.close();
    TieredCache.destroy(`${nameA}base`);
    console.log(`\n1. read of a 64-byte value (best of ${runs} runs)`);
    console.log(`   TieredCache.get, L1 hit     ${fmtNs(bestHit).padStart(10)}/op`);
    if (baseA !== null) console.log(`   the same, feed per process ${fmtNs(bestBase).padStart(10)}/op   (ratio ${(bestBase / bestHit).toFixed(2)})`);
    console.log(`   Redis GET round trip        ${fmtNs(bestRtt).padStart(10)}/op   (ioredis, awaited one at a time)`);
    console.log(`   ratio                       ${(bestRtt / bestHit).toFixed(1).padStart(10)}x   (target >= 20x)`);

    // 2. Invalidation latency, one Redis, then a cluster.
    const single = await invalidationLatency(a, b.ask, nameB);
    console.log(`\n2. invalidation latency, host A set() issued -> host B's L1 copy gone`);
    console.log(`   one redis-server      ${latencyLine(single)}`);
    // 2 (cluster). The same latency on a 3-master Redis Cluster.
    cluster = await RedisCluster.start({ masters: 3, replicas: 0 });
    const target = { cluster: cluster.seeds };
    const ca = await TieredCache.connect(options(`${nameA}c`, target));
    const cb = await startHostB(`${nameB}c`, target);
    const clustered = await invalidationLatency(ca, cb.ask, `${nameB}c`);
    console.log(`   3-master cluster      ${latencyLine(clustered)}`);
    await cb.ask('close');
    await ca.close();
    TieredCache.destroy(`${nameA}c`);
    TieredCache.destroy(`${nameB}c`);
    await cluster.stop();
    cluster = null;


    // 3. Zipf hit ratio over two hosts.
    const pipe = raw.pipeline();
    for (let i = 0; i < KEYS; i++) pipe.set(`bench:z${i}`, `v${i}`);
    await pipe.exec();
    await sleep(100);
    const [ra, rb] = await Promise.all([zipfRun(a, 1), b.ask('zipf', { seed: 2 })]);
    const both = { hits: ra.hits + rb.hits, misses: ra.misses + rb.misses };
    console.log(`\n3. Zipf(1) over ${KEYS} keys, L1 of ${L1_ENTRIES} entries per host, ${ZIPF_OPS} ops per host, ${WRITE_SHARE * 100}% writes`);
    console.log(`   L1 hit ratio: host A ${ratio(ra)}, host B ${ratio(rb)}, both ${ratio(both)}`);

    await b.ask('close');
    b = null;
    await a.close();

    // 4. Rolling restart under read load.
    const n = Number(process.env.TIERED_BENCH_WORKERS || (QUICK ? 4 : 8));
    for (let i = 0; i < 1_500; i++) await raw.set(`roll:r${i}`, `v${i}`);
    console.log(`\n4. rolling restart of ${n} workers (SIGTERM, wait, replace, one at a time) reading 1,500 keys, L1 of 4,000`);
    const rows = [['this build', 'new']];
    if (base !== null) rows.push(['feed per process', 'base']);
    else console.log('   (the baseline could not be read from git: no comparison)');
    const roll = {};
    for (const [label, impl] of rows) {
      roll[impl] = await rollingRestart(impl, base, redis.url, n);
      const r = roll[impl];
      console.log(`   ${label.padEnd(12)} L1 hit ratio steady ${ratio(r.steady).padStart(6)}, through the restart ${ratio(r.during).padStart(6)} (${r.during.hits + r.during.misses} reads over ${r.ms} ms)`);
    }
    if (roll.base) console.log(`   misses through the restart: this build ${roll.new.during.misses}, feed per process ${roll.base.during.misses}`);

    // 5. Connections and invalidation messages per machine.
    console.log('\n5. one machine of P processes: Redis connections (tracking ones) and invalidation messages per write');
    for (const p of QUICK ? [1, 4] : [1, 4, 16]) {
      const line = [`   P=${String(p).padEnd(3)}`];
      for (const [label, impl] of rows) {
        const r = await perMachine(impl, base, redis.url, raw, p);
        line.push(`${label}: ${String(r.connections).padStart(2)} connections (${String(r.tracking).padStart(2)} tracking), ${r.messagesPerWrite.toFixed(1).padStart(4)} messages/write`);
      }
      console.log(line.join('   '));
    }

    // 6. Hand-over of the feed.
    const rounds = QUICK ? 2 : 5;
    const killed = await handover(redis.url, 'SIGKILL', rounds);
    const termed = await handover(redis.url, 'SIGTERM', rounds);
    console.log(`\n6. the feed's holder, of 3 processes, stopped; until another holds it with its feed up (${rounds} rounds each)`);
    console.log(`   SIGKILL (takeover)   median ${killed.median.toFixed(1)} ms, max ${killed.max.toFixed(1)} ms; L1 distrusted and resynced in ${killed.gaps} of ${rounds}`);
    console.log(`   SIGTERM (hand-over)  median ${termed.median.toFixed(1)} ms, max ${termed.max.toFixed(1)} ms; a gap in the feed in ${termed.gaps} of ${rounds}`);

    raw.disconnect();
  } finally {
    if (b) b.child.kill('SIGKILL');
    if (cluster) await cluster.stop();
    await redis.stop();
    TieredCache.destroy(nameA);
    TieredCache.destroy(nameB);
    if (base !== null) fs.rmSync(base, { recursive: true, force: true });
  }
}

const role = process.env.TIERED_BENCH_ROLE;
const run = role === 'hostB' ? hostB : role === 'worker' ? worker : null;
if (run) {
  run(JSON.parse(process.env.TIERED_BENCH)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

'use strict';
// getMany against a loop of get, side by side in one process and one run: 10^5 entries of 64-byte
// values, batches of 1 to 1,000 keys drawn in a fixed pseudo-random order, hits and misses half
// each in the mixed rows. Prints ns per key for both and their ratio; cases run interleaved and
// in blocks taken in turn, timed in CPU time, and each keeps its best round.
//
//   node bench/get-many.js [--quick]

const path = require('node:path');
const { SharedLRU } = require(path.resolve(__dirname, '..'));

const QUICK = process.argv.includes('--quick');
const N = 100_000;
const RUN_MS = QUICK ? 40 : 250;
const ROUNDS = QUICK ? 2 : 7;
const BATCHES = [1, 10, 100, 1000];

const name = `/shmlru-bench-getmany-${process.pid}`;
SharedLRU.destroy(name);
const cache = SharedLRU.create(name, { capacity: N, recordSize: 128 });

let s = 12345;
function next() {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  return s;
}
const keys = Array.from({ length: N }, (_, i) => `key:${String(i).padStart(8, '0')}`);
for (const k of keys) cache.set(k, `v${k}`.padEnd(64, '.'));
const shuffled = keys.map((k) => [next(), k]).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
const missing = shuffled.map((k) => `no${k}`);

// Batches of `size` keys each; `mixed`: every other key absent.
function batches(size, mixed) {
  const out = [];
  for (let i = 0; i + size <= N; i += size) {
    const b = shuffled.slice(i, i + size);
    if (mixed) for (let j = 1; j < b.length; j += 2) b[j] = missing[i + j];
    out.push(b);
  }
  return out;
}

let sink = 0;
function loopOfGets(b) {
  for (let i = 0; i < b.length; i++) if (cache.get(b[i]) !== undefined) sink++;
}
function oneGetMany(b) {
  const v = cache.getMany(b);
  if (v[0] !== undefined) sink++;
}

// CPU ns per key of `a` and of `b` over the batches, in blocks of about 4,096 keys taken in turn
// (so that both meet the same state of the machine), for about RUN_MS. CPU time, not wall time:
// on a machine shared with other work, the wall clock also counts the time other processes ran.
function cpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function timePair(a, b, bs, size) {
  const per = Math.max(1, Math.floor(4096 / size));
  const spent = [0, 0];
  let blocks = 0;
  let i = 0;
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) < RUN_MS * 1e6) {
    for (const [which, fn] of [[0, a], [1, b]]) {
      const start = cpuNs();
      for (let r = 0; r < per; r++) fn(bs[(i + r) % bs.length]);
      spent[which] += cpuNs() - start;
    }
    i = (i + per) % bs.length;
    blocks++;
  }
  const keysDone = blocks * per * size;
  return [spent[0] / keysDone, spent[1] / keysDone];
}

const rows = [];
for (const mixed of [false, true]) {
  for (const size of BATCHES) {
    const bs = batches(size, mixed);
    let loop = Infinity;
    let many = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const [l, m] = timePair(loopOfGets, oneGetMany, bs, size);
      loop = Math.min(loop, l);
      many = Math.min(many, m);
    }
    rows.push({ keys: size, hits: mixed ? 'half' : 'all', loop, many });
  }
}
cache.close();
SharedLRU.destroy(name);

console.log(`getMany vs a loop of get: ${N} entries, 64-byte values, CPU ns per key (best of ${ROUNDS} rounds)`);
console.log('batch  hits  loop of get  getMany  loop/getMany');
for (const r of rows) {
  console.log(
    `${String(r.keys).padStart(5)}  ${r.hits.padEnd(4)}  ${r.loop.toFixed(1).padStart(11)}  ${r.many.toFixed(1).padStart(7)}  ${(r.loop / r.many).toFixed(2).padStart(11)}x`,
  );
}
if (sink < 0) console.log(sink);

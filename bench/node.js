'use strict';
// Node benchmark: the seed API, the class API, the addon's two floors and lru-cache (an
// in-process reference), all in one process and one run, with 64-byte values and 10^5 entries.
// Prints ops/s and ns/op per case, the ratios the performance targets are stated in, and where
// the time of a call goes: the addon functions called directly (what the JS layers add), and
// has() over one hot key against all N keys (the lookup itself against memory misses).
// Every case walks the same precomputed keys in the same order; cases run interleaved.
//
//   node bench/node.js [--quick]      (--quick: shorter runs, for a smoke test)
//   node bench/node.js budget         (a byte-budget cache against fixed records, through the class)
//
// The floors need the addon's bench hooks, which package builds leave out: the bench builds the
// addon with them (`node scripts/build.js --bench`, a no-op when up to date) and runs everything
// on that build, so the floors and the cases time the same code.

const path = require('node:path');
const os = require('node:os');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.js'), '--bench', '--if-needed'], { stdio: 'inherit' });
process.env.SHM_TYPED_LRU_NATIVE = path.join(ROOT, 'build', 'shm_typed_lru_bench.node');
const shm = require(ROOT);
const { SharedLRU } = shm;
const native = require(path.join(ROOT, 'lib', 'native'));

const QUICK = process.argv.includes('--quick');
const N = 100_000; // entries
const VALUE_BYTES = 64;
const RUN_MS = QUICK ? 40 : 250; // per case per round
const RUNS = QUICK ? 2 : 7; // rounds; each case's best round is kept

let LRUCache = null;
try {
  ({ LRUCache } = require('lru-cache'));
} catch {
  // Reported below; the rest of the bench runs without it.
}

// ---- data ----

// A fixed pseudo-random order of the N entries, so lookups do not walk memory in order.
function permutation(n, seed) {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const order = permutation(N, 12345);
const keys = order.map((i) => `key:${String(i).padStart(8, '0')}`); // 12 bytes
// Distinct nonzero 32-bit hashes for the seed API (multiplying by an odd constant is a bijection).
const hashes = order.map((i) => (Math.imul(i + 1, 0x9e3779b1) >>> 0) || 1);
const values = order.map((i) => `v${String(i).padStart(VALUE_BYTES - 1, '.')}`);
if (values[0].length !== VALUE_BYTES) throw new Error('value size');

// ---- timing ----

let sink;

// Cases run interleaved: each round times every case once, and a case's best round counts.
// On a shared machine, load then weighs on every case alike instead of on whichever ran during
// a burst.
const cases = [];

/** `body(n)` performs n operations. */
function addCase(name, body) {
  cases.push({ name, body, n: 0, best: 0 });
}

/** `pass()` performs some operations untimed, then times `count` of them and returns the ms. */
function addPassCase(name, count, pass) {
  cases.push({ name, pass, count, best: 0 });
}

function calibrate(c) {
  c.body(Math.min(N, 20_000)); // warm up and let the JIT settle
  let n = 1_000;
  for (;;) {
    const t = time(c.body, n);
    if (t >= 20 || n >= 50_000_000) {
      c.n = Math.max(1_000, Math.round((n * RUN_MS) / Math.max(t, 0.001)));
      return;
    }
    n *= 4;
  }
}

function runRounds() {
  for (const c of cases) if (c.body) calibrate(c);
  for (let r = 0; r < RUNS; r++) {
    for (const c of cases) {
      const ops = c.body ? (c.n / time(c.body, c.n)) * 1000 : (c.count / c.pass()) * 1000;
      c.best = Math.max(c.best, ops);
    }
  }
  for (const c of cases) record(c.name, c.best);
}

function time(body, n) {
  const t0 = process.hrtime.bigint();
  body(n);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const results = new Map();

function record(name, opsPerSec) {
  results.set(name, opsPerSec);
  const ns = 1e9 / opsPerSec;
  console.log(`${name.padEnd(34)} ${fmtOps(opsPerSec).padStart(14)}  ${ns.toFixed(1).padStart(8)} ns/op`);
}

function fmtOps(ops) {
  return `${(ops / 1e6).toFixed(2)} Mops/s`;
}

// Steps through the N entries: j = 0, 1, ..., N-1, 0, ...
const step = (j) => (j + 1 === N ? 0 : j + 1);

// ---- cases ----

const cleanups = [];

function floorCases() {
  const { benchNoop, benchString } = native;
  addCase('floor: benchNoop(a, b)', (n) => {
    for (let i = 0; i < n; i++) sink = benchNoop(i >>> 0, 7);
  });
  addCase('floor: benchString() (64 B)', (n) => {
    for (let i = 0; i < n; i++) sink = benchString();
  });
}

function seedCases() {
  // The seed API lays the cache over a segment it creates: over-allocate, then ask how many
  // records fit.
  let seg = null;
  let region = 0;
  for (let size = N * 128; size <= N * 4096; size *= 2) {
    region = size;
    seg = shm.create(size);
    if (seg === null) throw new Error('could not create a segment');
    const count = shm.initLRU(seg.key, VALUE_BYTES, size, true); // the element count, or -1/-2
    if (typeof count === 'number' && count >= N) break;
    shm.detach(seg.key, true);
    seg = null;
  }
  if (!seg) throw new Error(`initLRU could not fit ${N} records`);
  const key = seg.key;
  cleanups.push(() => shm.detach(key, true));

  const slots = new Array(N);
  for (let j = 0; j < N; j++) slots[j] = shm.set(key, values[j], hashes[j]);
  check(shm.get_el_hash(key, hashes[5]) === values[5], 'seed get_el_hash');
  check(shm.get_el(key, slots[7]) === values[7], 'seed get_el');

  addCase('seed: set(key, value, hash)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = shm.set(key, values[j], hashes[j]);
  });
  addCase('seed: get_el_hash(key, hash)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = shm.get_el_hash(key, hashes[j]);
  });
  addCase('seed: get_el(key, index)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = shm.get_el(key, slots[j]);
  });
  // The same lookup through the addon function itself, on a second handle to the same LRU:
  // what the seed API's JS adds on top.
  const rawSeg = native.segOpen(key);
  const rawLru = native.lruInit(rawSeg, VALUE_BYTES, region, false);
  cleanups.unshift(() => {
    native.cacheClose(rawLru);
    native.segRelease(rawSeg);
  });
  const { lruGetHash } = native;
  check(lruGetHash(rawLru, hashes[3]) === values[3], 'raw lruGetHash');
  addCase('addon: lruGetHash(handle, hash)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = lruGetHash(rawLru, hashes[j]);
  });
  // Each delete needs a present key: refill (untimed), then time N deletes; refill after, so
  // that the other cases find every entry (a refill puts each hash back in its own slot).
  addPassCase('seed: del_key(key, hash)', N, () => {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < N; j++) sink = shm.del_key(key, hashes[j]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    check(shm.current_count(key) === 0, 'seed del_key');
    for (let j = 0; j < N; j++) slots[j] = shm.set(key, values[j], hashes[j]);
    return ms;
  });
}

function classCases() {
  const name = `/shmlru-bench-${process.pid}`;
  SharedLRU.destroy(name);
  // Room to spare: keys spread over shards unevenly, and no entry should be evicted here.
  const cache = SharedLRU.create(name, { capacity: 131_072, recordSize: 12 + VALUE_BYTES });
  const handle = native.cacheOpen(name);
  cleanups.push(() => {
    check(cache.check().ok, 'class check');
    native.cacheClose(handle);
    cache.close();
    SharedLRU.destroy(name);
  });
  for (let j = 0; j < N; j++) cache.set(keys[j], values[j]);
  check(cache.size === N && cache.get(keys[9]) === values[9], 'class fill');
  const buf = Buffer.allocUnsafe(VALUE_BYTES);
  check(cache.getInto(keys[11], buf) === VALUE_BYTES && buf.toString() === values[11], 'class getInto');

  addCase('class: set(key, value)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) cache.set(keys[j], values[j]);
  });
  addCase('class: get(key)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cache.get(keys[j]);
  });
  addCase('class: has(key)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cache.has(keys[j]);
  });
  addCase('class: getInto(key, buffer)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cache.getInto(keys[j], buf);
  });
  // The same get through the addon function itself: what the class adds on top.
  const { cacheGet, cacheHas } = native;
  addCase('addon: cacheGet(handle, key)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cacheGet(handle, keys[j]);
  });
  // The engine's share: has() over the N keys, and over one key (always in the CPU caches).
  // With one key, what is left over the no-op floor is reading the key string and the lookup
  // itself; the difference to N keys is memory (cache and TLB misses in a ~16 MB region).
  addCase('addon: cacheHas(handle, key)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cacheHas(handle, keys[j]);
  });
  const hot = keys[13];
  addCase('addon: cacheHas, one hot key', (n) => {
    for (let i = 0; i < n; i++) sink = cacheHas(handle, hot);
  });
}

function lruCacheCases() {
  if (!LRUCache) {
    console.log('lru-cache: not installed, reference skipped (npm install --save-dev lru-cache)\n');
    return;
  }
  const lru = new LRUCache({ max: N });
  for (let j = 0; j < N; j++) lru.set(keys[j], values[j]);
  addCase('lru-cache: set(key, value)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) lru.set(keys[j], values[j]);
  });
  addCase('lru-cache: get(key)', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = lru.get(keys[j]);
  });
}

function check(ok, what) {
  if (!ok) throw new Error(`bench sanity check failed: ${what}`);
}

// ---- main ----

function ratio(a, b) {
  const x = results.get(a);
  const y = results.get(b);
  return x && y ? x / y : undefined;
}

function verdict(value, target, atLeast) {
  if (value === undefined) return 'n/a';
  const ok = atLeast ? value >= target : value <= target;
  return `${value.toFixed(2)}  (target ${atLeast ? '>=' : '<='} ${target}: ${ok ? 'met' : 'NOT met'})`;
}

// fetch on a hit against get: a fetch that finds the key costs a get and a resolved Promise.
// `node bench/node.js fetch` runs only this part.
function fetchCases() {
  const name = `/shmlru-bench-fetch-${process.pid}`;
  SharedLRU.destroy(name);
  const cache = SharedLRU.create(name, { capacity: 131_072, recordSize: 12 + VALUE_BYTES });
  cleanups.push(() => {
    cache.close();
    SharedLRU.destroy(name);
  });
  for (let j = 0; j < N; j++) cache.set(keys[j], values[j]);
  const loader = () => {
    throw new Error('a hit never loads');
  };
  addCase('class: get(key) [fetch part]', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cache.get(keys[j]);
  });
  addCase('class: fetch(key, loader), a hit', (n) => {
    for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = cache.fetch(keys[j], loader);
  });
}

/** Runs one part of the bench alone: its cases, in interleaved rounds, then its cleanups. */
function runPart(part, addCases) {
  console.log(`shm-typed-lru Node bench, ${part} part: ${N} entries, ${VALUE_BYTES} B values, best of ${RUNS} interleaved rounds`);
  console.log(`node ${process.version}, ${os.cpus()[0].model.trim()} x${os.cpus().length}`);
  addCases();
  try {
    runRounds();
  } finally {
    for (const f of cleanups) f();
  }
}

function fetchOnly() {
  runPart('fetch', fetchCases);
  console.log(`  fetch hit / get, time per call        ${verdict(ratio('class: get(key) [fetch part]', 'class: fetch(key, loader), a hit'), 2, false)}`);
}

// A cache with a byte budget (made without a capacity: its index grows to the keys) against one
// of fixed records, both holding the same N keys, through the class API.
// `node bench/node.js budget` runs only this part.
function budgetCases() {
  const fixedName = `/shmlru-bench-fixed-${process.pid}`;
  const budgetName = `/shmlru-bench-budget-${process.pid}`;
  SharedLRU.destroy(fixedName);
  SharedLRU.destroy(budgetName);
  const fixed = SharedLRU.create(fixedName, { capacity: 131_072, recordSize: 12 + VALUE_BYTES });
  // Room for every key: nothing is evicted.
  const budget = SharedLRU.create(budgetName, { maxBytes: 32 << 20 });
  cleanups.push(() => {
    check(fixed.check().ok && budget.check().ok, 'budget check');
    fixed.close();
    budget.close();
    SharedLRU.destroy(fixedName);
    SharedLRU.destroy(budgetName);
  });
  for (const c of [fixed, budget]) {
    for (let j = 0; j < N; j++) c.set(keys[j], values[j]);
    check(c.size === N && c.get(keys[9]) === values[9], 'budget fill');
  }
  const buf = Buffer.allocUnsafe(VALUE_BYTES);
  // getMany's batches: 16 keys each, spread over the keys.
  const batches = Array.from({ length: 64 }, (_, b) => Array.from({ length: 16 }, (_, i) => keys[(b * 16 + i * 7919) % N]));
  for (const [label, c] of [['fixed', fixed], ['budget', budget]]) {
    addCase(`${label}: get(key)`, (n) => {
      for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = c.get(keys[j]);
    });
    addCase(`${label}: getInto(key, buffer)`, (n) => {
      for (let i = 0, j = 0; i < n; i++, j = step(j)) sink = c.getInto(keys[j], buf);
    });
    addCase(`${label}: set(key, value)`, (n) => {
      for (let i = 0, j = 0; i < n; i++, j = step(j)) c.set(keys[j], values[j]);
    });
    addCase(`${label}: getMany(16 keys)`, (n) => {
      for (let i = 0; i < n; i++) sink = c.getMany(batches[i & 63]);
    });
  }
  // Values larger than the room getMany first gives each value of a budget cache (4 KiB): each
  // such value is read again once its length is known. Against a get per key.
  const bigKeys = Array.from({ length: 16 }, (_, i) => `big-${i}`);
  const big = 'x'.repeat(8192);
  for (const k of bigKeys) budget.set(k, big);
  check(budget.getMany(bigKeys).every((v) => v === big), 'budget big values');
  addCase('budget: getMany(16 keys), values of 8 KiB', (n) => {
    for (let i = 0; i < n; i++) sink = budget.getMany(bigKeys);
  });
  addCase('budget: get(key) of each of 16 keys, values of 8 KiB', (n) => {
    for (let i = 0; i < n; i++) for (const k of bigKeys) sink = budget.get(k);
  });
}

function budgetOnly() {
  runPart('budget', budgetCases);
  console.log('time per call, budget / fixed records');
  for (const op of ['get(key)', 'getInto(key, buffer)', 'set(key, value)', 'getMany(16 keys)']) {
    console.log(`  ${op.padEnd(36)} ${ratio(`fixed: ${op}`, `budget: ${op}`).toFixed(2)}`);
  }
  const many = ratio('budget: get(key) of each of 16 keys, values of 8 KiB', 'budget: getMany(16 keys), values of 8 KiB');
  console.log(`  getMany of 16 values of 8 KiB / 16 gets     ${many.toFixed(2)}`);
}

function main() {
  if (process.argv[2] === 'fetch') return fetchOnly();
  if (process.argv[2] === 'budget') return budgetOnly();
  const t0 = Date.now();
  console.log(`shm-typed-lru Node bench: ${N} entries, ${VALUE_BYTES} B values, best of ${RUNS} interleaved rounds of ~${RUN_MS} ms per case`);
  console.log(`node ${process.version}, ${os.cpus()[0].model.trim()} x${os.cpus().length}, ${os.platform()} ${os.release()}`);
  console.log('');
  floorCases();
  seedCases();
  classCases();
  lruCacheCases();
  try {
    runRounds();
  } finally {
    for (const f of cleanups) f();
  }

  const nsNoop = 1e9 / results.get('floor: benchNoop(a, b)');
  const perCall = (name) => (results.has(name) ? 1e9 / results.get(name) / nsNoop : undefined);
  console.log('');
  console.log('targets');
  console.log(`  get_el_hash / string floor            ${verdict(ratio('seed: get_el_hash(key, hash)', 'floor: benchString() (64 B)'), 0.7, true)}`);
  console.log(`  class set / lru-cache set             ${LRUCache ? verdict(ratio('class: set(key, value)', 'lru-cache: set(key, value)'), 0.6, true) : 'n/a (lru-cache not installed)'}`);
  console.log(`  getInto, Mops/s                       ${verdict(results.get('class: getInto(key, buffer)') / 1e6, 10, true)}`);
  console.log(`  has: time per call / no-op floor      ${verdict(perCall('class: has(key)'), 1.5, false)}`);
  console.log('other ratios');
  console.log(`  getInto: time per call / no-op floor  ${perCall('class: getInto(key, buffer)').toFixed(2)}`);
  console.log(`  get: time per call / string floor     ${(results.get('floor: benchString() (64 B)') / results.get('class: get(key)')).toFixed(2)}`);
  if (results.has('addon: cacheGet(handle, key)')) {
    console.log(`  class get / raw addon cacheGet        ${ratio('class: get(key)', 'addon: cacheGet(handle, key)').toFixed(2)}`);
  }
  if (LRUCache) {
    console.log(`  class get / lru-cache get             ${ratio('class: get(key)', 'lru-cache: get(key)').toFixed(2)}`);
  }
  console.log(`  get_el_hash / raw addon lruGetHash    ${ratio('seed: get_el_hash(key, hash)', 'addon: lruGetHash(handle, hash)').toFixed(2)}`);
  const ns = (name) => 1e9 / results.get(name);
  const hasAll = ns('addon: cacheHas(handle, key)');
  const hasHot = ns('addon: cacheHas, one hot key');
  console.log('where the time of has() goes (ns)');
  console.log(`  no-op call floor                      ${nsNoop.toFixed(1)}`);
  console.log(`  key read + lookup, one hot key        ${(hasHot - nsNoop).toFixed(1)}`);
  console.log(`  memory misses over ${N} keys         ${(hasAll - hasHot).toFixed(1)}`);
  console.log(`\ndone in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();

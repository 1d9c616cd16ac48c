'use strict';
// The original package's API, loaded as a user's require does, with real child processes and
// worker threads where sharing is the point.

const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const shm = require('..');
const { throwsCode } = require('../test-support/helpers');

const ROOT = path.resolve(__dirname, '..');
// System V keys and POSIX names unique to this run.
const BASE = 0x30000000 + (process.pid % 0x8000) * 0x100;
let nextKey = 0;
const used = [];
function sysvKey() {
  const k = BASE + nextKey++;
  used.push(k);
  return k;
}
function posixName(tag) {
  const n = `/seed-test-${process.pid}-${tag}-${nextKey++}`;
  used.push(n);
  return n;
}

test.after(() => {
  shm.detachAll();
  for (const k of used) shm.destroy(k);
});

/** A segment with an initialised LRU of `record` bytes in its first `region` bytes. */
function lru(record = 64, region = 16384, size = region) {
  const key = sysvKey();
  const buf = shm.create(size, 'Buffer', key);
  assert.ok(buf);
  const count = shm.initLRU(key, record, region);
  assert.ok(Number.isInteger(count) && count > 0, `initLRU returned ${count}`);
  assert.strictEqual(shm.lru_max_count(key), count);
  return { key, buf };
}

/** Blocks this thread for `ms` milliseconds (element times are kept in ms). */
function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `code` in a child node process with the package as `shm`; resolves with its stdout. */
function child(code, args = [], { gc = false } = {}) {
  const pre = `const shm = require(${JSON.stringify(ROOT)});\n`;
  const r = spawnSync(process.execPath, [...(gc ? ['--expose-gc'] : []), '-e', pre + code, ...args.map(String)], {
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.strictEqual(r.status, 0, `child failed: ${r.stderr}`);
  return r.stdout;
}

test('create and get: typed views of a live segment, with .key', () => {
  const key = sysvKey();
  const a = shm.create(10, 'Float32Array', key);
  assert.ok(a instanceof Float32Array);
  assert.strictEqual(a.length, 10);
  assert.strictEqual(a.key, key);
  assert.strictEqual(shm.create(10, 'Float32Array', key), null);
  a[3] = 1.5;
  const b = shm.get(key, 'Float32Array');
  assert.strictEqual(b[3], 1.5);
  b[4] = 2.5;
  assert.strictEqual(a[4], 2.5);
  const raw = shm.get(key);
  assert.ok(Buffer.isBuffer(raw));
  assert.strictEqual(raw.length, 40);
  assert.strictEqual(shm.getSegmentSize(key), 40);
  assert.strictEqual(shm.get(sysvKey()), null);
  assert.strictEqual(shm.getSegmentSize(sysvKey()), -1);
});

test('every BufferType, System V and POSIX', () => {
  assert.deepStrictEqual(Object.keys(shm.BufferType), [
    'Buffer',
    'Int8Array',
    'Uint8Array',
    'Uint8ClampedArray',
    'Int16Array',
    'Uint16Array',
    'Int32Array',
    'Uint32Array',
    'Float32Array',
    'Float64Array',
    'BigInt64Array',
    'BigUint64Array',
  ]);
  for (const type of Object.keys(shm.BufferType)) {
    for (const key of [sysvKey(), posixName(type)]) {
      const v = shm.create(6, type, key);
      assert.strictEqual(v.constructor.name, type);
      assert.strictEqual(v.length, 6);
      assert.strictEqual(v.key, key);
      assert.strictEqual(v.byteLength, 6 * (v.BYTES_PER_ELEMENT || 1));
      assert.strictEqual(shm.destroy(key), true);
      assert.strictEqual(shm.destroy(key), false);
    }
  }
});

test('create without a key picks a fresh System V key; sizes are counted', () => {
  const total = shm.getTotalSize();
  const created = shm.getTotalCreatedSize();
  const v = shm.create(4096);
  used.push(v.key);
  assert.strictEqual(typeof v.key, 'number');
  assert.ok(Number.isInteger(v.key) && v.key !== 0);
  assert.strictEqual(shm.getSegmentSize(v.key), 4096);
  assert.strictEqual(shm.getTotalSize(), total + 4096);
  assert.strictEqual(shm.getTotalCreatedSize(), created + 4096);
  assert.strictEqual(shm.detach(v.key), 0); // nobody else attached: destroyed
  assert.strictEqual(shm.getSegmentSize(v.key), -1);
  assert.strictEqual(shm.getTotalCreatedSize(), created);
  assert.strictEqual(shm.detach(v.key), -1);
  // The mapping went with the detach: the view is empty now, not a window on freed memory.
  assert.strictEqual(v.length, 0);
  assert.strictEqual(shm.getTotalSize(), total);
  v[0] = 9;
  assert.strictEqual(v[0], undefined);
  assert.strictEqual(shm.LengthMax, require('buffer').constants.MAX_LENGTH);
});

test('create, get, detach and destroy reject bad arguments', () => {
  for (const count of [0, -1, 1.5, NaN, Infinity, shm.LengthMax + 1]) {
    throwsCode(() => shm.create(count), RangeError, 'ERR_OUT_OF_RANGE');
  }
  throwsCode(() => shm.create('10'), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.create(), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.create(10, 'Nope'), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => shm.create(10, 'Buffer', 0), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.create(10, 'Buffer', 1.5), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.create(10, 'Buffer', 2 ** 40), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.create(10, 'Buffer', 'no-slash'), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => shm.create(10, 'Buffer', {}), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.create(10, 'Buffer', sysvKey(), '999'), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.get(NaN), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.get(undefined), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.detach([]), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.detach(sysvKey(), 'yes'), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => shm.destroy(null), TypeError, 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => shm.create(10, 'Buffer', '/bad/name'), (e) => e.code === 'ERR_SHM_INVALID_NAME');
});

test('initLRU and the return conventions: -1, false, -2, true', () => {
  const missing = sysvKey();
  assert.strictEqual(shm.initLRU(missing, 64, 4096), -1);
  assert.match(shm.get_last_reason(missing), /does not exist/);
  assert.strictEqual(shm.set(missing, 1, 'x'), -1);
  assert.strictEqual(shm.get_el_hash(missing, 1), -1);
  assert.strictEqual(shm.lock(missing), -1);

  const key = sysvKey();
  shm.create(65536, 'Buffer', key);
  assert.strictEqual(shm.set(key, 1, 'x'), false);
  assert.match(shm.get_last_reason(key), /initLRU/);
  assert.strictEqual(shm.get_el(key, 1), false);
  assert.strictEqual(shm.del_key(key, 1), false);
  assert.strictEqual(shm.run_lru_eviction(key, Date.now(), 10), false);
  // The mutex calls say -3 where the others say false, as the original did.
  assert.strictEqual(shm.lock(key), -3);
  assert.strictEqual(shm.try_lock(key), -3);
  assert.strictEqual(shm.init_mutex(key), -3);
  // Reading the reason resets it.
  assert.match(shm.get_last_reason(key), /initLRU/);
  assert.strictEqual(shm.get_last_reason(key), 'OK');

  assert.strictEqual(shm.initLRU(key, 64, 100), -2); // no room for even the header
  assert.match(shm.get_last_reason(key), /region too small/);
  assert.strictEqual(shm.initLRU(key, 64, 1 << 20), -2); // beyond the segment
  const count = shm.initLRU(key, 64, 32768); // the number of elements that fit
  assert.ok(Number.isInteger(count) && count > 100, `initLRU returned ${count}`);
  assert.strictEqual(shm.initLRU(key, 64, 32768), count);
  assert.strictEqual(shm.initLRU(key, 128, 32768), -2);
  assert.match(shm.get_last_reason(key), /record size 64/);
  assert.strictEqual(shm.getSegmentSize(key), 65536);
  assert.ok(shm.lru_max_count(key) > 100);
  assert.strictEqual(shm.current_count(key), 0);
  assert.strictEqual(shm.free_count(key), shm.lru_max_count(key));
  assert.strictEqual(shm.reload_hash_map(key), true);
  assert.strictEqual(shm.reload_hash_map_update(key, 7), true);
});

test('set, get_el, get_el_hash, del_el, del_key', () => {
  const { key } = lru();
  const i = shm.set(key, 134, 'this is a test');
  assert.ok(Number.isInteger(i) && i >= 1);
  assert.strictEqual(shm.get_el(key, i), 'this is a test');
  assert.strictEqual(shm.set(key, 134, 'changed'), i); // same hash, same element
  assert.strictEqual(shm.get_el(key, i), 'changed');
  const j = shm.set(key, 136, 'other');
  assert.notStrictEqual(j, i);
  assert.strictEqual(shm.get_el_hash(key, 136), 'other');
  assert.strictEqual(shm.current_count(key), 2);

  assert.strictEqual(shm.del_el(key, j), true);
  assert.strictEqual(shm.get_el(key, j), -2);
  assert.match(shm.get_last_reason(key), /element not found/);
  assert.strictEqual(shm.del_el(key, j), -2); // twice: an error value, not a crash
  assert.match(shm.get_last_reason(key), /element not found/);
  assert.strictEqual(shm.get_el_hash(key, 136), -2);

  assert.strictEqual(shm.del_key(key, 134), true);
  assert.strictEqual(shm.del_key(key, 134), -2);
  assert.match(shm.get_last_reason(key), /element not found/);
  assert.strictEqual(shm.remove_key(key, 134), -2);
  assert.strictEqual(shm.current_count(key), 0);

  // An index past the capacity is an error value too.
  assert.strictEqual(shm.get_el(key, 0xffffffff), -2);
  assert.match(shm.get_last_reason(key), /no such slot/);

  // Buffers come back as Buffers; the later argument order (value, hash, index) works.
  const b = shm.set(key, Buffer.from([0, 1, 2, 255]), 99);
  assert.deepStrictEqual(shm.get_el(key, b), Buffer.from([0, 1, 2, 255]));
  assert.strictEqual(shm.set(key, 'later', 100, 5) >= 1, true);
  assert.strictEqual(shm.get_el_hash(key, 100), 'later');
  throwsCode(() => shm.set(key, 'later', 100, 0), RangeError, 'ERR_OUT_OF_RANGE');
  assert.strictEqual(shm.remove_key(key, 100), true);
});

test('a value longer than the record is refused, never truncated', () => {
  const { key } = lru(32);
  assert.strictEqual(shm.set(key, 1, 'x'.repeat(32)), 1);
  assert.strictEqual(shm.set(key, 2, 'x'.repeat(33)), false);
  assert.match(shm.get_last_reason(key), /value too large: 33 bytes/);
  assert.strictEqual(shm.get_el_hash(key, 2), -2);
  // Bytes, not characters, count: 11 × 3 bytes = 33.
  assert.strictEqual(shm.set(key, 3, '€'.repeat(11)), false);
  assert.strictEqual(shm.set(key, 3, '€'.repeat(10)) >= 1, true);
  assert.strictEqual(shm.get_el_hash(key, 3), '€'.repeat(10));
  // An overwrite that does not fit leaves the old value.
  assert.strictEqual(shm.set(key, 1, Buffer.alloc(40)), false);
  assert.strictEqual(shm.get_el_hash(key, 1), 'x'.repeat(32));
});

test('a full LRU refuses new elements with "out of free memory"', () => {
  const { key } = lru(16, 4096);
  const cap = shm.lru_max_count(key);
  assert.ok(cap >= 10, `capacity ${cap}`);
  for (let h = 1; h <= cap; h++) assert.ok(shm.set(key, h, `v${h}`) >= 1);
  assert.strictEqual(shm.free_count(key), 0);
  assert.strictEqual(shm.set(key, cap + 1, 'one too many'), false);
  assert.match(shm.get_last_reason(key), /out of free memory/);
  assert.strictEqual(shm.get_el_hash(key, 1), 'v1'); // nothing was evicted
  assert.ok(shm.set(key, 1, 'overwrite') >= 1); // overwriting needs no room
  assert.strictEqual(shm.del_key(key, 2), true);
  assert.ok(shm.set(key, cap + 1, 'now it fits') >= 1);
  assert.strictEqual(shm.current_count(key), cap);
});

test('BigInt hashes up to 2^64-1', () => {
  const { key } = lru();
  const big = (1n << 64n) - 1n;
  const i = shm.set(key, big, 'max');
  assert.ok(i >= 1);
  assert.strictEqual(shm.get_el_hash(key, big), 'max');
  assert.strictEqual(shm.set(key, 5n, 'five'), shm.set(key, 5, 'five')); // 5n and 5 are one hash
  assert.strictEqual(shm.get_el_hash(key, 5), 'five');
  const safe = Number.MAX_SAFE_INTEGER;
  shm.set(key, safe, 'safe');
  sleep(5);
  const evicted = shm.run_lru_eviction(key, 0, 10);
  assert.deepStrictEqual(evicted, [big, 5, safe]);
  assert.strictEqual(typeof evicted[0], 'bigint');
  throwsCode(() => shm.set(key, 1n << 64n, 'x'), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.set(key, -1n, 'x'), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.set(key, 2 ** 53, 'x'), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => shm.del_key(key, -1), RangeError, 'ERR_OUT_OF_RANGE');
});

test('bad arguments of every kind throw TypeError or RangeError with a code', () => {
  const { key } = lru();
  const idx = shm.set(key, 1, 'one');
  const T = [TypeError, 'ERR_INVALID_ARG_TYPE'];
  const R = [RangeError, 'ERR_OUT_OF_RANGE'];
  const cases = [
    [() => shm.get_el(key, 0), R],
    [() => shm.get_el(key, -1), R],
    [() => shm.get_el(key, 1.5), R],
    [() => shm.get_el(key, NaN), R],
    [() => shm.get_el(key, 2 ** 32), R],
    [() => shm.get_el(key, '1'), T],
    [() => shm.get_el(key), T],
    [() => shm.get_el(key, 1n), T],
    [() => shm.del_el(key, 0), R],
    [() => shm.del_el(key, null), T],
    [() => shm.get_el_hash(key, -1), R],
    [() => shm.get_el_hash(key, 0.5), R],
    [() => shm.get_el_hash(key, NaN), R],
    [() => shm.get_el_hash(key, '1'), T],
    [() => shm.get_el_hash(key), T],
    [() => shm.del_key(key, {}), T],
    [() => shm.set(key), T],
    [() => shm.set(key, 1), T],
    [() => shm.set(key, 1, {}), T],
    [() => shm.set(key, 1, 42), T],
    [() => shm.set(key, 'v', 'h'), T],
    [() => shm.set(key, 'v', 1, -3), R],
    [() => shm.set_share_key(key, idx, -1), R],
    [() => shm.set_share_key(key, idx, 2 ** 32), R],
    [() => shm.set_share_key(key, 0, 1), R],
    [() => shm.reload_hash_map_update(key, 'x'), T],
    [() => shm.run_lru_eviction(key, NaN, 1), R],
    [() => shm.run_lru_eviction(key, -1, 1), R],
    [() => shm.run_lru_eviction(key, 0, -1), R],
    [() => shm.run_lru_eviction(key, 0, 1.5), R],
    [() => shm.run_lru_eviction(key, '0', 1), T],
    [() => shm.run_lru_eviction_get_values(key, 0), T],
    [() => shm.initLRU(key, 0, 4096), R],
    [() => shm.initLRU(key, 64, 'x'), T],
    [() => shm.initLRU(key, 64, 4096, 'yes'), T],
    [() => shm.initLRU(key), T],
    [() => shm.debug_dump_list(key, 1), T],
    [() => shm.set_many(key, 5), T],
    [() => shm.set_many(key, [[1]]), T],
    [() => shm.set_many(key, [[-1, 'x']]), R],
    [() => shm.get_last_reason({}), T],
    [() => shm.current_count(), T],
    [() => shm.lock(2.5), R],
    [() => shm.init_mutex(key, 3), T],
  ];
  for (const [fn, [Ctor, code]] of cases) throwsCode(fn, Ctor, code);
  // Nothing above changed the cache.
  assert.strictEqual(shm.get_el(key, idx), 'one');
  assert.strictEqual(shm.current_count(key), 1);
});

test('run_lru_eviction takes the least recently used first, up to the maximum', () => {
  const { key } = lru();
  for (const h of [1, 2, 3, 4]) shm.set(key, h, `v${h}`);
  shm.get_el_hash(key, 1); // 1 becomes the most recently used
  sleep(5);
  // cutoff_time is an age, as in the original: "not used in the last ten minutes" takes none.
  assert.deepStrictEqual(shm.run_lru_eviction(key, 10 * 60000, 10), []);
  assert.deepStrictEqual(shm.run_lru_eviction_get_values(key, 10 * 60000, 10), {});
  assert.strictEqual(shm.current_count(key), 4);
  // "Not used in the last 0 ms": every element used before now, oldest first.
  assert.deepStrictEqual(shm.run_lru_eviction(key, 0, 2), [2, 3]);
  assert.strictEqual(shm.get_el_hash(key, 2), -2);
  sleep(5);
  assert.deepStrictEqual(shm.run_lru_eviction_get_values(key, 1, 1), { 4: 'v4' });
  assert.deepStrictEqual(shm.run_lru_eviction(key, 0, Infinity), [1]);
  assert.strictEqual(shm.current_count(key), 0);
});

test('run_lru_eviction spares what was used within cutoff_time ms', () => {
  const { key } = lru();
  shm.set(key, 1, 'old');
  sleep(120);
  shm.set(key, 2, 'new');
  // Older than 60 ms: only the first; the second was used just now.
  assert.deepStrictEqual(shm.run_lru_eviction(key, 60, 10), [1]);
  assert.strictEqual(shm.get_el_hash(key, 2), 'new');
});

test('set_many, set_share_key, debug_dump_list, epoch_time', () => {
  const { key } = lru();
  const r = shm.set_many(key, [
    [10, 'ten'],
    [11, 'eleven'],
  ]);
  assert.strictEqual(r.length, 2);
  assert.ok(r.every((i) => Number.isInteger(i) && i >= 1));
  assert.deepStrictEqual(shm.set_many(key, new Map([[12, 'twelve']])).length, 1);
  assert.deepStrictEqual(shm.set_many(key, { 13: 'thirteen', '18446744073709551615': 'big' }).length, 2);
  assert.strictEqual(shm.get_el_hash(key, 13), 'thirteen');
  assert.strictEqual(shm.get_el_hash(key, (1n << 64n) - 1n), 'big');
  assert.strictEqual(shm.get_el_hash(key, 11), 'eleven');
  assert.strictEqual(shm.set_share_key(key, r[0], 77), true);
  assert.strictEqual(shm.set_share_key(key, 999, 77), -2);

  const lines = [];
  const log = console.log;
  console.log = (...a) => lines.push(a.join(' '));
  try {
    assert.strictEqual(shm.debug_dump_list(key), true);
    assert.strictEqual(shm.debug_dump_list(key, true), true);
  } finally {
    console.log = log;
  }
  const forward = lines.slice(1, 6);
  const backward = lines.slice(7);
  assert.match(lines[0], /5 element/);
  assert.match(forward[0], /hash=11 .*value=eleven/); // the last one read
  assert.deepStrictEqual(backward, [...forward].reverse());
  assert.ok(lines.some((l) => /hash=10 share=77 .*value=ten/.test(l)));
  assert.ok(Math.abs(shm.epoch_time() - Date.now()) < 1000);
});

test('collecting the Buffer view does not unmap an initialised LRU', () => {
  const out = child(
    `
    const key = Number(process.argv[1]);
    const region = 8192;
    let view = shm.create(region, 'Buffer', key);
    let collected = false;
    const fr = new FinalizationRegistry(() => { collected = true; });
    fr.register(view, 'view');
    if (typeof shm.initLRU(key, 64, region) !== 'number') throw new Error('initLRU');
    for (let h = 1; h <= 20; h++) shm.set(key, h, 'value ' + h);
    view = null;
    const total = shm.getTotalSize();
    (async () => {
      for (let i = 0; i < 50 && !collected; i++) {
        global.gc();
        await new Promise((r) => setImmediate(r));
      }
      const garbage = [];
      for (let i = 0; i < 1000; i++) garbage.push(Buffer.alloc(1024));
      global.gc();
      const vals = [];
      for (let h = 1; h <= 20; h++) vals.push(shm.get_el_hash(key, h));
      shm.set(key, 21, 'after gc');
      console.log(JSON.stringify({ collected, total, after: shm.getTotalSize(), vals, v21: shm.get_el_hash(key, 21) }));
    })();
    `,
    [sysvKey()],
    { gc: true },
  );
  const r = JSON.parse(out.trim().split('\n').pop());
  assert.strictEqual(r.collected, true, 'the view was not collected');
  assert.deepStrictEqual(
    r.vals,
    Array.from({ length: 20 }, (_, i) => `value ${i + 1}`),
  );
  assert.strictEqual(r.v21, 'after gc');
  assert.strictEqual(r.after, r.total); // the LRU still holds the mapping
});

test('detach and destroy unmap at once: the views handed out read as empty', () => {
  const before = shm.getTotalSize();
  const key = sysvKey();
  const f = shm.create(1024, 'Float64Array', key);
  const b = shm.get(key); // the same mapping, as bytes
  f[0] = 1.5;
  assert.strictEqual(b.readDoubleLE(0), 1.5);
  assert.strictEqual(shm.getTotalSize(), before + 8192);
  assert.strictEqual(shm.detach(key, true), 0);
  assert.strictEqual(shm.getTotalSize(), before); // not when the views are collected
  assert.strictEqual(f.length, 0);
  assert.strictEqual(b.length, 0);
  assert.strictEqual(f[0], undefined);

  // destroy too, and with an LRU laid out in the segment.
  const k2 = sysvKey();
  const v = shm.create(65536, 'Buffer', k2);
  assert.ok(shm.initLRU(k2, 64, 65536) > 0);
  shm.set(k2, 1, 'one');
  assert.strictEqual(shm.destroy(k2), true);
  assert.strictEqual(v.length, 0);
  assert.strictEqual(shm.getTotalSize(), before);
  assert.strictEqual(shm.get_el_hash(k2, 1), -1);
});

test('10,000 create and destroy (or detach) cycles in one synchronous loop', () => {
  // A destroyed or detached segment must be unmapped at once, not when its view is collected:
  // System V allows 4,096 segments per machine by default, and this loop makes 10,000.
  const before = shm.getTotalSize();
  const created = shm.getTotalCreatedSize();
  for (let i = 0; i < 10000; i++) {
    const v = shm.create(4096);
    assert.ok(v, `create failed at cycle ${i}`);
    v[0] = i & 0xff;
    if (i % 2) assert.strictEqual(shm.destroy(v.key), true);
    else assert.strictEqual(shm.detach(v.key), 0);
  }
  assert.strictEqual(shm.getTotalSize(), before);
  assert.strictEqual(shm.getTotalCreatedSize(), created);
});

test('app mutex: lock, try_lock, unlock, and a holder killed by SIGKILL', async () => {
  const { key } = lru();
  assert.strictEqual(shm.init_mutex(key), true);
  assert.strictEqual(shm.lock(key), true);
  assert.strictEqual(shm.try_lock(key), false);
  assert.match(shm.get_last_mutex_reason(key), /already holds/);
  assert.strictEqual(shm.lock(key), -2); // would deadlock: refused
  assert.strictEqual(shm.unlock(key), true);
  assert.strictEqual(shm.unlock(key), -2);
  assert.match(shm.get_last_mutex_reason(key), /does not hold/);
  assert.strictEqual(shm.try_lock(key), true);
  assert.strictEqual(shm.unlock(key), true);

  const code = `
    const shm = require(${JSON.stringify(ROOT)});
    const key = Number(process.argv[1]);
    shm.get(key);
    if (typeof shm.initLRU(key, 64, 16384, false) !== 'number') throw new Error(shm.get_last_reason(key));
    if (shm.lock(key) !== true) throw new Error(shm.get_last_mutex_reason(key));
    console.log('locked');
    setInterval(() => {}, 1000);
  `;
  const holder = spawn(process.execPath, ['-e', code, String(key)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    let out = '';
    holder.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked')) resolve();
    });
    holder.on('exit', (c) => reject(new Error(`holder exited early (${c})`)));
  });
  assert.strictEqual(shm.try_lock(key), false);
  assert.match(shm.get_last_mutex_reason(key), /busy/);
  const exited = new Promise((r) => holder.on('exit', (c, sig) => r(sig)));
  holder.kill('SIGKILL');
  assert.strictEqual(await exited, 'SIGKILL');
  assert.strictEqual(shm.lock(key), true);
  assert.match(shm.get_last_mutex_reason(key), /died/);
  assert.strictEqual(shm.unlock(key), true);
  assert.strictEqual(shm.try_lock(key), true);
  assert.strictEqual(shm.get_last_mutex_reason(key), 'OK');
  assert.strictEqual(shm.unlock(key), true);
});

test('a forked child shares the LRU: sees values, deletions, and writes back', async () => {
  const { key } = lru();
  const hashes = [201, 202, 203, 204, 205];
  for (const h of hashes) shm.set(key, h, `value ${h}`);
  const code = `
    const shm = require(${JSON.stringify(ROOT)});
    const key = Number(process.argv[1]);
    shm.get(key);
    shm.initLRU(key, 64, 16384, false);
    process.on('message', (m) => {
      if (m.op === 'read') process.send(m.hashes.map((h) => shm.get_el_hash(key, h)));
      if (m.op === 'write') process.send(shm.set(key, m.hash, m.value));
      if (m.op === 'exit') process.exit(0);
    });
    process.send('ready');
  `;
  const c = spawn(process.execPath, ['-e', code, String(key)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  let waiting = null;
  c.on('message', (m) => (waiting ? (waiting(m), (waiting = null)) : replies.push(m)));
  const next = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise((r) => (waiting = r)));
  const ask = (m) => {
    c.send(m);
    return next();
  };
  try {
    assert.strictEqual(await next(), 'ready');
    assert.deepStrictEqual(await ask({ op: 'read', hashes }), hashes.map((h) => `value ${h}`));
    assert.strictEqual(shm.del_key(key, 202), true);
    assert.strictEqual(shm.del_key(key, 204), true);
    assert.deepStrictEqual(await ask({ op: 'read', hashes }), ['value 201', -2, 'value 203', -2, 'value 205']);
    const idx = await ask({ op: 'write', hash: 300, value: 'from the child' });
    assert.ok(Number.isInteger(idx) && idx >= 1);
    assert.strictEqual(shm.get_el(key, idx), 'from the child');
    assert.strictEqual(shm.current_count(key), 4);
  } finally {
    c.send({ op: 'exit' });
    await new Promise((r) => c.on('exit', r));
  }
});

test('segments a process created are destroyed when it exits normally; others survive', () => {
  const mine = sysvKey();
  const theirs = sysvKey();
  shm.create(128, 'Buffer', theirs);
  child(
    `
    const [mine, theirs] = process.argv.slice(1).map(Number);
    shm.create(64, 'Buffer', mine);
    shm.get(theirs)[0] = 42;
    `,
    [mine, theirs],
  );
  assert.strictEqual(shm.getSegmentSize(mine), -1);
  assert.strictEqual(shm.getSegmentSize(theirs), 128);
  assert.strictEqual(shm.get(theirs)[0], 42);
});

test('worker threads load the module and share the LRU', async () => {
  const { key } = lru();
  shm.set(key, 1, 'from main');
  const own = sysvKey();
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const shm = require(${JSON.stringify(ROOT)});
    const { key, own } = workerData;
    shm.get(key);
    const init = shm.initLRU(key, 64, 16384, false);
    const seen = shm.get_el_hash(key, 1);
    const idx = shm.set(key, 2, 'from worker');
    shm.create(256, 'Buffer', own);
    parentPort.postMessage({ init, seen, idx, ownSize: shm.getSegmentSize(own) });
  `;
  const w = new Worker(code, { eval: true, workerData: { key, own } });
  // Listen for the exit before the message arrives: the worker may be gone by then.
  const exited = new Promise((r) => w.on('exit', r));
  const msg = await new Promise((resolve, reject) => {
    w.on('message', resolve);
    w.on('error', reject);
  });
  await exited;
  assert.ok(Number.isInteger(msg.init) && msg.init > 0, `initLRU in the worker returned ${msg.init}`);
  assert.strictEqual(msg.seen, 'from main');
  assert.strictEqual(shm.get_el(key, msg.idx), 'from worker');
  assert.strictEqual(msg.ownSize, 256);
  // The worker's exit destroyed what it created, and left main's cache alone.
  assert.strictEqual(shm.getSegmentSize(own), -1);
  assert.strictEqual(shm.get_el_hash(key, 1), 'from main');
});

test('the LRU a key names is looked up again once the segment is detached or replaced', () => {
  const a = lru();
  const b = lru();
  shm.set(a.key, 1, 'in a');
  shm.set(b.key, 1, 'in b');
  for (let i = 0; i < 3; i++) {
    assert.strictEqual(shm.get_el_hash(a.key, 1), 'in a');
    assert.strictEqual(shm.get_el_hash(b.key, 1), 'in b');
  }
  assert.strictEqual(shm.get_el_hash(a.key, 1), 'in a');
  assert.strictEqual(shm.detach(a.key, true), 0);
  assert.strictEqual(shm.get_el_hash(a.key, 1), -1);
  assert.strictEqual(shm.set(a.key, 1, 'x'), -1);
  // The same key, a new segment: not an LRU here until initLRU, then a new, empty one.
  shm.create(16384, 'Buffer', a.key);
  assert.strictEqual(shm.get_el_hash(a.key, 1), false);
  assert.ok(shm.initLRU(a.key, 64, 16384) > 0);
  assert.strictEqual(shm.get_el_hash(a.key, 1), -2);
  assert.strictEqual(shm.set(a.key, 1, 'new a'), shm.set(a.key, 1, 'new a'));
  assert.strictEqual(shm.get_el_hash(a.key, 1), 'new a');
  assert.strictEqual(shm.get_el_hash(b.key, 1), 'in b');
  // Attached again in this thread by get(): a new entry, not yet an LRU here.
  assert.strictEqual(shm.get_el_hash(b.key, 1), 'in b');
  assert.strictEqual(shm.destroy(b.key), true);
  assert.strictEqual(shm.get_el_hash(b.key, 1), -1);
});

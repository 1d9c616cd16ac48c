'use strict';
// Caches with a byte budget (`maxBytes`) through the class API: values of any size up to
// `maxValueSize`, eviction that keeps the whole segment within the budget, the stats' byte
// counts, the options' checks, values too large (thrown, or skipped with `oversize: 'skip'`),
// and a child process reading what this one wrote. A child runs this same file in the role named
// by SHMLRU_BUDGET_ROLE.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const { SharedLRU } = require('..');

const KiB = 1024;
const MiB = 1024 * KiB;

if (process.env.SHMLRU_BUDGET_ROLE) {
  runRole(process.env.SHMLRU_BUDGET_ROLE, process.env.SHMLRU_BUDGET_NAME);
} else {
  defineTests();
}

// A value of `n` bytes that says which it is: the same `seed` and `n` give the same bytes, a
// pseudo-random stream (xorshift32) seeded by both, so that no part of it repeats another.
function bytesOf(seed, n) {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = crypto.createHash('sha256').update(`${seed}:${n}`).digest().readUInt32LE(0) || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, n);
}

function digest(v) {
  return crypto.createHash('sha256').update(v).digest('hex');
}

// The child: opens the cache by name, reads every key it is told of, and says what it found.
function runRole(role, name) {
  const cache = SharedLRU.open(name);
  const keys = JSON.parse(process.env.SHMLRU_BUDGET_KEYS);
  const found = {};
  for (const k of keys) {
    const v = cache.get(k);
    found[k] = v === undefined ? null : { type: typeof v === 'string' ? 'string' : 'buffer', length: v.length, digest: digest(v) };
  }
  if (role === 'write') cache.set('from-child', bytesOf('child', 3 * MiB + 7));
  cache.close();
  process.send(found, () => process.disconnect());
}

function inChild(role, name, keys) {
  const { answerFrom } = require('../test-support/helpers');
  return answerFrom(__filename, {
    SHMLRU_BUDGET_ROLE: role,
    SHMLRU_BUDGET_NAME: name,
    SHMLRU_BUDGET_KEYS: JSON.stringify(keys),
  });
}

function defineTests() {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');
  const { uniqueNames, throwsCode } = require('../test-support/helpers');

  const uniqueName = uniqueNames('budget');

  // Bytes an entry takes in the value store: a 32-byte header, its key and value, rounded to 8.
  const footprint = (key, value) => Math.ceil((32 + Buffer.byteLength(key) + Buffer.byteLength(value)) / 8) * 8;

  // The sizes from 10 B to 2 MiB a budget cache takes side by side.
  const SIZES = [10, 100, 1000, 1023, 1025, 4000, 4097, 10_000, 60_000, 100_000, 500_000, MiB, 2 * MiB];

  test('values from 10 B to 2 MiB, strings and Buffers, through every way of reading', () => {
    const name = uniqueName('mixed');
    const c = SharedLRU.create(name, { maxBytes: 32 * MiB, maxValueSize: 4 * MiB });
    const s = c.settings();
    assert.equal(s.maxBytes, 32 * MiB);
    assert.equal(s.maxValueSize, 4 * MiB);
    assert.equal(s.recordSize, 0);
    assert.equal(c.maxBytes, 32 * MiB);
    assert.equal(c.maxValueSize, 4 * MiB);
    assert.equal(c.recordSize, 0);
    // No capacity given: the most entries its index may grow to, an entry per 70 bytes or so.
    assert.ok(c.capacity > (32 * MiB) / 128 && c.capacity < (32 * MiB) / 64, `capacity ${c.capacity}`);
    assert.ok(s.regionSize <= 32 * MiB, `the segment (${s.regionSize} bytes) is within the budget`);

    const want = new Map();
    for (const n of SIZES) {
      const b = bytesOf('b', n);
      const str = 'é'.repeat(Math.floor(n / 2)) + (n % 2 ? 'x' : ''); // n bytes of UTF-8
      c.set(`b${n}`, b);
      c.set(`s${n}`, str);
      want.set(`b${n}`, b);
      want.set(`s${n}`, str);
    }
    assert.equal(c.size, want.size);
    for (const [k, v] of want) {
      assert.deepEqual(c.get(k), v, `get ${k}`);
      assert.deepEqual(c.peek(k), v, `peek ${k}`);
    }
    // getMany: string keys go joined (values read into one buffer), other keys one by one.
    const keys = [...want.keys()];
    assert.deepEqual(c.getMany(keys), [...want.values()]);
    assert.deepEqual(c.getMany([...keys, 'absent']), [...want.values(), undefined]);
    assert.deepEqual(c.getMany(keys.map((k) => Buffer.from(k))), [...want.values()]);
    // getInto copies the bytes; a buffer too small is refused whole.
    const into = Buffer.alloc(2 * MiB);
    assert.equal(c.getInto(`b${2 * MiB}`, into), 2 * MiB);
    assert.ok(into.equals(want.get(`b${2 * MiB}`)));
    throwsCode(() => c.getInto(`b${MiB}`, Buffer.alloc(MiB - 1)), RangeError, 'ERR_SHM_BUFFER_TOO_SMALL');
    // Iteration, dump and load carry every size.
    assert.deepEqual(new Map(c.entries()), want);
    const dumped = c.dump();
    c.clear();
    assert.equal(c.size, 0);
    c.load(dumped);
    assert.deepEqual(new Map(c.entries()), want);
    // A value rewritten larger, then smaller.
    c.set('grow', 'x'.repeat(10));
    c.set('grow', 'y'.repeat(300_000));
    assert.equal(c.get('grow'), 'y'.repeat(300_000));
    c.set('grow', 'z');
    assert.equal(c.get('grow'), 'z');
    assert.equal(c.incr('n', 5), 5);
    assert.equal(c.check().ok, true, c.check().problems.join('\n'));
    c.close();
  });

  test('eviction keeps the whole segment within the budget, least recently used first', () => {
    const name = uniqueName('evict');
    const maxBytes = 8 * MiB;
    const c = SharedLRU.create(name, { maxBytes, maxValueSize: MiB });
    const file = path.join('/dev/shm', name);
    const value = (i) => bytesOf(i, 100 * KiB + (i % 7) * 1000);
    c.set('keep', 'small and used');
    // 40 MiB written into 8 MiB, `keep` read between writes so that it stays recently used.
    for (let i = 0; i < 400; i++) {
      c.set(`k${i}`, value(i));
      assert.equal(c.get('keep'), 'small and used', `keep, after ${i}`);
      if (i % 50 === 0) {
        const st = c.stats();
        assert.ok(st.bytesUsed + st.bytesFree <= maxBytes, `value store within the budget at ${i}`);
      }
    }
    const st = c.stats();
    assert.ok(st.evictions > 300, `evictions: ${st.evictions}`);
    assert.ok(st.size < 80, `entries held: ${st.size}`);
    assert.ok(fs.statSync(file).size <= maxBytes, `the segment is ${fs.statSync(file).size} bytes`);
    assert.ok(c.settings().regionSize <= maxBytes);
    // The newest are there, whole; the oldest are gone.
    for (let i = 390; i < 400; i++) assert.ok(c.get(`k${i}`).equals(value(i)), `k${i}`);
    for (let i = 0; i < 10; i++) assert.equal(c.get(`k${i}`), undefined, `k${i} evicted`);
    // Every entry left is whole.
    for (const [k, v] of c.entries()) if (k !== 'keep') assert.ok(v.equals(value(Number(k.slice(1)))), k);
    assert.equal(c.check().ok, true, c.check().problems.join('\n'));
    c.close();
  });

  test("the stats' bytes: live entries' footprints, used and free summing to the value store", () => {
    const name = uniqueName('bytes');
    const c = SharedLRU.create(name, { maxBytes: 4 * MiB });
    const empty = c.stats();
    assert.equal(empty.maxBytes, 4 * MiB);
    assert.equal(empty.bytesLive, 0);
    assert.equal(empty.bytesUsed, 0);
    assert.ok(empty.bytesFree > 3 * MiB && empty.bytesFree < 4 * MiB, `bytesFree ${empty.bytesFree}`);
    const store = empty.bytesUsed + empty.bytesFree;

    const live = () => [...c.entries()].reduce((n, [k, v]) => n + footprint(k, v), 0);
    const entries = [['a', 'x'], ['bb', 'y'.repeat(1000)], ['ccc', Buffer.alloc(70_000, 1)], ['d', 'é'.repeat(33)]];
    for (const [k, v] of entries) c.set(k, v);
    let st = c.stats();
    assert.equal(st.bytesLive, live());
    assert.equal(st.bytesLive, entries.reduce((n, [k, v]) => n + footprint(k, v), 0));
    assert.ok(st.bytesUsed >= st.bytesLive);
    assert.equal(st.bytesUsed + st.bytesFree, store, 'used and free are the whole value store');
    assert.equal(st.size, 4);

    c.set('bb', 'shorter');
    c.delete('ccc');
    st = c.stats();
    assert.equal(st.bytesLive, live());
    assert.ok(st.bytesUsed >= st.bytesLive);
    assert.equal(st.bytesUsed + st.bytesFree, store);

    c.clear();
    st = c.stats();
    assert.equal(st.bytesLive, 0);
    assert.equal(st.bytesUsed + st.bytesFree, store);
    c.close();

    // A cache of fixed records says so: no budget, entries as large as a record.
    const f = SharedLRU.create(uniqueName('fixed'), { capacity: 16, recordSize: 100, shards: 1 });
    assert.equal(f.maxBytes, 0);
    assert.equal(f.maxValueSize, 100);
    assert.equal(f.settings().maxBytes, 0);
    assert.equal(f.stats().maxBytes, 0);
    f.close();
  });

  test('the options: recordSize and maxBytes together are refused, naming both; each number is checked', () => {
    const name = uniqueName('opts');
    throwsCode(
      () => SharedLRU.create(name, { capacity: 10, recordSize: 64, maxBytes: MiB }),
      Error,
      'ERR_SHM_INVALID_ARGUMENT',
      /recordSize.*maxBytes/,
    );
    throwsCode(() => SharedLRU.openOrCreate(name, { recordSize: 64, maxBytes: MiB }), Error, 'ERR_SHM_INVALID_ARGUMENT', /recordSize.*maxBytes/);
    throwsCode(() => SharedLRU.create(name, { capacity: 10, recordSize: 64, maxValueSize: 32 }), Error, 'ERR_SHM_INVALID_ARGUMENT', /maxValueSize.*maxBytes/);
    for (const bad of [0, -1, 1.5, 2 ** 53]) {
      throwsCode(() => SharedLRU.create(name, { maxBytes: bad }), RangeError, 'ERR_OUT_OF_RANGE', /options\.maxBytes/);
      throwsCode(() => SharedLRU.create(name, { maxBytes: MiB, maxValueSize: bad }), RangeError, 'ERR_OUT_OF_RANGE', /options\.maxValueSize/);
      throwsCode(() => SharedLRU.create(name, { maxBytes: MiB, capacity: bad }), RangeError, 'ERR_OUT_OF_RANGE', /options\.capacity/);
    }
    for (const bad of ['1048576', 1n, null, {}]) {
      throwsCode(() => SharedLRU.create(name, { maxBytes: bad }), TypeError, 'ERR_INVALID_ARG_TYPE', /options\.maxBytes/);
    }
    // Without a budget, a capacity and a record size are still required.
    throwsCode(() => SharedLRU.create(name, { capacity: 10 }), TypeError, 'ERR_INVALID_ARG_TYPE', /recordSize/);
    // The engine's limits: an entry as large as the whole budget is refused.
    throwsCode(() => SharedLRU.create(name, { maxBytes: MiB, maxValueSize: MiB }), Error, 'ERR_SHM_INVALID_ARGUMENT');
    assert.equal(fs.existsSync(path.join('/dev/shm', name)), false, 'nothing was created');

    // A budget with a capacity of its own: at most that many entries.
    const c = SharedLRU.create(name, { maxBytes: MiB, capacity: 3000 });
    assert.equal(c.capacity, 3000);
    assert.equal(c.maxValueSize, MiB / 8, 'maxValueSize defaults to an eighth of a small budget');
    for (let i = 0; i < 4000; i++) c.set(`k${i}`, 'v'.repeat(100));
    assert.equal(c.size, 3000, 'capacity 3000 holds 3000 of 4000 values of 100 bytes');
    c.close();
    // Without one, the index grows as the entries need: all 4000 fit in 1 MiB.
    const e = SharedLRU.create(uniqueName('grows'), { maxBytes: MiB });
    for (let i = 0; i < 4000; i++) e.set(`k${i}`, 'v'.repeat(100));
    assert.equal(e.size, 4000, '4000 values of 100 bytes fit in 1 MiB without a capacity');
    assert.equal(e.stats().evictions, 0);
    e.close();
    const d = SharedLRU.create(uniqueName('default'), { maxBytes: 64 * MiB });
    assert.equal(d.maxValueSize, MiB, 'maxValueSize defaults to 1 MiB');
    assert.ok(d.capacity > (64 * MiB) / 128, 'capacity: the most entries the index may grow to');
    d.close();
  });

  test('openOrCreate compares a budget cache by its budget, and by capacity and maxValueSize when given', () => {
    const name = uniqueName('reopen');
    const a = SharedLRU.openOrCreate(name, { maxBytes: 2 * MiB, maxValueSize: 128 * KiB });
    a.set('k', 'v');
    // The same budget, capacity and maxValueSize left to the engine: the same cache.
    const b = SharedLRU.openOrCreate(name, { maxBytes: 2 * MiB });
    assert.equal(b.get('k'), 'v');
    b.close();
    throwsCode(() => SharedLRU.openOrCreate(name, { maxBytes: 4 * MiB }), Error, 'ERR_SHM_MISMATCH', /maxBytes is 2097152, not 4194304/);
    throwsCode(() => SharedLRU.openOrCreate(name, { maxBytes: 2 * MiB, maxValueSize: MiB / 4 }), Error, 'ERR_SHM_MISMATCH', /maxValueSize is 131072, not 262144/);
    throwsCode(() => SharedLRU.openOrCreate(name, { maxBytes: 2 * MiB, capacity: 7 }), Error, 'ERR_SHM_MISMATCH', /capacity is \d+, not 7/);
    throwsCode(() => SharedLRU.openOrCreate(name, { capacity: 2048, recordSize: 64 }), Error, 'ERR_SHM_MISMATCH', /it has a byte budget \(maxBytes\), not fixed records/);
    const any = SharedLRU.openOrCreate(name, { capacity: 2048, recordSize: 64, reuse: 'any' });
    assert.equal(any.maxBytes, 2 * MiB);
    any.close();
    a.close();

    const fixed = uniqueName('reopen-fixed');
    SharedLRU.create(fixed, { capacity: 8, recordSize: 64 }).close();
    throwsCode(() => SharedLRU.openOrCreate(fixed, { maxBytes: MiB }), Error, 'ERR_SHM_MISMATCH', /it has fixed records \(recordSize\), not a byte budget/);
  });

  test('a value above maxValueSize throws ERR_SHM_VALUE_TOO_LARGE, or is skipped with oversize: skip', () => {
    const name = uniqueName('oversize');
    const c = SharedLRU.create(name, { maxBytes: 4 * MiB, maxValueSize: 64 * KiB });
    const fits = 'f'.repeat(64 * KiB - 'k'.length);
    c.set('k', fits); // key and value exactly maxValueSize
    assert.equal(c.get('k'), fits);
    throwsCode(() => c.set('k', `${fits}!`), Error, 'ERR_SHM_VALUE_TOO_LARGE', /65537/);
    assert.equal(c.get('k'), fits, 'a refused set leaves the entry as it was');
    throwsCode(() => c.add('new', Buffer.alloc(65 * KiB)), Error, 'ERR_SHM_VALUE_TOO_LARGE');

    // Skipped per call: not cached, and the key's older value (now stale) removed.
    assert.equal(c.set('k', `${fits}!`, { oversize: 'skip' }), c);
    assert.equal(c.get('k'), undefined);
    assert.equal(c.add('k2', 'x'.repeat(2 * MiB), { oversize: 'skip' }), false);
    assert.equal(c.has('k2'), false);
    // Skipped by the handle, with a serializer: a JSON value above maxValueSize.
    const json = SharedLRU.open(name, { serializer: 'json', oversize: 'skip' });
    json.set('doc', { rows: ['small'] });
    assert.deepEqual(json.get('doc'), { rows: ['small'] });
    json.set('doc', { rows: Array.from({ length: 10_000 }, (_, i) => `row ${i}`) });
    assert.equal(json.get('doc'), undefined);
    // load() checks every entry against maxValueSize before it touches the cache.
    json.set('doc', { ok: true });
    const strict = SharedLRU.open(name);
    throwsCode(
      () => strict.load([['a', { value: 'x' }], ['big', { value: 'y'.repeat(70_000) }]]),
      RangeError,
      'ERR_SHM_VALUE_TOO_LARGE',
      /maxValueSize of 65536 bytes; nothing was loaded/,
    );
    assert.equal(strict.get('doc'), '{"ok":true}', 'load left the cache as it was');
    json.load([['a', { value: 'x' }], ['big', { value: 'y'.repeat(70_000) }]]);
    assert.deepEqual([...json.keys()], ['a'], 'a handle that skips leaves the large entry out');
    strict.close();
    json.close();
    c.close();
  });

  test('another process reads every size this one wrote, and writes one this one reads', async () => {
    const name = uniqueName('procs');
    const c = SharedLRU.create(name, { maxBytes: 32 * MiB, maxValueSize: 4 * MiB });
    const want = {};
    for (const n of SIZES) {
      const v = bytesOf('p', n);
      c.set(`p${n}`, v);
      want[`p${n}`] = { type: 'buffer', length: n, digest: digest(v) };
    }
    c.set('text', 'ü'.repeat(300_000));
    want.text = { type: 'string', length: 300_000, digest: digest('ü'.repeat(300_000)) };
    want.absent = null;
    const found = await inChild('write', name, Object.keys(want));
    assert.deepEqual(found, want);
    assert.ok(c.get('from-child').equals(bytesOf('child', 3 * MiB + 7)));
    c.close();
  });
}

'use strict';
// The native interface of lib/native.js at its edges: handles, conversions at the stack-buffer
// boundaries, error codes.

const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const native = require('../lib/native');

const ROOT = path.join(__dirname, '..');

let n = 0;
const names = [];
function name() {
  const s = `/native-test-${process.pid}-${n++}`;
  names.push(s);
  return s;
}
test.after(() => {
  for (const s of names) native.cacheDestroyName(s);
});

// One shard, so that recency order is exact.
const create = (cap = 64, record = 4096, evict = true) =>
  native.cacheCreate(name(), { capacity: cap, recordSize: record, evictOnFull: evict, ttl: 0, mode: 0o600, shards: 1 });

function throwsCode(fn, Ctor, code) {
  assert.throws(fn, (e) => e instanceof Ctor && e.code === code);
}

test('string keys and values of every length around the stack buffers survive intact', () => {
  const h = create(4096, 4096);
  const fillers = ['a', '€', '😀'];
  for (let len = 240; len <= 270; len++) {
    for (const f of fillers) {
      const key = 'k'.repeat(len) + f.repeat(3);
      const value = 'v'.repeat(len * 4) + f.repeat(3) + len;
      assert.strictEqual(native.cacheSet(h, key, value, undefined, 0), true);
      assert.strictEqual(native.cacheGet(h, key), value);
      // The same UTF-8 bytes as a Buffer are the same key.
      assert.strictEqual(native.cacheGet(h, Buffer.from(key)), value);
      assert.strictEqual(native.cacheGet(h, [...key].slice(0, -1).join('')), undefined);
    }
  }
  const [k] = native.cacheEntries(h, false, 1)[0];
  assert.strictEqual(k, 'k'.repeat(270) + '😀😀😀');
  assert.deepStrictEqual(native.cacheCheck(h), { ok: true, problems: [] });
});

test('values come back as the type they went in', () => {
  const h = create();
  native.cacheSet(h, 's', 'text', undefined, 0);
  native.cacheSet(h, 'b', Buffer.from([1, 2, 3]), undefined, 0);
  native.cacheSet(h, 'u', new Uint8Array([4, 5]), undefined, 0);
  native.cacheSet(h, Buffer.from([0xff, 0xfe]), 'binary key', undefined, 0);
  assert.strictEqual(native.cacheGet(h, 's'), 'text');
  assert.deepStrictEqual(native.cacheGet(h, 'b'), Buffer.from([1, 2, 3]));
  assert.deepStrictEqual(native.cachePeek(h, 'u'), Buffer.from([4, 5]));
  const keys = native.cacheEntries(h, true, Infinity).map(([k]) => k);
  // Least recently used first: the peek did not touch 'u'; the gets moved 's' and 'b' up.
  assert.deepStrictEqual(keys, ['u', Buffer.from([0xff, 0xfe]), 's', 'b']); // not UTF-8: a Buffer
  throwsCode(() => native.cacheSet(h, 'x', new Uint16Array(2), undefined, 0), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => native.cacheSet(h, 'x', 5, undefined, 0), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test('handles: wrong values, wrong kinds and closed handles are refused', () => {
  for (const bad of [5, null, undefined, 'x', {}, [], () => 1, Symbol('s'), 1n]) {
    throwsCode(() => native.cacheGet(bad, 'a'), TypeError, 'ERR_INVALID_ARG_TYPE');
  }
  const seg = native.segCreate(undefined, 8192, 0o600);
  try {
    throwsCode(() => native.cacheGet(seg, 'a'), TypeError, 'ERR_INVALID_ARG_TYPE');
    const lru = native.lruInit(seg, 64, 8192, true);
    throwsCode(() => native.segView(lru), TypeError, 'ERR_INVALID_ARG_TYPE');
  } finally {
    native.segDestroy(seg);
  }
  const h = create();
  native.cacheSet(h, 'a', 'b', undefined, 0);
  native.cacheClose(h);
  native.cacheClose(h);
  for (const call of [() => native.cacheGet(h, 'a'), () => native.cacheLen(h), () => native.cacheSet(h, 'a', 'b', undefined, 0)]) {
    throwsCode(call, Error, 'ERR_SHM_CLOSED');
  }
});

test('cacheGetInto copies without allocating, or says how much room is needed', () => {
  const h = create();
  native.cacheSet(h, 'key', 'a longer value', undefined, 0);
  const buf = Buffer.alloc(32, 0x2e);
  assert.strictEqual(native.cacheGetInto(h, 'key', buf), 14);
  assert.strictEqual(buf.toString('latin1', 0, 15), 'a longer value.');
  const small = Buffer.alloc(4, 0x2e);
  assert.throws(
    () => native.cacheGetInto(h, 'key', small),
    (e) => e instanceof RangeError && e.code === 'ERR_SHM_BUFFER_TOO_SMALL' && /14 bytes/.test(e.message),
  );
  assert.strictEqual(small.toString(), '....');
  assert.strictEqual(native.cacheGetInto(h, 'missing', buf), -1);
  // The key may live in the very buffer the value is copied into.
  buf.write('key');
  assert.strictEqual(native.cacheGetInto(h, buf.subarray(0, 3), buf), 14);
  assert.strictEqual(buf.toString('latin1', 0, 14), 'a longer value');
  throwsCode(() => native.cacheGetInto(h, 'key', 'not a buffer'), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test('engine errors keep their codes; set modes and ttl', async () => {
  const id = name();
  const h = native.cacheCreate(id, { capacity: 2, recordSize: 16, evictOnFull: false, ttl: 0, mode: 0o600 });
  throwsCode(() => native.cacheCreate(id, { capacity: 2, recordSize: 16, evictOnFull: false, ttl: 0, mode: 0o600 }), Error, 'ERR_SHM_EXISTS');
  throwsCode(() => native.cacheOpen(`${id}-missing`), Error, 'ERR_SHM_NOT_FOUND');
  throwsCode(() => native.cacheSet(h, 'k', 'x'.repeat(16), undefined, 0), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  assert.strictEqual(native.cacheSet(h, 'a', '1', undefined, 1), true);
  assert.strictEqual(native.cacheSet(h, 'a', '2', undefined, 1), false); // add: present
  assert.strictEqual(native.cacheSet(h, 'z', '2', undefined, 2), false); // replace: absent
  // A ttl long enough that 'b' is still live when the cache is found full just below (at 1 ms
  // it could expire in between, and the set would reclaim it).
  assert.strictEqual(native.cacheSet(h, 'b', 'x', { ttl: 20 }, 0), true);
  throwsCode(() => native.cacheSet(h, 'c', 'x', undefined, 0), Error, 'ERR_SHM_FULL');
  throwsCode(() => native.cacheIncr(h, 'b', 1, undefined), Error, 'ERR_SHM_NOT_A_NUMBER');
  assert.strictEqual(native.cacheIncr(h, 'a', 41, undefined), 42);
  await new Promise((r) => setTimeout(r, 60));
  assert.strictEqual(native.cacheGet(h, 'b'), undefined); // its 20 ms ttl ran out
  assert.strictEqual(native.cacheHas(h, 'a'), true);
  const other = native.cacheOpenOrCreate(id, { capacity: 99, recordSize: 99, evictOnFull: true, ttl: 0, mode: 0o600, reuse: 'any' });
  assert.strictEqual(native.cacheInfo(other).recordSize, 16); // opened, not created
  assert.strictEqual(native.cacheGet(other, 'a'), '42');
  assert.strictEqual(native.cacheDestroyName(id), true);
  assert.strictEqual(native.cacheDestroyName(id), false);
  throwsCode(() => native.cacheCreate('no-slash', { capacity: 2, recordSize: 16, evictOnFull: false, ttl: 0, mode: 0o600 }), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => native.cacheCreate('/a/b', { capacity: 2, recordSize: 16, evictOnFull: false, ttl: 0, mode: 0o600 }), Error, 'ERR_SHM_INVALID_NAME');
  throwsCode(() => native.cacheCreate(name(), { capacity: 0, recordSize: 16, evictOnFull: false, ttl: 0, mode: 0o600 }), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => native.cacheCreate(name(), { capacity: 2, recordSize: 16, evictOnFull: 'yes', ttl: 0, mode: 0o600 }), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test('benchmark floors: only in the bench build of the addon', () => {
  assert.strictEqual(native.benchNoop, undefined);
  assert.strictEqual(native.benchString, undefined);
  // The build bench/node.js loads (`node scripts/build.js --bench`), made here if it is stale.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.js'), '--bench', '--if-needed'], { stdio: 'ignore' });
  const bench = require(path.join(ROOT, 'build', 'shm_typed_lru_bench.node'));
  assert.strictEqual(bench.benchNoop(1, 2), undefined);
  throwsCode(() => bench.benchNoop(-1, 2), RangeError, 'ERR_OUT_OF_RANGE');
  assert.strictEqual(bench.benchString().length, 64);
});

test('argument types: strings first, then Uint8Arrays; everything else refused', () => {
  const h = create();
  native.cacheSet(h, 'k', 'v', undefined, 0);
  assert.strictEqual(native.cacheGet(h, new Uint8ClampedArray([0x6b])), 'v');
  const buf = Buffer.alloc(8);
  assert.strictEqual(native.cacheGetInto(h, 'k', new Uint8ClampedArray(buf.buffer, 0, 8)), 1);
  assert.strictEqual(buf[0], 0x76);
  for (const bad of [5, true, null, undefined, {}, [], Symbol('s'), 1n, new Uint16Array(1), new DataView(new ArrayBuffer(1))]) {
    throwsCode(() => native.cacheGet(h, bad), TypeError, 'ERR_INVALID_ARG_TYPE');
    throwsCode(() => native.cacheSet(h, 'k', bad, undefined, 0), TypeError, 'ERR_INVALID_ARG_TYPE');
    throwsCode(() => native.cacheGetInto(h, 'k', bad), TypeError, 'ERR_INVALID_ARG_TYPE');
  }
  throwsCode(() => native.cacheGetInto(h, 'k', 'str'), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test('strings come back exactly: ASCII, Latin-1, other BMP, astral; lone surrogates are refused', () => {
  const h = create();
  const values = ['', 'plain ascii \x00\x7f', 'é\xff\x80', 'ŁΩ€', '🍣', 'a\ufffdb', 'x'.repeat(2000)];
  for (const [i, v] of values.entries()) {
    native.cacheSet(h, `k${i}`, v, undefined, 0);
    assert.strictEqual(native.cacheGet(h, `k${i}`), v);
  }
  // A lone surrogate has no UTF-8 form: stored, it would come back as U+FFFD, so it is refused,
  // short or long (the stack and the heap paths), in a key or a value.
  for (const bad of ['a\ud800b', '\udc00', `${'x'.repeat(3000)}\ud83d`]) {
    throwsCode(() => native.cacheSet(h, 'k', bad, undefined, 0), TypeError, 'ERR_INVALID_ARG_VALUE');
    throwsCode(() => native.cacheSet(h, bad, 'v', undefined, 0), TypeError, 'ERR_INVALID_ARG_VALUE');
  }
  // Keys of Latin-1 and two-byte strings are their UTF-8 bytes.
  native.cacheSet(h, 'é', 'latin1 key', undefined, 0);
  native.cacheSet(h, 'Ł', 'two-byte key', undefined, 0);
  assert.strictEqual(native.cacheGet(h, Buffer.from('é')), 'latin1 key');
  assert.strictEqual(native.cacheGet(h, Buffer.from('Ł')), 'two-byte key');
  assert.strictEqual(native.cacheGet(h, 'A'), undefined); // 'Ł' is not read as its low byte
});

test('hashes are checked by the addon as well', () => {
  const seg = native.segCreate(undefined, 16384, 0o600);
  try {
    const lru = native.lruInit(seg, 64, 16384, true);
    assert.strictEqual(native.lruGetHash(lru, 1), undefined);
    native.lruSet(lru, 2 ** 53 - 1, 'max');
    native.lruSet(lru, 2n ** 64n - 1n, 'big');
    assert.strictEqual(native.lruGetHash(lru, 2 ** 53 - 1), 'max');
    assert.strictEqual(native.lruGetHash(lru, 2n ** 64n - 1n), 'big');
    assert.strictEqual(native.lruGetHash(lru, -0), undefined);
    for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 53, -1n, 2n ** 64n]) {
      throwsCode(() => native.lruGetHash(lru, bad), RangeError, 'ERR_OUT_OF_RANGE');
    }
    for (const bad of ['1', null, undefined, {}, true]) {
      throwsCode(() => native.lruGetHash(lru, bad), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
    native.cacheClose(lru);
  } finally {
    native.segDestroy(seg);
    native.segRelease(seg);
  }
});

test('handles stay recognised across garbage collections, and only while alive', async () => {
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const keep = create();
  native.cacheSet(keep, 'a', 'kept', undefined, 0);
  for (let round = 0; round < 3; round++) {
    // Handles that become garbage are finalised; new ones may reuse their memory.
    for (let i = 0; i < 50; i++) native.cacheOpen(native.cacheInfo(keep).name);
    gc();
    await new Promise((r) => setImmediate(r));
    const h = native.cacheOpen(native.cacheInfo(keep).name);
    assert.strictEqual(native.cacheGet(h, 'a'), 'kept');
    native.cacheClose(h);
  }
  assert.strictEqual(native.cacheGet(keep, 'a'), 'kept');
});

'use strict';
// The class API (SharedLRU), loaded the way a user loads the package. Each test makes its own
// cache under a name unique to this run and destroys it afterwards.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');
const { SharedLRU } = require('..');
const { uniqueNames, throwsCode } = require('../test-support/helpers');

const uniqueName = uniqueNames('class');

function make(tag, opts = {}) {
  return SharedLRU.create(uniqueName(tag), { capacity: 64, recordSize: 128, shards: 1, ...opts });
}


test('create, open, openOrCreate and destroy by name', () => {
  const name = uniqueName('lifecycle');
  const a = SharedLRU.create(name, { capacity: 10, recordSize: 32, shards: 1 });
  assert.equal(a.capacity, 10);
  assert.equal(a.recordSize, 32);
  assert.equal(a.name, name);
  assert.equal(Object.prototype.toString.call(a), '[object SharedLRU]');
  throwsCode(() => SharedLRU.create(name, { capacity: 10, recordSize: 32 }), Error, 'ERR_SHM_EXISTS');

  a.set('k', 'v');
  const b = SharedLRU.open(name);
  assert.equal(b.get('k'), 'v');
  // openOrCreate on an existing cache with the same settings opens it, data and all.
  const c = SharedLRU.openOrCreate(name, { capacity: 10, recordSize: 32 });
  assert.equal(c.capacity, 10);
  assert.equal(c.recordSize, 32);
  assert.equal(c.get('k'), 'v');
  const info = c.settings();
  assert.equal(info.name, name);
  assert.equal(info.shards, 1);
  assert.equal(info.evictOnFull, true);
  assert.equal(info.defaultTtl, 0);
  assert.ok(info.regionSize > 10 * 32);

  a.close();
  b.close();
  c.close();
  assert.equal(SharedLRU.destroy(name), true);
  assert.equal(SharedLRU.destroy(name), false);
  throwsCode(() => SharedLRU.open(name), Error, 'ERR_SHM_NOT_FOUND');

  const d = SharedLRU.openOrCreate(name, { capacity: 5, recordSize: 16, shards: 1 });
  assert.equal(d.capacity, 5);
  assert.equal(d.size, 0);
  d.close();
});

test('values come back as the type they went in, byte for byte', () => {
  const c = make('types');
  const bin = Buffer.from([0, 1, 2, 0, 255, 0, 0]);
  c.set('bin', bin);
  c.set('str', 'plain');
  c.set('nul', 'a\0b\0\0');
  c.set('utf8', 'héllo ✓ 🍣');
  c.set('empty', '');
  c.set('emptybuf', Buffer.alloc(0));
  c.set('u8', new Uint8Array([9, 0, 8]));

  const got = c.get('bin');
  assert.ok(Buffer.isBuffer(got));
  assert.deepEqual(got, bin);
  assert.notEqual(got.buffer, bin.buffer, 'a copy, not the caller\'s buffer');
  assert.equal(c.get('str'), 'plain');
  assert.equal(c.get('nul'), 'a\0b\0\0');
  assert.equal(c.get('nul').length, 5);
  assert.equal(c.get('utf8'), 'héllo ✓ 🍣');
  assert.equal(c.get('empty'), '');
  assert.ok(Buffer.isBuffer(c.get('emptybuf')));
  assert.equal(c.get('emptybuf').length, 0);
  assert.deepEqual([...c.get('u8')], [9, 0, 8]);
  assert.equal(c.peek('nul'), 'a\0b\0\0');
  assert.deepEqual(c.peek('bin'), bin);

  // Overwriting with the other type changes the type that comes back.
  c.set('str', Buffer.from('plain'));
  assert.ok(Buffer.isBuffer(c.get('str')));
  c.set('bin', 'now a string');
  assert.equal(c.get('bin'), 'now a string');
  assert.equal(c.get('absent'), undefined);
  assert.equal(c.peek('absent'), undefined);
  c.close();
});

test('values longer than 1 KiB come back whole, and each get counts one hit', () => {
  // The binding reads a value into a 1 KiB buffer on the stack; a longer one is read again
  // onto the heap, and that second read must neither change the value nor count again.
  const c = make('long', { recordSize: 4096 });
  const sizes = [1023, 1024, 1025, 4000];
  for (const n of sizes) {
    c.set(`s${n}`, 'x'.repeat(n - 1) + 'y');
    c.set(`b${n}`, Buffer.alloc(n, n & 0xff));
  }
  for (const n of sizes) {
    assert.equal(c.get(`s${n}`), 'x'.repeat(n - 1) + 'y');
    assert.deepEqual(c.get(`b${n}`), Buffer.alloc(n, n & 0xff));
  }
  assert.equal(c.stats().hits, 2 * sizes.length);
  c.close();
});

test('keys are bytes: a string key is its UTF-8 bytes', () => {
  const c = make('keys');
  c.set('key', 'from string');
  assert.equal(c.get(Buffer.from('key')), 'from string');
  assert.equal(c.get(new Uint8Array(Buffer.from('key'))), 'from string');
  c.set(Buffer.from('ключ'), 'cyrillic');
  assert.equal(c.get('ключ'), 'cyrillic');

  // NUL bytes are part of the key, not terminators.
  c.set(Buffer.from([1, 2, 3]), 'three');
  c.set(Buffer.from([1, 2, 3, 0]), 'four');
  c.set('a\0b', 'with nul');
  c.set('a', 'just a');
  assert.equal(c.get(Buffer.from([1, 2, 3])), 'three');
  assert.equal(c.get(Buffer.from([1, 2, 3, 0])), 'four');
  assert.equal(c.get('a\0b'), 'with nul');
  assert.equal(c.get('a'), 'just a');
  assert.equal(c.get(Buffer.from([1, 2])), undefined);
  assert.equal(c.get('A'), undefined, 'keys are case sensitive');
  assert.equal(c.size, 6);
  assert.equal(c.has('a\0b'), true);
  assert.equal(c.has('a\0c'), false);
  c.close();
});

test('peek does not mark an entry used; get does; iteration is MRU to LRU', () => {
  const c = make('order');
  c.set('a', '1').set('b', '2').set('c', '3');
  assert.deepEqual([...c.keys()], ['c', 'b', 'a']);
  assert.equal(c.peek('a'), '1');
  assert.deepEqual([...c.keys()], ['c', 'b', 'a']);
  assert.equal(c.has('a'), true);
  assert.deepEqual([...c.keys()], ['c', 'b', 'a'], 'has does not mark used');
  assert.equal(c.get('a'), '1');
  assert.deepEqual([...c.keys()], ['a', 'c', 'b']);
  c.set('b', 'two');
  assert.deepEqual([...c.keys()], ['b', 'a', 'c'], 'set marks used');

  assert.deepEqual([...c.entries()], [['b', 'two'], ['a', '1'], ['c', '3']]);
  assert.deepEqual([...c], [['b', 'two'], ['a', '1'], ['c', '3']]);
  assert.deepEqual([...c.values()], ['two', '1', '3']);
  assert.deepEqual([...c.rentries()], [['c', '3'], ['a', '1'], ['b', 'two']]);
  assert.deepEqual([...c.rkeys()], ['c', 'a', 'b']);
  assert.deepEqual([...c.rvalues()], ['3', '1', 'two']);
  const seen = [];
  for (const [k, v] of c) seen.push(`${k}=${v}`);
  assert.deepEqual(seen, ['b=two', 'a=1', 'c=3']);
  // Iterating does not change recency.
  assert.deepEqual([...c.keys()], ['b', 'a', 'c']);

  const bin = make('order-bin');
  bin.set('x', Buffer.from([0, 7]));
  const [[k, v]] = [...bin.entries()];
  assert.equal(k, 'x');
  assert.ok(Buffer.isBuffer(v));
  assert.deepEqual(v, Buffer.from([0, 7]));
  bin.close();
  c.close();
});

test('set returns the cache; has, delete, clear and size', () => {
  const c = make('basic');
  assert.equal(c.size, 0);
  assert.equal(c.set('a', 'x'), c);
  c.set('b', 'y');
  assert.equal(c.size, 2);
  assert.equal(c.has('a'), true);
  assert.equal(c.delete('a'), true);
  assert.equal(c.delete('a'), false);
  assert.equal(c.has('a'), false);
  assert.equal(c.get('a'), undefined);
  assert.equal(c.size, 1);
  c.set('c', 'z').set('d', 'w');
  assert.equal(c.clear(), 3);
  assert.equal(c.size, 0);
  assert.deepEqual([...c], []);
  c.set('e', 'after clear');
  assert.equal(c.get('e'), 'after clear');
  assert.equal(c.check().ok, true);
  c.close();
});

test('add and replace', () => {
  const c = make('add');
  assert.equal(c.add('k', 'first'), true);
  assert.equal(c.add('k', 'second'), false);
  assert.equal(c.get('k'), 'first');
  assert.equal(c.replace('k', 'third'), true);
  assert.equal(c.get('k'), 'third');
  assert.equal(c.replace('absent', 'x'), false);
  assert.equal(c.has('absent'), false);
  assert.equal(c.size, 1);
  assert.equal(c.add('t', 'ttl', { ttl: 30 }), true);
  assert.equal(c.replace('k', Buffer.from('buf'), { ttl: 0 }), true);
  assert.ok(Buffer.isBuffer(c.get('k')));
  c.close();
});

test('incr counts atomically in a decimal string', () => {
  const c = make('incr');
  assert.equal(c.incr('n'), 1);
  assert.equal(c.incr('n'), 2);
  assert.equal(c.incr('n', 40), 42);
  assert.equal(c.incr('n', -50), -8);
  assert.equal(c.get('n'), '-8');
  c.set('ten', '10');
  assert.equal(c.incr('ten', 5), 15);
  c.set('bufnum', Buffer.from('7'));
  assert.equal(c.incr('bufnum'), 8);
  assert.equal(c.get('bufnum'), '8', 'incr stores a string');
  c.set('word', 'seven');
  throwsCode(() => c.incr('word'), Error, 'ERR_SHM_NOT_A_NUMBER');
  assert.equal(c.get('word'), 'seven');
  assert.equal(c.incr('short', 1, { ttl: 40 }), 1);
  throwsCode(() => c.incr('n', 1.5), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => c.incr('n', '1'), TypeError, 'ERR_INVALID_ARG_TYPE');
  c.close();
});

test('time to live: per entry, per cache, and 0 for never', async () => {
  const c = make('ttl');
  c.set('short', 'x', { ttl: 300 });
  c.set('forever', 'y');
  c.set('zero', 'z', { ttl: 0 });
  c.incr('count', 1, { ttl: 300 });
  assert.equal(c.get('short'), 'x');
  assert.equal(c.has('count'), true);
  await sleep(450);
  assert.equal(c.has('short'), false);
  assert.equal(c.get('short'), undefined);
  assert.equal(c.peek('short'), undefined);
  assert.equal(c.get('count'), undefined);
  assert.equal(c.get('forever'), 'y');
  assert.equal(c.get('zero'), 'z');
  assert.deepEqual([...c.keys()].sort(), ['forever', 'zero']);
  assert.equal(c.replace('short', 'again'), false, 'an expired key is absent');
  assert.equal(c.add('short', 'again'), true);
  c.close();

  const d = make('ttl-default', { ttl: 300 });
  assert.equal(d.settings().defaultTtl, 300);
  d.set('dflt', '1');
  d.set('long', '2', { ttl: 60_000 });
  d.set('never', '3', { ttl: 0 });
  await sleep(450);
  assert.equal(d.get('dflt'), undefined);
  assert.equal(d.get('long'), '2');
  assert.equal(d.get('never'), '3');
  d.close();
});

test('a full cache evicts its least recently used entry', () => {
  const c = make('evict', { capacity: 4 });
  assert.equal(c.capacity, 4);
  for (const k of ['a', 'b', 'c', 'd']) c.set(k, k.toUpperCase());
  c.get('a'); // a becomes most recent; b is now the oldest
  c.set('e', 'E');
  assert.equal(c.size, 4);
  assert.equal(c.has('b'), false);
  assert.deepEqual([...c.keys()], ['e', 'a', 'd', 'c']);
  assert.equal(c.stats().evictions, 1);
  assert.equal(c.check().ok, true);
  c.close();
});

test('a full cache that does not evict refuses new keys with ERR_SHM_FULL', () => {
  const c = make('noevict', { capacity: 3, evictOnFull: false });
  assert.equal(c.settings().evictOnFull, false);
  c.set('a', '1').set('b', '2').set('c', '3');
  throwsCode(() => c.set('d', '4'), Error, 'ERR_SHM_FULL');
  throwsCode(() => c.add('d', '4'), Error, 'ERR_SHM_FULL');
  assert.equal(c.has('d'), false);
  assert.equal(c.size, 3);
  // Overwrites need no room.
  c.set('a', 'one');
  assert.equal(c.get('a'), 'one');
  assert.equal(c.delete('b'), true);
  c.set('d', '4');
  assert.equal(c.get('d'), '4');
  assert.equal(c.stats().evictions, 0);
  c.close();
});

test('key bytes plus value bytes must fit the record: ERR_SHM_VALUE_TOO_LARGE', () => {
  const c = make('toolarge', { recordSize: 16 });
  c.set('k', 'x'.repeat(15));
  assert.equal(c.get('k').length, 15);
  throwsCode(() => c.set('k', 'x'.repeat(16)), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  assert.equal(c.get('k'), 'x'.repeat(15), 'a refused set leaves the old value');
  throwsCode(() => c.set('0123456789', Buffer.alloc(7)), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  c.set('0123456789', Buffer.alloc(6));
  // UTF-8 bytes count, not UTF-16 units: 5 characters of 3 bytes are 15 bytes.
  throwsCode(() => c.set('k', '✓✓✓✓✓✓'), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  c.set('k', '✓✓✓✓✓');
  throwsCode(() => c.add('new', 'y'.repeat(40)), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  throwsCode(() => c.replace('k', 'y'.repeat(40)), Error, 'ERR_SHM_VALUE_TOO_LARGE');
  assert.equal(c.has('new'), false);
  c.close();
});

test('getInto copies into the caller\'s buffer', () => {
  const c = make('getinto');
  const buf = Buffer.alloc(32, 0xaa);
  c.set('bin', Buffer.from([0, 1, 0, 2]));
  c.set('str', 'héllo');
  assert.equal(c.getInto('bin', buf), 4);
  assert.deepEqual(buf.subarray(0, 5), Buffer.from([0, 1, 0, 2, 0xaa]));
  assert.equal(c.getInto('str', buf), 6);
  assert.equal(buf.toString('utf8', 0, 6), 'héllo');
  assert.equal(c.getInto('absent', buf), -1);
  const u8 = new Uint8Array(4);
  assert.equal(c.getInto('bin', u8), 4);
  assert.deepEqual([...u8], [0, 1, 0, 2]);

  const small = Buffer.alloc(3, 0x55);
  throwsCode(() => c.getInto('bin', small), RangeError, 'ERR_SHM_BUFFER_TOO_SMALL');
  assert.deepEqual(small, Buffer.alloc(3, 0x55), 'nothing copied');
  assert.equal(c.getInto('bin', Buffer.alloc(4)), 4, 'an exact fit works');

  // getInto marks the entry used and counts a hit, like get.
  c.set('other', '1');
  c.getInto('bin', buf);
  assert.equal([...c.keys()][0], 'bin');
  const s = c.stats();
  assert.ok(s.hits >= 5);
  c.close();
});

test('evictOlderThan takes entries unused for that long, oldest first', async () => {
  const c = make('older');
  c.set('old1', 'a').set('old2', Buffer.from('b')).set('old3', 'c');
  await sleep(80);
  c.set('new', 'd');
  c.get('old3');
  const first = c.evictOlderThan(40, 1);
  assert.deepEqual(first, [['old1', 'a']]);
  const rest = c.evictOlderThan(40);
  assert.equal(rest.length, 1);
  assert.equal(rest[0][0], 'old2');
  assert.deepEqual(rest[0][1], Buffer.from('b'));
  assert.deepEqual([...c.keys()], ['old3', 'new']);
  assert.deepEqual(c.evictOlderThan(40), []);
  assert.equal(c.stats().evictions, 2);
  // Let time pass, so that no entry was used in the millisecond evictOlderThan(0) counts from.
  await sleep(25);
  assert.equal(c.evictOlderThan(0).length, 2, 'age 0 takes everything not used this very millisecond');
  assert.equal(c.size, 0);
  c.close();
});

test('stats count every operation', () => {
  const c = make('stats', { capacity: 2 });
  const { bytesFree, ...zero } = c.stats();
  assert.deepEqual(zero, {
    hits: 0, misses: 0, inserts: 0, updates: 0, removes: 0,
    evictions: 0, expirations: 0, recoveries: 0, size: 0, capacity: 2,
    maxBytes: 0, bytesLive: 0, bytesUsed: 0,
  });
  // A cache of fixed records counts its bytes in whole records (the data and each record's
  // header): two free ones.
  const record = bytesFree / 2;
  assert.ok(Number.isInteger(record) && record > 128, `bytesFree ${bytesFree}`);
  c.set('a', '1');
  c.set('a', '2');
  c.set('b', '1');
  c.get('a');
  c.get('a');
  c.get('nope');
  c.set('c', '1'); // evicts b
  c.delete('a');
  const s = c.stats();
  assert.equal(s.hits, 2);
  assert.equal(s.misses, 1);
  assert.equal(s.inserts, 3);
  assert.equal(s.updates, 1);
  assert.equal(s.removes, 1);
  assert.equal(s.evictions, 1);
  assert.equal(s.size, 1);
  assert.equal(s.capacity, 2);
  assert.deepEqual([s.maxBytes, s.bytesLive, s.bytesUsed, s.bytesFree], [0, record, record, record]);
  c.close();
});

test('check reports a sound structure after many operations', () => {
  const c = make('check', { capacity: 50, shards: 2 });
  for (let i = 0; i < 500; i++) {
    const k = `k${(i * 7) % 80}`;
    if (i % 5 === 0) c.delete(k);
    else if (i % 3 === 0) c.get(k);
    else c.set(k, Buffer.alloc(i % 60, i));
  }
  const r = c.check();
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.deepEqual(r.problems, []);
  assert.ok(c.size <= c.capacity);
  c.close();
});

test('two handles in one process share the entries', () => {
  const a = make('two');
  const b = SharedLRU.open(a.name);
  a.set('x', 'from a');
  assert.equal(b.get('x'), 'from a');
  b.delete('x');
  assert.equal(a.has('x'), false);
  a.close();
  b.set('y', 'b still works after a closed');
  assert.equal(b.get('y'), 'b still works after a closed');
  b.close();
});

test('a closed cache throws ERR_SHM_CLOSED', () => {
  const c = make('closed');
  c.set('k', 'v');
  c.close();
  c.close(); // closing twice is harmless
  for (const fn of [
    () => c.get('k'),
    () => c.peek('k'),
    () => c.set('k', 'v'),
    () => c.add('k', 'v'),
    () => c.has('k'),
    () => c.delete('k'),
    () => c.getInto('k', Buffer.alloc(8)),
    () => c.incr('n'),
    () => c.clear(),
    () => c.size,
    () => [...c.entries()],
    () => c.evictOlderThan(0),
    () => c.stats(),
    () => c.check(),
  ]) {
    throwsCode(fn, Error, 'ERR_SHM_CLOSED');
  }
  // The cache itself is still there.
  const again = SharedLRU.open(c.name);
  assert.equal(again.get('k'), 'v');
  again.close();
});

test('bad arguments throw TypeError or RangeError with a code', () => {
  const c = make('badargs', { recordSize: 32 });
  const typeErr = (fn) => assert.throws(fn, (e) => e instanceof TypeError && typeof e.code === 'string');
  const rangeErr = (fn) => assert.throws(fn, (e) => e instanceof RangeError && typeof e.code === 'string');

  // Keys must be strings or bytes.
  for (const k of [123, undefined, null, {}, [], true, 1n, Symbol('s')]) {
    typeErr(() => c.get(k));
    typeErr(() => c.set(k, 'v'));
    typeErr(() => c.has(k));
    typeErr(() => c.delete(k));
  }
  // Values must be strings or bytes.
  for (const v of [42, undefined, null, { a: 1 }, true]) {
    typeErr(() => c.set('k', v));
  }
  assert.equal(c.has('k'), false);
  // Per-call options.
  typeErr(() => c.set('k', 'v', 'fast'));
  typeErr(() => c.set('k', 'v', { ttl: '10' }));
  rangeErr(() => c.set('k', 'v', { ttl: -1 }));
  rangeErr(() => c.set('k', 'v', { ttl: 1.5 }));
  rangeErr(() => c.set('k', 'v', { ttl: NaN }));
  // getInto needs bytes to write to.
  c.set('k', 'v');
  typeErr(() => c.getInto('k', 'not a buffer'));
  typeErr(() => c.getInto('k', undefined));
  typeErr(() => c.getInto('k', [0, 0, 0]));
  rangeErr(() => c.evictOlderThan(-5));
  typeErr(() => c.evictOlderThan('5'));
  rangeErr(() => c.evictOlderThan(5, -1));
  // Keys too long for a record are refused like values.
  throwsCode(() => c.set('x'.repeat(40), ''), Error, 'ERR_SHM_VALUE_TOO_LARGE');

  // Options of create.
  const name = uniqueName('badopts');
  typeErr(() => SharedLRU.create(name));
  typeErr(() => SharedLRU.create(name, { recordSize: 10 }));
  typeErr(() => SharedLRU.create(name, { capacity: '10', recordSize: 10 }));
  rangeErr(() => SharedLRU.create(name, { capacity: 0, recordSize: 10 }));
  rangeErr(() => SharedLRU.create(name, { capacity: 10, recordSize: -1 }));
  rangeErr(() => SharedLRU.create(name, { capacity: 10.5, recordSize: 10 }));
  rangeErr(() => SharedLRU.create(name, { capacity: 10, recordSize: 10, ttl: -1 }));
  typeErr(() => SharedLRU.create(name, { capacity: 10, recordSize: 10, evictOnFull: 'yes' }));
  throwsCode(() => SharedLRU.create(name, { capacity: 10, recordSize: 10, shards: 3 }), Error, 'ERR_SHM_INVALID_ARGUMENT');
  assert.equal(SharedLRU.destroy(name), false, 'nothing was created by the refused calls');
  typeErr(() => SharedLRU.create({}, { capacity: 10, recordSize: 10 }));
  typeErr(() => SharedLRU.open(undefined));
  throwsCode(() => SharedLRU.open('no-leading-slash'), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => SharedLRU.open('/a/b'), Error, 'ERR_SHM_INVALID_NAME');
  throwsCode(() => new SharedLRU(), TypeError, 'ERR_ILLEGAL_CONSTRUCTOR');

  // The cache is unharmed by all of the above.
  assert.equal(c.get('k'), 'v');
  assert.equal(c.size, 1);
  assert.equal(c.check().ok, true);
  c.close();
});

test('expired entries do not fill a cache that does not evict, and size does not count them', async () => {
  const c = make('expired-full', { capacity: 4, evictOnFull: false, ttl: 20 });
  for (const k of ['a', 'b', 'c', 'd']) c.set(k, k);
  assert.equal(c.size, 4);
  throwsCode(() => c.set('e', 'e'), Error, 'ERR_SHM_FULL');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(c.size, 0, 'expired entries are not counted');
  assert.deepEqual([...c.keys()], []);
  c.set('e', 'e');
  assert.equal(c.get('e'), 'e');
  assert.equal(c.size, 1);
  c.close();
});

test('repair rebuilds a damaged shard and reports what it did', () => {
  const shm = require('..');
  // A System V cache, so that the original API's get() can map its bytes for the damage.
  const key = 0x5a000000 + (process.pid & 0xffffff);
  SharedLRU.destroy(key);
  const c = SharedLRU.create(key, { capacity: 64, recordSize: 32, shards: 1 });
  try {
    for (let i = 0; i < 10; i++) c.set(`k${i}`, `v${i}`);
    const clean = c.repair();
    assert.deepEqual([clean.before.ok, clean.rebuilt, clean.after.ok], [true, 0, true]);
    // The shard's entry count (docs/FORMAT.md: header 256 B, 8 counter lanes of 64 B for this
    // capacity, then the shard header, whose count is at offset 76) made wrong by 5.
    const bytes = shm.get(key, 'Buffer');
    const at = 256 + 8 * 64 + 76;
    bytes.writeUInt32LE(bytes.readUInt32LE(at) + 5, at);
    assert.equal(c.check().ok, false);
    const r = c.repair();
    assert.equal(r.before.ok, false);
    assert.ok(r.before.problems.some((p) => p.includes('count is')), r.before.problems.join('\n'));
    assert.deepEqual([r.rebuilt, r.kept, r.dropped, r.after.ok], [1, 10, 0, true]);
    for (let i = 0; i < 10; i++) assert.equal(c.get(`k${i}`), `v${i}`);
    shm.detach(key);
  } finally {
    c.close();
    SharedLRU.destroy(key);
  }
});

test('a large cache is iterated lazily, a batch at a time, every entry once', () => {
  const n = 70_000;
  const c = SharedLRU.create(uniqueName('lazy'), { capacity: n, recordSize: 16, shards: 4 });
  try {
    for (let i = 0; i < n; i++) c.set(`k${i}`, `${i}`);
    const it = c.keys();
    // A generator over batches, not an array's iterator over a snapshot.
    assert.equal(Object.prototype.toString.call(it), '[object Generator]');
    const seen = new Set();
    for (const k of it) {
      assert.ok(!seen.has(k), `${k} seen twice`);
      seen.add(k);
    }
    assert.equal(seen.size, n);
    let values = 0;
    for (const [k, v] of c.rentries()) {
      assert.equal(k, `k${v}`);
      values++;
    }
    assert.equal(values, n);
    // A small cache keeps its one sorted snapshot.
    const small = make('lazy-small');
    small.set('a', '1');
    assert.notEqual(Object.prototype.toString.call(small.keys()), '[object Generator]');
    small.close();
  } finally {
    SharedLRU.destroy(c.name);
    c.close();
  }
});

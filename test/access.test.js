'use strict';
// How caches are opened and what a caller can count on around them: openOrCreate against a cache
// with other settings, whom an open trusts (trustOwner), lock timeouts (class option and the seed
// API's setLockTimeout) against a lock that a live process seems to hold, the constructor's
// advice, a closed handle's info(), System V keys as integers only, exact incr past 2^53,
// ill-formed strings, and getTotalCreatedSize() for class caches.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const shm = require('..');
const { SharedLRU } = shm;
const { uniqueNames, throwsCode } = require('../test-support/helpers');

const uniqueName = uniqueNames('access');

test('openOrCreate refuses a cache with other settings, naming each; reuse: "any" takes it', () => {
  const name = uniqueName('mismatch');
  const made = SharedLRU.openOrCreate(name, { capacity: 100, recordSize: 4096, ttl: 0 });
  made.set('k', 'v');
  throwsCode(
    () => SharedLRU.openOrCreate(name, { capacity: 100, recordSize: 8192 }),
    Error,
    'ERR_SHM_MISMATCH',
    /recordSize is 4096, not 8192/,
  );
  assert.throws(
    () => SharedLRU.openOrCreate(name, { capacity: 50, recordSize: 4096, evictOnFull: false, ttl: 1000, shards: 4 }),
    (e) => {
      assert.strictEqual(e.code, 'ERR_SHM_MISMATCH');
      for (const part of ['capacity is 100, not 50', 'evictOnFull is true, not false', 'ttl is 0, not 1000', /shards is \d+, not 4/]) {
        assert.match(e.message, typeof part === 'string' ? new RegExp(part) : part);
      }
      assert.doesNotMatch(e.message, /recordSize/);
      return true;
    },
  );
  // The same settings open it; shards left out are not compared.
  const same = SharedLRU.openOrCreate(name, { capacity: 100, recordSize: 4096 });
  assert.strictEqual(same.get('k'), 'v');
  const any = SharedLRU.openOrCreate(name, { capacity: 1, recordSize: 8192, reuse: 'any' });
  assert.strictEqual(any.recordSize, 4096);
  assert.strictEqual(any.get('k'), 'v');
  throwsCode(() => SharedLRU.openOrCreate(name, { capacity: 1, recordSize: 1, reuse: 'yes' }), TypeError, 'ERR_INVALID_ARG_VALUE');
  for (const c of [made, same, any]) c.close();
});

test('open refuses a segment another user owns unless trustOwner names that user', { skip: process.getuid() !== 0 && 'needs root to give a segment to another user' }, () => {
  const name = uniqueName('owner');
  SharedLRU.create(name, { capacity: 8, recordSize: 64, mode: 0o644 }).close();
  const stranger = 54321;
  fs.chownSync(`/dev/shm${name}`, stranger, stranger);
  // Root is trusted by every caller, but the segment is now another user's: refused unless
  // the caller says it trusts that user. (Root opening a segment another user planted is the
  // case this guards against.)
  throwsCode(() => SharedLRU.open(name), Error, 'ERR_SHM_PERMISSION', /uid 54321/);
  throwsCode(() => SharedLRU.openOrCreate(name, { capacity: 8, recordSize: 64 }), Error, 'ERR_SHM_PERMISSION');
  const trusted = SharedLRU.open(name, { trustOwner: stranger });
  trusted.set('k', 'v');
  assert.strictEqual(trusted.get('k'), 'v');
  trusted.close();
  // Group- or world-writable beyond what the caller asks for is refused too.
  fs.chownSync(`/dev/shm${name}`, 0, 0);
  fs.chmodSync(`/dev/shm${name}`, 0o666);
  throwsCode(() => SharedLRU.open(name, { mode: 0o600 }), Error, 'ERR_SHM_PERMISSION', /write/);
  throwsCode(() => SharedLRU.openOrCreate(name, { capacity: 8, recordSize: 64, mode: 0o600 }), Error, 'ERR_SHM_PERMISSION');
  SharedLRU.open(name).close(); // no mode asked: not checked
  throwsCode(() => SharedLRU.open(name, { trustOwner: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
});

/**
 * Makes shard 0's lock of the cache at the start of `view` look held by a live process (a
 * `sleep` child), as a corrupted or stuck lock would; returns a function that undoes it.
 */
function holdShardLock(view) {
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  // The header's shards_off (byte 80) locates the shard headers; each starts with its mutex,
  // whose first word is the owner's thread id.
  const off = Number(view.readBigUInt64LE(80));
  assert.strictEqual(view.readInt32LE(off), 0, 'the lock was free');
  view.writeInt32LE(sleeper.pid, off);
  return () => {
    view.writeInt32LE(0, off);
    sleeper.kill('SIGKILL');
  };
}

test('lockTimeout: a lock held by a live process makes writes throw ERR_SHM_LOCK_TIMEOUT', { timeout: 20000 }, () => {
  const name = uniqueName('locktimeout');
  const c = SharedLRU.create(name, { capacity: 16, recordSize: 64, shards: 1, lockTimeout: 100 });
  const patient = SharedLRU.open(name);
  const opened = SharedLRU.open(name, { lockTimeout: 50 });
  c.set('a', '1');
  const release = holdShardLock(shm.get(name));
  try {
    assert.strictEqual(c.get('a'), '1'); // reads take no lock
    throwsCode(() => c.set('b', '2'), Error, 'ERR_SHM_LOCK_TIMEOUT');
    throwsCode(() => opened.delete('a'), Error, 'ERR_SHM_LOCK_TIMEOUT');
  } finally {
    release();
    shm.detach(name);
  }
  c.set('b', '2');
  assert.strictEqual(patient.get('b'), '2');
  throwsCode(() => SharedLRU.open(name, { lockTimeout: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
  throwsCode(() => SharedLRU.open(name, { lockTimeout: '1s' }), TypeError, 'ERR_INVALID_ARG_TYPE');
  for (const h of [c, patient, opened]) h.close();
});

test('setLockTimeout: the seed API throws ERR_SHM_LOCK_TIMEOUT instead of waiting for ever', { timeout: 20000 }, () => {
  const key = 0x2e000000 + (process.pid % 0x10000);
  shm.destroy(key);
  const view = shm.create(65536, 'Buffer', key);
  try {
    assert.ok(shm.initLRU(key, 64, 65536) > 0);
    shm.set(key, 1, 'one');
    const release = holdShardLock(view);
    const previous = shm.setLockTimeout(100);
    try {
      assert.strictEqual(previous, Infinity);
      assert.strictEqual(shm.get_el_hash(key, 1), 'one');
      // Shard 0's lock is held; one of a few hashes lands there (the LRU has several shards
      // only if its region is large, and this one is small).
      throwsCode(() => shm.set(key, 2, 'two'), Error, 'ERR_SHM_LOCK_TIMEOUT');
      throwsCode(() => shm.del_key(key, 1), Error, 'ERR_SHM_LOCK_TIMEOUT');
    } finally {
      shm.setLockTimeout(Infinity);
      release();
    }
    assert.ok(shm.set(key, 2, 'two') >= 1);
    throwsCode(() => shm.setLockTimeout(-5), RangeError, 'ERR_OUT_OF_RANGE');
  } finally {
    shm.destroy(key);
  }
});

test('new SharedLRU(options) says how a cache is made', () => {
  for (const arg of [{ max: 10 }, undefined, 'x']) {
    throwsCode(() => new SharedLRU(arg), TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', /SharedLRU\.create.*SharedLRU\.open.*SharedLRU\.openOrCreate/);
  }
});

test('a closed handle\'s info() throws ERR_SHM_CLOSED', () => {
  const c = SharedLRU.create(uniqueName('closed'), { capacity: 4, recordSize: 32 });
  assert.strictEqual(c.settings().capacity, 4);
  c.close();
  throwsCode(() => c.settings(), Error, 'ERR_SHM_CLOSED');
});

test('a string name must be a POSIX /name: System V keys are integers', () => {
  for (const bad of ['1', '0x10', 'name']) {
    throwsCode(() => SharedLRU.create(bad, { capacity: 4, recordSize: 32 }), TypeError, 'ERR_INVALID_ARG_VALUE');
    throwsCode(() => SharedLRU.open(bad), TypeError, 'ERR_INVALID_ARG_VALUE');
    throwsCode(() => SharedLRU.destroy(bad), TypeError, 'ERR_INVALID_ARG_VALUE');
  }
});

test('incr is exact past 2^53: a BigInt beyond the safe integers', () => {
  const c = SharedLRU.create(uniqueName('incr'), { capacity: 4, recordSize: 64 });
  c.set('n', String(2 ** 53));
  assert.strictEqual(c.incr('n'), 9007199254740993n);
  assert.strictEqual(c.get('n'), '9007199254740993');
  assert.strictEqual(c.incr('n', -2), Number.MAX_SAFE_INTEGER);
  assert.strictEqual(c.incr('n', 10n), 9007199254741001n);
  assert.strictEqual(c.incr('m', -(2n ** 62n)), -(2n ** 62n));
  throwsCode(() => c.incr('n', 2n ** 63n), RangeError, 'ERR_OUT_OF_RANGE');
  c.close();
});

test('keys and values with lone surrogates are refused, not merged into U+FFFD', () => {
  const c = SharedLRU.create(uniqueName('surrogate'), { capacity: 8, recordSize: 64 });
  throwsCode(() => c.set('\uD800', 'A'), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => c.get('\uDC00'), TypeError, 'ERR_INVALID_ARG_VALUE');
  throwsCode(() => c.set('k', 'x\uDFFF'), TypeError, 'ERR_INVALID_ARG_VALUE');
  assert.strictEqual(c.size, 0);
  // Well-formed strings with pairs or with U+FFFD itself are fine and distinct.
  c.set('\uD83D\uDE00', 'smile');
  c.set('\uFFFD', 'replacement');
  assert.strictEqual(c.get('\uD83D\uDE00'), 'smile');
  assert.strictEqual(c.get('\uFFFD'), 'replacement');
  c.close();
});

test('seed set_many refuses a boxed string; set refuses an index beyond the LRU', () => {
  const key = 0x2f000000 + (process.pid % 0x10000);
  shm.destroy(key);
  shm.create(65536, 'Buffer', key);
  try {
    const count = shm.initLRU(key, 64, 65536);
    throwsCode(() => shm.set_many(key, new String('/x')), TypeError, 'ERR_INVALID_ARG_TYPE');
    throwsCode(() => shm.set_many(key, new Date()), TypeError, 'ERR_INVALID_ARG_TYPE');
    assert.strictEqual(shm.current_count(key), 0);
    throwsCode(() => shm.set(key, 'v', 1, count + 1), RangeError, 'ERR_OUT_OF_RANGE');
    assert.ok(shm.set(key, 'v', 1, count) >= 1);
    assert.deepStrictEqual(shm.set_many(key, Object.assign(Object.create(null), { 7: 'seven' })).length, 1);
  } finally {
    shm.destroy(key);
  }
});

test('getTotalCreatedSize counts the class caches that still exist', () => {
  const start = shm.getTotalCreatedSize();
  for (let i = 0; i < 200; i++) {
    const name = uniqueName('created');
    const c = SharedLRU.create(name, { capacity: 64, recordSize: 256 });
    assert.ok(shm.getTotalCreatedSize() > start);
    c.close();
    assert.strictEqual(SharedLRU.destroy(name), true);
  }
  assert.strictEqual(shm.getTotalCreatedSize(), start);
  const kept = SharedLRU.create(uniqueName('kept'), { capacity: 64, recordSize: 256 });
  const size = kept.settings().regionSize;
  assert.strictEqual(shm.getTotalCreatedSize(), start + size);
  kept.close(); // closed, not destroyed: it still exists
  assert.strictEqual(shm.getTotalCreatedSize(), start + size);
});

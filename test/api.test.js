'use strict';
// The class API's edges: options checked before anything is made, load() checking every entry
// before it touches the shared cache, getMany/setMany/deletePrefix, keys the addon refuses, an
// error code of its own for each kind of failure, and the class and the package matching their
// types (index.d.ts), so that neither can drift from the other.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { SharedLRU } = require('..');
const { uniqueNames, throwsCode } = require('../test-support/helpers');

const uniqueName = uniqueNames('api');
const ROOT = path.join(__dirname, '..');

function make(t, options) {
  const name = uniqueName('c');
  const c = SharedLRU.create(name, { capacity: 64, recordSize: 128, ...options });
  t.after(() => c.close());
  return c;
}

function shmExists(name) {
  return fs.existsSync(`/dev/shm${name}`);
}

test('a bad handle option throws before the segment is made', () => {
  for (const bad of [{ serializer: 'yaml' }, { oversize: 'sometimes' }, { updateAgeOnGet: 'yes' }]) {
    const name = uniqueName('bad');
    for (const make of [SharedLRU.create, SharedLRU.openOrCreate]) {
      assert.throws(() => make(name, { capacity: 8, recordSize: 64, ...bad }), /options\./);
      assert.equal(shmExists(name), false, `${JSON.stringify(bad)} left ${name} behind`);
    }
  }
});

test('load() checks every entry before it touches the cache', (t) => {
  const c = make(t);
  for (let i = 0; i < 50; i++) c.set(`k${i}`, `v${i}`);
  const before = c.dump();
  throwsCode(() => c.load(undefined), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.load([['a', { value: 'x' }], 'not a pair']), TypeError, 'ERR_INVALID_ARG_TYPE', /entries\[1\]/);
  throwsCode(() => c.load([['a', { value: 'x' }], ['b', { value: 42 }]]), TypeError, 'ERR_INVALID_ARG_TYPE', /entries\[1\]\[1\]\.value/);
  throwsCode(() => c.load([['a', { value: 'x' }], [7, { value: 'y' }]]), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.load([['a', { value: 'x' }], ['b', null]]), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.load([['a', { value: 'x', ttl: 'soon' }]]), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.load([['a', { value: 'x' }], ['b', { value: 'y'.repeat(500) }]]), RangeError, 'ERR_SHM_VALUE_TOO_LARGE');
  assert.equal(c.size, 50, 'no bad load cleared the cache');
  assert.deepEqual(c.dump(), before);
  // A good load still replaces everything; a handle that skips oversize values skips them.
  c.load([['a', { value: 'x' }]]);
  assert.deepEqual([...c.entries()], [['a', 'x']]);
  const skipping = SharedLRU.open(c.name, { oversize: 'skip' });
  skipping.load([['b', { value: 'y' }], ['big', { value: 'z'.repeat(500) }]]);
  assert.deepEqual([...c.entries()], [['b', 'y']]);
  skipping.close();
});

test("a user's own error comes through as it was thrown", (t) => {
  const c = make(t);
  const mine = new Error('from a getter');
  const options = {
    get ttl() {
      throw mine;
    },
  };
  assert.throws(() => c.set('k', 'v', options), (e) => e === mine);
  const entries = {
    *[Symbol.iterator]() {
      yield ['a', { value: 'x' }];
      throw mine;
    },
  };
  c.set('kept', 'yes');
  assert.throws(() => c.load(entries), (e) => e === mine);
  assert.equal(c.get('kept'), 'yes');
});

test('every error of the package carries a code, whatever the bad argument', (t) => {
  const c = make(t);
  const bad = [undefined, null, 1, NaN, 'x', {}, [], Symbol('s'), 10n, new ArrayBuffer(2), [[1]], { value: 1 }];
  const skip = new Set(['constructor', 'close', 'clear', 'purgeStale', 'pop', 'check', 'repair', 'stats', 'settings', 'dump']);
  const methods = Object.getOwnPropertyNames(SharedLRU.prototype).filter(
    (m) => !skip.has(m) && typeof Object.getOwnPropertyDescriptor(SharedLRU.prototype, m).value === 'function',
  );
  const uncoded = [];
  for (const m of methods) {
    for (const a of bad) {
      for (const b of [undefined, ...bad.slice(0, 6)]) {
        c.set('a', '1').set('b', '2');
        try {
          const r = c[m](a, b);
          if (r && typeof r.catch === 'function') r.catch(() => {});
        } catch (e) {
          if (!e || typeof e.code !== 'string') uncoded.push(`${m}(${typeof a}, ${typeof b}): ${e && e.message}`);
        }
      }
    }
  }
  assert.deepEqual(uncoded, []);
});

test('getMany reads many keys in one call, counting each as a get does', (t) => {
  const c = make(t);
  c.setMany([
    ['a', '1'],
    ['b', Buffer.from('2')],
  ]);
  c.setMany(new Map([['c', '3']]), { ttl: 60_000 });
  assert.ok(c.getRemainingTTL('c') > 59_000);
  assert.deepEqual(c.getMany(['a', 'missing', Buffer.from('b'), 'c']), ['1', undefined, Buffer.from('2'), '3']);
  const s = c.stats();
  assert.equal(s.hits, 3);
  assert.equal(s.misses, 1);
  assert.deepEqual(c.getMany([]), []);
  throwsCode(() => c.getMany('a'), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.getMany(['a', 5]), TypeError, 'ERR_INVALID_ARG_TYPE');
  throwsCode(() => c.setMany(5), TypeError, 'ERR_INVALID_ARG_TYPE');
  // Keys and values beyond ASCII, bytes among strings, the empty key, a key asked twice, and more
  // keys than one call's scratch space holds at first.
  const big = make(t, { capacity: 4096, recordSize: 256 });
  const pairs = [
    ['é', 'ü'],
    ['😀 key', 'value 😀 with a pair'],
    ['', 'the empty key'],
    ['bytes', Buffer.from([0, 0xff, 1])],
    ['中文', '汉字'.repeat(20)],
  ];
  for (let i = 0; i < 300; i++) pairs.push([`k${i}`, i % 3 === 0 ? `ναι ${i}` : `v${i}`.repeat(i % 7)]);
  big.setMany(pairs);
  const asked = [...pairs.map((p) => p[0]), 'absent', '😀 key', 'absent 😀'];
  const want = [...pairs.map((p) => p[1]), undefined, 'value 😀 with a pair', undefined];
  assert.deepEqual(big.getMany(asked), want);
  assert.deepEqual(big.getMany(asked.slice(0, 3)), want.slice(0, 3));
  assert.deepEqual(big.getMany([...asked, Buffer.from('é')]), [...want, 'ü'], 'a Buffer key among strings');
  throwsCode(() => big.getMany(['ok', '\uD800']), TypeError, 'ERR_INVALID_ARG_VALUE');
  const json = SharedLRU.open(c.name, { serializer: 'json' });
  json.set('o', { id: 1 });
  assert.deepEqual(json.getMany(['o', 'nope']), [{ id: 1 }, undefined]);
  json.close();
});

test('deletePrefix removes every key under a prefix in one pass', (t) => {
  const c = make(t, { capacity: 256, shards: 4 });
  for (let i = 0; i < 40; i++) c.set(`user:${i}`, 'u');
  for (let i = 0; i < 30; i++) c.set(`session:${i}`, 's');
  c.set(Buffer.from([0x75, 0x73, 0x65, 0x72, 0x3a, 0xff]), 'binary key under the prefix');
  c.set('use', 'not under it');
  assert.equal(c.deletePrefix('user:'), 41);
  assert.equal(c.size, 31);
  assert.ok([...c.keys()].every((k) => !String(k).startsWith('user:')));
  assert.equal(c.deletePrefix(Buffer.from('session:')), 30);
  assert.deepEqual([...c.keys()], ['use']);
  assert.equal(c.deletePrefix('nothing'), 0);
  assert.equal(c.stats().removes, 71);
  assert.equal(c.check().ok, true);
  throwsCode(() => c.deletePrefix(3), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test('a key whose memory was detached is refused, not read as the empty key', (t) => {
  const c = make(t);
  c.set('', 'the empty key');
  const key = new Uint8Array(new ArrayBuffer(4));
  structuredClone(key.buffer, { transfer: [key.buffer] });
  assert.equal(key.byteLength, 0, 'detached');
  for (const call of [() => c.get(key), () => c.set(key, 'v'), () => c.has(key), () => c.delete(key), () => c.set('k', key)]) {
    throwsCode(call, TypeError, 'ERR_INVALID_ARG_VALUE', /detached/);
  }
  assert.equal(c.get(new Uint8Array(0)), 'the empty key', 'an empty array is still the empty key');
});

test('a handle is disposable: disposing of it closes it', () => {
  const name = uniqueName('dispose');
  const c = SharedLRU.create(name, { capacity: 8, recordSize: 64 });
  c.set('k', 'v');
  c[Symbol.dispose]();
  throwsCode(() => c.get('k'), Error, 'ERR_SHM_CLOSED');
  const again = SharedLRU.open(name);
  assert.equal(again.get('k'), 'v', 'the cache itself stays');
  again.close();
});

test('a handle changed during its own call is "in use", not "closed"', (t) => {
  const c = make(t);
  const options = {
    get ttl() {
      c.close();
      return 1000;
    },
  };
  throwsCode(() => c.set('k', 'v', options), Error, 'ERR_SHM_HANDLE_IN_USE');
  c.close();
  throwsCode(() => c.get('k'), Error, 'ERR_SHM_CLOSED');
});

// ---- the types ----

const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');

/** The members the body of `class <name>` (or `interface <name>`) in `dts` declares. */
function declaredMembers(kind, name, text = dts) {
  const dts = text;
  const start = dts.search(new RegExp(`export (declare )?${kind} ${name}\\b`));
  assert.notEqual(start, -1, `index.d.ts declares ${kind} ${name}`);
  const open = dts.indexOf('{', start);
  let depth = 0;
  let end = open;
  for (; end < dts.length; end++) {
    if (dts[end] === '{') depth++;
    else if (dts[end] === '}' && --depth === 0) break;
  }
  const body = dts.slice(open + 1, end).replace(/\/\*\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const names = new Set();
  // A member starts a line at depth 1 of the body: `name(`, `name<`, `name:`, `static name`,
  // `readonly name`, `get name`.
  let d = 0;
  for (const line of body.split('\n')) {
    if (d === 0) {
      const m = /^\s*(?:private |static |readonly |get )*([A-Za-z_$][\w$]*)\??\s*[(<:]/.exec(line);
      if (m) names.add((/^\s*static /.test(line) ? 'static ' : '') + m[1]);
      const sym = /^\s*(?:readonly |get )*\[Symbol\.(\w+)\]/.exec(line);
      if (sym) names.add(`[Symbol.${sym[1]}]`);
    }
    for (const ch of line) {
      if (ch === '{' || ch === '(') d++;
      else if (ch === '}' || ch === ')') d--;
    }
  }
  return names;
}

function runtimeMembers(cls) {
  const names = new Set();
  for (const k of Reflect.ownKeys(cls.prototype)) {
    if (k === 'constructor') continue;
    if (typeof k === 'symbol') {
      // Well-known symbols by their name (Node 20 describes Symbol.dispose as 'nodejs.dispose');
      // symbols of the package's own (not exported) are no one else's to call.
      const known = Object.getOwnPropertyNames(Symbol).find((n) => Symbol[n] === k);
      if (known !== undefined) names.add(`[Symbol.${known}]`);
      continue;
    }
    names.add(k);
  }
  for (const k of Object.getOwnPropertyNames(cls)) {
    if (!['length', 'name', 'prototype'].includes(k)) names.add(`static ${k}`);
  }
  names.add('constructor');
  return names;
}

test("SharedLRU's methods and index.d.ts's class declare the same members", () => {
  const declared = declaredMembers('class', 'SharedLRU');
  declared.add('constructor');
  const actual = runtimeMembers(SharedLRU);
  assert.deepEqual([...actual].filter((m) => !declared.has(m)).sort(), [], 'in the class, missing from index.d.ts');
  assert.deepEqual([...declared].filter((m) => !actual.has(m)).sort(), [], 'in index.d.ts, missing from the class');
});

test("KeyvSharedLRU's methods and keyv.d.ts's class declare the same members", () => {
  const { KeyvSharedLRU } = require('../lib/keyv');
  const declared = declaredMembers('class', 'KeyvSharedLRU', fs.readFileSync(path.join(ROOT, 'keyv.d.ts'), 'utf8'));
  const actual = runtimeMembers(KeyvSharedLRU);
  // Fields set by the constructor are declared too.
  for (const field of ['cache', 'opts', 'namespace']) actual.add(field);
  assert.deepEqual([...actual].filter((m) => !declared.has(m)).sort(), [], 'in the class, missing from keyv.d.ts');
  assert.deepEqual([...declared].filter((m) => !actual.has(m)).sort(), [], 'in keyv.d.ts, missing from the class');
});

test("the package's exports and index.d.ts's exports are the same", () => {
  const pkg = require('..');
  const declared = new Set();
  for (const m of dts.matchAll(/^export (?:declare )?(?:function|const|class) ([A-Za-z_$][\w$]*)/gm)) declared.add(m[1]);
  const actual = new Set(Object.keys(pkg));
  assert.deepEqual([...actual].filter((m) => !declared.has(m)).sort(), [], 'exported, missing from index.d.ts');
  assert.deepEqual([...declared].filter((m) => !actual.has(m)).sort(), [], 'in index.d.ts, not exported');
});

test('the published error codes are every code the package throws', () => {
  const union = /export type SharedLRUErrorCode =([^;]+);/.exec(dts);
  assert.ok(union, 'index.d.ts publishes SharedLRUErrorCode');
  const published = new Set([...union[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]));
  const thrown = new Set();
  const sources = [
    ...['crates/shm-lru/src', 'crates/shm-lru-node/src'].flatMap((d) => walk(path.join(ROOT, d), '.rs')),
    ...walk(path.join(ROOT, 'lib'), '.js', false).filter((f) => !f.endsWith('tiered.js')),
  ];
  for (const file of sources) {
    const text = fs.readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(/["'](ERR_[A-Z_]*[A-Z])["']/g)) thrown.add(m[1]);
  }
  assert.deepEqual([...thrown].filter((c) => !published.has(c)).sort(), [], 'thrown but not published');
  // The engine's code for a lock whose holder does not exist is published with the others.
  thrown.add('ERR_SHM_LOCK_DAMAGED');
  assert.deepEqual([...published].filter((c) => !thrown.has(c)).sort(), [], 'published but thrown nowhere');
});

function walk(dir, ext, deep = true) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (deep) out.push(...walk(p, ext));
    } else if (e.name.endsWith(ext)) {
      out.push(p);
    }
  }
  return out;
}

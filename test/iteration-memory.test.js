'use strict';
// Iterating a large cache takes constant memory: entries come a batch at a time, so what the
// iteration keeps alive stays far below what a snapshot of every entry holds. Measured on the
// heap after a full collection, at points along the way, beside the same measure for an
// iteration over a snapshot collected first, which must be well over the bound (so that the
// bound would catch an iteration that collects everything).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');
const { SharedLRU } = require('..');
const { uniqueNames } = require('../test-support/helpers');

const uniqueName = uniqueNames('itermem');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const ENTRIES = 200_000;
// What an iteration may keep alive beyond what it yields: a lazy one holds a batch of 1,024
// entries; a snapshot of 200,000 holds tens of megabytes.
const BOUND = 4 << 20;

function heapUsed() {
  gc();
  return process.memoryUsage().heapUsed;
}

// Iterates `it` to the end, keeping nothing it yields; returns how many items it gave and the
// most heap, beyond where it started, held at any of the points measured.
function peakDuring(makeIterator) {
  const base = heapUsed();
  const it = makeIterator();
  let n = 0;
  let peak = 0;
  for (const item of it) {
    if (item === undefined) throw new Error('an undefined item');
    n++;
    if (n % 10_000 === 0) peak = Math.max(peak, heapUsed() - base);
  }
  return { n, peak };
}

function filled(tag, options) {
  const name = uniqueName(tag);
  const cache = SharedLRU.create(name, { capacity: ENTRIES, recordSize: 64, evictOnFull: false });
  for (let i = 0; i < ENTRIES; i++) cache.set(`key:${i}`, `value ${i} ${'v'.repeat(i % 32)}`);
  cache.close();
  return SharedLRU.open(name, options);
}

const MB = (n) => `${(n / (1 << 20)).toFixed(1)} MB`;

test('iterating a large cache holds a batch, not every entry', (t) => {
  const cache = filled('plain');
  assert.equal(cache.size, ENTRIES);
  // The same entries collected first: what an iteration that materialises would hold.
  const all = peakDuring(() => [...cache.entries()][Symbol.iterator]());
  assert.equal(all.n, ENTRIES);
  assert.ok(all.peak > 2 * BOUND, `a snapshot of every entry held only ${MB(all.peak)}: the bound proves nothing`);
  const lines = [`snapshot first: ${MB(all.peak)}`];
  for (const how of ['entries', 'keys', 'values', 'rentries', 'rkeys', 'rvalues']) {
    const lazy = peakDuring(() => cache[how]());
    assert.equal(lazy.n, ENTRIES, how);
    assert.ok(lazy.peak < BOUND, `${how}() held ${MB(lazy.peak)} at once (a snapshot first: ${MB(all.peak)})`);
    lines.push(`${how}(): ${MB(lazy.peak)}`);
  }
  const iterated = peakDuring(() => cache[Symbol.iterator]());
  assert.ok(iterated.peak < BOUND, `for...of held ${MB(iterated.peak)}`);
  lines.push(`for...of: ${MB(iterated.peak)}`);
  t.diagnostic(`${ENTRIES} entries, most heap held during the iteration: ${lines.join(', ')}`);
  cache.close();
});

test('iterating a large cache opened with a serializer holds a batch, not every entry', (t) => {
  const name = uniqueName('json');
  const cache = SharedLRU.create(name, { capacity: ENTRIES, recordSize: 64, evictOnFull: false });
  for (let i = 0; i < ENTRIES; i++) cache.set(`key:${i}`, JSON.stringify({ i }));
  cache.close();
  const json = SharedLRU.open(name, { serializer: 'json' });
  for (const how of ['entries', 'values', 'rentries', 'rvalues']) {
    const lazy = peakDuring(() => json[how]());
    assert.equal(lazy.n, ENTRIES, how);
    t.diagnostic(`${how}(): ${MB(lazy.peak)}`);
    assert.ok(lazy.peak < BOUND, `${how}() held ${MB(lazy.peak)} at once`);
  }
  json.close();
});

'use strict';
// What several test files share: cache names unique to one file's run, each destroyed when that
// file's tests are done, and the assertion that a call throws a given class of error with a given
// code. Requiring this file does nothing by itself.

const assert = require('node:assert/strict');
const { after } = require('node:test');
const { SharedLRU } = require('..');

/**
 * A function `uniqueName(tag)` that returns a new cache name on every call, `file` naming the test
 * file; every cache so named is destroyed after that file's tests.
 */
function uniqueNames(file) {
  const made = new Set();
  let seq = 0;
  after(() => {
    for (const name of made) SharedLRU.destroy(name);
  });
  return (tag) => {
    const name = `/shmlru-test-${process.pid}-${file}-${tag}-${seq++}`;
    made.add(name);
    return name;
  };
}

/**
 * Asserts that `fn` throws an error of class `Ctor` carrying `code`, and, if `pattern` is given,
 * a message it matches.
 */
function throwsCode(fn, Ctor, code, pattern) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Ctor, `expected ${Ctor.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code, `message: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

module.exports = { uniqueNames, throwsCode };

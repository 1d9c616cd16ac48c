'use strict';
// What several test files share: cache names unique to one file's run, each destroyed when that
// file's tests are done, the assertion that a call throws a given class of error with a given
// code, and a child process of the test file that answers once. Requiring this file does nothing
// by itself.

const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
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

/**
 * Forks `file` (a test file, which runs as the child when it finds its role in `env`) with
 * `env` added to the environment, and resolves with the last message it sent once it exits
 * with status 0; rejects if it exits otherwise or sent nothing.
 */
function answerFrom(file, env) {
  return new Promise((resolve, reject) => {
    const c = fork(file, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let got;
    c.on('message', (m) => (got = m));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`child exited ${code}`))));
  });
}

module.exports = { uniqueNames, throwsCode, answerFrom };

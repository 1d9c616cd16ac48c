'use strict';
// A smoke test of an installed shm-typed-lru, across two processes: copy this file into a project
// that has the package installed and run it there with node, bun (`bun smoke.cjs`) or deno
// (`deno run -A smoke.cjs`). The first process creates a cache and writes to it; a second one,
// started with the same runtime, reads that, counts and writes back; the first reads that back
// and removes the cache. Prints one line and exits 0 when all of that held, else exits 1.

const { spawnSync } = require('child_process');
const { SharedLRU } = require('shm-typed-lru');

const runtime = typeof Deno !== 'undefined' ? 'deno' : typeof Bun !== 'undefined' ? 'bun' : 'node';
const version =
  runtime === 'deno' ? Deno.version.deno : runtime === 'bun' ? Bun.version : process.version.slice(1);
const [role, name] = process.argv.slice(2);

class Failed extends Error {}

function check(what, got, want) {
  if (got !== want) {
    throw new Failed(`smoke (${runtime}, ${role || 'parent'}): ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function child() {
  const cache = SharedLRU.open(name);
  try {
    check('value written by the other process', cache.get('greeting'), 'hello from the parent');
    check('shared counter', cache.incr('counter'), 2);
    cache.set('reply', Buffer.from([0, 1, 2, 255]));
    cache.set('pid', String(process.pid));
  } finally {
    cache.close();
  }
}

function parent() {
  const id = `/shm-typed-lru-smoke-${runtime}-${process.pid}`;
  const cache = SharedLRU.create(id, { capacity: 64, recordSize: 128 });
  try {
    cache.set('greeting', 'hello from the parent');
    check('counter', cache.incr('counter'), 1);
    const prefix = runtime === 'deno' ? ['run', '-A'] : [];
    const r = spawnSync(process.execPath, [...prefix, __filename, 'child', id], { stdio: 'inherit' });
    check('child exit status', r.status, 0);
    check('the child was another process', cache.get('pid') !== String(process.pid), true);
    check('counter after the child', cache.get('counter'), '2');
    check('binary value written by the child', Buffer.from(cache.get('reply')).toString('hex'), '000102ff');
    check('entries', cache.size, 4);
  } finally {
    cache.close();
    SharedLRU.destroy(id);
  }
  console.log(`smoke: ${runtime} ${version}: two processes shared one cache`);
}

try {
  if (role === 'child') child();
  else parent();
} catch (e) {
  if (!(e instanceof Failed)) throw e;
  console.error(e.message);
  process.exitCode = 1;
}

'use strict';
// A smoke test of an installed shm-typed-lru, across two processes: copy this file into a project
// that has the package installed and run it there with node, bun (`bun smoke.cjs`) or deno
// (`deno run -A smoke.cjs`). The first process creates a cache of records and one with a byte
// budget and writes to them; a second one, started with the same runtime, reads that, counts and
// writes back; the first reads that back and removes the caches. Prints one line and exits 0 when
// all of that held, else exits 1.
//
// Where the runtime cannot start itself again (an emulator, a loader named on the command line),
// the caller runs each step as a process of its own, in order, with a segment name of its
// choosing: `write <name>`, `child <name>`, `verify <name>`.

const { spawnSync } = require('child_process');
const { SharedLRU } = require('shm-typed-lru');

const runtime = typeof Deno !== 'undefined' ? 'deno' : typeof Bun !== 'undefined' ? 'bun' : 'node';
const version =
  runtime === 'deno' ? Deno.version.deno : runtime === 'bun' ? Bun.version : process.version.slice(1);
const [role, name] = process.argv.slice(2);
/** The value of 100 KB the cache with a byte budget holds. */
const LARGE = Buffer.alloc(100_000, 'shm-typed-lru');

class Failed extends Error {}

function check(what, got, want) {
  if (got !== want) {
    throw new Failed(`smoke (${runtime}, ${role || 'parent'}): ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

/** The first process's writes: a cache of records and one with a byte budget beside it. */
function write(id) {
  const cache = SharedLRU.create(id, { capacity: 64, recordSize: 128 });
  try {
    cache.set('greeting', 'hello from the parent');
    check('counter', cache.incr('counter'), 1);
  } finally {
    cache.close();
  }
  const budget = SharedLRU.create(`${id}-budget`, { maxBytes: 1 << 20 });
  try {
    budget.set('large', LARGE);
  } finally {
    budget.close();
  }
}

/** The second process: reads what the first wrote, counts and writes back. */
function child(id) {
  const cache = SharedLRU.open(id);
  try {
    check('value written by the other process', cache.get('greeting'), 'hello from the parent');
    check('shared counter', cache.incr('counter'), 2);
    cache.set('reply', Buffer.from([0, 1, 2, 255]));
    cache.set('pid', String(process.pid));
  } finally {
    cache.close();
  }
  const budget = SharedLRU.open(`${id}-budget`);
  try {
    check('100 KB written by the other process', Buffer.from(budget.get('large')).equals(LARGE), true);
  } finally {
    budget.close();
  }
}

/** The first process again (or a third): what the second wrote, then the caches go. */
function verify(id) {
  const cache = SharedLRU.open(id);
  try {
    check('the child was another process', cache.get('pid') !== String(process.pid), true);
    check('counter after the child', cache.get('counter'), '2');
    check('binary value written by the child', Buffer.from(cache.get('reply')).toString('hex'), '000102ff');
    check('entries', cache.size, 4);
  } finally {
    cache.close();
    SharedLRU.destroy(id);
  }
  const budget = SharedLRU.open(`${id}-budget`);
  try {
    check('the budget cache checks clean', budget.check().ok, true);
  } finally {
    budget.close();
    SharedLRU.destroy(`${id}-budget`);
  }
}

function parent() {
  const id = `/shm-typed-lru-smoke-${runtime}-${process.pid}`;
  try {
    write(id);
    const prefix = runtime === 'deno' ? ['run', '-A'] : [];
    const r = spawnSync(process.execPath, [...prefix, __filename, 'child', id], { stdio: 'inherit' });
    check('child exit status', r.status, 0);
    verify(id);
  } finally {
    for (const n of [id, `${id}-budget`]) SharedLRU.destroy(n);
  }
  console.log(`smoke: ${runtime} ${version}: two processes shared one cache of records and one with a byte budget`);
}

try {
  const steps = { write, child, verify };
  if (role === undefined) parent();
  else if (steps[role]) steps[role](name);
  else throw new Error(`smoke: no step ${role} (write, child or verify)`);
} catch (e) {
  if (!(e instanceof Failed)) throw e;
  console.error(e.message);
  process.exitCode = 1;
}

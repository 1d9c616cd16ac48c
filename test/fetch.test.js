'use strict';
// SharedLRU#fetch across real processes: one loader on the machine for a key missed at once by
// eight forked children; a loader's process SIGKILLed mid-load and another taking over; a loader
// that throws reaching every waiter with nothing cached; stale-while-revalidate refreshing once;
// and, in one process, abort, timeout, forceRefresh and retryOnError. The loaders count their
// runs in the cache itself (`incr`, atomic across processes). Children run this same file in a
// role named by SHMLRU_FETCH_ROLE.

const path = require('node:path');
const { fork } = require('node:child_process');

const PKG = path.resolve(__dirname, '..');
const { SharedLRU } = require(PKG);

const role = process.env.SHMLRU_FETCH_ROLE;
if (role) {
  runRole(role, process.env.SHMLRU_FETCH_NAME).catch((e) => {
    process.send({ type: 'crash', message: String(e && e.stack) }, () => process.exit(1));
  });
} else {
  defineTests();
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- children ----

async function runRole(which, name) {
  const cache = SharedLRU.open(name);
  const key = process.env.SHMLRU_FETCH_KEY;
  const loadMs = Number(process.env.SHMLRU_FETCH_LOAD_MS || 0);
  const leaseTtl = Number(process.env.SHMLRU_FETCH_LEASE_MS || 10_000);
  const bytes = Number(process.env.SHMLRU_FETCH_BYTES || 0);
  const abortMs = Number(process.env.SHMLRU_FETCH_ABORT_MS || 0);
  const extra = JSON.parse(process.env.SHMLRU_FETCH_OPTS || '{}');
  // The loader ignores its signal: it runs its whole time whatever its caller does.
  const loader = async (k) => {
    cache.incr('runs');
    process.send({ type: 'loading', pid: process.pid });
    if (which === 'never') {
      setInterval(() => {}, 1000); // a live process whose loader hangs (the parent kills it)
      await new Promise(() => {});
    }
    await sleep(loadMs);
    if (which === 'thrower') throw Object.assign(new RangeError(`no ${k} today`), { code: 'E_NO_VALUE' });
    if (bytes > 0) return `${process.pid}:`.padEnd(bytes, 'x');
    return `value of ${k} from ${process.pid}`;
  };
  // Start together: say the cache is open, then wait for the parent's go.
  const go = new Promise((resolve) => process.once('message', resolve));
  process.send({ type: 'ready' });
  await go;
  const started = Date.now();
  try {
    const opts = which === 'swr' ? { leaseTtl, ttl: 100, staleWhileRevalidate: 1000 } : { leaseTtl, ttl: 60_000, ...extra };
    if (abortMs > 0) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('the caller gave up')), abortMs);
      opts.signal = ac.signal;
    }
    const value = await cache.fetch(key, loader, opts);
    // A background refresh outlives the fetch that started it: give it time before closing.
    if (which === 'swr') await sleep(loadMs + 200);
    process.send({ type: 'done', value, ms: Date.now() - started, at: Date.now() });
  } catch (e) {
    process.send({ type: 'rejected', name: e.name, message: e.message, code: e.code, pid: e.loaderPid, at: Date.now() });
  }
  // An owner whose caller gave up, or whose time ran out, stays until its loader ends.
  if (which !== 'never') {
    cache.close();
    process.disconnect();
  }
}

function child(name, which, env) {
  const c = fork(__filename, [], {
    env: {
      ...process.env,
      SHMLRU_FETCH_ROLE: which,
      SHMLRU_FETCH_NAME: name,
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  c.messages = [];
  c.outcome = new Promise((resolve, reject) => {
    c.on('message', (m) => {
      c.messages.push(m);
      if (m.type === 'crash') reject(new Error(m.message));
      if (m.type === 'done' || m.type === 'rejected') resolve(m);
    });
    c.on('exit', (code, signal) => resolve({ type: 'exit', code, signal }));
  });
  // Resolves once the child has opened the cache and waits for its go.
  c.ready = new Promise((resolve, reject) => {
    c.on('message', (m) => m.type === 'ready' && resolve());
    c.on('message', (m) => m.type === 'crash' && reject(new Error(m.message)));
    c.on('exit', (code, signal) => reject(new Error(`child exited (${code}, ${signal}) before it was ready`)));
  });
  return c;
}

// ---- tests ----

function defineTests() {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');

  let seq = 0;
  function freshCache(t, options) {
    const name = `/shmlru-fetch-${process.pid}-${++seq}`;
    SharedLRU.destroy(name);
    const cache = SharedLRU.create(name, { capacity: 256, recordSize: 512, ...options });
    t.after(() => {
      cache.close();
      SharedLRU.destroy(name);
    });
    return { cache, name };
  }

  // A loader that counts its runs in `loader.runs`, takes `ms` over each, then answers
  // `answer(key, runs, options)` (or throws what it throws).
  function countedLoader(ms, answer) {
    const loader = async (k, staleValue, options) => {
      loader.runs++;
      await sleep(ms);
      return answer(k, loader.runs, options, staleValue);
    };
    loader.runs = 0;
    return loader;
  }

  async function startAll(children) {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.send('go');
  }

  test('8 processes fetch one missing key at once: the loader runs once, all get its value', async (t) => {
    const { cache, name } = freshCache(t);
    const kids = Array.from({ length: 8 }, () =>
      child(name, 'fetcher', { SHMLRU_FETCH_KEY: 'config', SHMLRU_FETCH_LOAD_MS: '300' }),
    );
    await startAll(kids);
    const results = await Promise.all(kids.map((c) => c.outcome));
    assert.equal(cache.get('runs'), '1', 'the loader ran exactly once on the machine');
    const values = new Set(results.map((r) => r.value));
    assert.equal(values.size, 1, JSON.stringify(results));
    const [value] = values;
    assert.match(value, /^value of config from \d+$/);
    for (const r of results) assert.equal(r.type, 'done');
    assert.equal(cache.get('config'), value);
    assert.deepEqual([...cache.keys()].sort(), ['config', 'runs'], 'no lease or outcome is listed');
    assert.equal(cache.size, 2, 'the lease is gone');
  });

  test("the loader's process SIGKILLed mid-load: another takes over within the lease time", async (t) => {
    const { cache, name } = freshCache(t);
    const lease = 600;
    const env = { SHMLRU_FETCH_KEY: 'k', SHMLRU_FETCH_LOAD_MS: '200', SHMLRU_FETCH_LEASE_MS: String(lease) };
    // The first child loads for ten seconds: it is the owner when the others arrive.
    const owner = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '10000' });
    await owner.ready;
    owner.send('go');
    await new Promise((resolve) => owner.on('message', (m) => m.type === 'loading' && resolve()));
    const waiters = Array.from({ length: 3 }, () => child(name, 'fetcher', env));
    await startAll(waiters);
    await sleep(100);
    const killedAt = Date.now();
    owner.kill('SIGKILL');
    const results = await Promise.all(waiters.map((c) => c.outcome));
    const took = Date.now() - killedAt;
    for (const r of results) assert.equal(r.type, 'done', JSON.stringify(r));
    assert.equal(new Set(results.map((r) => r.value)).size, 1, 'all waiters got the one takeover value');
    assert.notEqual(results[0].value, `value of k from ${owner.pid}`);
    assert.equal(cache.get('runs'), '2', 'the dead owner and exactly one taker ran the loader');
    // Lease time, plus the taker's 200 ms load, plus polling and process slack.
    assert.ok(took < lease + 200 + 5000, `waiters finished ${took} ms after the kill`);
    assert.equal((await owner.outcome).signal, 'SIGKILL');
  });

  test('a loader that throws: every waiter rejects with its error, nothing is cached', async (t) => {
    const { cache, name } = freshCache(t);
    const env = { SHMLRU_FETCH_KEY: 'bad', SHMLRU_FETCH_LOAD_MS: '300' };
    const kids = Array.from({ length: 5 }, () => child(name, 'thrower', env));
    await startAll(kids);
    const results = await Promise.all(kids.map((c) => c.outcome));
    assert.equal(cache.get('runs'), '1');
    const loaderPid = kids.find((c) => c.messages.some((m) => m.type === 'loading')).pid;
    for (const r of results) {
      assert.equal(r.type, 'rejected', JSON.stringify(r));
      assert.equal(r.name, 'RangeError');
      assert.equal(r.message, 'no bad today');
      assert.equal(r.code, 'E_NO_VALUE');
    }
    // The waiters (not the loader itself) learn which process's loader failed.
    assert.equal(results.filter((r) => r.pid === loaderPid).length, 4);
    assert.equal(cache.get('bad'), undefined, 'nothing cached');
    assert.deepEqual([...cache.keys()], ['runs']);
  });

  test('stale-while-revalidate: the stale value is served and refreshed once', async (t) => {
    const { cache } = freshCache(t);
    const loader = countedLoader(50, (k, runs) => `v${runs}`);
    const opts = { ttl: 100, staleWhileRevalidate: 1000 };
    assert.equal(await cache.fetch('s', loader, opts), 'v1');
    assert.ok(cache.getRemainingTTL('s') > 1000, 'stored for its fresh time plus its stale time');
    assert.equal(await cache.fetch('s', loader, opts), 'v1', 'fresh: no refresh');
    assert.equal(loader.runs, 1);
    await sleep(150); // now stale
    const served = await Promise.all(Array.from({ length: 10 }, () => cache.fetch('s', loader, opts)));
    assert.deepEqual(new Set(served), new Set(['v1']), 'the stale value is served at once');
    await sleep(150);
    assert.equal(loader.runs, 2, 'refreshed exactly once');
    assert.equal(await cache.fetch('s', loader, opts), 'v2');
  });

  test('stale-while-revalidate across processes refreshes once', async (t) => {
    const { cache, name } = freshCache(t);
    const kids = Array.from({ length: 4 }, () =>
      child(name, 'swr', { SHMLRU_FETCH_KEY: 'cfg', SHMLRU_FETCH_LOAD_MS: '200' }),
    );
    await Promise.all(kids.map((c) => c.ready));
    // 800 ms left: inside the children's 1000 ms stale window.
    cache.set('cfg', 'old', { ttl: 800 });
    for (const c of kids) c.send('go');
    const results = await Promise.all(kids.map((c) => c.outcome));
    for (const r of results) assert.equal(r.value, 'old', JSON.stringify(r));
    await sleep(300);
    assert.equal(cache.get('runs'), '1');
    assert.match(cache.get('cfg'), /^value of cfg from \d+$/);
  });

  test('in one process: concurrent fetches share one load; a hit does not call the loader', async (t) => {
    const { cache } = freshCache(t);
    const loader = countedLoader(30, (k, runs, { signal }) => {
      assert.ok(signal instanceof AbortSignal);
      return `L:${k}`;
    });
    const got = await Promise.all(Array.from({ length: 20 }, () => cache.fetch('a', loader)));
    assert.equal(loader.runs, 1);
    assert.deepEqual(new Set(got), new Set(['L:a']));
    assert.equal(await cache.fetch('a', loader), 'L:a');
    assert.equal(loader.runs, 1);
    assert.equal(await cache.fetch('a', loader, { forceRefresh: true }), 'L:a');
    assert.equal(loader.runs, 2, 'forceRefresh loads again');
    const t0 = cache.getRemainingTTL('b');
    assert.equal(t0, 0);
    await cache.fetch('b', loader, { ttl: 5000 });
    assert.ok(cache.getRemainingTTL('b') <= 5000 && cache.getRemainingTTL('b') > 4000);
  });

  test('a loader returning undefined caches nothing and resolves undefined for everyone', async (t) => {
    const { cache } = freshCache(t);
    const loader = countedLoader(20, () => undefined);
    const got = await Promise.all([cache.fetch('u', loader), cache.fetch('u', loader)]);
    assert.deepEqual(got, [undefined, undefined]);
    assert.equal(loader.runs, 1);
    assert.equal(cache.has('u'), false);
  });

  test('errors in one process: waiters reject; retryOnError makes a waiter load again', async (t) => {
    const { cache } = freshCache(t);
    const failing = countedLoader(20, (k, runs) => {
      throw new Error(`fail ${runs}`);
    });
    const r = await Promise.allSettled([cache.fetch('e', failing), cache.fetch('e', failing)]);
    assert.deepEqual(
      r.map((x) => x.status),
      ['rejected', 'rejected'],
    );
    assert.equal(r[1].reason.message, 'fail 1');
    assert.equal(failing.runs, 1);
    assert.equal(cache.has('e'), false);
    const flaky = countedLoader(20, (k, runs) => {
      if (runs === 1) throw new Error('flaky');
      return 'ok';
    });
    const r2 = await Promise.allSettled([cache.fetch('f', flaky), cache.fetch('f', flaky, { retryOnError: true })]);
    assert.equal(r2[0].status, 'rejected');
    assert.equal(r2[1].value, 'ok');
    assert.equal(flaky.runs, 2);
  });

  test('abort and timeout: a waiter stops waiting; an aborted owner hands the load over', async (t) => {
    const { cache } = freshCache(t);
    const slow = (ms, v) => async (k, stale, { signal }) => {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      });
      return v;
    };
    const owner = new AbortController();
    const first = cache.fetch('x', slow(5000, 'never'), { signal: owner.signal });
    const waiter = cache.fetch('x', slow(30, 'second'));
    const timed = cache.fetch('x', slow(30, 'third'), { timeout: 50 });
    await assert.rejects(timed, { code: 'ERR_FETCH_TIMEOUT' });
    owner.abort(new Error('caller gave up'));
    await assert.rejects(first, /caller gave up/);
    assert.equal(await waiter, 'second', 'the waiter took over the aborted load');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(cache.fetch('y', slow(10, 'y'), { signal: ac.signal }));
    assert.equal(cache.has('y'), false);
  });

  test('fetch checks its arguments', async (t) => {
    const { cache } = freshCache(t);
    await assert.rejects(cache.fetch('k', 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(cache.fetch('k', async () => 'v', { allowStale: true }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(cache.fetch('k', async () => 'v', { staleWhileRevalidate: -1 }), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(cache.fetch('k', async () => 'v', { leaseTtl: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  });

  // Resolves with the first message of `type` a child sends.
  function message(c, type) {
    return new Promise((resolve) => {
      const seen = c.messages.find((m) => m.type === type);
      if (seen) return resolve(seen);
      c.on('message', (m) => m.type === type && resolve(m));
    });
  }

  function killAfter(t, c) {
    t.after(() => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }

  test("a loader's process SIGKILLed: the other 7 of 8 have a value well within the lease time", async (t) => {
    const { cache, name } = freshCache(t);
    // The default lease (10 s): a waiter that only noticed the lapse would take 10 s.
    const env = { SHMLRU_FETCH_KEY: 'k', SHMLRU_FETCH_LOAD_MS: '200' };
    const owner = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '30000' });
    killAfter(t, owner);
    await owner.ready;
    owner.send('go');
    await message(owner, 'loading');
    const waiters = Array.from({ length: 7 }, () => child(name, 'fetcher', env));
    await startAll(waiters);
    await sleep(200);
    const killedAt = Date.now();
    owner.kill('SIGKILL');
    const results = await Promise.all(waiters.map((c) => c.outcome));
    const latest = Math.max(...results.map((r) => r.at)) - killedAt;
    t.diagnostic(`the 7 waiters had a value ${latest} ms after the kill (the taker's load: 200 ms)`);
    assert.equal((await owner.outcome).signal, 'SIGKILL', 'the owner died mid-load');
    for (const r of results) assert.equal(r.type, 'done', JSON.stringify(r));
    assert.equal(new Set(results.map((r) => r.value)).size, 1, 'every waiter got the one takeover value');
    assert.equal(cache.get('runs'), '2', 'the dead owner and exactly one taker ran the loader');
    assert.ok(latest < 5000, `waiters finished ${latest} ms after the kill: they waited for the lease to lapse`);
  });

  test('an owner stopped past its lease comes back and does not overwrite the newer value', async (t) => {
    const { cache, name } = freshCache(t);
    const env = { SHMLRU_FETCH_KEY: 's', SHMLRU_FETCH_LEASE_MS: '300' };
    const owner = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '600' });
    killAfter(t, owner);
    await owner.ready;
    owner.send('go');
    await message(owner, 'loading');
    owner.kill('SIGSTOP');
    const waiter = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '20' });
    await startAll([waiter]);
    const got = await waiter.outcome;
    assert.equal(got.type, 'done', JSON.stringify(got));
    assert.equal(got.value, `value of s from ${waiter.pid}`, 'the waiter took over once the lease lapsed');
    owner.kill('SIGCONT');
    const late = await owner.outcome;
    assert.equal(late.value, `value of s from ${owner.pid}`, 'the stale owner still answers its own caller');
    assert.equal(cache.get('s'), `value of s from ${waiter.pid}`, 'the newer value stays');
    assert.equal(cache.get('runs'), '2');
  });

  test('an owner whose caller aborts hands the load over at once, though its loader ignores the signal', async (t) => {
    const { cache, name } = freshCache(t);
    const env = { SHMLRU_FETCH_KEY: 'a' };
    const owner = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '20000', SHMLRU_FETCH_ABORT_MS: '300' });
    killAfter(t, owner);
    await owner.ready;
    owner.send('go');
    await message(owner, 'loading');
    const waiter = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '20' });
    await startAll([waiter]);
    const gaveUp = await message(owner, 'rejected');
    assert.equal(gaveUp.message, 'the caller gave up');
    const got = await waiter.outcome;
    assert.equal(got.type, 'done', JSON.stringify(got));
    assert.equal(got.value, `value of a from ${waiter.pid}`);
    assert.ok(got.at - gaveUp.at < 5000, `the waiter had its value ${got.at - gaveUp.at} ms after the owner gave up`);
    assert.equal(cache.get('a'), got.value);
  });

  test('a loader that never settles: its fetch times out, and so do the waiters of other processes', async (t) => {
    const { name } = freshCache(t);
    const owner = child(name, 'never', { SHMLRU_FETCH_KEY: 'n', SHMLRU_FETCH_OPTS: JSON.stringify({ timeout: 1500 }) });
    const waiter = child(name, 'fetcher', { SHMLRU_FETCH_KEY: 'n', SHMLRU_FETCH_OPTS: JSON.stringify({ timeout: 30_000 }) });
    killAfter(t, owner);
    // Both are up before the owner starts, so the waiter's fetch begins well inside the owner's.
    await Promise.all([owner.ready, waiter.ready]);
    owner.send('go');
    await message(owner, 'loading');
    waiter.send('go');
    const [mine, theirs] = await Promise.race([
      Promise.all([message(owner, 'rejected'), waiter.outcome]),
      sleep(10_000).then(() => [{ type: 'still waiting' }, { type: 'still waiting' }]),
    ]);
    assert.equal(mine.code, 'ERR_FETCH_TIMEOUT', JSON.stringify(mine));
    assert.equal(theirs.type, 'rejected', JSON.stringify(theirs));
    assert.equal(theirs.code, 'ERR_FETCH_TIMEOUT');
  });

  test('the lease is renewed while a loader runs longer than it', async (t) => {
    const { cache, name } = freshCache(t);
    // Lease times long enough that a loaded machine's scheduling delays do not decide: the
    // owner renews every 200 ms a lease of 600 ms, through a load of four lease times.
    const env = { SHMLRU_FETCH_KEY: 'r', SHMLRU_FETCH_LEASE_MS: '600' };
    const owner = child(name, 'fetcher', { ...env, SHMLRU_FETCH_LOAD_MS: '2400' });
    killAfter(t, owner);
    await owner.ready;
    owner.send('go');
    await message(owner, 'loading');
    const loader = async () => {
      cache.incr('runs');
      return 'second load';
    };
    const got = await cache.fetch('r', loader, { leaseTtl: 600 });
    assert.equal(got, `value of r from ${owner.pid}`);
    assert.equal(cache.get('runs'), '1', 'the loader ran once: the lease outlived four lease times');
    assert.equal((await owner.outcome).type, 'done');
  });

  test('a value too large for a record reaches every caller, in every process, from one load', async (t) => {
    const { cache, name } = freshCache(t);
    const env = { SHMLRU_FETCH_KEY: 'big', SHMLRU_FETCH_LOAD_MS: '300', SHMLRU_FETCH_BYTES: '10000' };
    const kids = Array.from({ length: 4 }, () => child(name, 'fetcher', env));
    await startAll(kids);
    const results = await Promise.all(kids.map((c) => c.outcome));
    for (const r of results) assert.equal(r.type, 'done', JSON.stringify(r));
    assert.equal(new Set(results.map((r) => r.value)).size, 1);
    assert.equal(results[0].value.length, 10_000);
    assert.equal(cache.get('runs'), '1', 'one load for all four');
    assert.equal(cache.has('big'), false, 'not cached: it does not fit a record');
  });

  test('a cache with a byte budget: a long key and a 60 KB value load once for six processes; a value above maxValueSize reaches every caller from one load', async (t) => {
    const name = `/shmlru-fetch-${process.pid}-${++seq}`;
    SharedLRU.destroy(name);
    const cache = SharedLRU.create(name, { maxBytes: 8 << 20, maxValueSize: 64 << 10 });
    t.after(() => {
      cache.close();
      SharedLRU.destroy(name);
    });
    // A key of 300 bytes: its lease must fit the room as well as the key fits the cache.
    const key = `report:${'k'.repeat(293)}`;
    let kids = Array.from({ length: 6 }, () =>
      child(name, 'fetcher', { SHMLRU_FETCH_KEY: key, SHMLRU_FETCH_LOAD_MS: '300', SHMLRU_FETCH_BYTES: '60000' }),
    );
    await startAll(kids);
    let results = await Promise.all(kids.map((c) => c.outcome));
    for (const r of results) assert.equal(r.type, 'done', JSON.stringify(r).slice(0, 300));
    assert.equal(new Set(results.map((r) => r.value)).size, 1);
    assert.equal(results[0].value.length, 60_000);
    assert.equal(cache.get('runs'), '1', 'the loader ran exactly once on the machine');
    assert.equal(cache.get(key), results[0].value, 'and its value is cached');

    cache.delete('runs');
    kids = Array.from({ length: 4 }, () =>
      child(name, 'fetcher', { SHMLRU_FETCH_KEY: 'big', SHMLRU_FETCH_LOAD_MS: '300', SHMLRU_FETCH_BYTES: '200000' }),
    );
    await startAll(kids);
    results = await Promise.all(kids.map((c) => c.outcome));
    for (const r of results) assert.equal(r.type, 'done', JSON.stringify(r).slice(0, 300));
    assert.equal(new Set(results.map((r) => r.value)).size, 1);
    assert.equal(results[0].value.length, 200_000);
    assert.equal(cache.get('runs'), '1', 'one load for all four');
    assert.equal(cache.has('big'), false, 'not cached: it is above maxValueSize');
  });

  test("fetch's bookkeeping never evicts an entry nor counts in size", async (t) => {
    const { cache } = freshCache(t, { capacity: 1000, recordSize: 256 });
    for (let i = 0; i < 500; i++) cache.set(`small:${i}`, `v${i}`);
    const big = (k) => `${k}:`.padEnd(10_000, 'x');
    for (const oversize of ['skip', 'throw']) {
      const handle = SharedLRU.open(cache.name, { oversize });
      t.after(() => handle.close());
      for (let i = 0; i < 1000; i++) {
        assert.equal(await handle.fetch(`big:${oversize}:${i}`, async (k) => big(k), { ttl: 60_000 }), big(`big:${oversize}:${i}`));
      }
    }
    assert.equal(cache.size, 500);
    assert.equal([...cache.keys()].length, 500);
    for (let i = 0; i < 500; i++) assert.equal(cache.peek(`small:${i}`), `v${i}`);
    assert.equal(cache.stats().evictions, 0);
  });

  test('while a load runs, no user operation sees or takes its lease', async (t) => {
    const { cache, name } = freshCache(t);
    const owner = child(name, 'fetcher', { SHMLRU_FETCH_KEY: 'l', SHMLRU_FETCH_LOAD_MS: '800' });
    killAfter(t, owner);
    await owner.ready;
    owner.send('go');
    await message(owner, 'loading');
    cache.delete('runs');
    assert.equal(cache.size, 0);
    assert.deepEqual(cache.dump(), []);
    assert.deepEqual([...cache.keys()], []);
    assert.equal(cache.pop(), undefined);
    assert.deepEqual(cache.evictOlderThan(0), []);
    assert.equal(cache.clear(), 0);
    const loader = async () => {
      cache.incr('runs');
      return 'a second load';
    };
    assert.equal(await cache.fetch('l', loader), `value of l from ${owner.pid}`, 'this caller waited for the owner');
    assert.equal(cache.get('runs'), undefined, 'and did not load');
  });

  test('stats count one hit or one miss per fetch', async (t) => {
    const { cache } = freshCache(t, { capacity: 2048 });
    const loader = async (k) => `v:${k}`;
    for (let i = 0; i < 1000; i++) await cache.fetch(`k${i}`, loader);
    for (let i = 0; i < 1000; i++) await cache.fetch(`k${i}`, loader);
    const s = cache.stats();
    assert.equal(s.misses, 1000);
    assert.equal(s.hits, 1000);
    assert.equal(s.inserts, 1000, 'the values, and nothing else');
    for (let i = 0; i < 10; i++) await cache.fetch(`o${i}`, loader, { ttl: 5000 });
    assert.equal(cache.stats().misses, 1010, 'with options too');
  });

  test('the loader gets the stale value, its options and their context, as lru-cache passes them', async (t) => {
    const { cache } = freshCache(t);
    const seen = [];
    const loader = async (k, staleValue, { signal, options, context }) => {
      seen.push({ staleValue, context, aborted: signal.aborted, ttl: options.ttl });
      return `new ${k}`;
    };
    cache.set('s', 'old', { ttl: 500 });
    assert.equal(await cache.fetch('s', loader, { ttl: 100, staleWhileRevalidate: 1000, context: 'c1' }), 'old');
    await sleep(50);
    assert.equal(cache.get('s'), 'new s');
    assert.deepEqual(seen, [{ staleValue: 'old', context: 'c1', aborted: false, ttl: 100 }]);
    assert.equal(await cache.fetch('s', loader, { forceRefresh: true, context: 'c2' }), 'new s');
    assert.deepEqual(seen[1], { staleValue: 'new s', context: 'c2', aborted: false, ttl: undefined });
  });

  test('fetch on a closed handle rejects with ERR_SHM_CLOSED and runs no loader', async (t) => {
    const { name } = freshCache(t);
    const handle = SharedLRU.open(name);
    handle.close();
    let runs = 0;
    const loader = async () => {
      runs++;
      return 'v';
    };
    await assert.rejects(handle.fetch('k', loader, { forceRefresh: true }), { code: 'ERR_SHM_CLOSED' });
    await assert.rejects(handle.fetch('k', loader), { code: 'ERR_SHM_CLOSED' });
    assert.equal(runs, 0);
  });

  test('a load that ends after its cache was closed and destroyed leaves no segment behind', async () => {
    const name = `/shmlru-fetch-${process.pid}-late`;
    SharedLRU.destroy(name);
    const cache = SharedLRU.create(name, { capacity: 16, recordSize: 128 });
    cache.set('k', 'old', { ttl: 500 });
    let finished = false;
    const loader = async () => {
      await sleep(100);
      finished = true;
      return 'new';
    };
    assert.equal(await cache.fetch('k', loader, { staleWhileRevalidate: 1000 }), 'old');
    assert.equal(require('node:fs').existsSync(`/dev/shm${name}.fetch`), true, 'the refresh made the room');
    cache.close();
    SharedLRU.destroy(name);
    await sleep(200);
    assert.equal(finished, true);
    assert.equal(require('node:fs').existsSync(`/dev/shm${name}.fetch`), false);
    assert.equal(require('node:fs').existsSync(`/dev/shm${name}`), false);
  });
}

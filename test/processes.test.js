'use strict';
// SharedLRU across real processes and threads: cluster workers, forked children, worker threads,
// an unrelated `node -e` process, a cache that outlives its users, and a writer killed with
// SIGKILL mid-loop. The children run this same file in a role named by SHMLRU_TEST_ROLE (or by
// workerData for threads), so the roles need no helper files of their own.

const path = require('node:path');
const cluster = require('node:cluster');
const { fork, spawn } = require('node:child_process');
const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads');

const PKG = path.resolve(__dirname, '..');
const { SharedLRU } = require(PKG);

const role = isMainThread ? process.env.SHMLRU_TEST_ROLE : workerData && workerData.role;

if (role) {
  runRole(role, isMainThread ? process.env.SHMLRU_TEST_NAME : workerData.name);
} else {
  defineTests();
}

// ---- children ----

function send(msg, then) {
  if (parentPort) {
    parentPort.postMessage(msg);
    if (then) then();
  } else {
    process.send(msg, then);
  }
}

function onMessage(fn) {
  if (parentPort) parentPort.on('message', fn);
  else process.on('message', fn);
}

function runRole(which, name) {
  const me = isMainThread ? `pid ${process.pid}` : `thread ${require('node:worker_threads').threadId}`;
  switch (which) {
    // A cluster worker or forked child: writes its own entries, then on request reads everyone's
    // and bumps a shared counter.
    case 'peer': {
      const id = Number(process.env.SHMLRU_TEST_ID ?? workerData.id);
      const cache = SharedLRU.open(name);
      cache.set(`peer:${id}`, `written by peer ${id} (${me})`);
      cache.set(Buffer.from([0xfe, id]), Buffer.from([id, 0, id]));
      send({ type: 'ready', id });
      onMessage((msg) => {
        if (msg.type === 'read') {
          const seen = {};
          for (let j = 0; j < msg.peers; j++) {
            const v = cache.get(`peer:${j}`);
            const b = cache.get(Buffer.from([0xfe, j]));
            seen[j] = { text: v, bytes: b === undefined ? null : [...b] };
          }
          seen.parent = cache.get('from-parent');
          for (let i = 0; i < msg.increments; i++) cache.incr('counter');
          const ok = cache.check().ok;
          cache.close();
          // Leave once the message is on its way.
          send({ type: 'seen', id, seen, check: ok }, () => {
            if (parentPort) parentPort.close();
            else process.disconnect();
          });
        }
      });
      break;
    }
    // Creates a cache, fills it, and exits.
    case 'create-fill': {
      const cache = SharedLRU.create(name, { capacity: 1000, recordSize: 64 });
      for (let i = 0; i < 500; i++) cache.set(`warm:${i}`, `value ${i}`);
      cache.set('bin', Buffer.from([0, 1, 2, 0]));
      cache.close();
      process.exit(0);
      break;
    }
    // Sets in a loop, forever, until killed.
    case 'hammer': {
      const cache = SharedLRU.open(name);
      let i = 0;
      for (;;) {
        const k = `h${i % 300}`;
        // The value names its key, so a torn write would show as a mismatch.
        cache.set(k, `${k}|${i}|${'x'.repeat(i % 40)}`);
        if (i % 7 === 0) cache.delete(`h${(i * 13) % 300}`);
        if (i % 11 === 0) cache.incr('hammer-count');
        if (i === 2000) send({ type: 'hammering' });
        i++;
      }
    }
    default:
      throw new Error(`unknown role ${which}`);
  }
}

// ---- the tests ----

function defineTests() {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');
  const { uniqueNames } = require('../test-support/helpers');

  const uniqueName = uniqueNames('proc');

  // The children must not think they are part of the test run.
  function childEnv(extra) {
    const env = { ...process.env, ...extra };
    delete env.NODE_TEST_CONTEXT;
    return env;
  }

  // How a child process ended. Called as soon as the child exists, so that an early exit is
  // not missed; the promise is kept on the child.
  function exited(child) {
    if (!child.ended) {
      child.ended = new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
    }
    return child.ended;
  }

  function threadExited(worker) {
    if (!worker.ended) worker.ended = new Promise((resolve) => worker.once('exit', resolve));
    return worker.ended;
  }

  function nextMessage(emitter, type) {
    return new Promise((resolve, reject) => {
      const onMsg = (m) => {
        if (m && m.type === type) {
          emitter.off('message', onMsg);
          resolve(m);
        }
      };
      emitter.on('message', onMsg);
      emitter.once('error', reject);
      // A message may still be on its way when the exit is seen: give it a moment.
      emitter.once('exit', (code) => {
        setTimeout(() => reject(new Error(`child exited (${code}) before sending ${type}`)), 200);
      });
    });
  }

  // Runs `node -e script` as a process unrelated to this one (no IPC, no shared parent state)
  // and returns its parsed JSON output.
  async function runUnrelated(script, args) {
    const child = spawn(process.execPath, ['-e', script, PKG, ...args], {
      env: childEnv({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const { code } = await exited(child);
    assert.equal(code, 0, `node -e failed: ${err}`);
    return JSON.parse(out);
  }

  function peerChecks(results, peers, increments, cache) {
    for (const r of results) {
      assert.equal(r.check, true);
      assert.equal(r.seen.parent, 'hello from the parent');
      for (let j = 0; j < peers; j++) {
        assert.match(r.seen[j].text, new RegExp(`^written by peer ${j} `), `peer ${r.id} reading peer ${j}`);
        assert.deepEqual(r.seen[j].bytes, [j, 0, j]);
      }
    }
    assert.equal(cache.get('counter'), String(peers * increments), 'every increment of every peer counted');
    const ids = new Set(results.map((r) => r.seen[r.id].text));
    assert.equal(ids.size, peers, 'each peer wrote under its own identity');
  }

  // Creates a cache with a greeting from the parent, starts `peers` peers on it
  // (`start(name, id)`), waits until all are ready, then has each read the others and increment
  // `increments` times (`tell(peer, message)`). Returns the cache, the peers and their reports.
  async function runPeers(tag, peers, increments, start, tell) {
    const name = uniqueName(tag);
    const cache = SharedLRU.create(name, { capacity: 256, recordSize: 96 });
    cache.set('from-parent', 'hello from the parent');
    const started = [];
    for (let id = 0; id < peers; id++) started.push(start(name, id));
    await Promise.all(started.map((p) => nextMessage(p, 'ready')));
    const seen = started.map((p) => nextMessage(p, 'seen'));
    for (const p of started) tell(p, { type: 'read', peers, increments });
    return { cache, started, results: await Promise.all(seen) };
  }

  function peerEnv(name, id) {
    return childEnv({ SHMLRU_TEST_ROLE: 'peer', SHMLRU_TEST_NAME: name, SHMLRU_TEST_ID: String(id) });
  }

  test('cluster workers share one cache', async () => {
    const peers = 4;
    const increments = 500;
    cluster.setupPrimary({ exec: __filename, silent: true });
    const { cache, started, results } = await runPeers('cluster', peers, increments, (name, id) => {
      const w = cluster.fork(peerEnv(name, id));
      exited(w.process);
      return w;
    }, (w, m) => w.send(m));
    await Promise.all(started.map((w) => exited(w.process)));
    peerChecks(results, peers, increments, cache);
    assert.equal(cache.check().ok, true);
    cache.close();
  });

  test('forked children share one cache', async () => {
    const peers = 3;
    const increments = 500;
    const { cache, started, results } = await runPeers('fork', peers, increments, (name, id) => {
      const child = fork(__filename, [], { env: peerEnv(name, id), stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      exited(child);
      return child;
    }, (c, m) => c.send(m));
    const codes = await Promise.all(started.map(exited));
    assert.deepEqual(codes.map((c) => c.code), [0, 0, 0]);
    peerChecks(results, peers, increments, cache);
    cache.close();
  });

  test('worker threads share one cache with their process', async () => {
    const peers = 4;
    const increments = 1000;
    const { cache, started, results } = await runPeers('threads', peers, increments, (name, id) => {
      const w = new Worker(__filename, { workerData: { role: 'peer', name, id }, stdout: true });
      threadExited(w);
      return w;
    }, (w, m) => w.postMessage(m));
    assert.deepEqual(await Promise.all(started.map(threadExited)), [0, 0, 0, 0]);
    peerChecks(results, peers, increments, cache);
    // The threads' entries are in the main thread's view too.
    assert.match(cache.get('peer:2'), /^written by peer 2 \(thread \d+\)$/);
    cache.close();
  });

  test('an unrelated process opens the cache by name', async () => {
    const name = uniqueName('unrelated');
    const cache = SharedLRU.create(name, { capacity: 100, recordSize: 64 });
    cache.set('greeting', 'hello, stranger');
    cache.set('bytes', Buffer.from([0, 255, 0]));
    const script = `
      const { SharedLRU } = require(process.argv[1]);
      const c = SharedLRU.open(process.argv[2]);
      const out = { greeting: c.get('greeting'), bytes: [...c.get('bytes')], size: c.size };
      c.set('reply', 'hello from pid ' + process.pid);
      c.close();
      console.log(JSON.stringify(out));
    `;
    const out = await runUnrelated(script, [name]);
    assert.deepEqual(out, { greeting: 'hello, stranger', bytes: [0, 255, 0], size: 2 });
    assert.match(cache.get('reply'), /^hello from pid \d+$/);
    cache.close();
  });

  test('a created cache outlives the processes that used it', async () => {
    const name = uniqueName('outlive');
    const child = fork(__filename, [], {
      env: childEnv({ SHMLRU_TEST_ROLE: 'create-fill', SHMLRU_TEST_NAME: name }),
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    exited(child);
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    // Neither the creator nor anyone else has it open now.
    const script = `
      const { SharedLRU } = require(process.argv[1]);
      const c = SharedLRU.open(process.argv[2]);
      let found = 0;
      for (let i = 0; i < 500; i++) if (c.get('warm:' + i) === 'value ' + i) found++;
      console.log(JSON.stringify({ found, size: c.size, bin: [...c.get('bin')], ok: c.check().ok }));
      c.close();
    `;
    const out = await runUnrelated(script, [name]);
    assert.deepEqual(out, { found: 500, size: 501, bin: [0, 1, 2, 0], ok: true });
    const cache = SharedLRU.open(name);
    assert.equal(cache.get('warm:499'), 'value 499');
    assert.ok(cache.stats().hits >= 500, 'the other process\'s hits are counted in the segment');
    cache.close();
  });

  test('a writer killed with SIGKILL mid-loop leaves a usable, sound cache', async (t) => {
    const name = uniqueName('sigkill');
    const cache = SharedLRU.create(name, { capacity: 200, recordSize: 64, shards: 4 });
    // Three kills at least, and on until one caught the child holding a shard's lock (the
    // parent's calls below take every lock, so its shard is rebuilt and counted at once): a kill
    // that lands between two writes proves nothing about recovery. Bounded, so that a recovery
    // that never comes fails the test.
    const MAX_ROUNDS = 60;
    let round = 0;
    for (; round < 3 || cache.stats().recoveries === 0; round++) {
      assert.ok(round < MAX_ROUNDS, `${round} kills and none caught the writer holding a lock`);
      const child = fork(__filename, [], {
        env: childEnv({ SHMLRU_TEST_ROLE: 'hammer', SHMLRU_TEST_NAME: name }),
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      exited(child);
      await nextMessage(child, 'hammering');
      // Let it run a little more at full speed, then kill it without warning.
      await new Promise((resolve) => setTimeout(resolve, 30 + (round % 3) * 20));
      const done = exited(child);
      child.kill('SIGKILL');
      assert.deepEqual(await done, { code: null, signal: 'SIGKILL' });

      // The parent carries on at once: these calls lock every shard the child may have held.
      const report = cache.check();
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      cache.set(`parent-${round}`, 'still works');
      assert.equal(cache.get(`parent-${round}`), 'still works');
      assert.ok(cache.size <= cache.capacity);
      // No torn value: every entry the child wrote names its own key.
      let hammered = 0;
      for (const [k, v] of cache) {
        if (typeof k === 'string' && /^h\d+$/.test(k)) {
          hammered++;
          assert.match(v, new RegExp(`^${k}\\|\\d+\\|x*$`), `entry ${k}`);
        }
      }
      assert.ok(hammered > 0, 'the child did write');
      // The counter may have been evicted (the cache is smaller than the child's key set), but
      // if it is there it is a whole decimal number.
      const count = cache.get('hammer-count');
      if (count !== undefined) assert.match(count, /^\d+$/);
    }
    const s = cache.stats();
    assert.ok(s.recoveries >= 1, `no recovery in ${round} kills`);
    assert.equal(s.size, cache.size);
    assert.equal(cache.check().ok, true);
    t.diagnostic(`${round} kills, ${s.recoveries} recoveries`);
    cache.close();
  });
}

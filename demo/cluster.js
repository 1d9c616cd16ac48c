'use strict';
// A cluster sharing one SharedLRU: the primary creates the cache, each worker warms it with its
// own entries and reads the others', one worker evicts what nobody used lately, and the primary
// prints the shared counters before destroying the cache. Run with `npm run demo`.

const cluster = require('node:cluster');
const path = require('node:path');
const { SharedLRU } = require(path.resolve(__dirname, '..'));

const WORKERS = 3;
const PER_WORKER = 8;
const IDLE_MS = 300;

if (cluster.isPrimary) primary();
else worker(Number(process.env.DEMO_WORKER), process.env.DEMO_CACHE);

function primary() {
  const name = `/shmlru-demo-${process.pid}`;
  const cache = SharedLRU.create(name, { capacity: 1024, recordSize: 128 });
  const cleanup = () => SharedLRU.destroy(name);
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  log('primary', `created ${name}: ${cache.capacity} entries of ${cache.recordSize} bytes, ${cache.settings().shards} shard(s)`);
  cache.set('motd', `hello from the primary, pid ${process.pid}`);

  const workers = [];
  for (let id = 0; id < WORKERS; id++) {
    workers.push(cluster.fork({ DEMO_WORKER: String(id), DEMO_CACHE: name }));
  }
  // Step the workers through the phases together.
  const phases = ['warm', 'read', 'evict', 'verify'];
  let phase = 0;
  let waiting = WORKERS;
  const next = () => {
    if (phase === phases.length) {
      for (const w of workers) w.send({ phase: 'exit' });
      return;
    }
    const p = phases[phase++];
    waiting = p === 'evict' ? 1 : WORKERS;
    // Let the warm entries grow old before the reads, so that only what is read stays young.
    const delay = p === 'read' ? IDLE_MS + 50 : 0;
    setTimeout(() => {
      if (p === 'evict') workers[0].send({ phase: p });
      else for (const w of workers) w.send({ phase: p });
    }, delay);
  };
  for (const w of workers) {
    w.on('message', () => {
      if (--waiting === 0) next();
    });
  }
  let alive = WORKERS;
  cluster.on('exit', (w, code) => {
    if (code !== 0) {
      log('primary', `worker ${w.id} exited with ${code}`);
      process.exitCode = 1;
    }
    if (--alive === 0) finish(cache);
  });
  next();
  // Never hang, whatever happens.
  setTimeout(() => {
    log('primary', 'timed out');
    process.exit(1);
  }, 15_000).unref();
}

function finish(cache) {
  const s = cache.stats();
  log('primary', `all workers done; ${cache.size} entries left`);
  log('primary', `stats: hits ${s.hits}, misses ${s.misses}, inserts ${s.inserts}, updates ${s.updates}, ` +
    `evictions ${s.evictions}, expirations ${s.expirations}, recoveries ${s.recoveries}`);
  const report = cache.check();
  log('primary', `check: ${report.ok ? 'ok' : report.problems.join('; ')}`);
  log('primary', `visits counted by all workers together: ${cache.get('visits')}`);
  cache.close();
  process.exit(report.ok ? process.exitCode ?? 0 : 1);
}

function worker(id, name) {
  const cache = SharedLRU.open(name);
  const who = `worker ${id}`;
  const right = (id + 1) % WORKERS;
  process.on('message', ({ phase }) => {
    switch (phase) {
      case 'warm': {
        for (let i = 0; i < PER_WORKER; i++) {
          cache.set(`w${id}:item${i}`, JSON.stringify({ by: id, pid: process.pid, i }));
        }
        cache.set(`w${id}:avatar`, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, id]));
        log(who, `warmed ${PER_WORKER + 1} entries`);
        break;
      }
      case 'read': {
        // Read the right-hand neighbour's first two items; the rest go unused.
        const got = [0, 1].map((i) => JSON.parse(cache.get(`w${right}:item${i}`)));
        const avatar = cache.get(`w${right}:avatar`);
        const visits = cache.incr('visits');
        log(who, `primary says "${cache.get('motd')}"; I am visitor ${visits}`);
        log(who, `read worker ${right}'s items ${got.map((g) => `#${g.i} (written by pid ${g.pid})`).join(', ')} ` +
          `and its ${avatar.length}-byte avatar`);
        break;
      }
      case 'evict': {
        const gone = cache.evictOlderThan(IDLE_MS);
        const keys = gone.map(([k]) => String(k));
        log(who, `evicted ${gone.length} entries unused for ${IDLE_MS} ms, e.g. ${keys.slice(0, 4).join(', ')}`);
        break;
      }
      case 'verify': {
        const mine = [];
        for (let i = 0; i < PER_WORKER; i++) mine.push(cache.has(`w${id}:item${i}`) ? 'kept' : 'gone');
        log(who, `my items now: ${mine.join(' ')} (the two my neighbour read were kept)`);
        break;
      }
      case 'exit':
        cache.close();
        process.exit(0);
    }
    process.send({ done: phase });
  });
}

function log(who, msg) {
  console.log(`[${who.padEnd(8)}] ${msg}`);
}

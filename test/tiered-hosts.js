'use strict';
// Test harness for shm-typed-lru/tiered: "hosts" made of real forked processes. Each host
// process opens one TieredCache (its "machine" is its L1 name: processes given the same name
// share one L1, as the workers of one machine do) and answers requests from the test over
// IPC. Run as a file by itself it does nothing (the test runner runs every file of test/);
// forked with TIERED_ROLE=host it is a host process.

const { fork } = require('node:child_process');
const net = require('node:net');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- a host process: one TieredCache, driven by its parent ----

function runHost() {
  const { TieredCache } = require('shm-typed-lru/tiered');
  const cfg = JSON.parse(process.env.TIERED_CONFIG);
  const gates = new Map(); // key -> release functions of fills held by the beforeFill hook
  let holdFills = new Set(cfg.holdFills || []);
  const events = { down: 0, up: 0, cleared: [] };
  let tier;
  let stopping = false;

  const ops = {
    get: ({ key }) => tier.get(key),
    getHex: async ({ key }) => {
      const v = await tier.get(key);
      return v === undefined ? undefined : { isBuffer: Buffer.isBuffer(v), hex: Buffer.from(v).toString('hex') };
    },
    set: ({ key, value, ttl, hex }) => tier.set(key, hex ? Buffer.from(value, 'hex') : value, ttl === undefined ? undefined : { ttl }),
    delete: ({ key }) => tier.delete(key),
    peekLocal: ({ key }) => tier.local.peek(key) !== undefined,
    localSettings: () => tier.local.settings(),
    localSize: () => tier.local.size,
    stats: () => ({ ...tier.stats(), events }),
    holdFills: ({ keys }) => {
      holdFills = new Set(keys);
    },
    held: ({ key }) => (gates.get(key) || []).length,
    release: ({ key }) => {
      for (const open of gates.get(key) || []) open();
      gates.delete(key);
    },
    fetch: ({ key, value, delay, fail, timeout }) =>
      tier.fetch(
        key,
        async () => {
          await sleep(delay);
          if (fail) throw new Error(`loader failed in ${process.pid}`);
          return `${value}@${process.pid}`;
        },
        timeout === undefined ? undefined : { timeout },
      ),
    fetchForever: ({ key }) => {
      // The loader never settles: the process is killed while it holds the lease.
      tier.fetch(key, () => new Promise(() => {})).catch(() => {});
      return null;
    },
    // Reads `keys` in a loop for `ms`, checking each value's self-validation; reports counts.
    readLoop: async ({ keys, ms }) => {
      const end = Date.now() + ms;
      let reads = 0;
      const bad = [];
      while (Date.now() < end) {
        for (const key of keys) {
          const v = await tier.get(key);
          reads++;
          if (v !== undefined && !valid(key, v)) bad.push(v);
        }
        await sleep(0);
      }
      return { reads, bad: bad.slice(0, 5) };
    },
    // Reads `key` for `ms`: for each value seen, when a read that returned it last started
    // (ms since the epoch) and how many did; errors by code.
    readTimed: async ({ key, ms }) => {
      const end = Date.now() + ms;
      const seen = {};
      const log = []; // [start, value, how] at each change of value or of how it was served
      let prev = '';
      while (Date.now() < end) {
        const t0 = Date.now();
        const before = tier.stats();
        let v;
        try {
          v = String(await tier.get(key));
        } catch (err) {
          v = `error:${err.code}`;
        }
        const after = tier.stats();
        const how = after.hits > before.hits ? 'hit' : after.staleHits > before.staleHits ? 'stale' : 'redis';
        if (`${v}/${how}` !== prev) log.push([t0, v, how, after.feedHolder]);
        prev = `${v}/${how}`;
        const s = seen[v] || (seen[v] = { count: 0, firstStart: t0, lastStart: 0 });
        s.count++;
        s.lastStart = t0;
        await sleep(1);
      }
      Object.defineProperty(seen, 'log', { value: log, enumerable: false });
      seen.$log = log;
      return seen;
    },
    // Writes increasing versions of `keys` for `ms`; reports the last version written.
    writeLoop: async ({ keys, ms, tag }) => {
      const end = Date.now() + ms;
      let version = 0;
      while (Date.now() < end) {
        version++;
        for (const key of keys) await tier.set(key, versioned(key, tag, version));
        await sleep(1);
      }
      return version;
    },
    // Calls get on `key` every few ms for `ms`; counts how each call ended and the longest any took.
    probe: async ({ key, ms }) => {
      const end = Date.now() + ms;
      const out = { ok: 0, unavailable: 0, other: [], longest: 0 };
      while (Date.now() < end) {
        const t0 = Date.now();
        try {
          await tier.get(key);
          out.ok++;
        } catch (err) {
          if (err.code === 'ERR_TIERED_UNAVAILABLE') out.unavailable++;
          else out.other.push(`${err.code}: ${err.message}`);
        }
        out.longest = Math.max(out.longest, Date.now() - t0);
        await sleep(5);
      }
      return out;
    },
    close: async () => {
      await stop();
      return null;
    },
  };

  async function stop() {
    if (stopping) return;
    stopping = true;
    if (tier) await tier.close();
    setImmediate(() => process.exit(0));
  }
  // A graceful restart (pm2 reload, a cluster worker's disconnect): close, then exit.
  process.on('SIGTERM', () => {
    stop();
  });

  process.on('message', async ({ id, op, args }) => {
    try {
      const value = await ops[op](args || {});
      process.send({ id, ok: true, value: value === undefined ? { undefined: true } : { value } });
    } catch (err) {
      process.send({ id, ok: false, error: { code: err.code, message: err.message } });
    }
  });

  // The L1's geometry: the tier's default (a byte budget) when cfg.geometry is 'default', a
  // budget of cfg.maxBytes, else records (1024 of 256 bytes unless cfg says otherwise).
  let geometry;
  if (cfg.geometry === 'default') geometry = {};
  else if (cfg.maxBytes !== undefined) geometry = { maxBytes: cfg.maxBytes, maxValueSize: cfg.maxValueSize };
  else geometry = { capacity: cfg.capacity || 1024, recordSize: cfg.recordSize || 256 };
  TieredCache.connect({
    name: cfg.name,
    ...geometry,
    redis: cfg.redis,
    prefix: cfg.prefix,
    valueType: cfg.valueType,
    staleIfError: cfg.staleIfError || 0,
    leaseTtl: cfg.leaseTtl,
    fetchTimeout: cfg.fetchTimeout,
    feedTimeout: cfg.feedTimeout,
    commandTimeout: cfg.commandTimeout || 500,
    connectTimeout: cfg.connectTimeout || 10_000,
    backoffMin: 20,
    backoffMax: 200,
    hooks: {
      beforeFill: async (key) => {
        if (!holdFills.has(key)) return;
        await new Promise((open) => {
          if (!gates.has(key)) gates.set(key, []);
          gates.get(key).push(open);
        });
      },
    },
  }).then(
    (t) => {
      tier = t;
      tier.on('down', () => events.down++);
      tier.on('up', ({ cleared }) => {
        events.up++;
        events.cleared.push(cleared);
      });
      process.send({ ready: true });
    },
    (err) => {
      process.send({ ready: false, error: err.message });
      process.exit(1);
    },
  );
}

// A self-validating versioned value: the key, the writer's tag, the version, and a checksum of
// the three, so a torn or mixed-up value is recognised.
function versioned(key, tag, version) {
  const body = `${key}|${tag}|${version}`;
  return `${body}|${checksum(body)}`;
}

function checksum(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

function valid(key, v) {
  const parts = v.split('|');
  return parts.length === 4 && parts[0] === key && checksum(parts.slice(0, 3).join('|')) === parts[3];
}

function versionOf(v) {
  return Number(v.split('|')[2]);
}

// ---- the test side ----

/**
 * Forks host processes and keeps track of them, so that `killAll()` can remove any left.
 * `redis` is what hosts pass as the `redis` option (a URL or { cluster: [...] }).
 */
class Hosts {
  constructor(redis) {
    this.redis = redis;
    this.children = new Set();
    this.names = new Set();
    this.seq = 0;
  }

  // A host process: `call(op, args)` resolves to its answer or rejects with its error.
  spawn(cfg) {
    this.names.add(cfg.name);
    const child = fork(__filename, [], {
      env: { ...process.env, TIERED_ROLE: 'host', TIERED_CONFIG: JSON.stringify({ redis: this.redis, ...cfg }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.children.add(child);
    const pending = new Map();
    let next = 0;
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const ready = new Promise((resolve, reject) => {
      child.on('message', (m) => {
        if ('ready' in m) return m.ready ? resolve() : reject(new Error(m.error));
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.ok) p.resolve('undefined' in m.value ? undefined : m.value.value);
        else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      });
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        const err = new Error(`host ${child.pid} exited (${code ?? signal})`);
        reject(err);
        for (const p of pending.values()) p.reject(err);
        pending.clear();
      });
    });
    ready.catch(() => {});
    const call = (op, args) =>
      new Promise((resolve, reject) => {
        if (!child.connected) return reject(new Error(`host ${child.pid} is gone`));
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, op, args });
      });
    return { child, ready, call, pid: child.pid, exited, cfg };
  }

  name(tag, h) {
    return `/shmlru-test-${process.pid}-tiered-${tag}-${h}`;
  }

  // Two hosts of two processes each: { A: [a0, a1], B: [b0, b1], all, prefix, close }.
  async twoHosts(tag, extra = {}) {
    const prefix = `t${this.seq++}-${tag}:`;
    const hosts = {};
    for (const h of ['A', 'B']) {
      const cfg = { name: this.name(tag, h), prefix, ...(extra.all || {}), ...(extra[h] || {}) };
      hosts[h] = [this.spawn(cfg), this.spawn(cfg)];
    }
    const all = [...hosts.A, ...hosts.B];
    await Promise.all(all.map((p) => p.ready));
    const close = () => Promise.all(all.map((p) => p.call('close').catch(() => {})));
    return { ...hosts, all, prefix, close };
  }

  killAll() {
    for (const c of this.children) c.kill('SIGKILL');
  }

  destroyAll() {
    const { TieredCache } = require('shm-typed-lru/tiered');
    for (const name of this.names) TieredCache.destroy(name);
  }
}

// Polls `fn` until it returns true; fails with `what` after `ms`.
async function eventually(what, fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// The sum of a stats field over processes.
async function total(procs, field) {
  const all = await Promise.all(procs.map((p) => p.call('stats')));
  return all.reduce((n, s) => n + s[field], 0);
}

// Which of `procs` holds its machine's feed (exactly one, or the test fails).
async function holderOf(procs) {
  const all = await Promise.all(procs.map((p) => p.call('stats')));
  const holders = procs.filter((_, i) => all[i].feedHolder);
  if (holders.length !== 1) throw new Error(`${holders.length} feed holders among ${procs.length} processes`);
  return holders[0];
}

/**
 * A TCP relay on loopback in front of `port`, which can freeze: its connections stay open
 * but pass nothing on, and new ones are accepted but not relayed (a stalled network path).
 */
class FreezableProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.frozen = false;
    this.pairs = new Set();
    this.server = net.createServer((client) => this.#relay(client));
  }

  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  #relay(client) {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.on('data', (d) => {
      if (!this.frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.frozen) client.write(d);
    });
  }

  freeze() {
    this.frozen = true;
  }

  /** Relays again; connections that were frozen are dropped (what they missed is lost). */
  thaw() {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  close() {
    this.thaw();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

module.exports = { Hosts, eventually, total, holderOf, versioned, valid, versionOf, sleep, FreezableProxy };

if (require.main === module && process.env.TIERED_ROLE === 'host') runHost();

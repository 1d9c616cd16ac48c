'use strict';
// A throwaway redis-server for tests and benchmarks: Debian's `redis-server` binary started on a
// free loopback port, in a temporary directory, without persistence; stopped (or SIGKILLed and
// restarted on the same port) on demand. Never a system service. Requiring this file does
// nothing by itself.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, execFile } = require('node:child_process');

/** The path of redis-server, or null if it is not installed. */
function findRedisServer() {
  const dirs = (process.env.PATH || '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/usr/local/bin']);
  for (const dir of dirs) {
    const p = path.join(dir, 'redis-server');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Why the Redis tests cannot run here, or null if they can. In CI (CI=true) a missing
 * redis-server is an error, not a reason to skip: .ci/run installs it.
 */
function redisSkipReason() {
  const client = require('./dev-deps').devSkip('ioredis');
  if (client) return client;
  if (findRedisServer() !== null) return null;
  if (process.env.CI === 'true') {
    throw new Error('redis-server is not installed, and CI must run the Redis tests: apt-get install -y redis-server');
  }
  return 'redis-server is not installed (apt-get install redis-server to run these tests)';
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves once something accepts TCP connections on the port and answers PING.
async function waitReady(port, child, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with status ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.setTimeout(500);
      s.on('connect', () => s.write('PING\r\n'));
      s.on('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      s.on('error', () => resolve(false));
      s.on('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server did not answer on port ${port} within ${deadlineMs} ms`);
}

// Servers still running when this process exits (a test or benchmark that failed or was
// interrupted) are killed with it.
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

class RedisServer {
  constructor(bin, port, dir, extra = []) {
    this.bin = bin;
    this.port = port;
    this.dir = dir;
    this.extra = extra;
    this.url = `redis://127.0.0.1:${port}`;
    this.addr = `127.0.0.1:${port}`;
    this.child = null;
  }

  async #spawn() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', path.join(this.dir, 'redis.log'), ...this.extra];
    const child = spawn(this.bin, args, { stdio: 'ignore' });
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        running.delete(child);
        resolve();
      }),
    );
    await waitReady(this.port, this.child, 10_000);
  }

  /** SIGKILLs the server (a crash: no shutdown, every connection reset). */
  async kill() {
    if (this.child === null) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** Starts it again on the same port (with an empty keyspace). */
  async restart() {
    await this.kill();
    await this.#spawn();
  }

  /** Stops it and removes its directory. */
  async stop() {
    if (this.child !== null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child && this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(timer);
      this.child = null;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Starts it again after kill() (a cluster node keeps its nodes.conf, so it rejoins). */
  async start() {
    if (this.child === null) await this.#spawn();
  }

  static async start(extra = [], dir = null) {
    const bin = findRedisServer();
    if (bin === null) throw new Error('redis-server is not installed');
    dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'shm-lru-redis-'));
    // A port picked free may be taken before the server binds it: try a few.
    for (let attempt = 0; ; attempt++) {
      const server = new RedisServer(bin, await freePort(), dir, extra);
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        if (server.child) server.child.kill('SIGKILL');
        if (attempt === 4) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }
}

function redisCli(args) {
  const cli = findRedisServer().replace(/redis-server$/, 'redis-cli');
  return new Promise((resolve, reject) => {
    execFile(cli, args, { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`redis-cli ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/**
 * A throwaway Redis Cluster on loopback: `masters` nodes started with --cluster-enabled yes
 * (each `replicas` replicas), joined with `redis-cli --cluster create`. Node timeout 1 s, so a
 * killed master's replica is promoted within a few seconds.
 */
class RedisCluster {
  constructor(nodes) {
    this.nodes = nodes;
    this.seeds = nodes.map((n) => n.url);
  }

  static async start({ masters = 3, replicas = 0 } = {}) {
    const nodes = [];
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shm-lru-redis-cluster-'));
        nodes.push(
          await RedisServer.start(
            ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000', '--cluster-require-full-coverage', 'no', '--cluster-allow-reads-when-down', 'no'],
            dir,
          ),
        );
      }
      await redisCli(['--cluster', 'create', ...nodes.map((n) => n.addr), '--cluster-replicas', String(replicas), '--cluster-yes']);
      const c = new RedisCluster(nodes);
      await c.waitOk();
      return c;
    } catch (err) {
      for (const n of nodes) await n.stop();
      throw err;
    }
  }

  /** Waits until every running node reports cluster_state:ok and every slot is served. */
  async waitOk(ms = 20_000) {
    const end = Date.now() + ms;
    for (;;) {
      let ok = true;
      for (const n of this.nodes) {
        if (n.child === null) continue;
        const info = await redisCli(['-p', String(n.port), 'cluster', 'info']).catch(() => '');
        if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) ok = false;
      }
      if (ok) return;
      if (Date.now() > end) throw new Error('the cluster did not settle');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The nodes now serving as masters, with the slot ranges each serves. */
  async masters() {
    const live = this.nodes.find((n) => n.child !== null);
    const out = await redisCli(['-p', String(live.port), 'cluster', 'nodes']);
    const masters = [];
    for (const line of out.trim().split('\n')) {
      const f = line.split(' ');
      if (!f[2].includes('master') || f[2].includes('fail')) continue;
      const port = Number(f[1].split('@')[0].split(':')[1]);
      masters.push({ node: this.nodes.find((n) => n.port === port), ranges: f.slice(8) });
    }
    return masters;
  }

  async stop() {
    for (const n of this.nodes) await n.stop();
  }
}

module.exports = { RedisServer, RedisCluster, findRedisServer, redisSkipReason, redisCli };

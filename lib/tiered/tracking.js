'use strict';
// A process's two Redis connections and the state of its invalidation feed. `data` carries the
// commands; `sub` is subscribed to `__redis__:invalidate`, and `data` has
// `CLIENT TRACKING on REDIRECT <sub's id> BCAST PREFIX <prefix>`, so Redis pushes to `sub` the
// name of every key under the prefix that any client changes, expires or evicts (RESP2, which
// ioredis speaks). The feed is "up" only while both connections are ready and tracking was
// switched on for this pair; whenever either closes, invalidations may be lost from then on,
// so the feed goes "down" at once, and when both are back it switches tracking on again and
// reports "up" as a fresh start (the tier then distrusts everything filled before). ioredis
// reconnects each connection with the backoff given here; commands never queue while
// disconnected and never wait longer than `commandTimeout`, so no caller hangs.

const { EventEmitter } = require('node:events');

const CHANNEL = '__redis__:invalidate';

function loadClient() {
  try {
    return require('ioredis');
  } catch (err) {
    const e = new Error(
      "shm-typed-lru/tiered needs the Redis client 'ioredis' (a peer dependency): npm install ioredis",
    );
    e.code = 'ERR_TIERED_NO_CLIENT';
    e.cause = err;
    throw e;
  }
}

class Tracking extends EventEmitter {
  #Redis;
  #opts;
  #prefix;
  #data;
  #sub;
  #subId = null; // the sub connection's CLIENT ID once it is subscribed, else null
  #generation = 0; // bumped whenever either connection closes
  #up = false;
  #closed = false;
  #syncing = false;
  #again = false;
  /** The last connection error ioredis reported, for error messages. */
  lastError = null;

  /**
   * @param {string|object} redis a redis:// URL or ioredis options
   * @param {object} o prefix, commandTimeout, backoffMin, backoffMax, connectionName
   */
  constructor(redis, o) {
    super();
    this.#Redis = loadClient();
    this.#prefix = o.prefix;
    const retryStrategy = (times) => {
      const base = Math.min(o.backoffMin * 2 ** Math.min(times - 1, 20), o.backoffMax);
      return Math.round(base * (0.5 + Math.random() / 2));
    };
    this.#opts = {
      lazyConnect: true,
      enableOfflineQueue: false, // a command while disconnected fails now instead of waiting
      maxRetriesPerRequest: 0, // a command in flight when the connection drops fails
      autoResubscribe: false, // the sub connection is set up again by #onSubReady
      commandTimeout: o.commandTimeout,
      connectTimeout: o.commandTimeout,
      retryStrategy,
    };
    const mk = (role) => {
      const opts = { ...this.#opts, connectionName: `${o.connectionName}:${role}` };
      return typeof redis === 'string' ? new this.#Redis(redis, opts) : new this.#Redis({ ...redis, ...opts });
    };
    this.#data = mk('data');
    this.#sub = mk('sub');
    // ioredis reports connection errors as 'error' events; the 'down' event already tells
    // about them, so they must not become uncaught exceptions.
    this.#data.on('error', (err) => {
      this.lastError = err;
    });
    this.#sub.on('error', (err) => {
      this.lastError = err;
    });
    this.#data.on('ready', () => this.#sync());
    this.#sub.on('ready', () => this.#onSubReady());
    this.#data.on('close', () => this.#lost('data connection closed'));
    this.#sub.on('close', () => this.#lost('invalidation connection closed'));
    this.#sub.on('messageBuffer', (channel, message) => {
      if (channel.toString() !== CHANNEL) return;
      // null: the whole keyspace was flushed. Otherwise an array of key names.
      this.emit('invalidate', message === null ? null : Array.isArray(message) ? message.map(String) : [String(message)]);
    });
  }

  /** The connection for commands. */
  get data() {
    return this.#data;
  }

  /** Whether invalidations are known to reach this process right now. */
  get up() {
    return this.#up;
  }

  /** Changes whenever the feed goes down; a fill started in one generation must not land in another. */
  get generation() {
    return this.#generation;
  }

  start() {
    this.#data.connect().catch(() => {});
    this.#sub.connect().catch(() => {});
  }

  async #onSubReady() {
    const gen = this.#generation;
    try {
      const id = await this.#sub.client('ID');
      await this.#sub.subscribe(CHANNEL);
      if (gen !== this.#generation || this.#closed) return;
      this.#subId = id;
      this.#sync();
    } catch {
      // The connection failed again; its next 'ready' retries.
    }
  }

  async #sync() {
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = true;
    try {
      do {
        this.#again = false;
        if (this.#closed || this.#up || this.#subId === null || this.#data.status !== 'ready') break;
        const gen = this.#generation;
        const args = ['TRACKING', 'on', 'REDIRECT', String(this.#subId), 'BCAST'];
        if (this.#prefix !== '') args.push('PREFIX', this.#prefix);
        try {
          // Off first: tracking may still be on with a redirect to a sub connection that died.
          await this.#data.client('TRACKING', 'off');
          await this.#data.client(...args);
        } catch {
          continue;
        }
        if (gen === this.#generation && !this.#closed) {
          this.#up = true;
          this.emit('up');
        }
      } while (this.#again);
    } finally {
      this.#syncing = false;
    }
  }

  #lost(reason) {
    this.#generation++;
    if (this.#closed) return;
    if (reason.startsWith('invalidation')) this.#subId = null;
    if (this.#up) {
      this.#up = false;
      this.emit('down', reason);
    }
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    await Promise.all(
      [this.#data, this.#sub].map((c) =>
        c.status === 'ready' ? c.quit().catch(() => c.disconnect()) : Promise.resolve(c.disconnect()),
      ),
    );
  }
}

module.exports = { Tracking };

'use strict';
// The invalidation feed from one Redis node: a single connection that switches tracking on for
// itself (`CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX <prefix>`) and then subscribes
// to `__redis__:invalidate`, so Redis pushes to it the name of every key under the prefix that
// any client changes, expires or evicts on that node (RESP2, which ioredis speaks). Tracking
// lives and dies with this one connection: "up" once it is subscribed, "down" as soon as it
// closes (invalidations may be lost from then on). `ping()` proves the path is alive: a
// connection whose path froze stays open but answers nothing, and its holder then drops it.

const { EventEmitter } = require('node:events');

const CHANNEL = '__redis__:invalidate';

class NodeFeed extends EventEmitter {
  #conn;
  #prefix;
  #up = false;
  #closed = false;
  #gen = 0; // bumped whenever the connection closes
  /** When the node last answered (a PING, a subscription or a message), ms since the epoch. */
  lastHeard = 0;
  lastError = null;

  /**
   * @param {import('ioredis').Redis} conn a lazyConnect connection to the node
   * @param {string} addr the node's "host:port", or '' for the single node
   * @param {string} prefix the tracked key prefix
   */
  constructor(conn, addr, prefix) {
    super();
    this.addr = addr;
    this.#conn = conn;
    this.#prefix = prefix;
    conn.on('error', (err) => {
      this.lastError = err;
    });
    conn.on('ready', () => this.#onReady());
    conn.on('close', () => {
      this.#gen++;
      if (this.#up) {
        this.#up = false;
        if (!this.#closed) this.emit('down', 'invalidation connection closed');
      }
    });
    conn.on('messageBuffer', (channel, message) => {
      if (channel.toString() !== CHANNEL) return;
      this.lastHeard = Date.now();
      // null: the whole keyspace was flushed. Otherwise an array of key names.
      this.emit('invalidate', message === null ? null : Array.isArray(message) ? message.map(String) : [String(message)]);
    });
  }

  /** Whether tracking is on and the connection subscribed. */
  get up() {
    return this.#up;
  }

  start() {
    this.#conn.connect().catch(() => {});
  }

  async #onReady() {
    const gen = this.#gen;
    try {
      const id = await this.#conn.client('ID');
      const args = ['TRACKING', 'on', 'REDIRECT', String(id), 'BCAST'];
      if (this.#prefix !== '') args.push('PREFIX', this.#prefix);
      await this.#conn.client(...args);
      await this.#conn.subscribe(CHANNEL);
    } catch (err) {
      this.lastError = err;
      // Not set up: drop the connection, whose next 'ready' tries again.
      if (gen === this.#gen && !this.#closed) this.#conn.disconnect(true);
      return;
    }
    if (gen !== this.#gen || this.#closed) return;
    this.lastHeard = Date.now();
    this.#up = true;
    this.emit('up');
  }

  /** Sends a PING; `lastHeard` moves when the answer comes. */
  ping() {
    if (!this.#up) return;
    const gen = this.#gen;
    this.#conn.ping().then(
      () => {
        if (gen === this.#gen) this.lastHeard = Date.now();
      },
      () => {},
    );
  }

  /** Drops the connection (it reconnects): for a path that stopped answering. */
  reset(why) {
    this.lastError = new Error(why);
    this.#conn.disconnect(true);
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    const c = this.#conn;
    if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
    else c.disconnect();
  }
}

module.exports = { NodeFeed };

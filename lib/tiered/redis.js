'use strict';
// The tier's Redis connections, made with ioredis (a peer dependency, loaded only here): a
// process's data client (a single node, or a Redis Cluster), and the feed's one connection per
// node. Commands never queue while disconnected and never wait longer than `commandTimeout`,
// so no caller hangs; each connection reconnects with jittered exponential backoff.

function loadClient() {
  try {
    return require('ioredis');
  } catch (err) {
    const e = new Error("shm-typed-lru/tiered needs the Redis client 'ioredis' (a peer dependency): npm install ioredis");
    e.code = 'ERR_TIERED_NO_CLIENT';
    e.cause = err;
    throw e;
  }
}

function backoff(min, max) {
  return (times) => {
    const base = Math.min(min * 2 ** Math.min(times - 1, 20), max);
    return Math.round(base * (0.5 + Math.random() / 2));
  };
}

function isCluster(redis) {
  return redis !== null && typeof redis === 'object' && Array.isArray(redis.cluster);
}

/**
 * Where the tier's Redis is, from the `redis` option: { cluster: true, nodes, options } for a
 * Redis Cluster (`{ cluster: [seed nodes], ...ioredis ClusterOptions }`), else { cluster:
 * false, url | options } for one node (a redis:// URL or ioredis options).
 */
function parseTarget(redis) {
  if (redis === undefined) return { cluster: false, url: 'redis://127.0.0.1:6379' };
  if (typeof redis === 'string') return { cluster: false, url: redis };
  if (redis === null || typeof redis !== 'object') {
    const e = new TypeError('options.redis must be a redis:// URL, ioredis options or { cluster: [nodes] }');
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  if (isCluster(redis)) {
    if (redis.cluster.length === 0) {
      const e = new TypeError('options.redis.cluster must name at least one seed node');
      e.code = 'ERR_INVALID_ARG_VALUE';
      throw e;
    }
    const { cluster: nodes, ...options } = redis;
    return { cluster: true, nodes, options };
  }
  return { cluster: false, options: redis };
}

function nodeOptions(o, name) {
  return {
    lazyConnect: true,
    enableOfflineQueue: false, // a command while disconnected fails now instead of waiting
    maxRetriesPerRequest: 0, // a command in flight when the connection drops fails
    autoResubscribe: false, // the feed subscribes again itself
    commandTimeout: o.commandTimeout,
    connectTimeout: o.commandTimeout,
    retryStrategy: backoff(o.backoffMin, o.backoffMax),
    connectionName: name,
  };
}

/** A process's data client. */
function dataClient(target, o) {
  const Redis = loadClient();
  const name = `shm-tiered:${process.pid}:data`;
  if (!target.cluster) {
    const opts = nodeOptions(o, name);
    return target.url !== undefined ? new Redis(target.url, opts) : new Redis({ ...target.options, ...opts });
  }
  const user = target.options;
  return new Redis.Cluster(target.nodes, {
    ...user,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRedirections: user.maxRedirections === undefined ? 4 : user.maxRedirections,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: user.retryDelayOnFailover === undefined ? 50 : user.retryDelayOnFailover,
    retryDelayOnClusterDown: user.retryDelayOnClusterDown === undefined ? 50 : user.retryDelayOnClusterDown,
    clusterRetryStrategy: backoff(o.backoffMin, o.backoffMax),
    slotsRefreshTimeout: o.commandTimeout,
    redisOptions: { ...(user.redisOptions || {}), ...nodeOptions(o, name) },
  });
}

/** A feed connection to one node: `addr` is "host:port" (cluster) or null (the single node). */
function feedClient(target, addr, o) {
  const Redis = loadClient();
  const opts = nodeOptions(o, `shm-tiered:${process.pid}:feed`);
  if (!target.cluster) {
    return target.url !== undefined ? new Redis(target.url, opts) : new Redis({ ...target.options, ...opts });
  }
  const at = addr.lastIndexOf(':');
  return new Redis({ ...(target.options.redisOptions || {}), ...opts, host: addr.slice(0, at), port: Number(addr.slice(at + 1)) });
}

module.exports = { parseTarget, dataClient, feedClient, loadClient };

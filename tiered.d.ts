/// <reference types="node" />
// Types for shm-typed-lru/tiered: TieredCache, a machine's shared-memory L1 in front of a Redis
// L2, kept coherent by Redis's client-side caching invalidations.

import { EventEmitter } from 'node:events';
import type { SharedLRU } from './index';

/** Options of TieredCache.connect. */
export interface TieredCacheOptions {
  /** The machine's L1: a POSIX name such as "/pages" (a second segment "<name>.tier" holds its counters). */
  name: string;
  /**
   * The L1's byte budget (used when this process creates the L1), unless `recordSize` is
   * given: default 64 MiB. The whole L1 segment is at most this many bytes.
   */
  maxBytes?: number;
  /**
   * With a byte budget, the most bytes one L1 entry holds: key bytes + value bytes + a stamp
   * of up to 17 bytes (default 1 MiB, or an eighth of maxBytes when that is less). Larger
   * values are served from Redis only.
   */
  maxValueSize?: number;
  /** L1 entries: with recordSize, required; with a byte budget, optional (the index grows as entries need it). */
  capacity?: number;
  /**
   * Makes the L1 a cache of `capacity` records of this many bytes instead of a byte budget:
   * key bytes + value bytes + a stamp of up to 17 bytes. Larger values are served from Redis only.
   */
  recordSize?: number;
  /** Default time to live in ms of values set through the tier (Redis PX) and the longest an L1 copy lives; 0 = none (default). */
  ttl?: number;
  /** Permission bits of the L1 segments (default 0o600). */
  mode?: number;
  /** Shards of the L1 (default: the engine's choice). */
  shards?: number;
  /**
   * A redis:// URL, ioredis connection options (default redis://127.0.0.1:6379), or a Redis
   * Cluster: `{ cluster: [seed nodes], ...ioredis ClusterOptions }`.
   */
  redis?: string | Record<string, unknown> | TieredClusterTarget;
  /** The Redis key prefix the tier owns and tracks (default '', every key). */
  prefix?: string;
  /** 'string' (default): values come back as strings; 'buffer': as Buffers. */
  valueType?: 'string' | 'buffer';
  /** While invalidations may not reach the machine, serve L1 copies for at most this many ms (default 0). */
  staleIfError?: number;
  /**
   * The feed is taken as down when a Redis node has not answered its heartbeat (a PING every
   * feedTimeout/4), or the feed's holder has not written its own, for this many ms (default
   * 2000): the most an L1 copy may be served after the path to Redis stalls.
   */
  feedTimeout?: number;
  /** How often each process looks at the feed's holder, in ms (default 50): a holder that dies is replaced within about this. */
  feedCheckInterval?: number;
  /** How long a closing feed holder waits for another process to take the feed over without a gap, in ms (default 1000). */
  handoverTimeout?: number;
  /** The longest any Redis command may take before it fails, in ms (default 1000). */
  commandTimeout?: number;
  /** How long connect() waits for Redis, in ms (default 5000). */
  connectTimeout?: number;
  /** Reconnection backoff: first and longest delay in ms (defaults 50 and 2000), with jitter. */
  backoffMin?: number;
  backoffMax?: number;
  /** fetch: the lease's time to live in ms, renewed while the loader runs (default 10000). */
  leaseTtl?: number;
  /** fetch: the Redis key prefix of leases (default "lease:" + prefix). */
  leasePrefix?: string;
  /** fetch: the longest a caller waits for another process's loader before ERR_FETCH_TIMEOUT, in ms (default 60000). */
  timeout?: number;
  /** @deprecated the former name of `timeout`. */
  fetchTimeout?: number;
  /** For tests: awaited between a Redis GET and the L1 fill it leads to. */
  hooks?: { beforeFill?: (key: string) => void | Promise<void> };
}

/** A Redis Cluster: seed nodes (redis:// URLs or { host, port }) and ioredis ClusterOptions. */
export interface TieredClusterTarget {
  cluster: Array<string | { host: string; port: number }>;
  [option: string]: unknown;
}

export interface TieredSetOptions {
  /** Time to live in ms; 0 = none. Default: the tier's ttl. */
  ttl?: number;
}

export interface TieredFetchOptions extends TieredSetOptions {
  /** The longest this call waits for another process's loader, in ms (default: the tier's `timeout`). */
  timeout?: number;
}

/** This process's counters. */
export interface TieredCacheStats {
  hits: number;
  staleHits: number;
  misses: number;
  fills: number;
  fillsSkipped: number;
  /** Invalidations this process applied for the machine, while it held the feed. */
  invalidations: number;
  /** Resyncs this process did for the machine (slots back up after a gap in the feed), while it held the feed. */
  resyncs: number;
  loads: number;
  connected: boolean;
  /** Whether this process holds the machine's invalidation feed. */
  feedHolder: boolean;
}

/** Errors carry a stable code: ERR_TIERED_UNAVAILABLE, ERR_TIERED_CLOSED, ERR_FETCH_TIMEOUT, ERR_TIERED_LOADER_FAILED, ERR_TIERED_NO_CLIENT. */
export interface TieredCacheError extends Error {
  code: string;
}

export declare class TieredCache<V extends string | Buffer = string> extends EventEmitter {
  private constructor();
  static connect(options: TieredCacheOptions & { valueType: 'buffer' }): Promise<TieredCache<Buffer>>;
  static connect(options: TieredCacheOptions & { valueType?: 'string' }): Promise<TieredCache<string>>;
  /** Removes a tier's L1 and its counters from this machine; whether either existed. */
  static destroy(name: string): boolean;
  /** The machine's SharedLRU underneath (its values carry the tier's stamps). */
  readonly local: SharedLRU;
  /** Whether invalidations from every Redis node reach this machine. */
  readonly connected: boolean;
  /** Whether this process holds the machine's invalidation feed. */
  readonly feedHolder: boolean;
  redisKey(key: string): string;
  get(key: string): Promise<V | undefined>;
  set(key: string, value: string | Uint8Array, options?: TieredSetOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  fetch(key: string, loader: (key: string) => V | string | Uint8Array | undefined | Promise<V | string | Uint8Array | undefined>, options?: TieredFetchOptions): Promise<V | undefined>;
  stats(): TieredCacheStats;
  close(): Promise<void>;

  on(event: 'down', listener: (info: { reason: string; error: Error | null }) => void): this;
  on(event: 'up', listener: (info: { cleared: number }) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/// <reference types="node" />
// Types for shm-typed-lru/tiered: TieredCache, a machine's shared-memory L1 in front of a Redis
// L2, kept coherent by Redis's client-side caching invalidations.

import { EventEmitter } from 'node:events';
import type { SharedLRU } from './index';

/** Options of TieredCache.connect. */
export interface TieredCacheOptions {
  /** The machine's L1: a POSIX name such as "/pages" (a second segment "<name>.tier" holds its counters). */
  name: string;
  /** L1 entries (used when this process creates the L1). */
  capacity: number;
  /** L1 bytes per record: key bytes + value bytes + a stamp of up to 17 bytes. Larger values are served from Redis only. */
  recordSize: number;
  /** Default time to live in ms of values set through the tier (Redis PX) and the longest an L1 copy lives; 0 = none (default). */
  ttl?: number;
  /** Permission bits of the L1 segments (default 0o600). */
  mode?: number;
  /** Shards of the L1 (default: the engine's choice). */
  shards?: number;
  /** A redis:// URL or ioredis connection options (default redis://127.0.0.1:6379). */
  redis?: string | Record<string, unknown>;
  /** The Redis key prefix the tier owns and tracks (default '', every key). */
  prefix?: string;
  /** 'string' (default): values come back as strings; 'buffer': as Buffers. */
  valueType?: 'string' | 'buffer';
  /** While invalidations cannot reach this process, serve L1 copies for at most this many ms (default 0). */
  staleIfError?: number;
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
  /** fetch: the longest a caller waits for another process's loader, in ms (default 60000). */
  fetchTimeout?: number;
  /** For tests: awaited between a Redis GET and the L1 fill it leads to. */
  hooks?: { beforeFill?: (key: string) => void | Promise<void> };
}

export interface TieredSetOptions {
  /** Time to live in ms; 0 = none. Default: the tier's ttl. */
  ttl?: number;
}

/** This process's counters. */
export interface TieredCacheStats {
  hits: number;
  staleHits: number;
  misses: number;
  fills: number;
  fillsSkipped: number;
  invalidations: number;
  resyncs: number;
  loads: number;
  connected: boolean;
}

/** Errors carry a stable code: ERR_TIERED_UNAVAILABLE, ERR_TIERED_CLOSED, ERR_TIERED_FETCH_TIMEOUT, ERR_TIERED_LOADER_FAILED, ERR_TIERED_NO_CLIENT. */
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
  /** Whether this process's invalidation feed is up. */
  readonly connected: boolean;
  redisKey(key: string): string;
  get(key: string): Promise<V | undefined>;
  set(key: string, value: string | Uint8Array, options?: TieredSetOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  fetch(key: string, loader: (key: string) => V | string | Uint8Array | undefined | Promise<V | string | Uint8Array | undefined>, options?: TieredSetOptions): Promise<V | undefined>;
  stats(): TieredCacheStats;
  close(): Promise<void>;

  on(event: 'down', listener: (info: { reason: string; error: Error | null }) => void): this;
  on(event: 'up', listener: (info: { cleared: number }) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

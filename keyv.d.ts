// Types of `shm-typed-lru/keyv`: a keyv storage adapter over a SharedLRU.
import { EventEmitter } from 'node:events';
import { SharedLRU, SharedLRURecordOptions, SharedLRUBudgetOptions, SharedLRUHandleOptions } from './index';

/** Where the store keeps its entries: a cache by name, or an open one. */
export interface KeyvSharedLRUTarget {
  /** The cache's name: opened, or created with the options if absent. */
  name?: string | number;
  /** An open cache to use instead. */
  cache?: SharedLRU<any>;
}

/**
 * The store's options. A cache the store creates has a byte budget: `maxBytes` (default
 * 64 MiB), `maxValueSize` (default 1 MiB, or an eighth of maxBytes when that is less) and
 * `capacity` (optional: by default the index grows as entries need it); or, given `capacity` and `recordSize`,
 * records of one size.
 */
export type KeyvSharedLRUOptions = KeyvSharedLRUTarget &
  SharedLRUHandleOptions &
  (Partial<SharedLRURecordOptions> | Partial<SharedLRUBudgetOptions>);

export class KeyvSharedLRU extends EventEmitter {
  constructor(options: KeyvSharedLRUOptions);
  readonly cache: SharedLRU<any>;
  opts: { name: string; dialect: string; url: string };
  namespace: string | undefined;
  get(key: string): Promise<any>;
  getMany(keys: string[]): Promise<any[]>;
  /** Rejects with ERR_SHM_VALUE_TOO_LARGE (the key's older value removed) for a value too large for the cache. */
  set(key: string, value: any, ttl?: number): Promise<boolean>;
  setMany(entries: Array<{ key: string; value: any; ttl?: number }>): Promise<boolean[]>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: string[]): Promise<boolean>;
  has(key: string): Promise<boolean>;
  hasMany(keys: string[]): Promise<boolean[]>;
  clear(): Promise<void>;
  iterator(namespace?: string): AsyncGenerator<[string, any]>;
  disconnect(): Promise<void>;
}

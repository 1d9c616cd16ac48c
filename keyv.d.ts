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

/** The store's options: where its cache is, and how a cache it creates is made. */
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

/// <reference types="node" />
// Types for shm-typed-lru: the seed API (the original package's functions) and the SharedLRU
// class.

// ---------------------------------------------------------------------------------------------
// Seed API
//
// The original package's functions, call for call. Segments are named by `key`: an integer (a
// System V key) or "/name" (a POSIX shared memory object). The LRU calls answer, as the
// original did:
//   -1     the segment does not exist
//   false  it exists, but initLRU was not called for it in this thread (-3 for the mutex calls)
//   -2     the operation failed; get_last_reason(key) says why
//   true   success (or the value asked for)
// Arguments of the wrong type or out of range throw a TypeError or RangeError with a `code`.
// ---------------------------------------------------------------------------------------------

/** A segment: an integer System V key (non-zero, 32 bits) or a POSIX name "/name". */
export type SegmentKey = number | string;

/** A 64-bit hash: a non-negative safe integer, or a BigInt up to 2n ** 64n - 1n. */
export type Hash = number | bigint;

/** A value of the seed API: a string or bytes. It comes back as the type it was stored as. */
export type SeedValue = string | Uint8Array;

/** What the LRU calls answer when the segment is missing (-1), not initialised here (false), or the call failed (-2). */
export type LruFailure = -1 | -2 | false;

/** What the mutex calls answer when the segment is missing (-1), not initialised here (-3), or the call failed (-2). */
export type MutexFailure = -1 | -2 | -3;

/** The array classes a segment can be viewed as. */
export interface BufferTypes {
  Buffer: Buffer;
  Int8Array: Int8Array;
  Uint8Array: Uint8Array;
  Uint8ClampedArray: Uint8ClampedArray;
  Int16Array: Int16Array;
  Uint16Array: Uint16Array;
  Int32Array: Int32Array;
  Uint32Array: Uint32Array;
  Float32Array: Float32Array;
  Float64Array: Float64Array;
  BigInt64Array: BigInt64Array;
  BigUint64Array: BigUint64Array;
}

export type BufferTypeName = keyof BufferTypes;

/** A live view of a segment's memory, carrying the segment's key. */
export type SharedArray<T extends BufferTypeName = 'Buffer'> = BufferTypes[T] & { key: SegmentKey };

/** Permission bits: a number, or an octal string such as "660" (the default). */
export type Perm = number | string;

/**
 * Creates a segment of `count` elements of `typeKey` (default 'Buffer') under `key` (default: a
 * fresh random System V key). Returns a live view, or null if a segment with that key exists.
 */
export function create(count: number): SharedArray<'Buffer'> | null;
export function create<T extends BufferTypeName = 'Buffer'>(count: number, typeKey?: T | null, key?: SegmentKey | null, perm?: Perm): SharedArray<T> | null;

/** A live view of an existing segment, or null if there is none. */
export function get(key: SegmentKey): SharedArray<'Buffer'> | null;
export function get<T extends BufferTypeName = 'Buffer'>(key: SegmentKey, typeKey?: T | null): SharedArray<T> | null;

/**
 * Detaches this thread from a segment; destroys it as well with `forceDestroy`, or when no other
 * process is attached. Returns the attachments left (0 once destroyed), or -1 if it was not
 * attached here.
 */
export function detach(key: SegmentKey, forceDestroy?: boolean): number;

/** Destroys a segment even while others are attached. Returns whether there was one. */
export function destroy(key: SegmentKey): boolean;

/** Detaches every segment; destroys those created here. Returns how many were destroyed. */
export function detachAll(): number;

/** Bytes of shared memory this process has mapped. */
export function getTotalSize(): number;

/** Bytes of the segments this process created and has not destroyed. */
export function getTotalCreatedSize(): number;

/** Most elements `create` accepts. */
export const LengthMax: number;

/** The numeric code of each view type. */
export const BufferType: { readonly [K in BufferTypeName]: number };

/**
 * Lays out (`i_am_initializer`, the default) or attaches to (false) an LRU of `record_size`-byte
 * records in the first `region_size` bytes of the segment. A full LRU refuses new elements.
 */
/** Returns the number of elements the region holds (its capacity), or a failure value. */
export function initLRU(key: SegmentKey, record_size: number, region_size: number, i_am_initializer?: boolean): number | LruFailure;

/** The segment's size in bytes, or -1 if there is none. */
export function getSegmentSize(key: SegmentKey): number | -1;

/** The most elements the LRU holds. */
export function lru_max_count(key: SegmentKey): number | LruFailure;

/** Elements held now. */
export function current_count(key: SegmentKey): number | LruFailure;

/** Elements that still fit. */
export function free_count(key: SegmentKey): number | LruFailure;

/** Now, in epoch milliseconds: the clock element times are kept in. */
export function epoch_time(): number;

/**
 * Makes this thread's LRU calls throw an Error with code ERR_SHM_LOCK_TIMEOUT when a lock stays
 * held by another process longer than `ms` (Infinity, the default: wait). Returns the previous
 * setting. Not the application mutex (`lock`).
 */
export function setLockTimeout(ms: number): number;

/**
 * Stores `value` under `hash` and returns the element's index (from 1). `false` if the value
 * does not fit the record or the LRU is full. `index` is accepted for compatibility.
 */
export function set(key: SegmentKey, value: SeedValue, hash: Hash, index?: number): number | LruFailure;
/** The original README's argument order. */
export function set(key: SegmentKey, hash: Hash, value: SeedValue): number | LruFailure;

/** Stores many [hash, value] pairs; answers what `set` answered for each, in order. */
export function set_many(
  key: SegmentKey,
  pairs: ReadonlyArray<readonly [Hash, SeedValue]> | ReadonlyMap<Hash, SeedValue> | { readonly [hash: string]: SeedValue },
): Array<number | LruFailure> | -1 | false;

/** The value of element `index`; -2 if it holds none. */
export function get_el(key: SegmentKey, index: number): string | Buffer | LruFailure;

/** The value stored under `hash`, marking it most recently used; -2 if there is none. */
export function get_el_hash(key: SegmentKey, hash: Hash, index?: number): string | Buffer | LruFailure;

/** Removes element `index`; -2 if it holds none. */
export function del_el(key: SegmentKey, index: number): true | LruFailure;

/** Removes the element stored under `hash`; -2 if there is none. */
export function del_key(key: SegmentKey, hash: Hash, index?: number): true | LruFailure;

/** Same as `del_key`. */
export function remove_key(key: SegmentKey, hash: Hash, index?: number): true | LruFailure;

/** Why the last failing LRU call on the segment failed ("OK" if none did). */
export function get_last_reason(key: SegmentKey): string;

/** The index is in the segment, shared by every process: nothing to rebuild. Kept for compatibility. */
export function reload_hash_map(key: SegmentKey): true | LruFailure;

/** As `reload_hash_map`. */
export function reload_hash_map_update(key: SegmentKey, share_key: number): true | LruFailure;

/**
 * Evicts, least recently used first, up to `max_evictions` elements not used in the last
 * `cutoff_time` milliseconds (last used before `epoch_time() - cutoff_time`, as in the
 * original); returns their hashes. `run_lru_eviction(key, 10 * 60_000, 100)`: up to 100
 * elements unused for ten minutes.
 */
export function run_lru_eviction(key: SegmentKey, cutoff_time: number, max_evictions: number): Array<number | bigint> | LruFailure;

/** As `run_lru_eviction`, returning an object from each evicted hash to its value. */
export function run_lru_eviction_get_values(key: SegmentKey, cutoff_time: number, max_evictions: number): { [hash: string]: string | Buffer } | LruFailure;

/** Tags element `index` with `share_key` (a 32-bit integer). */
export function set_share_key(key: SegmentKey, index: number, share_key: number): true | LruFailure;

/** Prints the elements in recency order (`backwards`: least recent first). */
export function debug_dump_list(key: SegmentKey, backwards?: boolean): true | LruFailure;

/** Checks that the LRU's application mutex is there (it is made with the LRU). */
export function init_mutex(key: SegmentKey, i_am_initializer?: boolean): true | MutexFailure;

/** Takes the application mutex, waiting for it; a holder that died does not wedge it. */
export function lock(key: SegmentKey): true | MutexFailure;

/** Takes the mutex if it is free: true if taken, false if another holds it (or the LRU is not initialised here). */
export function try_lock(key: SegmentKey): boolean | MutexFailure;

/** Releases the mutex; -2 if this thread does not hold it. */
export function unlock(key: SegmentKey): true | MutexFailure;

/** What the last mutex call on the segment found ("OK" if all was well). */
export function get_last_mutex_reason(key: SegmentKey): string;

// ---------------------------------------------------------------------------------------------
// Class API
// ---------------------------------------------------------------------------------------------

/** A key: a string (its UTF-8 bytes) or bytes, compared byte for byte. */
export type SharedLRUKey = string | Uint8Array;

/** A value: a string or bytes. It comes back as the type it was stored as. */
export type SharedLRUValue = string | Buffer | Uint8Array;

/** A stored value, as it comes back: a string, or a Buffer for bytes. */
export type SharedLRUStored = string | Buffer;

/**
 * A key as iteration and eviction give it back: a string when its bytes are valid UTF-8, else a
 * Buffer. (A segment also written through the seed API can hold numeric hash keys; those come
 * back as numbers.)
 */
export type SharedLRUEntryKey = string | Buffer;

/** What a cache of either kind takes: its time to live, eviction, permissions and sharding. */
export interface SharedLRUCommonOptions {
  /** Default time to live in ms for entries set without one; 0 (the default) = never expire. */
  ttl?: number;
  /** Evict the least recently used entry when full (default true), or throw ERR_SHM_FULL. */
  evictOnFull?: boolean;
  /** Permission bits of the shared memory object, 0 to 0o777 (default 0o600). */
  mode?: number;
  /** Shard count, a power of two up to 1024; by default chosen from the capacity. */
  shards?: number;
  /**
   * openOrCreate only: 'same' (the default) refuses an existing cache whose settings differ
   * from these with ERR_SHM_MISMATCH; 'any' takes it as it is.
   */
  reuse?: 'same' | 'any';
  /** A uid trusted to own an existing segment, besides this process's user and root. */
  trustOwner?: number;
  /**
   * Ms to wait for a lock held by another process before throwing ERR_SHM_LOCK_TIMEOUT;
   * Infinity (the default) waits as long as it takes.
   */
  lockTimeout?: number;
}

/** A cache of records of one size: `capacity` records of `recordSize` bytes. */
export interface SharedLRURecordOptions extends SharedLRUCommonOptions {
  /**
   * The most entries the cache holds (lru-cache's `max`): one shared count bounds it exactly,
   * whatever the shard count; each shard gets a little spare room so that keys spread by hash fit.
   */
  capacity: number;
  /** Bytes per record: key bytes plus value bytes must fit. */
  recordSize: number;
  /** Not with recordSize: a cache has records of one size or a byte budget (ERR_SHM_INVALID_ARGUMENT). */
  maxBytes?: undefined;
  /** Not with recordSize (ERR_SHM_INVALID_ARGUMENT). */
  maxValueSize?: undefined;
}

/** A cache with a byte budget: values of any size up to `maxValueSize`, in at most `maxBytes` of memory. */
export interface SharedLRUBudgetOptions extends SharedLRUCommonOptions {
  /**
   * The byte budget: the whole segment (index, entry headers, keys and values) is at most this
   * many bytes; the least recently used entries are evicted to keep within it.
   */
  maxBytes: number;
  /**
   * The most bytes of key plus value one entry may hold; a larger set throws
   * ERR_SHM_VALUE_TOO_LARGE. Default: 1 MiB, or an eighth of maxBytes when that is less.
   */
  maxValueSize?: number;
  /**
   * The most entries the cache holds; its index for them is taken when the cache is made.
   * Default: none, and the index grows inside the budget as the entries need it (while it
   * grows, a shard's readers wait a moment each time its entries pass a quarter more; give a
   * capacity for an index that never moves).
   */
  capacity?: number;
  /** Not with maxBytes: a cache has records of one size or a byte budget (ERR_SHM_INVALID_ARGUMENT). */
  recordSize?: undefined;
}

/** The options of a cache: records of one size, or a byte budget. */
export type SharedLRUOptions = SharedLRURecordOptions | SharedLRUBudgetOptions;

/** How `SharedLRU.open` opens an existing cache. */
export interface SharedLRUOpenOptions {
  /** A uid trusted to own the segment, besides this process's user and root. */
  trustOwner?: number;
  /** Refuse (ERR_SHM_PERMISSION) a segment that lets more users write than these bits would. */
  mode?: number;
  /** As in SharedLRUOptions. */
  lockTimeout?: number;
}

/** What `set` takes for a cache of `V`: strings and Buffers, or `V` itself under a serializer. */
export type SharedLRUIn<V> = [V] extends [SharedLRUStored] ? SharedLRUValue : V;

/** A value JSON can carry: what a cache with `serializer: 'json'` holds unless told otherwise. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A serializer of your own: how a `V` becomes a string or bytes, and back. */
export interface SharedLRUSerializer<V> {
  serialize(value: V): string | Uint8Array;
  deserialize(stored: string | Buffer): V;
}

/** Settings of one handle (not of the cache): given to create, open or openOrCreate. */
export interface SharedLRUHandleOptions {
  /** How values become bytes: 'json', 'v8' (node:v8, Maps, Dates, …) or your own pair. */
  serializer?: 'json' | 'v8' | SharedLRUSerializer<any>;
  /** 'skip': a value too large for an entry (recordSize or maxValueSize) is not cached (and its key's old value is removed); 'throw' (default). */
  oversize?: 'skip' | 'throw';
  /** Every get restarts the entry's time to live (the cache's default): sliding expiry. */
  updateAgeOnGet?: boolean;
}

export interface SharedLRUSetOptions {
  /** Time to live in ms; 0 = never expires; absent = the cache's default. */
  ttl?: number;
  /** When overwriting, keep the entry's current expiry (lru-cache's noUpdateTTL). */
  noUpdateTTL?: boolean;
  /** 'skip': a value too large for an entry is not cached instead of throwing. */
  oversize?: 'skip' | 'throw';
}

export interface SharedLRUGetOptions {
  /** Restart the entry's time to live on a hit (`ttl`, else the cache's default). */
  updateAgeOnGet?: boolean;
  ttl?: number;
}

/** lru-cache's entry description, as info(key) and dump() give it. */
export interface SharedLRUEntryInfo<V> {
  value: V;
  /** Ms left to live (only for an entry that expires). */
  ttl?: number;
  /** Epoch ms the ttl counts from. */
  start?: number;
}

export interface SharedLRUFetchOptions<C = unknown> {
  /** Time to live of the loaded value, ms (default: the cache's). */
  ttl?: number;
  /**
   * Stale-while-revalidate, in ms: the value is kept this much longer than its time to live, and
   * a hit in that last stretch is served at once while one caller on the machine reloads it in
   * the background. (Not lru-cache's `allowStale`, which returns an expired value.)
   */
  staleWhileRevalidate?: number;
  /** Load even on a hit (still one loader on the machine); the loader gets the value as `staleValue`. */
  forceRefresh?: boolean;
  /** Stops this caller's wait (and, for the loading caller, aborts the loader's signal and hands the load over at once). */
  signal?: AbortSignal;
  /**
   * Ms this fetch may take, waiting or loading, before it rejects with ERR_FETCH_TIMEOUT
   * (default 60000; Infinity: no limit). A loading caller that runs out also aborts its
   * loader's signal, and its waiters reject with the same error.
   */
  timeout?: number;
  /** Lease time, ms (default 10000): how long a loader's process that stops running (not one that dies) holds up the others. */
  leaseTtl?: number;
  /** When the loader throws, a waiter loads again instead of rejecting with its error. */
  retryOnError?: boolean;
  /** Passed to the loader as `context`, as lru-cache passes fetch's `context` to its fetchMethod. */
  context?: C;
}

/** The third argument of a fetch's loader: lru-cache's fetchMethod options. */
export interface SharedLRUFetcherOptions<C = unknown> {
  /** Aborted when the loading caller gives up (its own signal) or its fetch times out. */
  signal: AbortSignal;
  /** The options the fetch was called with. */
  options: SharedLRUFetchOptions<C>;
  /** `options.context`. */
  context: C | undefined;
}

/** A fetch's loader, lru-cache's fetchMethod: the key, the value being refreshed (if any), and options. */
export type SharedLRUFetcher<V, C = unknown> = (
  key: SharedLRUKey,
  staleValue: V | undefined,
  options: SharedLRUFetcherOptions<C>,
) => SharedLRUIn<V> | undefined | Promise<SharedLRUIn<V> | undefined>;

/** What `settings()` gives: the cache's geometry and settings. */
export interface SharedLRUSettings {
  name: string;
  capacity: number;
  /** Bytes per record; 0 in a cache with a byte budget. */
  recordSize: number;
  /** The byte budget; 0 in a cache of fixed records. */
  maxBytes: number;
  /** The most bytes of key plus value one entry may hold: the record size in a cache of fixed records. */
  maxValueSize: number;
  shards: number;
  evictOnFull: boolean;
  /** ms; 0 = never expire. */
  defaultTtl: number;
  /** Bytes of shared memory the cache occupies. */
  regionSize: number;
}

/** Counters of every process's operations on the cache, with its length and capacity. */
export interface SharedLRUStats {
  hits: number;
  misses: number;
  inserts: number;
  updates: number;
  removes: number;
  evictions: number;
  expirations: number;
  /** Times a shard was rebuilt after a process died holding its lock. */
  recoveries: number;
  /** Entries held now, as `size` gives it. */
  size: number;
  capacity: number;
  /** The byte budget; 0 in a cache of fixed records. */
  maxBytes: number;
  /** Bytes the entries occupy (with a budget: key, value and a 32-byte header each, rounded to 8; else their records). */
  bytesLive: number;
  /** Bytes not free: the live entries', and those of removed or replaced entries not yet reclaimed. */
  bytesUsed: number;
  /** Bytes free for new entries. */
  bytesFree: number;
}

/** What `repair()` did: the check before, the shards rebuilt, entries kept and dropped, the check after. */
export interface SharedLRURepair {
  before: SharedLRUCheck;
  rebuilt: number;
  kept: number;
  dropped: number;
  after: SharedLRUCheck;
}

export interface SharedLRUCheck {
  ok: boolean;
  problems: string[];
}

/**
 * Every `code` an error of the package carries (a loader's own error reaches `fetch`'s callers
 * as it was thrown, with its own code if any):
 * - the engine's (ERR_SHM_*): ERR_SHM_LOCK_TIMEOUT, a live holder kept a lock past
 *   `lockTimeout`; ERR_SHM_LOCK_DAMAGED, a lock whose holder does not exist; ERR_SHM_CLOSED,
 *   a closed handle; ERR_SHM_HANDLE_IN_USE, a handle closed by a getter while one of its own
 *   calls runs; ERR_SHM_PANIC, a fault inside the addon (report it);
 * - fetch's ERR_FETCH_TIMEOUT; the constructor's ERR_ILLEGAL_CONSTRUCTOR; a missing build's
 *   ERR_SHM_ADDON_NOT_BUILT; a failed Node-API call's ERR_NAPI;
 * - bad arguments: ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE (TypeError), ERR_OUT_OF_RANGE (RangeError).
 */
export type SharedLRUErrorCode =
  | 'ERR_SHM_IO'
  | 'ERR_SHM_EXISTS'
  | 'ERR_SHM_NOT_FOUND'
  | 'ERR_SHM_NO_FREE_KEY'
  | 'ERR_SHM_NOT_LOCK_OWNER'
  | 'ERR_SHM_INVALID_NAME'
  | 'ERR_SHM_INVALID_ARGUMENT'
  | 'ERR_SHM_BAD_FORMAT'
  | 'ERR_SHM_VERSION_MISMATCH'
  | 'ERR_SHM_REGION_TOO_SMALL'
  | 'ERR_SHM_NOT_READY'
  | 'ERR_SHM_VALUE_TOO_LARGE'
  | 'ERR_SHM_KEY_TOO_LARGE'
  | 'ERR_SHM_FULL'
  | 'ERR_SHM_KEY_EXISTS'
  | 'ERR_SHM_KEY_NOT_FOUND'
  | 'ERR_SHM_NO_SUCH_SLOT'
  | 'ERR_SHM_SLOT_FREE'
  | 'ERR_SHM_NOT_A_NUMBER'
  | 'ERR_SHM_OVERFLOW'
  | 'ERR_SHM_BUFFER_TOO_SMALL'
  | 'ERR_SHM_BUSY'
  | 'ERR_SHM_UNRECOVERABLE'
  | 'ERR_SHM_LOCK_TIMEOUT'
  | 'ERR_SHM_LOCK_DAMAGED'
  | 'ERR_SHM_NO_SPACE'
  | 'ERR_SHM_PERMISSION'
  | 'ERR_SHM_TRUNCATED'
  | 'ERR_SHM_MISMATCH'
  | 'ERR_SHM_CLOSED'
  | 'ERR_SHM_HANDLE_IN_USE'
  | 'ERR_SHM_PANIC'
  | 'ERR_SHM_ADDON_NOT_BUILT'
  | 'ERR_NAPI'
  | 'ERR_FETCH_TIMEOUT'
  | 'ERR_ILLEGAL_CONSTRUCTOR'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE';

/** Error thrown by the cache: `code` is stable, e.g. 'ERR_SHM_VALUE_TOO_LARGE'. */
export interface SharedLRUError extends Error {
  code: SharedLRUErrorCode;
}

/** What `registerMetrics` uses of the prom-client module (pass the module itself). */
export interface SharedLRUPromClient {
  Counter: new (config: any) => unknown;
  Gauge: new (config: any) => unknown;
  register: unknown;
}

/** Options of create and openOrCreate: the cache's, and this handle's. */
export type SharedLRUCreateOptions = SharedLRUOptions & SharedLRUHandleOptions;

/**
 * A least-recently-used cache in shared memory, of records of one size or of values of any size
 * within a byte budget, seen at once by every process and worker thread that opens it by name.
 *
 * Errors carry a stable `code`: ERR_SHM_EXISTS, ERR_SHM_NOT_FOUND, ERR_SHM_VALUE_TOO_LARGE,
 * ERR_SHM_FULL, ERR_SHM_BUFFER_TOO_SMALL, ERR_SHM_NOT_A_NUMBER, ERR_SHM_CLOSED, ...; bad
 * arguments throw TypeError or RangeError.
 */
export class SharedLRU<V = SharedLRUStored> implements Iterable<[SharedLRUEntryKey, V]> {
  private constructor(handle: object);

  /**
   * Creates a cache; throws ERR_SHM_EXISTS if `name` exists. `name`: "/name", or a System V key.
   * The value type follows the serializer: JsonValue for 'json', unknown for 'v8', your
   * serializer's own type, else strings and Buffers; name it to narrow it:
   * `SharedLRU.create<User>(name, { ..., serializer: 'json' })`.
   */
  static create<V = JsonValue>(name: string | number, options: SharedLRUCreateOptions & { serializer: 'json' }): SharedLRU<V>;
  static create<V = unknown>(name: string | number, options: SharedLRUCreateOptions & { serializer: 'v8' }): SharedLRU<V>;
  static create<V>(name: string | number, options: SharedLRUCreateOptions & { serializer: SharedLRUSerializer<V> }): SharedLRU<V>;
  static create<V = SharedLRUStored>(name: string | number, options: SharedLRUCreateOptions): SharedLRU<V>;
  /**
   * Opens an existing cache; throws ERR_SHM_NOT_FOUND if there is none, ERR_SHM_PERMISSION if
   * its owner or mode is not trusted. The value type follows the serializer, as for create.
   */
  static open<V = JsonValue>(name: string | number, options: SharedLRUOpenOptions & SharedLRUHandleOptions & { serializer: 'json' }): SharedLRU<V>;
  static open<V = unknown>(name: string | number, options: SharedLRUOpenOptions & SharedLRUHandleOptions & { serializer: 'v8' }): SharedLRU<V>;
  static open<V>(name: string | number, options: SharedLRUOpenOptions & SharedLRUHandleOptions & { serializer: SharedLRUSerializer<V> }): SharedLRU<V>;
  static open<V = SharedLRUStored>(name: string | number, options?: SharedLRUOpenOptions & SharedLRUHandleOptions): SharedLRU<V>;
  /**
   * Opens the cache if it exists, else creates it. Throws ERR_SHM_MISMATCH, naming each setting,
   * if the existing cache's capacity, recordSize, evictOnFull, ttl or (when given) shards differ
   * (with a byte budget: maxBytes, and capacity and maxValueSize when given), unless `reuse: 'any'`. The value type follows the serializer, as for create.
   */
  static openOrCreate<V = JsonValue>(name: string | number, options: SharedLRUCreateOptions & { serializer: 'json' }): SharedLRU<V>;
  static openOrCreate<V = unknown>(name: string | number, options: SharedLRUCreateOptions & { serializer: 'v8' }): SharedLRU<V>;
  static openOrCreate<V>(name: string | number, options: SharedLRUCreateOptions & { serializer: SharedLRUSerializer<V> }): SharedLRU<V>;
  static openOrCreate<V = SharedLRUStored>(name: string | number, options: SharedLRUCreateOptions): SharedLRU<V>;
  /**
   * Removes the named cache (and the room its fetches keep their leases in); processes that
   * have it open keep their mapping. Returns whether it existed.
   */
  static destroy(name: string | number): boolean;

  /**
   * Registers the counters of `caches` as prom-client metrics, read at each scrape: counters
   * `shm_lru_{hits,misses,inserts,updates,removes,evictions,expirations,recoveries}_total` and
   * gauges `shm_lru_entries` and `shm_lru_capacity` (with a byte budget, `shm_lru_max_bytes` and
   * `shm_lru_bytes_{live,used,free}` too), labelled `cache`. Pass the prom-client
   * module itself. The counters are every process's: register them in one process.
   */
  static registerMetrics(
    client: SharedLRUPromClient,
    caches: SharedLRU<any> | Iterable<SharedLRU<any>>,
    options?: { registry?: unknown; prefix?: string },
  ): { unregister(): void };

  /** The value, or undefined; marks the entry most recently used. */
  get(key: SharedLRUKey, options?: SharedLRUGetOptions): V | undefined;
  /** The value of each key, undefined for those absent, in one call; marks each present entry used. */
  getMany(keys: readonly SharedLRUKey[]): Array<V | undefined>;
  /** Sets each `[key, value]` pair in order, with the same options as `set`. */
  setMany(entries: Iterable<readonly [SharedLRUKey, SharedLRUIn<V>]>, options?: SharedLRUSetOptions | number): this;
  /** The value, or undefined, without marking it used. */
  peek(key: SharedLRUKey): V | undefined;
  /** Stores the value; throws ERR_SHM_VALUE_TOO_LARGE, or ERR_SHM_FULL when full and not evicting. */
  set(key: SharedLRUKey, value: SharedLRUIn<V>, options?: SharedLRUSetOptions | number): this;
  /** Stores the value only if the key is absent; returns whether it did. */
  add(key: SharedLRUKey, value: SharedLRUIn<V>, options?: SharedLRUSetOptions | number): boolean;
  /** Stores the value only if the key is present; returns whether it did. */
  replace(key: SharedLRUKey, value: SharedLRUIn<V>, options?: SharedLRUSetOptions | number): boolean;
  /**
   * Adds `delta` (default 1) to the decimal integer stored under the key (absent = 0); returns
   * the sum: a number, or a BigInt when it is beyond Number.MAX_SAFE_INTEGER.
   */
  incr(key: SharedLRUKey, delta?: number | bigint, options?: { ttl?: number } | number): number | bigint;
  /** Whether the key is present and not expired; does not mark it used. */
  has(key: SharedLRUKey): boolean;
  /**
   * Copies the value into `buffer` from offset 0 and returns its length in bytes, or -1 if the
   * key is absent; marks the entry used. Throws a RangeError with code ERR_SHM_BUFFER_TOO_SMALL
   * (copying nothing) if the value does not fit.
   */
  getInto(key: SharedLRUKey, buffer: Uint8Array): number;
  /** Removes the key; returns whether it was present. */
  delete(key: SharedLRUKey): boolean;
  /** Removes every entry whose key starts with `prefix` (compared byte for byte), in one pass; returns how many. */
  deletePrefix(prefix: SharedLRUKey): number;
  /** Removes every entry; returns how many there were. */
  clear(): number;

  /** Entries held now, by every process. */
  readonly size: number;
  /** The most entries the cache can hold. */
  readonly capacity: number;
  /** Bytes per record; 0 in a cache with a byte budget. */
  readonly recordSize: number;
  /** The byte budget; 0 in a cache of fixed records. */
  readonly maxBytes: number;
  /** The most bytes of key plus value one entry may hold (the record size in a cache of fixed records). */
  readonly maxValueSize: number;
  /** The name the cache was created under. */
  readonly name: string;
  /** Geometry and settings. */
  settings(): SharedLRUSettings;
  /** lru-cache's info(key): the value, and for an entry that expires the ms left (`ttl`) and now (`start`). */
  info(key: SharedLRUKey): SharedLRUEntryInfo<V> | undefined;
  /** Ms `key` has left: 0 if absent, Infinity if it never expires. */
  getRemainingTTL(key: SharedLRUKey): number;
  /** Reclaims expired entries now; whether there were any. */
  purgeStale(): boolean;
  /** `fn(value, key, cache)` for each entry, most recently used first. */
  forEach(fn: (value: V, key: SharedLRUEntryKey, cache: this) => void, thisArg?: unknown): void;
  /** `fn(value, key, cache)` for each entry, least recently used first. */
  rforEach(fn: (value: V, key: SharedLRUEntryKey, cache: this) => void, thisArg?: unknown): void;
  /** The first value (most recent first) `fn` accepts, read again with `get(key, options)`. */
  find(fn: (value: V, key: SharedLRUEntryKey, cache: this) => unknown, options?: SharedLRUGetOptions): V | undefined;
  /** Removes the least recently used entry and returns its value. */
  pop(): V | undefined;
  /** Every entry as `[key, { value, ttl?, start? }]`, least recently used first (lru-cache's format). */
  dump(): Array<[SharedLRUEntryKey, SharedLRUEntryInfo<V>]>;
  /**
   * Clears the cache and sets each dumped entry in order, keeping what is left of its ttl. Every
   * entry is checked first: a bad one throws and leaves the cache as it was.
   */
  load(entries: Iterable<[SharedLRUKey, { value: SharedLRUIn<V>; ttl?: number; start?: number }]>): void;
  /**
   * The value of `key`; on a miss exactly one caller on the machine runs `loader` and every other
   * caller, in any process, waits for its result. A loaded value too large for a record is not
   * cached but still reaches every caller. Counts one hit or one miss in `stats()`.
   */
  fetch<C = unknown>(key: SharedLRUKey, loader: SharedLRUFetcher<V, C>, options?: SharedLRUFetchOptions<C>): Promise<V | undefined>;

  /** [key, value] pairs, most recently used first (a snapshot). */
  entries(): IterableIterator<[SharedLRUEntryKey, V]>;
  keys(): IterableIterator<SharedLRUEntryKey>;
  values(): IterableIterator<V>;
  /** [key, value] pairs, least recently used first (a snapshot). */
  rentries(): IterableIterator<[SharedLRUEntryKey, V]>;
  rkeys(): IterableIterator<SharedLRUEntryKey>;
  rvalues(): IterableIterator<V>;
  [Symbol.iterator](): IterableIterator<[SharedLRUEntryKey, V]>;

  /** Evicts, least recently used first, up to `max` (default: all) entries unused for `ms`; returns them. */
  evictOlderThan(ms: number, max?: number): Array<[SharedLRUEntryKey, V]>;
  stats(): SharedLRUStats;
  check(): SharedLRUCheck;
  /**
   * Rebuilds each damaged shard from its slots (as recovery after a crash does), dropping the
   * entries that cannot be trusted.
   */
  repair(): SharedLRURepair;
  /** Unmaps the cache from this process (it stays for others); later calls throw ERR_SHM_CLOSED. */
  close(): void;
  readonly [Symbol.toStringTag]: 'SharedLRU';
  /** `close()`: `using cache = SharedLRU.open(name)` closes the handle when the block is left. */
  [Symbol.dispose](): void;
}

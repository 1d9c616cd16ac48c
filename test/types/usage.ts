// Compiled (never run) by `npm run test:types`: typed uses of both APIs. Each `@ts-expect-error`
// line must fail to type-check, so types that are too loose break the build as surely as types
// that are too strict.

import * as shm from '../..';
import { SharedLRU, type SharedLRUStats, type SharedLRUOptions, type SharedLRUSettings } from '../..';

// ---- seed API ----

const seg = shm.create(1 << 20);
if (seg !== null) {
  const key: shm.SegmentKey = seg.key;
  const bytes: Buffer = seg;
  void bytes;
  const floats = shm.create(16, 'Float32Array', 0x5eed, '600');
  const posix = shm.create(16, 'BigUint64Array', '/typed-posix');
  if (posix) posix[0] = 1n;
  if (floats) {
    const f: Float32Array = floats;
    f[0] = 1.5;
  }
  const again = shm.get(key);
  const againTyped: Float64Array | null = shm.get(key, 'Float64Array');
  void again;
  void againTyped;

  const init = shm.initLRU(key, 64, 1 << 20, true);
  if (typeof init === 'number') {
    const idx = shm.set(key, 'value', 42);
    const idxOld = shm.set(key, 43, 'value in the original order');
    const idxIndexed = shm.set(key, Buffer.from('bytes'), 44, 0);
    if (typeof idx === 'number') {
      const v = shm.get_el(key, idx);
      if (typeof v === 'string') v.toUpperCase();
    }
    void idxOld;
    void idxIndexed;
    const byHash = shm.get_el_hash(key, 42n);
    if (byHash === -2) {
      const why: string = shm.get_last_reason(key);
      void why;
    }
    const del: true | -1 | -2 | false = shm.del_key(key, 42);
    const del2 = shm.del_el(key, 1);
    const rm = shm.remove_key(key, 43);
    void del;
    void del2;
    void rm;
    const evicted = shm.run_lru_eviction(key, shm.epoch_time() - 1000, 10);
    if (Array.isArray(evicted)) evicted.map((h: number | bigint) => String(h));
    const withValues = shm.run_lru_eviction_get_values(key, Date.now(), 10);
    if (typeof withValues === 'object' && withValues !== null) Object.keys(withValues);
    const many = shm.set_many(key, [[1, 'one'], [2n, Buffer.from('two')]]);
    shm.set_many(key, new Map([[3, 'three']]));
    shm.set_many(key, { 4: 'four' });
    void many;
    shm.reload_hash_map(key);
    shm.reload_hash_map_update(key, 7);
    shm.set_share_key(key, 1, 7);
    shm.debug_dump_list(key, true);
    const counts: number[] = [shm.lru_max_count(key), shm.current_count(key), shm.free_count(key), shm.getSegmentSize(key)]
      .filter((n): n is number => typeof n === 'number');
    void counts;
  }

  shm.init_mutex(key, true);
  const locked = shm.try_lock(key);
  if (locked === true) shm.unlock(key);
  const l = shm.lock(key);
  if (l === -2) shm.get_last_mutex_reason(key);
  shm.unlock(key);

  const left: number = shm.detach(key, true);
  void left;
}
const destroyed: boolean = shm.destroy('/typed-posix');
void destroyed;
const total: number = shm.getTotalSize() + shm.getTotalCreatedSize() + shm.detachAll() + shm.LengthMax;
const code: number = shm.BufferType.Float32Array;
void total;
void code;

// @ts-expect-error an unknown array class
shm.create(10, 'BigArray');
// @ts-expect-error hashes are numbers or BigInts
shm.get_el_hash(1, 'forty-two');
// @ts-expect-error values are strings or bytes
shm.set(1, 42, 43);
// @ts-expect-error a failure may come back instead of a string
const notAlwaysString: string = shm.get_el_hash(1, 42);
void notAlwaysString;

// ---- class API ----

const opts: SharedLRUOptions = { capacity: 1000, recordSize: 128, ttl: 60_000, evictOnFull: true, mode: 0o600, shards: 4 };
const cache = SharedLRU.openOrCreate('/typed-example', opts);
const other: SharedLRU = SharedLRU.create('/typed-example-2', { capacity: 10, recordSize: 32 });
SharedLRU.open('/typed-example').close();
SharedLRU.open('/typed-example', { trustOwner: 1000, mode: 0o600, lockTimeout: 2000 }).close();
SharedLRU.openOrCreate('/typed-example', { capacity: 10, recordSize: 64, reuse: 'any', lockTimeout: Infinity }).close();
// A byte budget: values of any size up to maxValueSize; capacity derived unless given.
const budget: SharedLRUOptions = { maxBytes: 64 * 1024 * 1024, maxValueSize: 1024 * 1024, ttl: 1000 };
const budgeted = SharedLRU.openOrCreate('/typed-budget', budget);
SharedLRU.create('/typed-budget-2', { maxBytes: 1 << 20, capacity: 4096, serializer: 'json', oversize: 'skip' }).close();
const geometry: SharedLRUSettings = budgeted.settings();
const sizes: number = geometry.maxBytes + geometry.maxValueSize + budgeted.maxBytes + budgeted.maxValueSize;
const bytes: SharedLRUStats = budgeted.stats();
const counted: number = bytes.maxBytes + bytes.bytesLive + bytes.bytesUsed + bytes.bytesFree;
void [sizes, counted];
budgeted.close();
// @ts-expect-error a cache has records of one size or a byte budget, not both
SharedLRU.create('/x', { capacity: 10, recordSize: 64, maxBytes: 1 << 20 });
// @ts-expect-error maxValueSize bounds an entry of a cache with a byte budget
SharedLRU.create('/x', { capacity: 10, recordSize: 64, maxValueSize: 64 });
const previousTimeout: number = shm.setLockTimeout(500);
void previousTimeout;
const existed: boolean = SharedLRU.destroy('/typed-example-2');
void other;
void existed;

const chained: SharedLRU = cache.set('a', 'x').set(Buffer.from('b'), Buffer.from([0, 1]), { ttl: 1000 });
void chained;
const value = cache.get('a');
if (typeof value === 'string') value.toUpperCase();
else if (value !== undefined) value.readUInt8(0);
const peeked: string | Buffer | undefined = cache.peek(new Uint8Array([1, 2]));
void peeked;
const added: boolean = cache.add('c', 'y', { ttl: 0 });
const replaced: boolean = cache.replace('c', 'z');
// A number, or a BigInt past Number.MAX_SAFE_INTEGER.
const n: number | bigint = cache.incr('hits');
const n2: number | bigint = cache.incr('hits', 5n, { ttl: 10 });
void n2;
const has: boolean = cache.has('a');
const deleted: boolean = cache.delete('a');
void [added, replaced, n, has, deleted];

const buf = Buffer.alloc(128);
const len = cache.getInto('b', buf);
if (len >= 0) buf.subarray(0, len);
const cleared: number = cache.clear();
const size: number = cache.size + cache.capacity + cache.recordSize;
const name: string = cache.name + cache.settings().name;
void [cleared, size, name];

for (const [k, v] of cache) {
  const ks: string | Buffer = k;
  const vs: string | Buffer = v;
  void ks;
  void vs;
}
const keys: Array<string | Buffer> = [...cache.keys(), ...cache.rkeys()];
const values: Array<string | Buffer> = [...cache.values(), ...cache.rvalues()];
const pairs = [...cache.entries(), ...cache.rentries()];
const gone: Array<[string | Buffer, string | Buffer]> = cache.evictOlderThan(60_000, 100);
void [keys, values, pairs, gone];
const stats: SharedLRUStats = cache.stats();
const rate = stats.hits / Math.max(1, stats.hits + stats.misses) + stats.recoveries;
const report = cache.check();
if (!report.ok) report.problems.join('\n');
void rate;
cache.close();

try {
  cache.get('a');
} catch (e) {
  if ((e as shm.SharedLRUError).code === 'ERR_SHM_CLOSED') {
    // closed
  }
}

// @ts-expect-error the constructor is private: use create, open or openOrCreate
new SharedLRU({});
// @ts-expect-error options need a capacity and a record size
SharedLRU.create('/x', { capacity: 10 });
// @ts-expect-error keys are strings or bytes, not numbers
cache.get(42);
// @ts-expect-error values are strings or bytes
cache.set('k', { not: 'bytes' });
// @ts-expect-error get may miss
const always: string | Buffer = cache.get('k');
// @ts-expect-error size is read-only
cache.size = 3;
// @ts-expect-error ttl is a number of ms
cache.set('k', 'v', { ttl: '1s' });
void always;

// ---- lru-cache's methods, fetch, serializer, keyv ----
import { KeyvSharedLRU } from 'shm-typed-lru/keyv';
{
  const objs = SharedLRU.openOrCreate<{ n: number }>('/types-objs', { capacity: 8, recordSize: 128, serializer: 'json', oversize: 'skip' });
  objs.set('a', { n: 1 }, { ttl: 10, noUpdateTTL: true });
  const n: number | undefined = objs.get('a', { updateAgeOnGet: true })?.n;
  const left: number = objs.getRemainingTTL('a');
  const p: Promise<{ n: number } | undefined> = objs.fetch(
    'b',
    async (_k, stale, { signal, context }) => ({ n: signal.aborted ? 0 : (stale?.n ?? 0) + (context ?? "").length }),
    { ttl: 100, staleWhileRevalidate: 50, timeout: 1000, context: 'abc' },
  );
  // @ts-expect-error lru-cache's allowStale means something else: the option is staleWhileRevalidate
  objs.fetch('b', async () => ({ n: 1 }), { allowStale: true });
  const many: Array<{ n: number } | undefined> = objs.getMany(['a', 'b']);
  objs.setMany([['c', { n: 3 }]]);
  const removed: number = objs.deletePrefix('c');
  void [many, removed];
  objs.forEach((v, k) => v.n + String(k).length);
  const d = objs.dump();
  objs.load(d);
  const popped: { n: number } | undefined = objs.pop();
  const purged: boolean = objs.purgeStale();
  const info = objs.info('a');
  const s: number = objs.settings().capacity;
  void [n, left, p, popped, purged, info, s];
  const store = new KeyvSharedLRU({ name: '/types-keyv', capacity: 8, recordSize: 256 });
  void store.get('k');
  // The store's default cache has a byte budget; maxBytes and maxValueSize choose another.
  void new KeyvSharedLRU({ name: '/types-keyv-budget' }).set('k', { any: 'json' });
  void new KeyvSharedLRU({ name: '/types-keyv-budget', maxBytes: 1 << 24, maxValueSize: 1 << 20, serializer: 'json' });
  // @ts-expect-error records of one size or a byte budget, not both
  void new KeyvSharedLRU({ name: '/types-keyv-x', recordSize: 256, maxBytes: 1 << 24 });
  const plain = SharedLRU.open('/x');
  plain.set('k', 'v', 100);
  plain.incr('n', 1, 500);
  plain.incr('n', 1, { ttl: 500 });
  const size: number = plain.stats().size;
  void size;
  // The value type follows the serializer without naming it.
  const users = SharedLRU.openOrCreate('/types-users', { capacity: 8, recordSize: 128, serializer: 'json' });
  users.set('u:1', { id: 1, tags: ['a'] });
  const custom = SharedLRU.open('/types-dates', {
    serializer: { serialize: (d: Date) => d.toISOString(), deserialize: (s) => new Date(String(s)) },
  });
  const when: Date | undefined = custom.get('d');
  void when;
  // @ts-expect-error a plain cache holds strings and bytes
  plain.set('o', { id: 1 });
}

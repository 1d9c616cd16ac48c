'use strict';
// The original package's API, kept call for call so that programs written for it run unchanged:
// shared memory segments as live Buffers and typed arrays, and an LRU of fixed-size records laid
// out in a segment by initLRU. This file owns that API's conventions (the registry of segments
// this thread knows, the return values, the last reasons); the addon does the work.
//
// Return conventions of the LRU calls, as in the original: -1 when the segment does not exist,
// false when it exists but initLRU was not called for it here, -2 when the operation fails (and
// get_last_reason(key) says why), true (or the value asked for) on success. Arguments of the
// wrong type or out of range throw a TypeError (code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE)
// or a RangeError (ERR_OUT_OF_RANGE) before any of that, which is why arguments are checked here
// and not only in the addon; the bounds are the addon's (its integer types), and the engine's
// own limits (the largest record) come back as -2 and a reason.
//
// The segments this module knows about are per thread (each worker thread that requires the
// package has its own list); the caches in them are shared by every process and thread.

const { constants: bufferConstants } = require('buffer');
const native = require('./native');
const { argType, argValue, outOfRange, isEngineError } = require('./errors');
const { integer } = require('./args');

/** Most elements a segment may have (the largest Buffer). */
const LengthMax = bufferConstants.MAX_LENGTH;

/** The view types, by name, as shm-typed-array numbers them. */
const BufferType = {
  Buffer: 0,
  Int8Array: 1,
  Uint8Array: 2,
  Uint8ClampedArray: 3,
  Int16Array: 4,
  Uint16Array: 5,
  Int32Array: 6,
  Uint32Array: 7,
  Float32Array: 8,
  Float64Array: 9,
  BigInt64Array: 10,
  BigUint64Array: 11,
};

const VIEWS = [
  Buffer,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

const MAX_HASH = (1n << 64n) - 1n;

// The native functions the hot calls use, looked up once.
const { lruGetHash, lruGetSlot, lruSet, lruDelHash } = native;

// ---- arguments ----

/** A segment key: an integer (System V) or "/name" (POSIX). Returns its registry id. */
function segmentKey(key) {
  if (typeof key === 'number') {
    if (!Number.isInteger(key) || key === 0 || key < -0x80000000 || key > 0xffffffff) {
      throw outOfRange('key', 'a non-zero 32-bit integer', key);
    }
    return `sysv:${key | 0}`;
  }
  if (typeof key === 'string') {
    if (!key.startsWith('/')) {
      throw argValue('key', 'a System V key or a POSIX name starting with "/"', key);
    }
    return `posix:${key}`;
  }
  throw argType('key', 'an integer or a string ("/name")', key);
}

function checkHash(hash, name = 'hash') {
  if (typeof hash === 'number') {
    if (!Number.isSafeInteger(hash) || hash < 0) {
      throw outOfRange(name, 'a non-negative safe integer', hash);
    }
  } else if (typeof hash === 'bigint') {
    if (hash < 0n || hash > MAX_HASH) throw outOfRange(name, 'from 0n to 2n ** 64n - 1n', hash);
  } else {
    throw argType(name, 'a non-negative integer or a BigInt', hash);
  }
  return hash;
}

function isValue(v) {
  return typeof v === 'string' || v instanceof Uint8Array;
}

function checkValue(v) {
  if (!isValue(v)) throw argType('value', 'a string, Buffer or Uint8Array', v);
  return v;
}

const checkIndex = (v) => integer(v, 'index', 1, 0xffffffff);

/**
 * An element index the LRU in `entry` has (1 to its count); a RangeError otherwise. For set's
 * index argument, which names no element to read (get_el and the like answer -2 for an index
 * past the count, as for any element that holds nothing).
 */
function inCapacity(entry, index) {
  if (index > entry.capacity) throw outOfRange('index', `an integer from 1 to ${entry.capacity} (the LRU's element count)`, index);
  return index;
}
const checkShareKey = (v) => integer(v, 'share_key', 0, 0xffffffff);

function checkBoolean(v, name, dflt) {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw argType(name, 'a boolean', v);
  return v;
}

function viewType(typeKey) {
  if (typeKey === undefined || typeKey === null) return 0;
  if (typeof typeKey === 'string' && Object.prototype.hasOwnProperty.call(BufferType, typeKey)) return BufferType[typeKey];
  if (typeof typeKey === 'number' && Number.isInteger(typeKey) && typeKey >= 0 && typeKey < VIEWS.length) return typeKey;
  throw argValue('typeKey', `one of ${Object.keys(BufferType).join(', ')}`, typeKey);
}

function permBits(perm) {
  if (perm === undefined || perm === null) return 0o660;
  const bits = typeof perm === 'string' && /^[0-7]{1,4}$/.test(perm) ? parseInt(perm, 8) : perm;
  if (typeof bits !== 'number') throw argType('perm', 'an octal string or a number', perm);
  return integer(bits, 'perm', 0, 0o777);
}

// ---- segments ----

/** id → { key, seg, buffer: WeakRef<ArrayBuffer>|null, created, lru, locked } */
const registry = new Map();
/** id → the reason the last failing LRU call on it gave. */
const reasons = new Map();
const mutexReasons = new Map();
/** How long LRU calls wait for a lock held by another process (setLockTimeout); Infinity: as long as it takes. */
let lockTimeout = Infinity;

function view(entry, typeKey) {
  const type = viewType(typeKey);
  let ab = entry.buffer && entry.buffer.deref();
  if (!ab) {
    ab = native.segView(entry.seg);
    entry.buffer = new WeakRef(ab);
  }
  const Ctor = VIEWS[type];
  const per = Ctor.BYTES_PER_ELEMENT || 1;
  const length = Math.floor(ab.byteLength / per);
  const v = type === 0 ? Buffer.from(ab, 0, length) : new Ctor(ab, 0, length);
  v.key = entry.key;
  return v;
}

function newEntry(key, seg, created) {
  return { key, seg, buffer: null, created, lru: null, capacity: 0, locked: false };
}

// The last initialised LRU `target` found: the key it was called with, and the registry entry.
// Every LRU call on the same key reuses it instead of rebuilding the registry id and looking
// it up; `close` clears it, and each use checks that the entry still has its LRU.
const NO_KEY = {};
const NO_ENTRY = newEntry(undefined, null, false);
let lastKey = NO_KEY;
let lastEntry = NO_ENTRY;

function register(id, key, seg, created) {
  const old = registry.get(id);
  if (old) close(old, false);
  const entry = newEntry(key, seg, created);
  registry.set(id, entry);
  return entry;
}

/** Lets go of an entry's handles, destroying the segment first if asked. */
function close(entry, destroy) {
  if (entry === lastEntry) {
    lastKey = NO_KEY;
    lastEntry = NO_ENTRY;
  }
  if (entry.lru) {
    if (entry.locked) {
      try {
        native.lruUnlock(entry.lru);
      } catch {
        // Not held after all: nothing to release.
      }
    }
    native.cacheClose(entry.lru);
    entry.lru = null;
  }
  const destroyed = destroy ? native.segDestroy(entry.seg) : false;
  // The live view (if any) is detached with the mapping, so the mapping goes now rather than
  // when the view is collected: Buffers and typed arrays handed out read as empty from here on.
  const live = entry.buffer && entry.buffer.deref();
  entry.buffer = null;
  native.segRelease(entry.seg, live);
  return destroyed;
}

/**
 * Creates a segment of `count` elements of `typeKey` (default Buffer) under `key` (an integer
 * for System V, "/name" for POSIX; none: a fresh random System V key) with permissions `perm`
 * (octal string or number, default "660"). Returns a live view with a `.key`, or null if a
 * segment with that key exists.
 */
function create(count, typeKey, key, perm) {
  integer(count, 'count', 1, LengthMax);
  const type = viewType(typeKey);
  const bits = permBits(perm);
  const id = key === undefined || key === null ? null : segmentKey(key);
  const size = count * (VIEWS[type].BYTES_PER_ELEMENT || 1);
  const seg = native.segCreate(id === null ? undefined : key, size, bits);
  if (seg === null) return null;
  const k = id === null ? native.segKey(seg) : key;
  const entry = register(id === null ? segmentKey(k) : id, k, seg, true);
  return view(entry, type);
}

/** A live view of the existing segment `key`, or null if there is none. */
function get(key, typeKey) {
  const id = segmentKey(key);
  const type = viewType(typeKey);
  let entry = registry.get(id);
  if (!entry) {
    const seg = native.segOpen(key);
    if (seg === null) return null;
    entry = register(id, key, seg, false);
  }
  return view(entry, type);
}

/**
 * Detaches this thread from segment `key`; it is destroyed as well when `force` is set or no
 * other process is attached. The mapping goes at once: views handed out (the Buffers and typed
 * arrays of create and get) have length 0 from then on. Returns 0 when
 * the segment was destroyed, else the number of other attachments (1 for POSIX, which does not
 * count them), or -1 if it was not attached here.
 */
function detach(key, force = false) {
  const id = segmentKey(key);
  const f = checkBoolean(force, 'force', false);
  const entry = registry.get(id);
  if (!entry) return -1;
  const others = native.segOthers(entry.seg);
  const destroy = f || others === 0 || (others === null && entry.created);
  registry.delete(id);
  close(entry, destroy);
  if (destroy) return 0;
  return others === null ? 1 : others;
}

/**
 * Destroys segment `key` even while others are attached, and detaches it here (as `detach`).
 * Returns whether there was one.
 */
function destroy(key) {
  const id = segmentKey(key);
  const entry = registry.get(id);
  if (!entry) return native.segDestroyKey(key);
  registry.delete(id);
  return close(entry, true);
}

/** Detaches every segment; destroys those created here. Returns how many were destroyed. */
function detachAll() {
  let n = 0;
  for (const [id, entry] of registry) {
    registry.delete(id);
    if (close(entry, entry.created)) n++;
  }
  return n;
}

/** Bytes of shared memory this process has mapped. */
function getTotalSize() {
  return native.totals().mapped;
}

/** Bytes of the segments this process created and has not destroyed. */
function getTotalCreatedSize() {
  return native.totals().created;
}

process.on('exit', detachAll);

// ---- the LRU ----

/** The entry of an initialised LRU, or the convention value (-1 or false) to return. */
function target(key, why) {
  if (key === lastKey && lastEntry.lru !== null) return lastEntry;
  return lookUp(key, why === undefined ? reasons : why);
}

function lookUp(key, why) {
  const id = segmentKey(key);
  const entry = registry.get(id);
  if (entry && entry.lru) {
    lastKey = key;
    lastEntry = entry;
    return entry;
  }
  if (!entry && native.segStatSize(key) === null) {
    why.set(id, `segment ${key} does not exist`);
    return -1;
  }
  why.set(id, `segment ${key} is not initialised as an LRU in this process: call initLRU first`);
  return false;
}

/**
 * Runs `fn(entry)` on an initialised LRU; engine errors become -2 and the last reason, except a
 * lock timeout (see setLockTimeout), which is thrown.
 */
function withLru(key, fn, why = reasons) {
  const entry = target(key, why);
  if (typeof entry !== 'object') return entry;
  try {
    return fn(entry);
  } catch (e) {
    return engineFailure(key, e, why);
  }
}

/** What withLru makes of an exception: an engine error becomes -2 and the last reason. */
function engineFailure(key, e, why) {
  if (!isFailure(e)) throw e;
  return fail(key, notFound(e), why);
}

/** Whether `e` is an engine error the conventions answer with -2 (anything else is thrown). */
function isFailure(e) {
  return isEngineError(e) && e.code !== 'ERR_SHM_LOCK_TIMEOUT' && e.code !== 'ERR_SHM_LOCK_DAMAGED';
}

function fail(key, reason, why = reasons) {
  why.set(segmentKey(key), reason);
  return -2;
}

function notFound(e) {
  const missing = ['ERR_SHM_SLOT_FREE', 'ERR_SHM_NO_SUCH_SLOT', 'ERR_SHM_KEY_NOT_FOUND'];
  return missing.includes(e.code) ? `element not found: ${e.message}` : e.message;
}

/**
 * Lays out (initialiser, the default) or attaches to (others) an LRU of `record_size`-byte
 * records in the first `region_size` bytes of segment `key`. A full LRU refuses new entries.
 */
function initLRU(key, record_size, region_size, i_am_initializer = true) {
  const id = segmentKey(key);
  integer(record_size, 'record_size', 1, 0xffffffff);
  integer(region_size, 'region_size', 1, Number.MAX_SAFE_INTEGER);
  const init = checkBoolean(i_am_initializer, 'i_am_initializer', true);
  let entry = registry.get(id);
  if (!entry) {
    const seg = native.segOpen(key);
    if (seg === null) {
      reasons.set(id, `segment ${key} does not exist`);
      return -1;
    }
    entry = register(id, key, seg, false);
  }
  if (entry.lru) {
    const info = native.cacheInfo(entry.lru);
    if (info.recordSize === record_size) return info.capacity;
    return fail(key, `segment ${key} already holds an LRU with record size ${info.recordSize}, not ${record_size}`);
  }
  try {
    const lru = native.lruInit(entry.seg, record_size, region_size, init);
    if (lockTimeout !== Infinity) native.lruSetLockTimeout(lru, lockTimeout);
    entry.lru = lru;
    entry.capacity = native.cacheInfo(lru).capacity;
    return entry.capacity;
  } catch (e) {
    if (!isFailure(e)) throw e;
    return fail(key, e.message);
  }
}

/** Size in bytes of segment `key`, or -1 if there is none. */
function getSegmentSize(key) {
  const id = segmentKey(key);
  const entry = registry.get(id);
  if (entry) return native.segSize(entry.seg);
  const size = native.segStatSize(key);
  if (size === null) {
    reasons.set(id, `segment ${key} does not exist`);
    return -1;
  }
  return size;
}

/**
 * Stores `value` under `hash`; returns the element's index (from 1). Accepts the original order
 * `(key, hash, value)` and the later `(key, value, hash, index)` (the index is checked but the
 * hash decides where the element lives). A value that does not fit the record, or a full LRU,
 * is refused with `false`.
 */
function set(key, a, b, index) {
  let hash;
  let value;
  if (isValue(a)) {
    value = a;
    hash = b;
    if (index !== undefined) {
      checkIndex(index);
      const entry = target(key);
      if (typeof entry === 'object') inCapacity(entry, index);
    }
  } else {
    hash = a;
    value = b;
  }
  checkHash(hash);
  checkValue(value);
  const entry = target(key);
  if (typeof entry !== 'object') return entry;
  try {
    return lruSet(entry.lru, hash, value);
  } catch (e) {
    if (!isFailure(e)) throw e;
    fail(key, e.message);
    const refused = ['ERR_SHM_VALUE_TOO_LARGE', 'ERR_SHM_FULL'];
    return refused.includes(e.code) ? false : -2;
  }
}

/** Whether `v` is an object literal (or made with a null prototype): not a String, Date, ... */
function isPlainObject(v) {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Stores many `[hash, value]` pairs (an array, a Map, or a plain object keyed by hash). Anything
 * else, a boxed string such as `new String('/x')` included, is a TypeError.
 */
function set_many(key, pairs) {
  let list;
  if (pairs instanceof Map || Array.isArray(pairs)) {
    list = [...pairs];
  } else if (isPlainObject(pairs)) {
    list = Object.entries(pairs).map(([h, v]) => {
      if (!/^\d+$/.test(h)) throw argValue('pairs', 'keyed by hashes (decimal integers)', h);
      const n = BigInt(h);
      return [n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n, v];
    });
  } else {
    throw argType('pairs', 'an array of [hash, value], a Map or an object', pairs);
  }
  for (const p of list) {
    if (!Array.isArray(p) || p.length < 2) throw argType('pairs', 'a list of [hash, value] pairs', p);
    checkHash(p[0]);
    checkValue(p[1]);
  }
  const entry = target(key);
  if (typeof entry !== 'object') return entry;
  return list.map(([h, v]) => set(key, h, v));
}

// The hot calls below are withLru written out: no closure per call.

/** The value of element `index`, or -2 if it holds none. */
function get_el(key, index) {
  checkIndex(index);
  const entry = target(key);
  if (typeof entry !== 'object') return entry;
  try {
    return lruGetSlot(entry.lru, index);
  } catch (e) {
    return engineFailure(key, e, reasons);
  }
}

/**
 * Runs `call(lru, hash)`, an addon function that answers undefined or false when no element has
 * `hash`, on an initialised LRU: that answer becomes -2 and "element not found". (The addon
 * function is passed itself, not wrapped in a closure: these calls are hot.)
 */
function byHash(key, hash, call) {
  checkHash(hash);
  const entry = target(key);
  if (typeof entry !== 'object') return entry;
  let r;
  try {
    r = call(entry.lru, hash);
  } catch (e) {
    return engineFailure(key, e, reasons);
  }
  return r === undefined || r === false ? fail(key, `element not found: no element with hash ${hash}`) : r;
}

/** The value stored under `hash` (marking it used), or -2 if there is none. */
function get_el_hash(key, hash) {
  return byHash(key, hash, lruGetHash);
}

/** Removes element `index`; -2 if it holds none. */
function del_el(key, index) {
  checkIndex(index);
  return withLru(key, (e) => {
    native.lruDelSlot(e.lru, index);
    return true;
  });
}

/** Removes the element stored under `hash`; -2 if there is none. */
function del_key(key, hash) {
  return byHash(key, hash, lruDelHash);
}

/**
 * Why the last failing LRU call on `key` failed ("OK" if none did). Reading it resets it to
 * "OK", as the original did.
 */
function get_last_reason(key) {
  const id = segmentKey(key);
  const r = reasons.get(id) || 'OK';
  reasons.delete(id);
  return r;
}

/** The index lives in the segment, shared by every process: there is nothing to rebuild. */
function reload_hash_map(key) {
  return withLru(key, () => true);
}

/** As reload_hash_map; `share_key` is checked. */
function reload_hash_map_update(key, share_key) {
  checkShareKey(share_key);
  return withLru(key, () => true);
}

function cutoffArgs(cutoff_time, max_evictions) {
  integer(cutoff_time, 'cutoff_time', 0, Number.MAX_SAFE_INTEGER);
  if (max_evictions !== Infinity) integer(max_evictions, 'max_evictions', 0, Number.MAX_SAFE_INTEGER);
}

/**
 * Evicts, least recently used first, up to `max_evictions` elements not used in the last
 * `cutoff_time` milliseconds (last used before epoch_time() - cutoff_time, as the original
 * computed it); returns their hashes.
 */
function run_lru_eviction(key, cutoff_time, max_evictions) {
  cutoffArgs(cutoff_time, max_evictions);
  return withLru(key, (e) => native.lruEvictOlderThan(e.lru, cutoff_time, max_evictions).map(([h]) => h));
}

/** As run_lru_eviction, returning an object of hash → value. */
function run_lru_eviction_get_values(key, cutoff_time, max_evictions) {
  cutoffArgs(cutoff_time, max_evictions);
  return withLru(key, (e) => {
    const out = {};
    for (const [h, v] of native.lruEvictOlderThan(e.lru, cutoff_time, max_evictions)) out[h] = v;
    return out;
  });
}

/** Sets the share key of element `index`. */
function set_share_key(key, index, share_key) {
  checkIndex(index);
  checkShareKey(share_key);
  return withLru(key, (e) => {
    native.lruSetShare(e.lru, index, share_key);
    return true;
  });
}

/** Prints the recency list, most recently used first (least recently used first if `backwards`). */
function debug_dump_list(key, backwards = false) {
  const back = checkBoolean(backwards, 'backwards', false);
  return withLru(key, (e) => {
    const rows = native.lruDump(e.lru, back);
    console.log(`LRU ${key}: ${rows.length} element(s), ${back ? 'least' : 'most'} recently used first`);
    for (const [index, hash, value, used, share] of rows) {
      const v = typeof value === 'string' ? value : `<${value.length} bytes>`;
      console.log(`  [${index}] hash=${hash} share=${share} used=${used} value=${v}`);
    }
    return true;
  });
}

/** How many elements the LRU holds at most. */
function lru_max_count(key) {
  return withLru(key, (e) => native.cacheInfo(e.lru).capacity);
}

/** How many elements the LRU holds. */
function current_count(key) {
  return withLru(key, (e) => native.cacheLen(e.lru));
}

/** How many more elements fit. */
function free_count(key) {
  return withLru(key, (e) => native.cacheInfo(e.lru).capacity - native.cacheLen(e.lru));
}

/**
 * Makes the LRU calls of this thread (on LRUs initialised before and after) throw an Error with
 * code ERR_SHM_LOCK_TIMEOUT when one of the LRU's locks stays held longer than `ms`
 * milliseconds, by a process that is alive but stuck or by a corrupted lock, instead of
 * waiting for ever. `Infinity` (the default) waits. Not the application mutex: `lock` waits as
 * it always did (use `try_lock` to not wait). Returns the previous setting.
 */
function setLockTimeout(ms) {
  if (ms !== Infinity) integer(ms, 'ms', 0, Number.MAX_SAFE_INTEGER);
  const previous = lockTimeout;
  lockTimeout = ms;
  for (const entry of registry.values()) {
    if (entry.lru) native.lruSetLockTimeout(entry.lru, ms);
  }
  return previous;
}

/** Now, in epoch milliseconds (the clock element times are kept in). */
function epoch_time() {
  return Date.now();
}

// ---- the application mutex ----

/**
 * Runs a mutex call: as withLru, but a segment not initialised in this process gives -3 (the
 * original's mutex convention), since `false` is a meaningful answer of try_lock.
 */
function withMutex(key, fn) {
  const r = withLru(key, fn, mutexReasons);
  return r === false && target(key, mutexReasons) === false ? -3 : r;
}

/** The LRU's mutex is made with it (by initLRU); this checks that it is there. */
function init_mutex(key, i_am_initializer) {
  checkBoolean(i_am_initializer, 'i_am_initializer', true);
  return withMutex(key, () => true);
}

/** Takes the mutex, waiting for it. A holder that died does not wedge it. */
function lock(key) {
  return withMutex(
    key,
    (e) => {
      if (e.locked) return fail(key, 'this thread already holds the lock', mutexReasons);
      const died = native.lruLock(e.lru);
      e.locked = true;
      mutexReasons.set(segmentKey(key), died ? 'the previous holder died holding the lock; it was recovered' : 'OK');
      return true;
    },
  );
}

/** Takes the mutex if it is free; false if someone else holds it. */
function try_lock(key) {
  return withMutex(
    key,
    (e) => {
      const id = segmentKey(key);
      if (e.locked) {
        mutexReasons.set(id, 'this thread already holds the lock');
        return false;
      }
      const r = native.lruTryLock(e.lru);
      if (r === null) {
        mutexReasons.set(id, 'busy: another process or thread holds the lock');
        return false;
      }
      e.locked = true;
      mutexReasons.set(id, r ? 'the previous holder died holding the lock; it was recovered' : 'OK');
      return true;
    },
  );
}

/** Releases the mutex; -2 if this thread does not hold it. */
function unlock(key) {
  return withMutex(
    key,
    (e) => {
      if (!e.locked) return fail(key, 'this thread does not hold the lock', mutexReasons);
      native.lruUnlock(e.lru);
      e.locked = false;
      mutexReasons.set(segmentKey(key), 'OK');
      return true;
    },
  );
}

/** What the last mutex call on `key` found. */
function get_last_mutex_reason(key) {
  return mutexReasons.get(segmentKey(key)) || 'OK';
}

module.exports = {
  create,
  get,
  detach,
  destroy,
  detachAll,
  getTotalSize,
  getTotalCreatedSize,
  LengthMax,
  BufferType,
  initLRU,
  getSegmentSize,
  set,
  set_many,
  get_el,
  get_el_hash,
  del_el,
  del_key,
  remove_key: del_key,
  get_last_reason,
  reload_hash_map,
  reload_hash_map_update,
  run_lru_eviction,
  run_lru_eviction_get_values,
  set_share_key,
  debug_dump_list,
  lru_max_count,
  current_count,
  free_count,
  epoch_time,
  setLockTimeout,
  init_mutex,
  lock,
  try_lock,
  unlock,
  get_last_mutex_reason,
};

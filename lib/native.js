'use strict';
// Loads the native addon, the first found of: the file named by $SHM_TYPED_LRU_NATIVE
// (bench/node.js names the bench build, which adds two hooks); build/shm_typed_lru.node (made from
// source by `node scripts/build.js`); the package's prebuilt addon for this platform and version
// (prebuilds/, see lib/platform.js). None found: an error naming the platform and the places
// looked at, with the command that builds the addon from source.
//
// The interface. `handle` is an opaque cache handle; keys and values are strings (UTF-8) or
// Buffers/Uint8Arrays, and a value comes back as the type it was stored as. Engine errors are
// `Error`s with `code` ERR_SHM_* (e.g. ERR_SHM_VALUE_TOO_LARGE); a handle being changed by a call
// still running (a getter that closes it) throws ERR_SHM_HANDLE_IN_USE; bad arguments are
// `TypeError` (ERR_INVALID_ARG_TYPE, or ERR_INVALID_ARG_VALUE, e.g. for a string with a lone
// surrogate or a Uint8Array whose memory was detached) or `RangeError` (ERR_OUT_OF_RANGE).
//
// Class API:
//   cacheCreate(name, options) → handle
//       options: { capacity, recordSize, evictOnFull = true, ttl = 0 (ms, 0 forever),
//       mode = 0o600, shards = chosen from capacity }, read once in the addon; the engine owns
//       the limits (largest record, shard counts, slots). Or, for a byte budget, maxBytes with
//       maxValueSize (default: the engine's) and capacity (default: derived from maxBytes) in
//       place of capacity and recordSize; both recordSize and maxBytes, or maxValueSize without
//       maxBytes, throw ERR_SHM_INVALID_ARGUMENT. Throws ERR_SHM_EXISTS if the segment
//       exists. name: "/name" (POSIX) or an integer System V key (other strings: TypeError).
//       Also in options: lockTimeout (ms or Infinity; ERR_SHM_LOCK_TIMEOUT past it).
//   cacheOpen(name, options?) → handle            ERR_SHM_NOT_FOUND, ERR_SHM_BAD_FORMAT,
//       ERR_SHM_PERMISSION, …; options: { trustOwner (uid), mode, lockTimeout }
//   cacheOpenOrCreate(name, options) → handle     options as for cacheCreate, plus trustOwner
//       and reuse ('same' | 'any'): an existing cache with other settings throws
//       ERR_SHM_MISMATCH unless 'any'; mode also vets an existing segment
//   cacheDestroyName(name) → boolean              removes the segment; false if there was none
//   cacheClose(handle) → undefined                later calls on the handle throw ERR_SHM_CLOSED
//   cacheGet(handle, key) → string|Buffer|undefined        marks the entry used
//   cachePeek(handle, key) → string|Buffer|undefined       no recency change
//   cacheGetMany(handle, keys) → Array<string|Buffer|undefined>   a get of each key of an array
//   cacheGetJoined(handle, joined, lengths, spans, count) → text | [text, extras]   a get of
//       each of count string keys given joined, with their UTF-16 lengths (the first count of a
//       Uint32Array); string values
//       come back joined in text; spans (an Int32Array of 2 per key, the caller's) receives
//       [start, end) in text per key, or [-1, 0] for a miss, or [-2, j] for extras[j] (bytes,
//       or a string value that is not UTF-8)
//   cacheSet(handle, key, value, options, mode) → boolean
//       options: undefined or { ttl } (ms, 0 forever; absent: the cache's default); mode:
//       0 upsert, 1 add (false if present), 2 replace (false if absent); throws
//       ERR_SHM_VALUE_TOO_LARGE (key and value over the record size or maxValueSize),
//       ERR_SHM_FULL, …
//   cacheHas(handle, key) → boolean
//   cacheGetInto(handle, key, buf) → number       value length, or -1 if absent; RangeError
//       ERR_SHM_BUFFER_TOO_SMALL if it does not fit (nothing copied)
//   cacheDelete(handle, key) → boolean
//   cacheIncr(handle, key, delta, options) → number|bigint  a BigInt past the safe integers;
//       delta: a safe integer or a BigInt; options as for cacheSet
//   cacheDeletePrefix(handle, prefix) → number    removes every entry whose key starts with
//       prefix (string or bytes), one pass in the engine; entries removed
//   cacheClear(handle) → number                   entries removed
//   cacheLen(handle) → number
//   cacheInfo(handle) → { name, capacity, recordSize, maxBytes, maxValueSize, shards, evictOnFull,
//                         defaultTtl, regionSize }   recordSize 0 with a budget, maxBytes 0 without
//                         one, maxValueSize the record size without one
//   cacheEntries(handle, lruFirst, limit) → Array<[key, value]>      limit: integer or Infinity
//   cacheEvictOlderThan(handle, ms, max) → Array<[key, value]>       max: integer or Infinity
//   cacheStats(handle) → { hits, misses, inserts, updates, removes, evictions, expirations,
//                          recoveries, size, capacity, maxBytes, bytesLive, bytesUsed, bytesFree }
//   cacheCheck(handle) → { ok, problems: string[] }
//   cacheRepair(handle) → { before, rebuilt, kept, dropped, after }  (before/after as cacheCheck)
//   cacheScan(handle, lruFirst, shard?, next?, linked?, max) → [[key, value][], [shard, next, linked] | null]
//   cacheTouch(handle, key, ttl) → boolean        marks used; ttl (ms, 0 forever) restarts the
//       time to live, undefined keeps it; false if absent
//   cacheExpiry(handle, key) → number|undefined   epoch ms it expires, 0 never, undefined absent
//   cachePop(handle) → [key, value]|undefined     removes the least recently used entry
//   cacheDump(handle) → Array<[key, value, expiresMs]>     least recently used first; 0 never
//   cachePurgeExpired(handle) → number            expired entries reclaimed
//   (cacheSet's and cacheIncr's options may also be a number of ms, standing for { ttl };
//   cacheSet reads { noUpdateTTL } too: an overwrite keeps the entry's expiry.)
//   Keys returned by cacheEntries/cacheEvictOlderThan are strings (a Buffer if not UTF-8), or a
//   number/BigInt for entries stored under a 64-bit hash by the original API.
//
// Original API (used by index.js):
//   segCreate(key|undefined, size, perm) → segment|null    null if it exists; no key: random SysV
//   segOpen(key) → segment|null                            null if there is none
//   segView(segment) → ArrayBuffer                         live view; keeps the mapping while alive
//   segKey(segment) → number|string    segSize(segment) → number
//   segStatSize(key) → number|null     segOthers(segment) → number|null (other attachments, SysV)
//   segDestroy(segment) → boolean      segDestroyKey(key) → boolean
//   segRelease(segment, view|undefined)   detaches `view` (the live ArrayBuffer of segView)
//       and lets go of the mapping, which goes now unless a cache made from it is open
//   totals() → { mapped, created }      created: by this process (either API), still existing
//   lruInit(segment, recordSize, regionSize, initializer) → handle    non-evicting cache in the
//       first regionSize bytes; initializer: attach or lay out, else attach only
//   lruSet(handle, hash, value) → index                lruGetSlot(handle, index) → value
//   lruGetHash(handle, hash) → value|undefined         lruDelSlot(handle, index)
//   lruDelHash(handle, hash) → boolean                 lruSetShare(handle, index, shareKey)
//   lruEvictOlderThan(handle, ageMs, max) → Array<[hash, value]>   last used before now − ageMs
//   lruDump(handle, backwards) → Array<[index, hash, value, usedMs, shareKey]>
//   lruLock(handle) → boolean (previous holder died)   lruTryLock(handle) → boolean|null (busy)
//   lruUnlock(handle)                                  lruSetLockTimeout(handle, ms|Infinity)
//   hash: a non-negative safe integer or a BigInt up to 2n ** 64n - 1n; index: 1 to capacity.
//
// Bench build only (`node scripts/build.js --bench`, the `bench-hooks` feature):
//   benchNoop(a, b) → undefined                   floor: a native call taking two u32
//   benchString() → string                        floor: returns a 64-byte string, no lookup

const { locate, notFound } = require('./platform');

const found = locate('shm_typed_lru.node', 'SHM_TYPED_LRU_NATIVE');
if (!found.file) throw notFound('native addon', 'shm_typed_lru.node', 'SHM_TYPED_LRU_NATIVE', found.looked);
module.exports = require(found.file);

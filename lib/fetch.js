'use strict';
// `SharedLRU#fetch`: a read-through that runs one loader on the whole machine for a missing key,
// however many processes miss it at once. The protocol lives here, in JS over plain cache calls;
// the engine knows nothing of it.
//
// The room. The protocol's own entries (leases, outcomes) live in a small cache of their own
// beside the user's, `<name>.fetch`, made on the first fetch that misses and removed by
// `SharedLRU.destroy(name)`. So they never take a slot of the user's cache, never evict one of its
// entries, never count in its `size` or `stats()`, and no user operation (`keys`, `pop`, `dump`,
// `evictOlderThan`, `clear`) sees them. The room evicts its own least recently used entries when
// full; it is sized to hold many loads at once, and a lease it loses costs a second load, never a
// wrong value.
//
// The lease. A caller that misses `key` tries to `add` a lease entry `L` + key whose value is its
// token (lib/owner.js: pid, process start time, thread, a unique part) and whose time to live is
// the lease time. `add` is atomic across processes, so exactly one caller wins and runs the
// loader; every other caller finds the lease and waits until it goes away. While the loader runs
// its owner renews the lease (every third of the lease time). When the loader settles the owner
// stores the value under `key` (or, for an error, an undefined result or a value too large for a
// record, an outcome entry `O` + token that lives a few seconds) and only then removes the lease,
// so a waiter that sees the lease gone finds the value or the outcome by looking. Callers in the
// owner's own process skip the polling: they await the owner's flight.
//
// A dead owner. Each poll a waiter asks /proc whether the lease's owner still lives; when it is
// gone (SIGKILL, a crash) one waiter takes the lease over at once: it claims the dead token with an
// atomic `add` of `T` + token, and the winner puts its own token in the lease and loads. A live
// but hung owner stops renewing only when it stops running (SIGSTOP, a blocked event loop); its
// lease then lapses after the lease time and a waiter's `add` wins. An owner whose lease is no
// longer its own (it lapsed, or its caller aborted and handed the load over) stores nothing: the
// value its loader finally gives goes to its own callers only, so it cannot overwrite a newer
// value stored by the waiter that took over.
//
// Waiting backs off with timers (2 ms, growing to 50 ms) rather than sleeping on a futex in the
// segment: a futex wait blocks the thread, which in Node means the event loop (or a thread per
// waiter that must be woken and joined), and a robust wake-up still needs the timed look for an
// owner that dies without waking anyone. A poll is two native calls and a read of /proc, a few
// microseconds, so a waiter costs nothing measurable and the event loop stays free.

const native = require('./native');
const { argType, argValue, codedError } = require('./errors');
const { optionMs } = require('./args');
const { newToken, tokenPid, ownerGone } = require('./owner');

const { cacheOpenOrCreate, cacheClose, cacheDestroyName, cacheInfo, cacheSet, cachePeek, cacheDelete, cacheTouch, cacheExpiry } =
  native;

const ADD = 1;
const UPSERT = 0;

const DEFAULT_LEASE_MS = 10_000;
/** How long a fetch waits, or a loader runs, before the fetch rejects with ERR_FETCH_TIMEOUT. */
const DEFAULT_TIMEOUT_MS = 60_000;
const FIRST_WAIT_MS = 2;
const LONGEST_WAIT_MS = 50;
/** How long an outcome stays for the waiters to read: many of their longest waits. */
const OUTCOME_MS = 5_000;

// Outcome records: the loader threw, returned undefined, or gave a value too large for a record
// (handed over in parts when the room can hold them, else not at all).
const THREW = 'E';
const UNDEFINED = 'U';
const IN_PARTS = 'V';
const UNCACHED = 'N';

/** Errors of a lease's `add` after which the caller loads without one rather than fail. */
const NO_LEASE = new Set(['ERR_SHM_KEY_TOO_LARGE', 'ERR_SHM_VALUE_TOO_LARGE', 'ERR_SHM_FULL']);

/** Loads this process owns, by token: waiters here await the flight instead of polling. */
const owned = new Map();

/** The name of the room of the cache named `name`. */
function roomName(name) {
  const s = String(name);
  return /^-?\d+$/.test(s) ? `/shm-lru-sysv-${Number(s) >>> 0}.fetch` : `${s}.fetch`;
}

/** The byte budget of the room of a cache with a byte budget. */
const ROOM_BYTES = 4 << 20;

/**
 * The room of a cache, opened (or made) on first use: `{ raw, entrySize }`. `access` carries the
 * handle's `mode` and `trustOwner`, which the room is made and vetted with as the cache was.
 */
class Room {
  #name;
  #options;
  #raw;
  #entrySize;
  #closed = false;

  constructor(info, access) {
    this.#name = roomName(info.name);
    if (info.maxBytes > 0) {
      // A cache with a byte budget, whose keys may be long: a room with a small budget of its
      // own, whose entries take lease keys of any length and values in parts of a few
      // hundred KiB.
      this.#options = { maxBytes: ROOM_BYTES, evictOnFull: true, reuse: 'any' };
      this.#entrySize = ROOM_BYTES / 8; // the engine's maxValueSize for such a budget
    } else {
      // Room for a lease key (a byte and the user's key, which fits a record) with a token,
      // and for outcome parts; a few MiB at most, however large the records.
      const recordSize = info.recordSize + 96;
      const capacity = Math.max(64, Math.min(4096, Math.floor((4 << 20) / recordSize)));
      this.#options = { capacity, recordSize, evictOnFull: true, reuse: 'any' };
      this.#entrySize = recordSize;
    }
    if (access.mode !== undefined) this.#options.mode = access.mode;
    if (access.trustOwner !== undefined) this.#options.trustOwner = access.trustOwner;
  }

  /**
   * The most bytes of key plus value one of the room's entries holds: as the room is once it is
   * open (an existing room, taken as it is, may have been made for an earlier cache of the
   * name), as it would be made before.
   */
  get entrySize() {
    return this.#entrySize;
  }

  get raw() {
    if (this.#raw === undefined) {
      // A load that ends after its cache was closed must not make the room again.
      if (this.#closed) throw codedError(Error, 'ERR_SHM_CLOSED', 'the cache handle is closed');
      this.#raw = cacheOpenOrCreate(this.#name, this.#options);
      this.#entrySize = cacheInfo(this.#raw).maxValueSize;
    }
    return this.#raw;
  }

  close() {
    this.#closed = true;
    if (this.#raw !== undefined) cacheClose(this.#raw);
    this.#raw = undefined;
  }

  static destroy(name) {
    return cacheDestroyName(roomName(name));
  }
}

function prefixed(tag, key) {
  if (typeof key === 'string') return tag + key;
  return Buffer.concat([Buffer.from(tag, 'latin1'), key]);
}

/** The options of a fetch, checked once. */
function fetchOptions(options) {
  if (options === undefined || options === null) options = {};
  else if (typeof options !== 'object') throw argType('options', 'an object', options);
  if (options.allowStale !== undefined || options.staleTtl !== undefined) {
    // lru-cache's allowStale returns an expired value; what this option did here is
    // stale-while-revalidate, which has its own name.
    throw argValue(
      options.allowStale !== undefined ? 'options.allowStale' : 'options.staleTtl',
      'absent: serve-and-refresh is options.staleWhileRevalidate (ms)',
      options.allowStale !== undefined ? options.allowStale : options.staleTtl,
    );
  }
  const signal = options.signal;
  if (signal !== undefined && (signal === null || typeof signal.aborted !== 'boolean')) {
    throw argType('options.signal', 'an AbortSignal', signal);
  }
  return {
    ttl: optionMs(options, 'ttl', undefined),
    swr: optionMs(options, 'staleWhileRevalidate', 0),
    leaseTtl: optionMs(options, 'leaseTtl', DEFAULT_LEASE_MS, { min: 1 }),
    timeout: optionMs(options, 'timeout', DEFAULT_TIMEOUT_MS, { infinite: true }),
    signal,
    forceRefresh: options.forceRefresh === true,
    retryOnError: options.retryOnError === true,
    options,
    context: options.context,
  };
}

function timeoutError(key, ms, loading) {
  const what = loading ? 'its loader ran' : "waited for another caller's load";
  return codedError(Error, 'ERR_FETCH_TIMEOUT', `fetch of ${JSON.stringify(String(key))} ${what} ${ms} ms`);
}

/** The loader's error as the waiters of another process see it: its name, message and code. */
function describeError(e, room) {
  const o = e instanceof Error ? { name: e.name, message: e.message, code: e.code } : { name: 'Error', message: String(e) };
  let text = JSON.stringify(o);
  if (text.length > room && o.message.length > 0) {
    o.message = o.message.slice(0, Math.max(0, o.message.length - (text.length - room) - 1));
    text = JSON.stringify(o);
  }
  return text;
}

function reviveError(text, owner) {
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    o = { message: 'the loader failed' };
  }
  const err = new Error(o.message);
  if (o.name && o.name !== 'Error') err.name = o.name;
  if (o.code !== undefined) err.code = o.code;
  err.loaderPid = tokenPid(owner);
  return err;
}

/**
 * Waits `ms`, or less when `local` (a promise) settles or `signal` aborts; resolves either way.
 */
function pause(ms, local, signal) {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (signal !== undefined) signal.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    if (local !== undefined) local.then(finish, finish);
    if (signal !== undefined) signal.addEventListener('abort', finish, { once: true });
  });
}

/**
 * The fetch of `key` on `cache`, past its hit path. `ctx` holds the cache's native handle
 * (`raw`), its room, its default time to live (`defaultTtl`) and how a value becomes what the
 * engine stores and back (`encode`, `decode`: a serializer's, or none). `looked` says the caller
 * already asked the cache for the key (and counted its miss): a fetch counts one hit or one miss
 * in `stats()`, however many looks its protocol takes.
 */
async function fetchSlow(cache, ctx, key, loader, options, looked) {
  const o = fetchOptions(options);
  if (o.signal !== undefined && o.signal.aborted) throw o.signal.reason;
  const leaseKey = prefixed('L', key);
  const storeTtl = storedTtl(ctx, o);
  const started = Date.now();

  let staleValue;
  if (!o.forceRefresh && !looked) {
    const v = cache.get(key);
    if (v !== undefined) {
      if (o.swr > 0) refreshIfStale(cache, ctx, key, leaseKey, loader, o, storeTtl, v);
      return v;
    }
  } else if (o.forceRefresh) {
    staleValue = cache.peek(key);
  }

  const room = ctx.room;
  let lookFirst = !o.forceRefresh;
  for (;;) {
    if (lookFirst) {
      const v = cache.peek(key);
      if (v !== undefined) return v;
    }
    lookFirst = true;
    const token = newToken();
    let leased;
    try {
      leased = cacheSet(room.raw, leaseKey, token, { ttl: o.leaseTtl }, ADD);
    } catch (e) {
      // No room for a lease (a key too long for the room's record): load without one.
      if (e === null || typeof e !== 'object' || !NO_LEASE.has(e.code)) throw e;
      return load(cache, ctx, key, undefined, token, loader, o, storeTtl, staleValue, started);
    }
    if (leased) return load(cache, ctx, key, leaseKey, token, loader, o, storeTtl, staleValue, started);

    const holder = cachePeek(room.raw, leaseKey);
    if (holder === undefined) continue; // released between our add and our look
    const result = await waitFor(ctx, key, leaseKey, holder, o, started);
    if (result.done) return result.value;
    if (result.takeover !== undefined) {
      return load(cache, ctx, key, leaseKey, result.takeover, loader, o, storeTtl, staleValue, started);
    }
    // Otherwise: the holder let go without a result, or its load failed and retryOnError is set.
  }
}

/** The time to live a fetched value is stored with: its fresh time plus its stale time. */
function storedTtl(ctx, o) {
  const fresh = o.ttl === undefined ? ctx.defaultTtl : o.ttl;
  if (fresh === 0 || o.swr === 0) return o.ttl;
  return fresh + o.swr;
}

/**
 * Waits while `holder` holds the lease. Resolves `{ done: true, value }` when its load decided
 * the result, `{ takeover: token }` when the holder died and this caller now holds the lease under
 * `token`, `{ done: false }` when the caller should look again; rejects with the loader's error,
 * the signal's reason or a timeout.
 */
async function waitFor(ctx, key, leaseKey, holder, o, started) {
  const raw = ctx.room.raw;
  let wait = FIRST_WAIT_MS;
  const local = owned.get(holder);
  for (;;) {
    const left = o.timeout - (Date.now() - started);
    if (left <= 0) throw timeoutError(key, o.timeout, false);
    await pause(Math.min(wait, left), local === undefined ? undefined : local.ended, o.signal);
    if (o.signal !== undefined && o.signal.aborted) throw o.signal.reason;
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    if (local !== undefined) {
      if (local.result !== undefined) break;
      continue;
    }
    if (cachePeek(raw, leaseKey) !== holder) break;
    if (ownerGone(holder)) {
      const token = newToken();
      // One waiter claims the dead owner's lease; the others see its token there next time.
      if (cacheSet(raw, prefixed('T', holder), token, { ttl: o.leaseTtl }, ADD) && cachePeek(raw, leaseKey) === holder) {
        cacheSet(raw, leaseKey, token, { ttl: o.leaseTtl }, UPSERT);
        return { takeover: token };
      }
    }
  }
  if (local !== undefined) {
    const r = local.result;
    if (r.ok) return { done: true, value: r.value };
    if (r.handedOver || o.retryOnError) return { done: false };
    throw r.error;
  }
  const outcome = cachePeek(raw, prefixed('O', holder));
  if (outcome === undefined) return { done: false };
  switch (outcome[0]) {
    case THREW:
      if (o.retryOnError) return { done: false };
      throw reviveError(outcome.slice(1), holder);
    case UNDEFINED:
      return { done: true, value: undefined };
    case IN_PARTS: {
      const stored = readParts(raw, holder, outcome.slice(1));
      if (stored === undefined) return { done: false };
      return { done: true, value: ctx.decode(stored) };
    }
    default:
      return { done: false }; // UNCACHED: the value reached no one here; load our own
  }
}

/**
 * Hands a value too large for a record (as stored: a string or bytes) to the waiters of other
 * processes: in parts under `P` + token, with an outcome saying how many. Returns whether the
 * room took it (a value larger than a quarter of the room is not offered).
 */
function writeParts(room, token, stored) {
  const bytes = typeof stored === 'string' ? Buffer.from(stored, 'utf8') : Buffer.from(stored);
  const partKey = (i) => `P${token}:${i}`;
  const size = room.entrySize - partKey(999999).length;
  const parts = Math.ceil(bytes.length / size);
  if (parts * room.entrySize > (4 << 20) / 4) return false;
  for (let i = 0; i < parts; i++) {
    cacheSet(room.raw, partKey(i), bytes.subarray(i * size, (i + 1) * size), { ttl: OUTCOME_MS }, UPSERT);
  }
  const head = JSON.stringify({ parts, length: bytes.length, text: typeof stored === 'string' });
  cacheSet(room.raw, `O${token}`, IN_PARTS + head, { ttl: OUTCOME_MS }, UPSERT);
  return true;
}

function readParts(raw, token, headText) {
  let head;
  try {
    head = JSON.parse(headText);
  } catch {
    return undefined;
  }
  const chunks = [];
  for (let i = 0; i < head.parts; i++) {
    const part = cachePeek(raw, `P${token}:${i}`);
    if (part === undefined) return undefined; // evicted meanwhile: load our own
    chunks.push(part);
  }
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== head.length) return undefined;
  return head.text ? bytes.toString('utf8') : bytes;
}

/**
 * Runs `loader` as the owner of the lease under `leaseKey` (none when `leaseKey` is undefined),
 * stores or reports its result, then releases the lease. The caller's promise settles with the
 * loader's value (cached or not), its error, the signal's reason, or ERR_FETCH_TIMEOUT once the
 * fetch has run `o.timeout` ms (which also aborts the loader's signal and tells the waiters).
 */
function load(cache, ctx, key, leaseKey, token, loader, o, storeTtl, staleValue, started) {
  const room = ctx.room;
  const ac = new AbortController();
  let endFlight;
  const flight = { result: undefined, ended: new Promise((resolve) => (endFlight = resolve)) };
  const end = (result) => {
    if (flight.result !== undefined) return false;
    flight.result = result;
    endFlight();
    stopRenewing();
    if (o.signal !== undefined) o.signal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
    owned.delete(token);
    return true;
  };
  const ours = () => {
    if (leaseKey === undefined) return true;
    try {
      return cachePeek(room.raw, leaseKey) === token;
    } catch {
      return false; // the cache was closed meanwhile
    }
  };
  const release = () => {
    if (leaseKey === undefined) return;
    try {
      if (cachePeek(room.raw, leaseKey) === token) cacheDelete(room.raw, leaseKey);
    } catch {
      // closed meanwhile
    }
  };
  const outcome = (text) => {
    try {
      cacheSet(room.raw, `O${token}`, text, { ttl: OUTCOME_MS }, UPSERT);
    } catch {
      // No room for the outcome: waiters find neither it nor a value and load their own.
    }
  };

  let renew;
  const stopRenewing = () => clearInterval(renew);
  if (leaseKey !== undefined) {
    renew = setInterval(() => {
      try {
        if (cachePeek(room.raw, leaseKey) === token) cacheTouch(room.raw, leaseKey, o.leaseTtl);
      } catch {
        // A closed cache: nothing to renew or release.
      }
    }, Math.max(1, Math.floor(o.leaseTtl / 3)));
    renew.unref();
  }

  // The caller gave up: hand the load over at once (the lease goes, no outcome), so that a
  // waiter here or in another process takes it, whether or not the loader heeds its signal.
  const onAbort = () => {
    if (!end({ handedOver: true, error: o.signal.reason })) return;
    ac.abort(o.signal.reason);
    release();
  };
  if (o.signal !== undefined) o.signal.addEventListener('abort', onAbort, { once: true });

  let timer;
  if (o.timeout !== Infinity) {
    timer = setTimeout(
      () => {
        const err = timeoutError(key, o.timeout, true);
        if (!end({ error: err })) return;
        ac.abort(err);
        outcome(THREW + describeError(err, Math.max(16, room.entrySize - 64)));
        release();
      },
      Math.max(0, o.timeout - (Date.now() - started)),
    );
    timer.unref();
  }

  owned.set(token, flight);
  const run = async () => {
    let value;
    try {
      value = await loader(key, staleValue, { signal: ac.signal, options: o.options, context: o.context });
    } catch (e) {
      if (flight.result === undefined && ours()) outcome(THREW + describeError(e, Math.max(16, room.entrySize - 64)));
      end({ error: e });
      release();
      return;
    }
    if (flight.result !== undefined) return; // aborted or timed out: this result is no one's
    try {
      if (value === undefined) {
        if (ours()) outcome(UNDEFINED);
      } else if (ours()) {
        // Only the lease's owner stores: one whose lease lapsed (a waiter took over and may
        // have stored a newer value) hands its value to its own callers only.
        const stored = store(cache, ctx, key, value, storeTtl);
        if (stored !== true && !writePartsSafely(room, token, stored)) outcome(UNCACHED);
      }
    } catch (e) {
      if (ours()) outcome(THREW + describeError(e, Math.max(16, room.entrySize - 64)));
      end({ error: e });
      release();
      return;
    }
    end({ ok: true, value });
    release();
  };
  run();

  return flight.ended.then(() => {
    const r = flight.result;
    if (r.ok) return r.value;
    throw r.error;
  });
}

function writePartsSafely(room, token, stored) {
  try {
    return writeParts(room, token, stored);
  } catch {
    return false;
  }
}

/**
 * Stores a loaded value as `set` would; true when cached, else the value as it would have been
 * stored (too large for a record: any older value of the key is removed, as it is stale).
 */
function store(cache, ctx, key, value, ttl) {
  const stored = ctx.encode(value);
  try {
    cacheSet(ctx.raw, key, stored, ttl === undefined ? undefined : { ttl }, UPSERT);
    return true;
  } catch (e) {
    if (e === null || typeof e !== 'object') throw e;
    if (e.code === 'ERR_SHM_VALUE_TOO_LARGE') {
      cacheDelete(ctx.raw, key);
      return stored;
    }
    if (e.code === 'ERR_SHM_KEY_TOO_LARGE') return stored;
    throw e;
  }
}

/**
 * Stale-while-revalidate: when the entry just served has no more than `o.swr` ms to live, one
 * caller on the machine (whoever adds the lease) refreshes it in the background.
 */
function refreshIfStale(cache, ctx, key, leaseKey, loader, o, storeTtl, staleValue) {
  const at = cacheExpiry(ctx.raw, key);
  if (at === undefined || at === 0 || at - Date.now() > o.swr) return;
  const token = newToken();
  let leased = false;
  try {
    leased = cacheSet(ctx.room.raw, leaseKey, token, { ttl: o.leaseTtl }, ADD);
  } catch {
    return;
  }
  if (!leased) return;
  const background = { ...o, signal: undefined };
  load(cache, ctx, key, leaseKey, token, loader, background, storeTtl, staleValue, Date.now()).catch(() => {
    // A failed refresh leaves the stale value in place until it expires.
  });
}

module.exports = { fetchSlow, Room };

'use strict';
// `SharedLRU#fetch`: a read-through that runs one loader on the whole machine for a missing key,
// however many processes miss it at once. The protocol lives here, in JS over plain cache calls;
// the engine knows nothing of it.
//
// The lease. A caller that misses `key` tries to `add` a lease entry under `\0L:` + key whose value
// names its owner (`pid.thread.sequence.random`) and whose time to live is the lease time. `add`
// is atomic across processes, so exactly one caller wins and runs the loader; every other caller
// finds the lease and waits until it goes away. While the loader runs its owner renews the lease
// (every third of the lease time), so a lease only lapses when its owner is dead or stuck; then
// the engine expires it and the first waiter whose `add` succeeds takes over. When the loader
// settles the owner stores the value under `key` (or, for an error or a result that cannot be
// cached, an outcome entry under `\0O:` + owner that lives a few seconds) and only then removes
// the lease, so a waiter that sees the lease gone finds the value or the outcome by looking.
// Callers in the owner's own process skip the polling: they await the owner's promise.
//
// Waiting backs off with timers (2 ms, growing to 50 ms) rather than sleeping on a futex in the
// segment: a futex wait blocks the thread, which in Node means the event loop (or a thread per
// waiter that must be woken and joined), and a robust wake-up still needs the timed look for an
// owner that dies without waking anyone. A poll is two native calls of well under a microsecond,
// so a waiter costs nothing measurable and the event loop stays free.

const native = require('./native');
const { argType, argValue, outOfRange, codedError, isEngineError } = require('./errors');

const { cacheSet, cachePeek, cacheDelete, cacheTouch, cacheExpiry } = native;

const ADD = 1;
const UPSERT = 0;

/** Prefixes of the entries the protocol keeps in the cache; iteration does not show them. */
const LEASE_PREFIX = '\u0000L:';
const OUTCOME_PREFIX = '\u0000O:';

const DEFAULT_LEASE_MS = 10_000;
const FIRST_WAIT_MS = 2;
const LONGEST_WAIT_MS = 50;
/** How long an outcome stays for the waiters to read: many of their longest waits. */
const OUTCOME_MS = 5_000;

// Outcome records: the loader threw, or returned undefined, or its value could not be cached.
const THREW = 'E';
const UNDEFINED = 'U';
const UNCACHED = 'N';

/** Loads this process owns, by lease token: waiters here await the promise instead of polling. */
const owned = new Map();

let sequence = 0;
const ownerPrefix = `${process.pid}.${threadId()}.`;

function threadId() {
  try {
    return require('worker_threads').threadId;
  } catch {
    return 0;
  }
}

function newToken() {
  sequence = (sequence + 1) % 0x7fffffff;
  return `${ownerPrefix}${sequence.toString(36)}.${Math.floor(Math.random() * 0x10000).toString(36)}`;
}

/** Whether a key the engine returned is one of the protocol's own entries. */
function isProtocolKey(k) {
  if (typeof k === 'string') {
    return k.charCodeAt(0) === 0 && (k.startsWith(LEASE_PREFIX) || k.startsWith(OUTCOME_PREFIX));
  }
  return (
    k !== null && typeof k === 'object' && k.length >= 3 && k[0] === 0 && (k[1] === 0x4c || k[1] === 0x4f) && k[2] === 0x3a
  );
}

function prefixed(prefix, key) {
  if (typeof key === 'string') return prefix + key;
  return Buffer.concat([Buffer.from(prefix, 'latin1'), key]);
}

function nonNegative(o, name, dflt) {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v)) throw argType(`options.${name}`, 'a number of milliseconds', v);
  if (v < 0 || (!Number.isInteger(v) && v !== Infinity)) {
    throw outOfRange(`options.${name}`, 'a whole number of milliseconds, 0 or more', v);
  }
  return v;
}

/** The options of a fetch, checked once. */
function fetchOptions(options) {
  if (options === undefined || options === null) options = {};
  else if (typeof options !== 'object') throw argType('options', 'an object', options);
  const ttl = options.ttl === undefined ? undefined : nonNegative(options, 'ttl', 0);
  const allowStale = options.allowStale === true;
  const staleTtl = nonNegative(options, 'staleTtl', 0);
  if (allowStale && !(staleTtl > 0)) {
    throw argValue('options.staleTtl', 'a number of ms above 0 when allowStale is set', options.staleTtl);
  }
  const leaseTtl = nonNegative(options, 'leaseTtl', DEFAULT_LEASE_MS);
  if (leaseTtl === 0 || leaseTtl === Infinity) throw outOfRange('options.leaseTtl', 'a whole number of ms above 0', leaseTtl);
  const timeout = nonNegative(options, 'timeout', Infinity);
  const signal = options.signal;
  if (signal !== undefined && (signal === null || typeof signal.aborted !== 'boolean')) {
    throw argType('options.signal', 'an AbortSignal', signal);
  }
  return {
    ttl,
    allowStale,
    staleTtl: allowStale ? staleTtl : 0,
    leaseTtl,
    timeout,
    signal,
    forceRefresh: options.forceRefresh === true,
    retryOnError: options.retryOnError === true,
  };
}

function timeoutError(key, ms) {
  return codedError(Error, 'ERR_FETCH_TIMEOUT', `fetch of ${JSON.stringify(String(key))} waited ${ms} ms for another caller's load`);
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
  err.loaderPid = Number(owner.split('.')[0]);
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
 * The fetch of `key` on `cache`, past its hit path: see the file's opening paragraph. `ctx`
 * holds the cache's native handle (`raw`, for the protocol's own entries, which bypass any
 * serializer), its default time to live (`defaultTtl`) and `store(key, value, ttl) → boolean`,
 * which stores a loaded value as `set` would and says whether it was cached.
 */
async function fetchSlow(cache, ctx, key, loader, options) {
  const raw = ctx.raw;
  const o = fetchOptions(options);
  if (o.signal !== undefined && o.signal.aborted) throw o.signal.reason;
  const leaseKey = prefixed(LEASE_PREFIX, key);
  const storeTtl = storedTtl(ctx, o);
  const started = Date.now();

  if (!o.forceRefresh) {
    const v = cache.get(key);
    if (v !== undefined) {
      if (o.staleTtl > 0) refreshIfStale(cache, ctx, key, leaseKey, loader, o, storeTtl, v);
      return v;
    }
  }

  let lookFirst = !o.forceRefresh;
  for (;;) {
    if (lookFirst) {
      const v = cache.get(key);
      if (v !== undefined) return v;
    }
    lookFirst = true;
    const token = newToken();
    let leased;
    try {
      leased = cacheSet(raw, leaseKey, token, { ttl: o.leaseTtl }, ADD);
    } catch (e) {
      // No room for a lease (a full non-evicting cache, a key too long for a record): load
      // without one rather than fail.
      if (!isEngineError(e)) throw e;
      return load(cache, ctx, key, undefined, token, loader, o, storeTtl, undefined);
    }
    if (leased) return load(cache, ctx, key, leaseKey, token, loader, o, storeTtl, undefined);

    const holder = cachePeek(raw, leaseKey);
    if (holder === undefined) continue; // released between our add and our look
    const result = await waitFor(raw, key, leaseKey, holder, o, started);
    if (result.done) return result.value;
    // Otherwise: the holder died, or its load failed and retryOnError is set; look again.
  }
}

/** The time to live a fetched value is stored with: its fresh time plus its stale time. */
function storedTtl(ctx, o) {
  const fresh = o.ttl === undefined ? ctx.defaultTtl : o.ttl;
  if (fresh === 0 || o.staleTtl === 0) return o.ttl;
  return fresh + o.staleTtl;
}

/**
 * Waits while `holder` holds the lease. Resolves `{ done: true, value }` when its load decided
 * the result, `{ done: false }` when the caller should look again; rejects with the loader's
 * error, the signal's reason or a timeout.
 */
async function waitFor(raw, key, leaseKey, holder, o, started) {
  let wait = FIRST_WAIT_MS;
  const local = owned.get(holder);
  for (;;) {
    const left = o.timeout - (Date.now() - started);
    if (left <= 0) throw timeoutError(key, o.timeout);
    await pause(Math.min(wait, left), local === undefined ? undefined : local.promise, o.signal);
    if (o.signal !== undefined && o.signal.aborted) throw o.signal.reason;
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    if (local !== undefined && local.settled) break;
    if (local === undefined && cachePeek(raw, leaseKey) !== holder) break;
  }
  if (local !== undefined) {
    if (local.ok) return { done: true, value: local.value };
    if (local.aborted || o.retryOnError) return { done: false };
    throw local.error;
  }
  const outcome = cachePeek(raw, prefixed(OUTCOME_PREFIX, holder));
  if (outcome === undefined) return { done: false };
  switch (outcome[0]) {
    case THREW:
      if (o.retryOnError) return { done: false };
      throw reviveError(outcome.slice(1), holder);
    case UNDEFINED:
      return { done: true, value: undefined };
    default:
      return { done: false }; // UNCACHED: the value never reached the cache; load our own
  }
}

/**
 * Runs `loader` as the owner of the lease under `leaseKey` (none when `leaseKey` is undefined),
 * stores or reports its result, then releases the lease.
 */
function load(cache, ctx, key, leaseKey, token, loader, o, storeTtl, staleValue) {
  const raw = ctx.raw;
  const ac = new AbortController();
  const flight = { promise: undefined, settled: false, ok: false, value: undefined, error: undefined, aborted: false };
  const onAbort = () => {
    flight.aborted = true;
    ac.abort(o.signal.reason);
  };
  if (o.signal !== undefined) o.signal.addEventListener('abort', onAbort, { once: true });
  let renew;
  if (leaseKey !== undefined) {
    renew = setInterval(() => {
      try {
        if (cachePeek(raw, leaseKey) === token) cacheTouch(raw, leaseKey, o.leaseTtl);
      } catch {
        // A closed cache: the finally below has nothing to release either.
      }
    }, Math.max(1, Math.floor(o.leaseTtl / 3)));
    renew.unref();
  }
  const outcome = (text) => {
    try {
      cacheSet(raw, prefixed(OUTCOME_PREFIX, token), text, { ttl: OUTCOME_MS }, UPSERT);
    } catch {
      // No room for the outcome: waiters find neither it nor a value and load their own.
    }
  };
  const run = async () => {
    try {
      const value = await loader(key, { signal: ac.signal, staleValue });
      if (flight.aborted) throw o.signal.reason;
      if (value === undefined) {
        outcome(UNDEFINED);
      } else if (!ctx.store(key, value, storeTtl)) {
        outcome(UNCACHED);
      }
      flight.ok = true;
      flight.value = value;
      return value;
    } catch (e) {
      flight.error = e;
      // An aborted owner leaves no outcome, so that its waiters take over instead of failing.
      if (!flight.aborted) outcome(THREW + describeError(e, Math.max(16, cache.recordSize - 64)));
      throw e;
    } finally {
      flight.settled = true;
      clearInterval(renew);
      if (o.signal !== undefined) o.signal.removeEventListener('abort', onAbort);
      if (leaseKey !== undefined) {
        try {
          if (cachePeek(raw, leaseKey) === token) cacheDelete(raw, leaseKey);
        } catch {
          // closed meanwhile
        }
      }
      owned.delete(token);
    }
  };
  flight.promise = run();
  owned.set(token, flight);
  // The owner's caller may stop waiting (its signal) before the loader ends.
  flight.promise.catch(() => {});
  if (o.signal === undefined) return flight.promise;
  return Promise.race([
    flight.promise,
    new Promise((_, reject) => {
      if (o.signal.aborted) reject(o.signal.reason);
      else o.signal.addEventListener('abort', () => reject(o.signal.reason), { once: true });
    }),
  ]);
}

/**
 * Stale-while-revalidate: when the entry just served has no more than `o.staleTtl` ms to live,
 * one caller on the machine (whoever adds the lease) refreshes it in the background.
 */
function refreshIfStale(cache, ctx, key, leaseKey, loader, o, storeTtl, staleValue) {
  const raw = ctx.raw;
  const at = cacheExpiry(raw, key);
  if (at === undefined || at === 0 || at - Date.now() > o.staleTtl) return;
  const token = newToken();
  let leased = false;
  try {
    leased = cacheSet(raw, leaseKey, token, { ttl: o.leaseTtl }, ADD);
  } catch {
    return;
  }
  if (!leased) return;
  const background = { ...o, signal: undefined };
  load(cache, ctx, key, leaseKey, token, loader, background, storeTtl, staleValue).catch(() => {
    // A failed refresh leaves the stale value in place until it expires.
  });
}

module.exports = { fetchSlow, isProtocolKey, LEASE_PREFIX, OUTCOME_PREFIX };

'use strict';
// The Redis lease that lets one loader run per key across every machine and process: a key
// `<leasePrefix><key>` set with NX and PX to a random owner token. The owner renews it while its
// loader runs and deletes it (only if still its own) when done; a loader's error is left for
// the waiters under `<lease key>:err:<token>` for a few seconds. Waiters never spin: they sleep
// with a growing, jittered delay, and are woken early when the key's invalidation arrives.


// Renews the lease if it is still ours.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
// Deletes the lease if it is still ours.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

function defineScripts(redis) {
  if (typeof redis.tieredLeaseRenew !== 'function') {
    redis.defineCommand('tieredLeaseRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('tieredLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
  }
}

// What a waiter is told of a loader's error: enough to recognise it, without its stack.
function errorRecord(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return JSON.stringify({ name: e.name, message: e.message, code: e.code });
}

function loaderError(json, key) {
  let rec;
  try {
    rec = JSON.parse(json);
  } catch {
    rec = { message: String(json) };
  }
  const e = new Error(`the loader for ${JSON.stringify(key)} failed on another process: ${rec.message}`);
  e.code = 'ERR_TIERED_LOADER_FAILED';
  e.loaderError = rec;
  return e;
}

module.exports = { defineScripts, errorRecord, loaderError };

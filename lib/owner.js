'use strict';
// Who holds a lease: a token naming the process (its pid, the start time the kernel gives it in
// /proc and its pid namespace) and the thread, plus a sequence number and a random part so that
// no two tokens are alike, on this machine or another. Every process sharing a cache is on this machine, so a waiter can ask
// /proc whether a token's process still lives: a pid that is gone, a zombie, or a pid now used by
// a process started at another time means the owner is dead.

const crypto = require('node:crypto');
const fs = require('node:fs');

let sequence = 0;
let self;

function threadId() {
  try {
    return require('node:worker_threads').threadId;
  } catch {
    return 0;
  }
}

/** `{ state, start }` of process `pid` from /proc/<pid>/stat, or undefined if there is none. */
function procStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], start: fields[19] };
}

function pidNamespace() {
  try {
    return fs.readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
  } catch {
    return '0';
  }
}

function me() {
  if (self === undefined) {
    const st = procStat(process.pid);
    self = `${process.pid}.${st === undefined ? '0' : st.start}.${pidNamespace()}.${threadId()}.`;
  }
  return self;
}

/**
 * A token no other caller has: `pid.start.pidns.thread.sequence.random`, the random part 64 bits,
 * so that tokens of different machines (sharing a Redis, say) do not meet either.
 */
function newToken() {
  sequence = (sequence + 1) % 0x7fffffff;
  return `${me()}${sequence.toString(36)}.${crypto.randomBytes(8).toString('hex')}`;
}

/** The pid a token names (NaN for a token not made by newToken). */
function tokenPid(token) {
  return Number(String(token).split('.')[0]);
}

/**
 * Whether the process that made `token` is certainly dead. False whenever it cannot be told: a
 * process in another pid namespace, this process itself (a thread of it), or /proc unreadable.
 */
function ownerGone(token) {
  const [pid, start, ns] = String(token).split('.');
  if (start === '0' || !/^\d+$/.test(pid)) return false;
  const mine = me().split('.');
  if (ns !== mine[2] || pid === mine[0]) return false;
  const st = procStat(pid);
  if (st === undefined) return fs.existsSync('/proc/self/stat');
  return st.state === 'Z' || st.state === 'X' || st.start !== start;
}

/** The start time /proc gives process `pid`, or null when it is gone (or a zombie). */
function startTime(pid) {
  const st = procStat(pid);
  if (st === undefined || st.state === 'Z' || st.state === 'X') return null;
  return st.start;
}

module.exports = { newToken, tokenPid, ownerGone, startTime };

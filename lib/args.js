'use strict';
// The package's checks of numeric arguments and option fields, in the wording of lib/errors.js:
// every check throws a TypeError (ERR_INVALID_ARG_TYPE) for a value that is not a number and a
// RangeError (ERR_OUT_OF_RANGE) for one outside what it may be. Also the byte budget that the
// caches the package makes for a store (the keyv store, TieredCache's L1) get by default.

const { argType, outOfRange } = require('./errors');

/** `v`, an integer from `min` to `max`; `name` names the argument in the error. */
function integer(v, name, min, max) {
  if (typeof v !== 'number') throw argType(name, 'a number', v);
  if (!Number.isInteger(v) || v < min || v > max) throw outOfRange(name, `an integer from ${min} to ${max}`, v);
  return v;
}

/**
 * Field `field` of the options object `o` as a whole number of milliseconds: `dflt` when it is
 * undefined; at least `min` (default 0); Infinity only if `infinite` is set.
 */
function optionMs(o, field, dflt, { min = 0, infinite = false } = {}) {
  const v = o[field];
  if (v === undefined) return dflt;
  const name = `options.${field}`;
  if (typeof v !== 'number' || Number.isNaN(v)) throw argType(name, 'a number of milliseconds', v);
  if (v === Infinity && infinite) return v;
  if (!Number.isSafeInteger(v) || v < min) {
    throw outOfRange(name, `a whole number of milliseconds, ${min} or more${infinite ? ', or Infinity' : ''}`, v);
  }
  return v;
}

/**
 * The byte budget of a cache made for a store when its options give neither `recordSize` nor
 * `maxBytes`: 64 MiB, in which the engine's default `maxValueSize` is 1 MiB (the smaller of
 * 1 MiB and an eighth of the budget).
 */
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The cache options `o` of a store, with a byte budget of DEFAULT_MAX_BYTES when they ask for
 * neither kind of cache: records of one size (`recordSize`) or a byte budget (`maxBytes`). Both
 * given pass on as they are, for the addon to refuse; it checks every number.
 */
function withDefaultBudget(o) {
  if (o.recordSize !== undefined || o.maxBytes !== undefined) return o;
  return { ...o, maxBytes: DEFAULT_MAX_BYTES };
}

module.exports = { integer, optionMs, withDefaultBudget, DEFAULT_MAX_BYTES };

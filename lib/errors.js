'use strict';
// The package's argument errors, in one wording, the one the addon's own errors use: a TypeError
// (code ERR_INVALID_ARG_TYPE, or ERR_INVALID_ARG_VALUE for a value of the right type that means
// nothing) or a RangeError (ERR_OUT_OF_RANGE) saying `the "x" argument must be …, got …`, or
// `the "options.x" property …` for a field of an options object, as node's own errors do. Also
// how to tell an error the engine raised (code ERR_SHM_*) from any other.

/** What a value was, for the end of a message: `got string "abc"`, `got an instance of Map`. */
function describe(v) {
  if (v === null || v === undefined) return String(v);
  switch (typeof v) {
    case 'string':
      return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    case 'bigint':
      return `bigint ${v}n`;
    case 'function':
      return 'a function';
    case 'object':
      return v.constructor && v.constructor.name ? `an instance of ${v.constructor.name}` : 'an object';
    default:
      return `${typeof v} ${String(v)}`;
  }
}

function subject(name) {
  return name.includes('.') ? `the "${name}" property` : `the "${name}" argument`;
}

/** An error of class `Ctor` with a stable `code` (and, when given, the error that caused it). */
function codedError(Ctor, code, message, cause) {
  const err = new Ctor(message, cause === undefined ? undefined : { cause });
  err.code = code;
  return err;
}

/** `name` is not of the type it must be. */
function argType(name, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `${subject(name)} must be ${expected}, got ${describe(value)}`);
}

/** `name` has the right type but a value that means nothing. */
function argValue(name, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `${subject(name)} must be ${expected}, got ${describe(value)}`);
}

/** `name` is a number outside what it may be. */
function outOfRange(name, expected, value) {
  return codedError(RangeError, 'ERR_OUT_OF_RANGE', `${subject(name)} must be ${expected}, got ${describe(value)}`);
}

/** Whether `e` is an error the engine raised (the addon gives those a code ERR_SHM_*). */
function isEngineError(e) {
  return e !== null && typeof e === 'object' && typeof e.code === 'string' && e.code.startsWith('ERR_SHM_');
}

module.exports = { codedError, argType, argValue, outOfRange, isEngineError };

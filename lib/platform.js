'use strict';
// Where the package's native files are, for this machine: the addon (lib/native.js) and the
// `shm-lru` command (bin/shm-lru.js) are each looked for, in order,
//
//   1. at the path an environment variable names (SHM_TYPED_LRU_NATIVE, SHM_TYPED_LRU_CLI);
//   2. in build/, made from source by `node scripts/build.js` (a checkout, or a package built
//      where no prebuilt file fits);
//   3. in prebuilds/<platform>/, shipped in the package (`npm run dist`, scripts/dist.js), when
//      prebuilds/manifest.json says they were built for exactly this package's version.
//
// <platform> is `linux-<arch>-<libc>`: arch as Node names it (x64, arm64), libc `gnu` or `musl`.
// The prebuilt gnu files need glibc 2.17 or later; the musl ones, musl's own loader.

const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const PREBUILDS = path.join(ROOT, 'prebuilds');

/**
 * The C library this process runs on: 'musl' when musl's dynamic loader is mapped into it, else
 * 'gnu'. The process's own mappings are what counts (a glibc machine may also have musl
 * installed, and the reverse), and reading them works the same under Node, Bun and Deno.
 * musl's loader is its C library too: Alpine maps it as `ld-musl-<arch>.so.1`, while other
 * layouts (Debian's musl package, say) map the file itself, `.../libc.so`. That name counts as
 * musl only in a process with no glibc mapped (`libc.so.6`, or before glibc 2.34 `libc-2.N.so`,
 * and its loader `ld-linux*.so.N` or `ld-2.N.so`). A file replaced since it was mapped shows as
 * `<path> (deleted)`.
 */
function libc(maps = readMaps()) {
  if (/\/(ld-musl-[^/\s]*\.so|libc\.musl-[^/\s]*\.so)/.test(maps)) return 'musl';
  const glibc = /\/(libc\.so\.6|libc-2\.\d+\.so|ld-linux[^/\s]*\.so\.\d+|ld-2\.\d+\.so)( \(deleted\))?$/m;
  return /\/libc\.so( \(deleted\))?$/m.test(maps) && !glibc.test(maps) ? 'musl' : 'gnu';
}

function readMaps() {
  try {
    return fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return '';
  }
}

/** This machine's platform name, as prebuilds/ names its folders: e.g. `linux-x64-gnu`. */
function platformName() {
  const base = `${process.platform}-${process.arch}`;
  return process.platform === 'linux' ? `${base}-${libc()}` : base;
}

function packageVersion() {
  return require('../package.json').version;
}

/**
 * The prebuilt file `name` for this platform, or null with the reason in `why`: no manifest
 * (nothing prebuilt, e.g. a checkout), built for another version, or not built for this platform.
 */
function prebuilt(name) {
  const platform = platformName();
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(PREBUILDS, 'manifest.json'), 'utf8'));
  } catch {
    return { file: null, why: 'this copy of the package has no prebuilt files' };
  }
  const version = packageVersion();
  if (manifest.version !== version) {
    return { file: null, why: `its prebuilt files are of version ${manifest.version}, not ${version}` };
  }
  const file = path.join(PREBUILDS, platform, name);
  if (!(manifest.platforms || []).includes(platform) || !fs.existsSync(file)) {
    const have = (manifest.platforms || []).join(', ') || 'none';
    return { file: null, why: `no prebuilt ${name} for ${platform} (prebuilt for: ${have})` };
  }
  return { file, why: null };
}

/**
 * Finds native file `name`: `{ file, from }` with `from` 'env', 'build' or 'prebuilt', or
 * `{ file: null, looked }` listing each place looked at and why it did not fit.
 */
function locate(name, envVar) {
  const fromEnv = readEnv(envVar);
  if (fromEnv) return { file: path.resolve(fromEnv), from: 'env' };
  const local = path.join(ROOT, 'build', name);
  if (fs.existsSync(local)) return { file: local, from: 'build' };
  const pre = prebuilt(name);
  if (pre.file) return { file: pre.file, from: 'prebuilt' };
  return {
    file: null,
    looked: [`$${envVar}: not set`, `${local}: not built`, `${path.join(PREBUILDS, platformName(), name)}: ${pre.why}`],
  };
}

/** An environment variable, or undefined where reading it is not allowed (Deno without --allow-env). */
function readEnv(name) {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
}

/** The command that builds the native files of this copy of the package from source. */
function buildCommand(extra = '') {
  return `node ${JSON.stringify(path.join(ROOT, 'scripts', 'build.js'))}${extra}`;
}

/** The error thrown when no native file is found: what was looked for, and how to build it. */
function notFound(what, name, envVar, looked, extra) {
  const err = new Error(
    `shm-typed-lru ${packageVersion()}: no ${what} for ${platformName()} ` +
      `(${process.platform}, ${process.arch}, libc ${process.platform === 'linux' ? libc() : 'n/a'}).\n` +
      `Looked at:\n${looked.map((l) => `  ${l}`).join('\n')}\n` +
      `Build it from source (needs Rust 1.85 or newer, https://rustup.rs; Linux only):\n` +
      `  ${buildCommand(extra)}`,
  );
  err.code = 'ERR_SHM_ADDON_NOT_BUILT';
  return err;
}

module.exports = { libc, platformName, prebuilt, locate, notFound, buildCommand, ROOT, PREBUILDS };

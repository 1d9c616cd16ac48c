#!/usr/bin/env node
'use strict';
// Builds the native addon (`cargo build --release -p shm-lru-node`) and copies it to
// build/shm_typed_lru.node. With --if-needed, does nothing when that file is newer than every
// file under crates/ and than Cargo.toml and Cargo.lock. With --bench, builds the addon with its
// benchmark hooks (the `bench-hooks` feature) into build/shm_typed_lru_bench.node instead, for
// bench/node.js; the package never loads that file.
//
// The library copied is the one cargo reports having built (`--message-format=json`), so
// CARGO_TARGET_DIR, CARGO_BUILD_TARGET and the like are honoured and a stale library left in
// another target directory is never picked up. Installed as a dependency (inside
// node_modules), the package is built in a temporary target directory that is removed after the
// .node file is copied out, so no target/ is left in the consumer's node_modules (set
// CARGO_TARGET_DIR to keep and reuse one).

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const bench = process.argv.includes('--bench');
const out = path.join(root, 'build', bench ? 'shm_typed_lru_bench.node' : 'shm_typed_lru.node');

const NO_CARGO =
  'shm-typed-lru: building the native addon needs Rust (cargo 1.85 or newer), and `cargo` is not on ' +
  'the PATH: install it with rustup (https://rustup.rs), then run `npm rebuild shm-typed-lru`.';

function newestInputMtime() {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) visit(path.join(p, name));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  visit(path.join(root, 'crates'));
  visit(path.join(root, 'Cargo.toml'));
  visit(path.join(root, 'Cargo.lock'));
  return newest;
}

function upToDate() {
  try {
    return fs.statSync(out).mtimeMs > newestInputMtime();
  } catch {
    return false;
  }
}

/** Whether the package at `dir` is installed as a dependency of another project. */
function isDependency(dir) {
  return dir.split(path.sep).includes('node_modules');
}

/**
 * The target directory to build in: `null` for cargo's own choice (CARGO_TARGET_DIR when set,
 * else the workspace's target/), or a temporary one for a package inside node_modules.
 */
function chooseTargetDir(dir, env) {
  if (env.CARGO_TARGET_DIR || !isDependency(dir)) return null;
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shm-typed-lru-build-'));
}

/**
 * The addon library among cargo's JSON messages (one per line): the file of the last
 * `compiler-artifact` of the shm-lru-node cdylib.
 */
function artifactFrom(stdout) {
  let lib = null;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    if (msg.reason !== 'compiler-artifact' || !msg.target || msg.target.name !== 'shm_lru_node') continue;
    if (!msg.target.kind.includes('cdylib')) continue;
    const so = (msg.filenames || []).find((f) => /\.(so|dylib|dll)$/.test(f));
    if (so) lib = so;
  }
  return lib;
}

function cargoBuild(env) {
  const features = bench ? ['--features', 'bench-hooks'] : [];
  const args = ['build', '--release', '-p', 'shm-lru-node', '--message-format=json-render-diagnostics', ...features];
  // Diagnostics and progress go to stderr as usual; stdout carries the JSON messages.
  const r = spawnSync('cargo', args, {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error && r.error.code === 'ENOENT') {
    const err = new Error(NO_CARGO);
    err.code = 'ENOENT';
    throw err;
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`cargo build exited with status ${r.status}`);
  const lib = artifactFrom(r.stdout);
  if (!lib) throw new Error('cargo did not report the shm-lru-node library it built');
  return lib;
}

function main() {
  if (process.argv.includes('--if-needed') && upToDate()) {
    console.log(`shm-typed-lru: ${path.relative(root, out)} is up to date`);
    return;
  }
  const tmpTarget = chooseTargetDir(root, process.env);
  const env = tmpTarget ? { ...process.env, CARGO_TARGET_DIR: tmpTarget } : process.env;
  try {
    const lib = cargoBuild(env);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    // Copy to a temporary name and rename, so that a process loading the addon never sees half a file.
    const tmp = `${out}.${process.pid}.tmp`;
    fs.copyFileSync(lib, tmp);
    fs.renameSync(tmp, out);
  } finally {
    if (tmpTarget) fs.rmSync(tmpTarget, { recursive: true, force: true });
  }
  console.log(`shm-typed-lru: built ${path.relative(root, out)}`);
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(e.code === 'ENOENT' ? e.message : `shm-typed-lru: build failed: ${e.message}`);
    process.exit(1);
  }
}

module.exports = { artifactFrom, chooseTargetDir, isDependency, NO_CARGO };

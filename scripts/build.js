#!/usr/bin/env node
'use strict';
// Builds the native addon (`cargo build --release -p shm-lru-node`) and copies it to
// build/shm_typed_lru.node; with --cli, also the `shm-lru` command (`-p shm-lru-cli`, in the same
// cargo run) to build/shm-lru, which bin/shm-lru.js runs. With --if-needed, does nothing when the
// files are newer than every file under crates/ and than Cargo.toml and Cargo.lock. With --bench,
// builds the addon with its benchmark hooks (the `bench-hooks` feature) into
// build/shm_typed_lru_bench.node instead, for bench/node.js; the package never loads that file.
//
// A checkout needs this; an installed package does too on a platform it has no prebuilt files for
// (lib/platform.js): `node node_modules/shm-typed-lru/scripts/build.js [--cli]`.
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
const cli = process.argv.includes('--cli') && !bench;
const out = path.join(root, 'build', bench ? 'shm_typed_lru_bench.node' : 'shm_typed_lru.node');
const cliOut = path.join(root, 'build', 'shm-lru');

const NO_CARGO =
  'shm-typed-lru: building the native addon needs Rust (cargo 1.85 or newer), and `cargo` is not on ' +
  'the PATH: install it with rustup (https://rustup.rs), then run this command again.';

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
    const newest = newestInputMtime();
    return [out, ...(cli ? [cliOut] : [])].every((f) => fs.statSync(f).mtimeMs > newest);
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
  return artifactsFrom(stdout).addon;
}

/**
 * The addon library and the `shm-lru` executable among cargo's JSON messages: `{ addon, cli }`,
 * each the file of the last such `compiler-artifact`, or null.
 */
function artifactsFrom(stdout) {
  let lib = null;
  let exe = null;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    if (msg.reason !== 'compiler-artifact' || !msg.target) continue;
    if (msg.target.name === 'shm-lru' && msg.target.kind.includes('bin') && msg.executable) exe = msg.executable;
    if (msg.target.name !== 'shm_lru_node' || !msg.target.kind.includes('cdylib')) continue;
    const so = (msg.filenames || []).find((f) => /\.(so|dylib|dll)$/.test(f));
    if (so) lib = so;
  }
  return { addon: lib, cli: exe };
}

function cargoBuild(env) {
  const features = bench ? ['--features', 'bench-hooks'] : [];
  const packages = ['-p', 'shm-lru-node', ...(cli ? ['-p', 'shm-lru-cli'] : [])];
  const args = ['build', '--release', ...packages, '--message-format=json-render-diagnostics', ...features];
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
  const built = artifactsFrom(r.stdout);
  if (!built.addon) throw new Error('cargo did not report the shm-lru-node library it built');
  if (cli && !built.cli) throw new Error('cargo did not report the shm-lru executable it built');
  return built;
}

/** Copies `from` to `to` through a temporary name, so no one ever sees half a file there. */
function install(from, to, mode) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const tmp = `${to}.${process.pid}.tmp`;
  fs.copyFileSync(from, tmp);
  if (mode) fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, to);
}

function main() {
  if (process.argv.includes('--if-needed') && upToDate()) {
    console.log(`shm-typed-lru: ${path.relative(root, out)} is up to date`);
    return;
  }
  const tmpTarget = chooseTargetDir(root, process.env);
  const env = tmpTarget ? { ...process.env, CARGO_TARGET_DIR: tmpTarget } : process.env;
  try {
    const built = cargoBuild(env);
    install(built.addon, out);
    if (cli) install(built.cli, cliOut, 0o755);
  } finally {
    if (tmpTarget) fs.rmSync(tmpTarget, { recursive: true, force: true });
  }
  console.log(`shm-typed-lru: built ${path.relative(root, out)}${cli ? ` and ${path.relative(root, cliOut)}` : ''}`);
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(e.code === 'ENOENT' ? e.message : `shm-typed-lru: build failed: ${e.message}`);
    process.exit(1);
  }
}

module.exports = { artifactFrom, artifactsFrom, chooseTargetDir, isDependency, NO_CARGO };

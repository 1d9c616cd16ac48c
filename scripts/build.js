#!/usr/bin/env node
'use strict';
// Builds the native addon (`cargo build --release -p shm-lru-node`) and copies it to
// build/shm_typed_lru.node. With --if-needed, does nothing when that file is newer than every
// file under crates/ and than Cargo.toml and Cargo.lock. With --bench, builds the addon with its
// benchmark hooks (the `bench-hooks` feature) into build/shm_typed_lru_bench.node instead, for
// bench/node.js; the package never loads that file.

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const bench = process.argv.includes('--bench');
const out = path.join(root, 'build', bench ? 'shm_typed_lru_bench.node' : 'shm_typed_lru.node');

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

function targetDir() {
  if (process.env.CARGO_TARGET_DIR) return path.resolve(root, process.env.CARGO_TARGET_DIR);
  const meta = execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(meta).target_directory;
}

function main() {
  if (process.argv.includes('--if-needed') && upToDate()) {
    console.log(`shm-typed-lru: ${path.relative(root, out)} is up to date`);
    return;
  }
  const features = bench ? ['--features', 'bench-hooks'] : [];
  execFileSync('cargo', ['build', '--release', '-p', 'shm-lru-node', ...features], { cwd: root, stdio: 'inherit' });
  const lib = path.join(targetDir(), 'release', 'libshm_lru_node.so');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  // Copy to a temporary name and rename, so that a process loading the addon never sees half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  fs.copyFileSync(lib, tmp);
  fs.renameSync(tmp, out);
  console.log(`shm-typed-lru: built ${path.relative(root, out)}`);
}

try {
  main();
} catch (e) {
  console.error(`shm-typed-lru: build failed: ${e.message}`);
  process.exit(1);
}

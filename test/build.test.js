'use strict';
// scripts/build.js: the one line a user without Rust gets, the library taken from what cargo
// reports (not from a hard-coded target/release), and no target/ left inside node_modules.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { artifactFrom, chooseTargetDir, isDependency } = require('../scripts/build.js');

const SCRIPT = path.join(__dirname, '..', 'scripts', 'build.js');

test('without cargo on the PATH, one line says what is missing and how to get it', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'no-cargo-'));
  try {
    const r = spawnSync(process.execPath, [SCRIPT], { env: { ...process.env, PATH: empty }, encoding: 'utf8' });
    assert.strictEqual(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.strictEqual(lines.length, 1, r.stderr);
    assert.match(lines[0], /needs Rust \(cargo 1\.85 or newer\)/);
    assert.match(lines[0], /rustup/);
    assert.doesNotMatch(r.stderr, /ENOENT/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('the library is the one cargo reports, wherever its target directory is', () => {
  const lines = [
    '{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"shm_lru"},"filenames":["/t/release/libshm_lru.rlib"]}',
    'not json',
    '{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"],"name":"shm_lru_node"},' +
      '"filenames":["/elsewhere/x86_64-unknown-linux-gnu/release/libshm_lru_node.so","/elsewhere/x86_64-unknown-linux-gnu/release/libshm_lru_node.rlib"]}',
    '{"reason":"build-finished","success":true}',
  ];
  assert.strictEqual(artifactFrom(lines.join('\n')), '/elsewhere/x86_64-unknown-linux-gnu/release/libshm_lru_node.so');
  assert.strictEqual(artifactFrom(lines[0]), null);
});

test('inside node_modules the build goes to a temporary target directory', () => {
  const dep = path.join(os.tmpdir(), 'app', 'node_modules', 'shm-typed-lru');
  assert.strictEqual(isDependency(dep), true);
  assert.strictEqual(isDependency(path.join(os.tmpdir(), 'shm-typed-lru')), false);
  const t = chooseTargetDir(dep, {});
  try {
    assert.ok(t && t.startsWith(os.tmpdir()) && !t.includes('node_modules'), t);
    assert.ok(fs.statSync(t).isDirectory());
  } finally {
    if (t) fs.rmSync(t, { recursive: true, force: true });
  }
  // A target directory the user chose wins; a checkout builds in its own target/.
  assert.strictEqual(chooseTargetDir(dep, { CARGO_TARGET_DIR: '/keep' }), null);
  assert.strictEqual(chooseTargetDir(path.join(os.tmpdir(), 'checkout'), {}), null);
});

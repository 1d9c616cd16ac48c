'use strict';
// The loader (lib/platform.js, lib/native.js) and the `shm-lru` launcher (bin/shm-lru.js): which
// file they pick, in which order, and what they say when there is none. Each case runs in a
// copy of the package's JS in a temporary folder, in a child process.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { libc, platformName } = require('../lib/platform');

const ROOT = path.join(__dirname, '..');
const ADDON = path.join(ROOT, 'build', 'shm_typed_lru.node');
const VERSION = require('../package.json').version;

/** A copy of the package's JS (no build/, no prebuilds/) in a new temporary folder. */
function packageCopy(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shm-typed-lru-pkg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
  return dir;
}

function prebuild(dir, version, files) {
  const platform = platformName();
  fs.mkdirSync(path.join(dir, 'prebuilds', platform), { recursive: true });
  for (const [name, from] of Object.entries(files)) fs.copyFileSync(from, path.join(dir, 'prebuilds', platform, name));
  const manifest = { name: 'shm-typed-lru', version, platforms: [platform] };
  fs.writeFileSync(path.join(dir, 'prebuilds', 'manifest.json'), JSON.stringify(manifest));
}

/** Requires the copy at `dir` in a child process: the addon file it loaded, or the error. */
function load(dir, env = {}) {
  const script = `
    try {
      const m = require(${JSON.stringify(dir)});
      if (typeof m.SharedLRU.create !== 'function') throw new Error('no class API');
      const file = Object.keys(require.cache).find((f) => f.endsWith('.node'));
      console.log(JSON.stringify({ file }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }));
    }`;
  const childEnv = { ...process.env, ...env };
  if (!('SHM_TYPED_LRU_NATIVE' in env)) delete childEnv.SHM_TYPED_LRU_NATIVE;
  const r = spawnSync(process.execPath, ['-e', script], { env: childEnv, encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('libc: musl when musl\'s loader is mapped into the process, else glibc', () => {
  const musl = '7f1c2000-7f1c3000 r-xp 00000000 08:01 123 /lib/ld-musl-x86_64.so.1\n';
  const gnu = '7f1c2000-7f1c3000 r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n';
  assert.strictEqual(libc(musl), 'musl');
  assert.strictEqual(libc('7f1c2000-7f1c3000 r-xp 0 08:01 1 /usr/lib/libc.musl-aarch64.so.1\n'), 'musl');
  assert.strictEqual(libc(gnu), 'gnu');
  // musl's loader mapped under the name of its C library, as Debian's musl package keeps it.
  assert.strictEqual(libc('7f1c2000-7f1c3000 r-xp 0 08:01 1 /usr/lib/musl/lib/libc.so\n'), 'musl');
  assert.strictEqual(libc('7f1c2000-7f1c3000 r-xp 0 08:01 1 /usr/lib/musl/lib/libc.so (deleted)\n'), 'musl');
  // A file of that name in a glibc process, new glibc or old (before 2.34, libc-2.N.so).
  const other = '7f1c4000-7f1c5000 r--p 0 08:01 2 /opt/x/libc.so\n';
  assert.strictEqual(libc(`${gnu}${other}`), 'gnu');
  assert.strictEqual(libc(`7f1c2000-7f1c3000 r-xp 0 08:01 3 /lib/x86_64-linux-gnu/libc-2.31.so\n${other}`), 'gnu');
  assert.strictEqual(libc(`7f1c2000-7f1c3000 r-xp 0 08:01 3 /lib64/ld-linux-x86-64.so.2 (deleted)\n${other}`), 'gnu');
  // This test process: Debian's node, on glibc.
  assert.strictEqual(libc(), fs.readFileSync('/proc/self/maps', 'utf8').includes('ld-musl') ? 'musl' : 'gnu');
  assert.match(platformName(), /^linux-(x64|arm64)-(gnu|musl)$/);
});

test('nothing to load: the error names the platform, each place looked at, and the build command', (t) => {
  const dir = packageCopy(t);
  const r = load(dir);
  assert.strictEqual(r.code, 'ERR_SHM_ADDON_NOT_BUILT');
  assert.ok(r.message.includes(`no native addon for ${platformName()}`), r.message);
  assert.match(r.message, /libc (gnu|musl)/);
  assert.ok(r.message.includes(path.join(dir, 'build', 'shm_typed_lru.node')), r.message);
  assert.ok(r.message.includes('has no prebuilt files'), r.message);
  assert.ok(r.message.includes(`node "${path.join(dir, 'scripts', 'build.js')}"`), r.message);
});

test('a prebuilt addon loads only for exactly this version', (t) => {
  const dir = packageCopy(t);
  prebuild(dir, '0.9.9', { 'shm_typed_lru.node': ADDON });
  const stale = load(dir);
  assert.strictEqual(stale.code, 'ERR_SHM_ADDON_NOT_BUILT');
  assert.ok(stale.message.includes(`prebuilt files are of version 0.9.9, not ${VERSION}`), stale.message);
  prebuild(dir, VERSION, { 'shm_typed_lru.node': ADDON });
  assert.strictEqual(load(dir).file, path.join(dir, 'prebuilds', platformName(), 'shm_typed_lru.node'));
});

test('order: $SHM_TYPED_LRU_NATIVE, then a local build, then the prebuilt addon', (t) => {
  const dir = packageCopy(t);
  prebuild(dir, VERSION, { 'shm_typed_lru.node': ADDON });
  fs.mkdirSync(path.join(dir, 'build'));
  fs.copyFileSync(ADDON, path.join(dir, 'build', 'shm_typed_lru.node'));
  assert.strictEqual(load(dir).file, path.join(dir, 'build', 'shm_typed_lru.node'));
  const other = path.join(dir, 'other.node');
  fs.copyFileSync(ADDON, other);
  assert.strictEqual(load(dir, { SHM_TYPED_LRU_NATIVE: other }).file, other);
  // An override that names nothing fails; it never falls back to another file.
  const missing = load(dir, { SHM_TYPED_LRU_NATIVE: path.join(dir, 'missing.node') });
  assert.strictEqual(missing.code, 'MODULE_NOT_FOUND');
});

test('shm-lru launcher: passes arguments and the exit status through; says how to build when missing', (t) => {
  const dir = packageCopy(t);
  const bin = path.join(dir, 'bin', 'shm-lru.js');
  const none = spawnSync(process.execPath, [bin, 'ls'], { encoding: 'utf8', env: { ...process.env, SHM_TYPED_LRU_CLI: '' } });
  assert.strictEqual(none.status, 2);
  assert.ok(none.stderr.includes(`no shm-lru command for ${platformName()}`), none.stderr);
  assert.ok(none.stderr.includes(`node "${path.join(dir, 'scripts', 'build.js')}" --cli`), none.stderr);

  // A stand-in prebuilt command that echoes its arguments and exits 3, shipped without its
  // executable bit, as an unpacker may leave it.
  const fake = path.join(dir, 'fake-cli');
  fs.writeFileSync(fake, '#!/bin/sh\necho "args: $*"\nexit 3\n', { mode: 0o644 });
  prebuild(dir, VERSION, { 'shm-lru': fake });
  const r = spawnSync(process.execPath, [bin, 'ls', '--json', 'a b'], { encoding: 'utf8', env: { ...process.env, SHM_TYPED_LRU_CLI: '' } });
  assert.strictEqual(r.stdout, 'args: ls --json a b\n');
  assert.strictEqual(r.status, 3);
});

#!/usr/bin/env node
'use strict';
// `npm run dist`: builds the prebuilt native files the package ships and packs it into dist/.
//
// For each platform (all four by default; `--platforms linux-x64-gnu,...` for some), one cargo
// run builds the addon (shm-lru-node) and the `shm-lru` command (shm-lru-cli) with
// cargo-zigbuild, stripped, into prebuilds/<platform>/; prebuilds/manifest.json then records the
// package version and the platforms, and `npm pack` writes dist/shm-typed-lru-<version>.tgz. The
// gnu builds link against glibc 2.17 (zig's headers and stubs of that version), so they load on
// any glibc from 2.17 on; the musl ones link musl dynamically (a cdylib cannot be static), as
// Alpine's node does.
//
// What it needs it gets: the rustup targets it lacks (`rustup target add`), and zig and
// cargo-zigbuild from PyPI (packages `ziglang`, `cargo-zigbuild`) in a virtualenv under .tools/
// unless `cargo-zigbuild` is already on the PATH. It needs rustup, python3 and npm.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const PLATFORMS = {
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu.2.17',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu.2.17',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-musl': 'aarch64-unknown-linux-musl',
};
// The versions the prebuilt files were last built and tested with.
const TOOLS = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.1'];
const VENV = path.join(root, '.tools', 'venv');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with status ${r.status}`);
  return r;
}

function onPath(cmd, env) {
  return (env.PATH || '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, cmd)));
}

/** The environment to build in: cargo-zigbuild and zig on its PATH, installed if missing. */
function toolEnv() {
  const venvBin = path.join(VENV, 'bin');
  const env = { ...process.env, PATH: `${venvBin}${path.delimiter}${process.env.PATH}` };
  if (!onPath('cargo-zigbuild', process.env) && !fs.existsSync(path.join(venvBin, 'cargo-zigbuild'))) {
    console.log(`dist: installing ${TOOLS.join(' ')} from PyPI into ${path.relative(root, VENV)}`);
    run('python3', ['-m', 'venv', VENV]);
    run(path.join(venvBin, 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...TOOLS]);
  }
  return env;
}

function addRustTargets(triples) {
  const r = spawnSync('rustup', ['target', 'list', '--installed'], { cwd: root, encoding: 'utf8' });
  if (r.error) throw new Error('rustup is needed to add the Rust targets (https://rustup.rs)');
  const have = new Set(r.stdout.split('\n').map((l) => l.trim()));
  const missing = [...new Set(triples)].filter((t) => !have.has(t));
  if (missing.length) run('rustup', ['target', 'add', ...missing]);
}

/** The addon and the executable cargo reports having built (its JSON messages on stdout). */
function artifacts(stdout) {
  const { artifactsFrom } = require('./build.js');
  const built = artifactsFrom(stdout);
  if (!built.addon || !built.cli) throw new Error('cargo did not report both the addon and the shm-lru executable');
  return built;
}

function buildPlatform(platform, env) {
  const target = PLATFORMS[platform];
  const triple = target.replace(/\.\d+\.\d+$/, '');
  const tenv = { ...env, CARGO_PROFILE_RELEASE_STRIP: 'symbols' };
  if (triple.endsWith('-musl')) {
    // musl targets link statically by default, which rules out a shared library: the addon links
    // musl dynamically, as node on Alpine does. (The command, built alongside, comes out a
    // static executable all the same, which runs on any musl or glibc machine.)
    tenv[`CARGO_TARGET_${triple.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`] = '-C target-feature=-crt-static';
  }
  console.log(`dist: building ${platform} (${target})`);
  const args = ['zigbuild', '--release', '--target', target, '-p', 'shm-lru-node', '-p', 'shm-lru-cli'];
  const r = run('cargo', [...args, '--message-format=json-render-diagnostics'], {
    env: tenv,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const built = artifacts(r.stdout);
  const dir = path.join(root, 'prebuilds', platform);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(built.addon, path.join(dir, 'shm_typed_lru.node'));
  fs.copyFileSync(built.cli, path.join(dir, 'shm-lru'));
  fs.chmodSync(path.join(dir, 'shm-lru'), 0o755);
}

function parsePlatforms(argv) {
  const i = argv.indexOf('--platforms');
  if (i < 0) return Object.keys(PLATFORMS);
  const list = (argv[i + 1] || '').split(',').filter(Boolean);
  const unknown = list.filter((p) => !PLATFORMS[p]);
  if (!list.length || unknown.length) {
    throw new Error(`--platforms takes a comma-separated list of: ${Object.keys(PLATFORMS).join(', ')}`);
  }
  return list;
}

function main() {
  const platforms = parsePlatforms(process.argv);
  const pkg = require('../package.json');
  const env = toolEnv();
  addRustTargets(platforms.map((p) => PLATFORMS[p].replace(/\.\d+\.\d+$/, '')));

  // Nothing stale is shipped: the folder is made anew, and the manifest written last.
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  for (const p of platforms) buildPlatform(p, env);
  const manifest = { name: pkg.name, version: pkg.version, platforms: platforms, targets: {} };
  for (const p of platforms) manifest.targets[p] = PLATFORMS[p];
  fs.writeFileSync(path.join(root, 'prebuilds', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  const dist = path.join(root, 'dist');
  fs.mkdirSync(dist, { recursive: true });
  const tgz = path.join(dist, `${pkg.name}-${pkg.version}.tgz`);
  fs.rmSync(tgz, { force: true });
  run('npm', ['pack', '--silent', '--pack-destination', dist], { stdio: ['ignore', 'ignore', 'inherit'] });
  const size = fs.statSync(tgz).size;
  console.log(`dist: ${path.relative(root, tgz)} (${(size / 1e6).toFixed(2)} MB), prebuilt for ${platforms.join(', ')}`);
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(`dist: ${e.message}`);
    process.exit(1);
  }
}

module.exports = { PLATFORMS, addRustTargets };

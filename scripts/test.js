#!/usr/bin/env node
'use strict';
// The project's one test command (`npm test`): builds the addon if needed, runs the Rust suites,
// keyv's own compliance suite under vitest, then node's test runner over test/, whose summary
// closes the run.
//
// Everything runs, in a fresh clone too: when a dev dependency is missing, `npm ci` installs them
// (without install scripts: the only one among them, sqlite3's, belongs to a part of keyv's test
// suite these tests do not use), in the background while cargo compiles.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

/** The dev dependencies not installed in node_modules/. */
function missingDevDeps() {
  const { devDependencies = {} } = require('../package.json');
  return Object.keys(devDependencies).filter((n) => !fs.existsSync(path.join(root, 'node_modules', n, 'package.json')));
}

/** Starts `npm ci` when dev dependencies are missing; resolves when they are there. */
function installDevDeps() {
  const missing = missingDevDeps();
  if (missing.length === 0) return Promise.resolve();
  console.log(`installing the dev dependencies (${missing.join(', ')} missing): npm ci --ignore-scripts`);
  // Under `npm test`, the npm that runs us; else the one on the PATH.
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const args = ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'];
  return new Promise((resolve, reject) => {
    const child = spawn(npm[0], [...npm.slice(1), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (status) => {
      if (status === 0) resolve();
      else reject(new Error(`npm ci exited with status ${status}:\n${out}`));
    });
  });
}

async function main() {
  const devDeps = installDevDeps();
  devDeps.catch(() => {}); // reported below, after the Rust suites
  run(process.execPath, [path.join(__dirname, 'build.js'), '--if-needed']);
  run('cargo', ['test', '--workspace']);
  await devDeps;
  run(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run']);
  run(process.execPath, ['--test', 'test/']);
}

main().catch((e) => {
  console.error(`npm test: ${e.message}`);
  process.exit(1);
});

#!/usr/bin/env node
'use strict';
// The project's one test command (`npm test`): builds the addon if needed, runs the Rust suites,
// keyv's own compliance suite under vitest (when the dev dependencies are installed: a fresh
// clone without `npm install` skips it, saying so; CI installs them and must run it), then node's
// test runner over test/, whose summary closes the run.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

run(process.execPath, [path.join(__dirname, 'build.js'), '--if-needed']);
run('cargo', ['test', '--workspace']);
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
if (!fs.existsSync(vitest)) {
  if (process.env.CI === 'true') {
    console.error('CI must run keyv\'s compliance suite, but vitest is not installed');
    process.exit(1);
  }
  console.log('\nskipping keyv\'s compliance suite (vitest/): dev dependencies not installed (npm install)\n');
}
if (fs.existsSync(vitest)) run(process.execPath, [vitest, 'run']);
run(process.execPath, ['--test', 'test/']);

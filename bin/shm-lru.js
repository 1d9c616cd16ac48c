#!/usr/bin/env node
'use strict';
// The `shm-lru` command of the npm package: runs the native shm-lru binary (crates/shm-lru-cli)
// found as the addon is (lib/platform.js): $SHM_TYPED_LRU_CLI, then build/shm-lru (built from
// source by `node scripts/build.js --cli`), then the prebuilt one for this platform and version.
// Arguments, standard streams and the exit status pass through unchanged.

const { spawn } = require('child_process');
const fs = require('fs');
const { locate, notFound } = require('../lib/platform');

const found = locate('shm-lru', 'SHM_TYPED_LRU_CLI');
if (!found.file) {
  console.error(notFound('shm-lru command', 'shm-lru', 'SHM_TYPED_LRU_CLI', found.looked, ' --cli').message);
  process.exit(2);
}

// A packed file can lose its executable bit on the way (a copy, an unpacker); put it back.
try {
  fs.accessSync(found.file, fs.constants.X_OK);
} catch {
  try {
    fs.chmodSync(found.file, 0o755);
  } catch {
    // Not ours to change: the spawn below reports the real error.
  }
}

const child = spawn(found.file, process.argv.slice(2), { stdio: 'inherit' });
// Ctrl-C in a terminal reaches the command itself (same process group), which ends cleanly
// (`stats --watch` stops, `bench` removes its segment): this process only waits for it. A signal
// sent to this process alone is passed on.
process.on('SIGINT', () => {});
for (const sig of ['SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => child.kill(sig));
child.on('error', (e) => {
  console.error(`shm-lru: could not run ${found.file}: ${e.message}`);
  process.exit(2);
});
child.on('exit', (status, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(status === null ? 2 : status);
});

'use strict';
// The original package's example program, run unchanged against this package when it is found
// beside the checkout (CI puts it there; a plain clone has no such file, and the test says so
// and is skipped), and this package's own program of the same shape (demo/seed-cluster.js),
// which always runs: a cluster parent fills an LRU, a forked child reads it,
// the parent deletes some entries and the child reads again.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const shm = require('..');

const ROOT = path.resolve(__dirname, '..');
const EXAMPLE = path.resolve(ROOT, '..', 'shared', 'seed', 'example.js');
// The example's own fixed System V key.
const EXAMPLE_KEY = 1234567890;
const TIMEOUT_MS = 60000;
const OWN = path.join(ROOT, 'demo', 'seed-cluster.js');

function run(file = EXAMPLE, args = []) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file, ...args], {
      cwd: ROOT,
      env: { ...process.env, SHM_TYPED_LRU: ROOT },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let status = null;
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${path.basename(file)} did not finish in ${TIMEOUT_MS} ms:\n${stdout}\n${stderr}`));
    }, TIMEOUT_MS);
    p.on('exit', (code) => (status = code));
    // 'close' waits for the cluster child too, which shares the pipes.
    p.on('close', () => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    p.on('error', reject);
  });
}

const haveExample = fs.existsSync(EXAMPLE);
const skipExample = haveExample ? false : `the original example is not at ${EXAMPLE} (it sits beside the checkout in CI only)`;
if (!haveExample) console.log(`# skipping the original example.js: ${skipExample}`);

test('the original example.js runs unchanged', { timeout: TIMEOUT_MS + 5000, skip: skipExample }, async () => {
  // A segment left by a run that was killed would make the example's first create() fail.
  shm.destroy(EXAMPLE_KEY);

  const { status, stdout, stderr } = await run();
  assert.strictEqual(status, 0, `example.js failed:\n${stdout}\n${stderr}`);
  const lines = stdout.split('\n');
  const expected = (h) => `GEEE ${h - 137} wolly gollies abren`;

  const read = [...stdout.matchAll(/^CHILD arr2D2 >> hash\[(\d+)\]: value\[(.*)\]$/gm)];
  assert.strictEqual(read.length, 10, stdout);
  for (const [, h, value] of read) assert.strictEqual(value, expected(Number(h)));
  assert.deepStrictEqual(
    read.map(([, h]) => Number(h)),
    Array.from({ length: 10 }, (_, i) => 137 + i),
  );

  const deleted = new Set(lines.map((l) => /^deleted (\d+)$/.exec(l)).filter(Boolean).map((m) => Number(m[1])));
  assert.ok(deleted.size >= 1 && deleted.size <= 3, stdout);

  const reread = [...stdout.matchAll(/^CHILD AFTER RELOAD >> hash\[(\d+)\]: value\[(.*)\]$/gm)];
  assert.strictEqual(reread.length, 10, stdout);
  for (const [, hs, value] of reread) {
    const h = Number(hs);
    if (deleted.has(h)) assert.strictEqual(value, '-2', `hash ${h} was deleted`);
    else assert.strictEqual(value, expected(h), `hash ${h} was not deleted`);
  }

  // The parent's early steps, and its cleanup at exit.
  assert.match(stdout, /^CACHE: [1-9][0-9]*$/m);
  assert.match(stdout, /^arr2D2 >> value: we test different this time$/m);
  assert.match(stdout, /^post del arr2D2 >> value\[\d+\]: -2$/m);
  assert.match(stdout, /^\[Worker\] Typeof buf: Buffer Typeof arr: Float32Array$/m);
  assert.strictEqual(shm.getSegmentSize(EXAMPLE_KEY), -1);
});

test('a cluster parent and its forked child share one LRU, before and after deletes', { timeout: TIMEOUT_MS + 5000 }, async () => {
  const key = 0x2d000000 + (process.pid % 0x10000);
  shm.destroy(key);
  const { status, stdout, stderr } = await run(OWN, [key]);
  assert.strictEqual(status, 0, `seed-cluster.js failed:\n${stdout}\n${stderr}`);
  const hashes = Array.from({ length: 10 }, (_, i) => 500 + i);
  const deleted = [501, 504, 508];
  assert.match(stdout, /^CACHE: [1-9][0-9]*$/m);
  assert.match(stdout, /^del_el: true then get_el: -2$/m);
  for (const h of deleted) assert.match(stdout, new RegExp(`^del_key ${h}: true$`, 'm'));

  const rows = (step) => [...stdout.matchAll(new RegExp(`^CHILD ${step} hash\\[(\\d+)\\]: value\\[(.*?)\\](.*)$`, 'gm'))];
  const read = rows('read');
  assert.deepStrictEqual(read.map(([, h]) => Number(h)), hashes, stdout);
  for (const [, h, v] of read) assert.strictEqual(v, `value of ${h}`);
  const reread = rows('reread');
  assert.deepStrictEqual(reread.map(([, h]) => Number(h)), hashes, stdout);
  for (const [, hs, v, why] of reread) {
    const h = Number(hs);
    if (deleted.includes(h)) {
      assert.strictEqual(v, '-2', `hash ${h} was deleted`);
      assert.match(why, /element not found/);
    } else {
      assert.strictEqual(v, `value of ${h}`, `hash ${h} was not deleted`);
    }
  }
  assert.match(stdout, /^child exited: 0$/m);
  // The parent created the segment, so its normal exit removed it.
  assert.strictEqual(shm.getSegmentSize(key), -1);
});

/**
 * --inherit-fd (CLI) and inherit_fd (RPC, as runc uses it for a
 * container's stdio pipes): a shell loop writes into a pipe whose other
 * end is outside the dump; at restore the caller hands over the write end
 * of a new pipe, by CRIU's key `pipe:[ino]`, and the restored loop writes
 * there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, readSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { POLLIN, pipe2, pollFd } from '../../src/sys/index.js';
import { repoRoot } from '../lib/subjects.js';
import { killAndWait, removeDir, sleep, tempDir, useE2eHarness, waitGone } from './helpers.js';

useE2eHarness();

const O_NONBLOCK = 0o4000;

async function readFor(fd: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let out = '';
  const buf = Buffer.alloc(4096);
  while (Date.now() < deadline) {
    if ((pollFd(fd, POLLIN, 0) & POLLIN) !== 0) {
      try {
        const n = readSync(fd, buf);
        if (n === 0) break;
        out += buf.subarray(0, n).toString();
      } catch {
        await sleep(10);
      }
    } else await sleep(10);
  }
  return out;
}

test('restore --inherit-fd fd[N]:pipe:[ino]: the restored task writes into the pipe the caller handed over', { timeout: 60_000 }, async () => {
  const dir = tempDir('inherit-fd');
  const [r, w] = pipe2(O_NONBLOCK);
  const job = spawn('sh', ['-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'], { stdio: ['ignore', w, 'ignore'], detached: true });
  job.unref();
  closeSync(w);
  const pid = job.pid as number;
  const key = `pipe:[${fstatSync(r).ino}]`;
  let r2 = -1;
  try {
    assert.match(await readFor(r, 300), /tick \d+/);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(pid));
    closeSync(r);
    const [nr, nw] = pipe2(O_NONBLOCK);
    r2 = nr;
    // fd 3 of the CLI is the new pipe's write end.
    const res = spawnSync(join(repoRoot(), 'bin', 'criu-ts'), ['restore', '-d', '-D', dir, '--inherit-fd', `fd[3]:${key}`],
      { stdio: ['ignore', 'pipe', 'pipe', nw], encoding: 'utf8', timeout: 60_000 });
    closeSync(nw);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), `pipe:[${fstatSync(r2).ino}]`, 'fd 1 is the pipe handed over');
    assert.match(await readFor(r2, 1000), /tick \d+/, 'the restored loop does not write into the handed-over pipe');
  } finally {
    await killAndWait(pid);
    if (r2 >= 0) closeSync(r2);
    removeDir(dir);
  }
});

test('--inherit-fd: a malformed value or an fd that is not open is one line and exit 1', { timeout: 60_000 }, () => {
  const dir = tempDir('inherit-fd-bad');
  try {
    for (const v of ['3:pipe:[1]', 'fd[x]:pipe:[1]', 'fd[77]:pipe:[1]']) {
      const res = spawnSync(join(repoRoot(), 'bin', 'criu-ts'), ['restore', '-D', dir, '--inherit-fd', v], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(res.status, 1, v);
      assert.equal(res.stderr.trim().split('\n').length, 1, `${v}: ${res.stderr}`);
      assert.match(res.stderr, /inherit-fd/, v);
    }
  } finally {
    removeDir(dir);
  }
});

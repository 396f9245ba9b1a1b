/**
 * Real programs, unmodified (issue 5 point 8): a Node.js app with timers, a
 * worker thread, a pipe to a child process and a file it writes; a python3
 * program multiplexing a pipe and a socketpair with selectors. Each is
 * dumped (killed), restored, and must carry on from where it was: its
 * counters keep growing past their values at dump time, none restarts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { repoRoot } from '../lib/subjects.js';
import { closeInheritedFds, becomeSubreaper, tempDir, removeDir, waitTreeGone, killAndWait, dumpedPids, sleep, waitFor } from './helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

function lastLine(path: string): number[] {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  return (lines[lines.length - 1] ?? '').split(' ').map(Number);
}

async function roundTrip(argv: string[], out: string, settleMs: number): Promise<{ before: number[]; after: number[] }> {
  const dir = tempDir('app-img');
  writeFileSync(out, '');
  const proc = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore', detached: true });
  proc.unref();
  const pid = proc.pid as number;
  let pids: number[] = [pid];
  try {
    assert.ok(await waitFor(() => readFileSync(out, 'utf8').split('\n').length > 5, 20_000), 'program did not start writing');
    await sleep(settleMs);
    await dump({ pid, imagesDir: dir, progress: false });
    pids = dumpedPids(dir);
    assert.deepEqual(await waitTreeGone(dir), [], 'dumped tasks still alive');
    const before = lastLine(out);
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, pid);
    assert.ok(await waitFor(() => (lastLine(out)[0] ?? 0) > (before[0] ?? 0) + 10, 20_000), 'restored program does not carry on');
    return { before, after: lastLine(out) };
  } finally {
    for (const p of [...pids].reverse()) await killAndWait(p);
    removeDir(dir);
  }
}

test('a Node.js app (timers, worker thread, child process over pipes, file) carries on after restore', async () => {
  const work = tempDir('node-app');
  try {
    const out = join(work, 'out.txt');
    const app = join(repoRoot(), 'test', 'e2e', 'programs', 'node-app.cjs');
    const { before, after } = await roundTrip([process.execPath, app, out], out, 500);
    const [t0, w0, c0] = before as [number, number, number];
    const [t1, w1, c1] = after as [number, number, number];
    assert.ok(t1 > t0, `ticks ${t0} -> ${t1}`);
    assert.ok(w1 > w0, `worker thread stopped: ${w0} -> ${w1}`);
    assert.ok(c1 > c0, `child process stopped replying: ${c0} -> ${c1}`);
  } finally {
    removeDir(work);
  }
});

const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

test('an unmodified python3 program using selectors over a pipe and a socketpair carries on', { skip: python ? false : 'python3 is not installed' }, async () => {
  const work = tempDir('py-sel');
  try {
    const out = join(work, 'out.txt');
    const prog = join(repoRoot(), 'test', 'e2e', 'programs', 'py-selectors.py');
    const { before, after } = await roundTrip([python as string, prog, out], out, 300);
    const [t0, p0, s0] = before as [number, number, number];
    const [t1, p1, s1] = after as [number, number, number];
    assert.ok(t1 > t0 && p1 > p0 && s1 > s0, `counters did not move on: ${before.join(' ')} -> ${after.join(' ')}`);
    // Every turn writes 10 pipe bytes and 7 socket bytes: nothing lost or doubled in flight.
    assert.ok(p1 <= t1 * 10 && p1 >= (t1 - 2) * 10, `pipe bytes ${p1} for ${t1} turns`);
    assert.ok(s1 <= t1 * 7 && s1 >= (t1 - 2) * 7, `socket bytes ${s1} for ${t1} turns`);
  } finally {
    removeDir(work);
  }
});

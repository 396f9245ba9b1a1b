/**
 * Real programs made of several tasks carry on after dump + restore:
 *  - a shell pipeline, `while :; do date; sleep ...; done | cat > FILE`: a
 *    shell, its subshell, cat and a short-lived sleep, joined by a pipe; the
 *    file must keep growing with whole lines after the restore;
 *  - python3 with four threading.Thread workers, each bumping its own
 *    counter, the main thread writing them all to a file: after the restore
 *    every counter carries on from where it was (none starts over).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { tailOf } from '../lib/subjects.js';
import { removeDir, sleep, tempDir, waitFor, useE2eHarness } from './helpers.js';
import { allGone, descendants, diffSnapshots, killTree, snapshot } from './tree-procs.js';

const STEP_TIMEOUT_MS = 180_000;

useE2eHarness();

/** Start argv in its own session in work, stdin /dev/null, output to work/log; returns the pid. */
function launch(work: string, argv: [string, ...string[]]): number {
  const fd = openSync(join(work, 'log'), 'a');
  const child = spawn(argv[0], argv.slice(1), { cwd: work, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${argv[0]}`);
  return pid;
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Dump (killing the tree), check it is gone, restore it detached; returns the pids restored. */
function roundTrip(pid: number, dir: string): Promise<number[]> {
  return roundTripAnd(pid, dir, () => {});
}

/** roundTrip, calling whileDead between the dump and the restore. */
async function roundTripAnd(pid: number, dir: string, whileDead: () => void): Promise<number[]> {
  const before = snapshot(pid);
  const d = await dump({ pid, imagesDir: dir, progress: false });
  // A pipeline's short-lived `sleep` or `date` may come or go between our look and the dump
  // (one gone while we looked has no name: it did not last either).
  const lasting = before.filter((t) => t.threads[0] !== undefined && !['sleep', 'date'].includes(t.threads[0]));
  for (const t of lasting) assert.ok(d.pids.includes(t.pid), `task ${t.pid} (${t.threads[0] ?? '?'}) not dumped`);
  assert.deepEqual(await allGone(d.pids, [pid]), [], 'tasks still exist after the dump');
  whileDead();
  const r = await restore({ imagesDir: dir, progress: false });
  assert.equal(r.pid, pid);
  let diff: string[] = [];
  await waitFor(() => (diff = diffSnapshots(before, snapshot(pid), pid)).length === 0, 2000);
  // A short-lived task may finish right after the restore: only look at the others.
  const kept = diff.filter((l) => !/^task \d+ missing$/.test(l) && !/ is new$/.test(l));
  assert.deepEqual(kept, [], 'restored tree differs');
  return r.pids;
}

test('shell pipeline (sh, subshell, cat, sleep over a pipe) keeps writing after restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  const work = tempDir('tree-sh');
  const dir = tempDir('tree-sh-img');
  const out = join(work, 'dates');
  let pid = 0;
  let pids: number[] = [];
  try {
    pid = launch(work, ['/bin/sh', '-c', `while :; do date +%s.%N; sleep 0.2; done | cat > ${out}`]);
    assert.ok(await waitFor(() => readText(out).split('\n').length > 3, 20_000), `pipeline wrote nothing\n${tailOf(join(work, 'log'))}`);
    pids = descendants(pid);
    assert.ok(pids.length >= 3, `pipeline tree has ${pids.length} task(s)`);
    pids = await roundTrip(pid, dir);
    const lines0 = readText(out).split('\n').length;
    assert.ok(await waitFor(() => readText(out).split('\n').length >= lines0 + 4, 10_000),
      `no new lines after restore (had ${lines0})\n${tailOf(join(work, 'log'))}`);
    const lines = readText(out).trimEnd().split('\n');
    for (const l of lines) assert.match(l, /^\d+\.\d{9}$/, 'whole lines only');
    const times = lines.map(Number);
    for (let i = 1; i < times.length; i++) assert.ok((times[i] ?? 0) >= (times[i - 1] ?? 0), 'dates in order');
  } finally {
    await killTree([pid, ...pids], work);
    removeDir(work);
    removeDir(dir);
  }
});

/** The real python3 executable (not a version manager's shim script), or undefined. */
function python3(): string | undefined {
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

const PY_THREADS = `
import os, threading, time
N = 4
counts = [0] * N
def work(i):
    while True:
        counts[i] += 1
        time.sleep(0.001)
for i in range(N):
    threading.Thread(target=work, args=(i,), name=f"worker-{i}", daemon=True).start()
while True:
    with open("counts.tmp", "w") as f:
        f.write(" ".join(map(str, counts)) + "\\n")
    os.replace("counts.tmp", "counts")
    time.sleep(0.05)
`;

const py = python3();

test('python3 with 4 threads carries on counting after restore', { timeout: STEP_TIMEOUT_MS, ...(py === undefined ? { skip: 'python3 not found' } : {}) }, async () => {
  const work = tempDir('tree-py');
  const dir = tempDir('tree-py-img');
  const file = join(work, 'counts');
  const counts = (): number[] => readText(file).trim().split(' ').filter((x) => x !== '').map(Number);
  let pid = 0;
  let final = '';
  try {
    pid = launch(work, [py ?? 'python3', '-c', PY_THREADS]);
    // Long enough that a program started afresh could not reach these counts in the time we give it below.
    assert.ok(await waitFor(() => (counts()[0] ?? 0) > 600, 30_000), `python never counted\n${tailOf(join(work, 'log'))}`);
    const threads = snapshot(pid)[0]?.threads.length ?? 0;
    assert.equal(threads, 5, 'main thread and 4 workers');
    await roundTripAnd(pid, dir, () => { final = readText(file); });
    // The first values written after the restore go on from the last ones written before the dump.
    assert.ok(await waitFor(() => readText(file) !== final, 10_000), 'nothing written after restore');
    const last = final.trim().split(' ').map(Number);
    const first = counts();
    assert.ok(first.every((c, i) => c >= (last[i] ?? 0)), `counters started over: before ${last.join(' ')}, after ${first.join(' ')}`);
    assert.ok(await waitFor(() => counts().every((c, i) => c > (last[i] ?? 0) + 50), 10_000),
      `counters did not go on: before ${last.join(' ')}, now ${counts().join(' ')}\n${tailOf(join(work, 'log'))}`);
  } finally {
    await killTree([pid], work);
    removeDir(work);
    removeDir(dir);
  }
});

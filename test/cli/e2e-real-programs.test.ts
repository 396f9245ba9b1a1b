/**
 * Unmodified programs nobody wrote for us: a python3 loop that appends a
 * counter to a file every 50 ms survives dump + restore -d and carries on
 * where it was; so does a shell loop, which forks `sleep` each turn (a
 * process tree, often caught waiting for its child).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { killAndWait, removeDir, tempDir, waitFor, waitTreeGone, useE2eHarness } from '../e2e/helpers.js';

useE2eHarness();

function findPython(): string | undefined {
  for (const p of ['/usr/bin/python3', '/usr/local/bin/python3']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}
const PYTHON = findPython();

/** Numbers, one a line, complete lines only. */
function numbers(path: string): number[] {
  if (!existsSync(path)) return [];
  const t = readFileSync(path, 'utf8');
  return t.slice(0, t.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => {
    assert.match(l, /^\d+$/, `unexpected line ${JSON.stringify(l)}`);
    return Number(l);
  });
}

/** Start `argv` in its own session (as `setsid` would), dump it with the CLI, restore it detached; returns its pid. */
async function dumpAndRestore(work: string, argv: string[], out: string, minLines: number): Promise<number> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd ?? 'false', args, { cwd: work, detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid ?? 0;
  try {
    assert.ok(await waitFor(() => numbers(out).length >= minLines, 30_000), `${cmd} did not start counting`);
    const images = join(work, 'images');
    mkdirSync(images); // like CRIU, -D must exist
    const d = await runCli('criu-ts', ['dump', '-t', String(pid), '-D', images, '-v4', '-o', 'dump.log']);
    assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
    assert.deepEqual(await waitTreeGone(images), [], 'tasks left after the dump');
    const r = await runCli('criu-ts', ['restore', '-D', images, '-d', '--pidfile', 'restored.pid', '-v4', '-o', 'restore.log']);
    assert.equal(r.code, 0, `restore failed: ${r.stderr}`);
    assert.equal(readFileSync(join(images, 'restored.pid'), 'utf8'), String(pid), 'pidfile (relative: in the work dir, which defaults to -D)');
    assert.ok(isAlive(pid), `restored ${pid} is not running`);
    return pid;
  } catch (e) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    await killAndWait(pid);
    throw e;
  }
}

/** The counter went on past `last` by `more`, from 0, each number once. */
async function carriesOn(out: string, more: number): Promise<void> {
  const last = numbers(out).at(-1) ?? -1;
  assert.ok(await waitFor(() => (numbers(out).at(-1) ?? -1) >= last + more, 30_000), `counter stuck at ${last} after restore`);
  numbers(out).forEach((n, i) => assert.equal(n, i, `line ${i} says ${n}: restarted, skipped or repeated`));
}

const PY_LOOP = [
  'import sys, time',
  'f = open(sys.argv[1], "a", buffering=1)',
  'i = 0',
  'while True:',
  '    f.write(f"{i}\\n")',
  '    i += 1',
  '    time.sleep(0.05)',
].join('\n');

test('an unmodified python3 loop survives dump + restore -d and carries on', { timeout: 120_000, skip: PYTHON === undefined ? 'python3 not installed' : false }, async () => {
  const work = tempDir('e2e-py');
  const out = join(work, 'count.txt');
  let pid = 0;
  try {
    pid = await dumpAndRestore(work, [PYTHON ?? 'python3', '-c', PY_LOOP, out], out, 5);
    await carriesOn(out, 10);
  } finally {
    if (pid > 0) await killAndWait(pid);
    removeDir(work);
  }
});

test('a shell loop (sh forks sleep each turn: a process tree) survives dump + restore -d', { timeout: 120_000 }, async () => {
  const work = tempDir('e2e-sh');
  const out = join(work, 'count.txt');
  let pid = 0;
  try {
    pid = await dumpAndRestore(work, ['sh', '-c', `i=0; while :; do echo $i >>${out}; i=$((i+1)); sleep 0.1; done`], out, 3);
    await carriesOn(out, 5);
  } finally {
    if (pid > 0) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      await killAndWait(pid);
      // The loop's `sleep` child, restored with it, is ours to reap once the group is killed.
      if (existsSync(join(work, 'images', 'pstree.img'))) await waitTreeGone(join(work, 'images'), 5000);
    }
    removeDir(work);
  }
});

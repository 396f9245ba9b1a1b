/**
 * criu-ts killed in the middle of a lazy restore (issue 9, point 4, over
 * `restore --lazy-pages`): a 16 MiB big-memory task is dumped, then its
 * lazy restore, served by a `criu-ts lazy-pages` daemon, is killed at 12
 * points (CRIU_TS_FAULT: 7 passes spread over the run and one at each
 * restore point it passes, SIGKILL and SIGTERM in turn). After each: the
 * restore failed, no task of the dump and no process of the restore is
 * left below us (no stub), the images dir and the subject's directory are
 * as before; the daemon either gave up in one line (the restore had handed
 * it a task: "the restore failed") or, never reached, still waits and
 * serves the next restore. Then a lazy restore succeeds and the subject
 * checks every page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAULT_POINTS } from '../../src/fault.js';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { passesOf, spread } from '../lib/kill-walk.js';
import { ourDescendants } from '../security/fuzz-lib.js';
import { reapIfOurs, strayStubs, useSubjectCleanup, waitGone } from '../e2e/helpers.js';

const { subjects } = useSubjectCleanup();

interface Daemon {
  proc: ChildProcess;
  exited: boolean;
  exit: Promise<{ code: number | null; stderr: string }>;
}

function startDaemon(dir: string): Daemon {
  const proc = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'lazy-pages', '-D', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const d: Daemon = { proc, exited: false, exit: Promise.resolve({ code: null, stderr: '' }) };
  d.exit = new Promise((res) => proc.on('close', (code) => { d.exited = true; res({ code, stderr }); }));
  return d;
}

/** The daemon and every process below it (its watchdog). */
function daemonPids(d: Daemon): Set<number> {
  const out = new Set<number>();
  if (d.proc.pid === undefined || d.exited) return out;
  out.add(d.proc.pid);
  const parent = new Map<number, number>();
  for (const p of ourDescendants()) {
    try {
      parent.set(p, Number(readFileSync(`/proc/${p}/stat`, 'latin1').split(') ')[1]?.split(' ')[1]));
    } catch {
      // gone
    }
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of parent) if (!out.has(p) && out.has(pp)) { out.add(p); grew = true; }
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

test('criu-ts killed at 12 points of a lazy restore: nothing left, the daemon gives up in one line or serves the next restore, which works', { timeout: 900_000 }, async () => {
  const s = await startSubject('big-memory', ['--mib', '16']);
  subjects.push(s);
  const dir = join(s.workDir, 'img');
  mkdirSync(dir);
  const d0 = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]);
  assert.equal(d0.code, 0, d0.stderr);
  assert.ok(await waitGone(s.pid));
  const restore = ['restore', '-d', '-D', dir, '--lazy-pages'];
  const imagesBefore = (): string => readdirSync(dir).filter((n) => !n.startsWith('lazy-pages')).sort().join(' ');
  const subjectDir = (): string => readdirSync(s.workDir).sort().join(' ');

  // The passes of a whole lazy restore; the restored task is then killed again.
  let daemon = startDaemon(dir);
  const r0 = await withFault('count', () => runCli('criu-ts', restore));
  assert.equal(r0.code, 0, r0.stderr);
  const names = passesOf(r0.stderr);
  assert.equal((await daemon.exit).code, 0, 'the daemon served every page');
  process.kill(s.pid, 'SIGKILL');
  assert.ok(await waitGone(s.pid));
  reapIfOurs(s.pid);
  const baseline = subjectDir();
  // As a restore leaves them (its stats-restore written).
  const images = imagesBefore();

  const byName = FAULT_POINTS.filter((n) => n.startsWith('restore.') && names.includes(n)).map((n) => `@${n}`);
  // A restore's count of injected calls varies from run to run (the stub's layout is undone call by call): the first 70% of the passes.
  const byCount = spread(1, Math.floor(names.length * 0.7), 12 - byName.length, new Set()).map((k) => `@${k}`);
  const kills = [...byCount, ...byName].map((k, i) => `${k}:${i % 2 === 0 ? 'SIGKILL' : 'SIGTERM'}`);
  assert.equal(kills.length, 12);
  daemon = startDaemon(dir);
  try {
    for (const f of kills) {
      if (daemon.exited) daemon = startDaemon(dir);
      const r = await withFault(f, () => runCli('criu-ts', restore));
      const what = `CRIU_TS_FAULT=${f}`;
      assert.notEqual(r.code, 0, `${what}: the restore did not fail\n${r.stderr}`);
      assert.ok(await waitGone(s.pid, 10_000), `${what}: the restored task is alive`);
      reapIfOurs(s.pid);
      // The daemon gives up once the restore that reached it is gone; one that was never reached waits on.
      const e = await Promise.race([daemon.exit, sleep(5000).then(() => undefined)]);
      if (e !== undefined) {
        assert.notEqual(e.code, 0, `${what}: the daemon exited 0 without a restore`);
        assert.match(e.stderr, /the restore failed/, `${what}: daemon: ${e.stderr}`);
        assert.equal(e.stderr.trim().split('\n').length, 1, `${what}: daemon: ${e.stderr}`);
      }
      let left: number[] = [];
      for (let t = 0; t < 300; t++) {
        const keep = daemonPids(daemon);
        left = ourDescendants().filter((p) => !keep.has(p) && !reapIfOurs(p));
        if (left.length === 0) break;
        await sleep(10);
      }
      assert.deepEqual(left, [], `${what}: processes left below us\n${r.stderr}`);
      assert.deepEqual(strayStubs(), [], `${what}: a restore stub is left`);
      assert.ok(!isAlive(s.pid), `${what}: the task is alive`);
      assert.equal(imagesBefore(), images, `${what}: files changed in the images dir`);
      assert.equal(subjectDir(), baseline, `${what}: files changed in the subject's dir`);
    }
    if (daemon.exited) daemon = startDaemon(dir);
    const ok = await runCli('criu-ts', restore);
    assert.equal(ok.code, 0, ok.stderr);
    const res = await s.terminateAndResult(60_000);
    assert.ok(res.ok, res.text);
    assert.equal((await daemon.exit).code, 0, 'the daemon served every page');
  } finally {
    if (!daemon.exited) daemon.proc.kill('SIGKILL');
  }
});

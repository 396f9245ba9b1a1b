/**
 * `criu-ts restore -D DIR` without -d stays until the restored root ends and
 * exits with its status, like CRIU: the root's exit code, or 128+signal when
 * a signal killed it. The pidfile (written once the tree runs) tells the
 * test when it may send the signal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { buildProgram, killAndWait, removeDir, tempDir, waitFor, waitGone, useE2eHarness } from '../e2e/helpers.js';

useE2eHarness();

/** Start exit-on-term in its own session; returns its pid once its handler is in place. */
function start(work: string): number {
  const fd = openSync(join(work, 'out'), 'w');
  const child = spawn(buildProgram('exit-on-term'), [], { cwd: work, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child.pid ?? 0;
}

/** Dump it into WORK/images with the CLI (which kills it). */
async function dumpIt(work: string, pid: number): Promise<void> {
  assert.ok(await waitFor(() => readFileSync(join(work, 'out'), 'utf8').startsWith('ready'), 20_000), 'program not ready');
  mkdirSync(join(work, 'images')); // like CRIU, -D must exist
  const d = await runCli('criu-ts', ['dump', '-t', String(pid), '-D', join(work, 'images'), '-o', 'dump.log']);
  assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
  assert.ok(await waitGone(pid), `pid ${pid} still exists after the dump`);
}

for (const [signal, want] of [['SIGTERM', 7], ['SIGKILL', 128 + 9]] as const) {
  test(`restore without -d waits for the root and exits ${want} after ${signal}`, { timeout: 120_000 }, async () => {
    const work = tempDir('e2e-wait');
    let pid = 0;
    try {
      pid = start(work);
      await dumpIt(work, pid);
      const pidfile = join(work, 'restored.pid');
      const restoring = runCli('criu-ts', ['restore', '-D', join(work, 'images'), '--pidfile', pidfile, '-o', 'restore.log'], { timeoutMs: 90_000 });
      let settled = false;
      void restoring.then(() => { settled = true; });
      assert.ok(await waitFor(() => existsSync(pidfile) || settled, 60_000), 'restore wrote no pidfile');
      if (settled) assert.fail(`restore exited before the root did: ${(await restoring).stderr}`);
      assert.equal(readFileSync(pidfile, 'utf8'), String(pid));
      assert.ok(isAlive(pid), 'restored root is running');
      process.kill(pid, signal);
      const r = await restoring;
      assert.equal(r.code, want, `criu-ts exit status (stderr: ${r.stderr})`);
      assert.ok(await waitGone(pid, 5000), 'root was reaped by criu-ts');
    } finally {
      if (pid > 0) await killAndWait(pid);
      removeDir(work);
    }
  });
}

/**
 * The public API end to end, beyond the plain dump-kill-restore of the
 * subject runner (test/e2e): leaving the task running or stopped after a
 * dump, restoring stopped, the pidfile option, the stats a dump returns,
 * and the typed errors (code, data) a caller can act on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, isCriuTsError, restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { killAndWait, removeDir, sleep, tempDir, waitFor, waitGone, useE2eHarness, withSubject } from '../lib/harness.js';
import { parseStatus } from '../../src/proc/index.js';

useE2eHarness();

const procState = (pid: number): string => parseStatus(pid).state;
const tracerOf = (pid: number): number => parseStatus(pid).tracerPid;

/** The test's frame: subject `name` (counter-loop by default) and an images dir. */
function withCounter(body: (s: Subject, dir: string) => Promise<void>, name = 'counter-loop', args: string[] = []): Promise<void> {
  return withSubject(name, args, 'api-e2e', body);
}

test('leaveRunning: the task carries on untraced; its images restore after it is gone', { timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const r = await dump({ pid: s.pid, imagesDir: dir, leaveRunning: true, progress: false });
    assert.deepEqual(r.pids, [s.pid]);
    assert.ok(isAlive(s.pid), 'still running');
    assert.equal(tracerOf(s.pid), 0, 'not traced any more');
    assert.notEqual(procState(s.pid), 'T', 'not stopped');
    // A crash after the checkpoint: the images bring it back as it was then.
    process.kill(s.pid, 'SIGKILL');
    assert.ok(await waitGone(s.pid));
    const rr = await restore({ imagesDir: dir, progress: false });
    assert.equal(rr.pid, s.pid);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('leaveStopped: the task stays stopped (not traced) until SIGCONT, then passes', { timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, leaveStopped: true, progress: false });
    assert.ok(await waitFor(() => procState(s.pid) === 'T', 10_000), `state ${procState(s.pid)}, want T`);
    assert.equal(tracerOf(s.pid), 0, 'not traced any more');
    process.kill(s.pid, 'SIGCONT');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('restore leaveStopped: restored stopped, runs on SIGCONT; pidfile relative to workDir', { timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(s.pid));
    const rr = await restore({ imagesDir: dir, leaveStopped: true, workDir: dir, pidfile: 'root.pid', progress: false });
    assert.equal(rr.pid, s.pid);
    assert.equal(readFileSync(join(dir, 'root.pid'), 'utf8').trim(), String(s.pid));
    assert.ok(await waitFor(() => procState(s.pid) === 'T', 10_000), `state ${procState(s.pid)}, want T`);
    process.kill(s.pid, 'SIGCONT');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('dump stats agree with stats-dump and the pagemap', { timeout: 60_000 }, async () => {
  await withCounter(async (s, dir) => {
    const r = await dump({ pid: s.pid, imagesDir: dir, leaveRunning: true, progress: false });
    const st = readImage(join(dir, 'stats-dump')).entries[0]?.['dump'] as Record<string, unknown>;
    assert.equal(BigInt(String(st['pages_written'])), BigInt(r.stats.pagesWritten));
    assert.equal(BigInt(String(st['pages_scanned'])), BigInt(r.stats.pagesScanned));
    const pm = readImage(join(dir, `pagemap-${s.pid}.img`)).entries.slice(1);
    const PE_PRESENT = 4;
    const inPagemap = pm.reduce((n, e) => n + ((Number(e['flags'] ?? 0) & PE_PRESENT) !== 0 ? Number(e['nr_pages']) : 0), 0);
    // counter-loop's 1 MiB data area alone is 256 pages.
    assert.ok(r.stats.pagesWritten >= 256, `${r.stats.pagesWritten} pages written`);
    // One task, no shared memory: every page written is a present page of its pagemap.
    assert.equal(inPagemap, r.stats.pagesWritten, 'present pages in the pagemap');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('errors are typed: EUNSUPPORTED names the fd and the task runs on', { timeout: 60_000 }, async () => {
  await withCounter(async (s, dir) => {
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.equal(e.data['fd'], 40);
      assert.equal(e.data['pid'], s.pid);
      return true;
    });
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  }, 'perf-uring-fd', ['--kind', 'perf']);
});

test('errors are typed: a missing task, a corrupted image, a pid in use', { timeout: 60_000 }, async () => {
  await assert.rejects(dump({ pid: 4_000_000, imagesDir: '/tmp', progress: false }), (e: unknown) => isCriuTsError(e) && e.code === 'ENOTASK');
  await withCounter(async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, leaveRunning: true, progress: false });
    // The task still runs: its pid is taken.
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, new RegExp(`pid ${s.pid}`));
      return true;
    });
    assert.ok(isAlive(s.pid), 'the running task is untouched');
    const inv = join(dir, 'inventory.img');
    writeFileSync(inv, Buffer.concat([readFileSync(inv).subarray(0, 8), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3])]));
    await killAndWait(s.pid);
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EIMAGE', e.message);
      assert.match(e.message, /inventory\.img/);
      return true;
    });
    assert.ok(await waitGone(s.pid, 5000), 'nothing restored');
  });
});

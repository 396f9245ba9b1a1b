/**
 * Issue 15's "what survives a crash of criu-ts between pre-dumps": criu-ts
 * killed with SIGKILL inside a pre-dump, after its scan of the written
 * pages protected them again and before it wrote its record. The guardian
 * lets the task go and closes the trackers the killed run scanned or made
 * (test/cli/e2e-killed-pre-dump.test.ts walks the kill points); the task
 * writes at full speed; the next dump trusts nothing of the killed run,
 * copies every page, and the restored task is right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSubject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { readImage } from '../../src/images/index.js';
import { killSubject, waitFor, waitGone } from '../lib/harness.js';
import { restore } from '../../src/api/index.js';

function statusField(pid: number, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim() ?? '';
}

test('criu-ts killed inside a pre-dump, between two pre-dumps: the task runs on, writes at full speed, and the next dump copies everything', { timeout: 180_000 }, async () => {
  const s = await startSubject('mem-dirty', ['--speed', '256']);
  try {
    const dirs = ['pre1', 'pre2', 'final'].map((n) => join(s.workDir, n)) as [string, string, string];
    for (const d of dirs) mkdirSync(d);
    const [pre1, pre2, fin] = dirs;
    const first = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', pre1]);
    assert.equal(first.code, 0, first.stderr);
    // Killed once the task's pages are scanned (and protected again) and the task is being let go, before the copy and the record.
    process.env['CRIU_TS_FAULT'] = '@cure:SIGKILL';
    let killed;
    try {
      killed = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', pre2, '--prev-images-dir', '../pre1']);
    } finally {
      delete process.env['CRIU_TS_FAULT'];
    }
    assert.ok(killed.code === null || killed.code === 137, `criu-ts was killed (exit ${killed.code}): ${killed.stderr}`);
    assert.ok(!existsSync(join(pre2, 'criu-ts-track.json')), 'no record of the killed run');
    assert.ok(await waitFor(() => statusField(s.pid, 'TracerPid') === '0' && !/^t/.test(statusField(s.pid, 'State')), 15_000), 'the task runs, traced by nobody');
    process.kill(s.pid, 'SIGUSR2');
    const speedFile = `${s.outFile}.speed`;
    assert.ok(await waitFor(() => existsSync(speedFile), 60_000), 'no speed report');
    const [base, pass1, pass2, faults1, faults2] = readFileSync(speedFile, 'utf8').trim().split(' ').map(Number) as [number, number, number, number, number];
    // Pass 1 takes one minor fault per page left write-protected; then nothing is protected any more:
    // three more passes over the 65,536 pages take (next to) no fault, which is what full speed is made of.
    // (Speeds are shown, not checked: a loaded machine skews them.)
    console.log(`write speed over 256 MiB: before pre-dump ${base} GB/s; after: first pass ${pass1} GB/s (${faults1} minor faults), then ${pass2} GB/s (${faults2} faults in 3 passes)`);
    assert.ok(faults2 <= 655, `after the first pass no page is write-protected any more: ${faults2} minor faults in 3 passes over 65,536 pages (first pass: ${faults1})`);
    // pre1's record was consumed by the killed run's scan: nothing is taken from pre1.
    const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', fin, '--prev-images-dir', '../pre1']);
    assert.equal(d.code, 0, d.stderr);
    const st = (readImage(join(fin, 'stats-dump')).entries[0] as { dump?: { pages_skipped_parent?: bigint } }).dump;
    assert.equal(Number(st?.pages_skipped_parent ?? 0), 0, 'the dump after the killed run copies every page');
    assert.ok(await waitGone(s.pid));
    await restore({ imagesDir: fin });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

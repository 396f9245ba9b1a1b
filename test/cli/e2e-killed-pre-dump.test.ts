/**
 * criu-ts killed in the middle of a pre-dump chain (issue 9, point 3, over
 * pre-dump): a first pre-dump, a second one with --prev-images-dir and
 * --track-mem, and the final dump after them (with and without -R), each
 * killed at 10 points spread over its whole run (the final dump 5 with -R, 5 without) (CRIU_TS_FAULT=@K:SIG, by
 * SIGKILL, SIGTERM and SIGINT in turn), injected calls, the copy while the
 * tree runs again and the record included.
 *
 * After each kill the dump-victim (4 threads, a SIGUSR1 handler, a 64 MiB
 * heap) must be alive, untraced, with every thread's mask and its maps as
 * before, and handle a SIGUSR1. Memory tracking leaves nothing the chain
 * cannot account for: the only userfaultfd the task may still hold is the
 * one a record still on disk names (the previous run's, untouched), and
 * when there is none, not one page is write-protected (the task writes at
 * full speed). The next pre-dump or dump works each time; at the end the
 * final dump restores and the subject checks its registers, heap, masks and
 * the 30 SIGUSR1 it handled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli, withFault, type CliResult } from '../lib/run.js';
import { handlesUsr1, passesOf, settled, snapshot, spread, userfaultfds, writeProtectedPages } from '../lib/kill-walk.js';
import { killSubject, waitGone } from '../lib/harness.js';
import { FAULT_POINTS } from '../../src/fault.js';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;
const TRACK_RECORD = 'criu-ts-track.json';

/** The tracker a pre-dump's record names for `pid`, as "fd:inode"; undefined without a record. */
function recorded(dir: string, pid: number): string | undefined {
  const f = join(dir, TRACK_RECORD);
  if (!existsSync(f)) return undefined;
  const t = (JSON.parse(readFileSync(f, 'utf8')) as { tasks: Record<string, { fd: number; ino: string }> }).tasks[String(pid)];
  return t ? `${t.fd}:${t.ino}` : undefined;
}

test('criu-ts killed at 30 points of a pre-dump chain (pre-dump, pre-dump --prev-images-dir --track-mem, dump): the target carries on as before, untracked but for a live record, and the next run works', { timeout: 1_500_000 }, async () => {
  const s = await startSubject('dump-victim', ['--usr1', '30'], { pthread: true });
  try {
    const [p1, p2, fin, scratch] = ['p1', 'p2', 'final', 'scratch'].map((n) => join(s.workDir, n)) as [string, string, string, string];
    for (const d of [p1, p2, fin, scratch]) mkdirSync(d);
    const pid = String(s.pid);
    const preDump1 = (): string[] => ['pre-dump', '-t', pid, '-D', p1];
    const preDump2 = (): string[] => ['pre-dump', '-t', pid, '-D', p2, '--prev-images-dir', '../p1', '--track-mem'];
    const dump = (leaveRunning: boolean): string[] => ['dump', '-t', pid, '-D', fin, '--prev-images-dir', '../p2', '--track-mem', ...(leaveRunning ? ['-R'] : [])];
    const ok = async (args: string[]): Promise<void> => {
      const r = await runCli('criu-ts', args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    // A dump -R without --track-mem closes every tracker it finds: the target as it was before any pre-dump.
    const untrack = (): Promise<void> => ok(['dump', '-t', pid, '-D', scratch, '-R']);
    const before = snapshot(s.pid);
    let kills = 0;

    /**
     * Kill `args` at 10 passes of its run (after `prepare`, which puts the
     * target and the chain in the state the count was made in), and check
     * the target after each; `parent`: the images dir whose record the run
     * may consume.
     */
    const walk = async (phase: string, n: number, prepare: () => Promise<void>, args: string[], parent: string | undefined): Promise<void> => {
      await prepare();
      // A dump without -R kills the tree on purpose after its images: counted (and killed) up to there, where a fault stops it.
      const whole = args.includes('-R') || args[0] === 'pre-dump';
      const r0 = await withFault(whole ? 'count' : `count,${FAULT_POINTS.indexOf('dump.images') + 1}`, () => runCli('criu-ts', args));
      assert.equal(r0.code, whole ? 0 : 1, `${phase}: ${r0.stderr}`);
      const names = passesOf(r0.stderr);
      // Every pass, the first injected call (the scratch mmap) included.
      const skip = new Set<number>();
      const last = whole ? names.length : names.indexOf('dump.images') + 1;
      for (const [i, k] of spread(1, last, n, skip).entries()) {
        await prepare();
        const sig = SIGNALS[kills % SIGNALS.length] as string;
        const what = `${phase}: kill ${i + 1}/${n} at pass ${k} of ${names.length} (${names[k - 1]}) with ${sig}`;
        const r: CliResult = await withFault(`@${k}:${sig}`, () => runCli('criu-ts', args));
        assert.notEqual(r.code, 0, `${what}: the run did not fail\n${r.stderr}`);
        assert.ok(isAlive(s.pid), `${what}: the target died\n${r.stderr}`);
        assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed\n${r.stderr}`);
        assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian`);
        const live = parent === undefined ? undefined : recorded(parent, s.pid);
        const uffds = userfaultfds(s.pid);
        if (live !== undefined) {
          // The previous run's record is still there (this run was killed before it used it): its tracker, and only it, stays.
          assert.deepEqual(uffds, [live], `${what}: trackers other than the recorded one\n${r.stderr}`);
        } else {
          assert.deepEqual(uffds, [], `${what}: a tracker no record names was left\n${r.stderr}`);
          assert.equal(writeProtectedPages(s.pid), 0, `${what}: pages left write-protected`);
        }
        assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
        kills++;
      }
    };

    // 1. A first pre-dump, from a target nobody tracks.
    await walk('pre-dump', 10, untrack, preDump1(), undefined);
    // 2. A second one on top of a fresh first (whose record it consumes at its first scan).
    await walk('pre-dump --prev-images-dir', 10, () => ok(preDump1()), preDump2(), p1);
    // 3. The final dump on top of a fresh second: with -R (tracking on), and without -R (up to its images).
    await walk('dump --prev-images-dir -R', 5, () => ok(preDump2()), dump(true), p2);
    await walk('dump --prev-images-dir', 5, () => ok(preDump2()), dump(false), p2);
    assert.equal(kills, 30);

    // The chain still works: two pre-dumps, the final dump, the restore.
    await ok(preDump1());
    await ok(preDump2());
    await ok(dump(false));
    assert.ok(await waitGone(s.pid), 'the dump kills the target');
    await ok(['restore', '-D', fin, '-d']);
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

test('a pre-dump whose copy fails seizes the tree again, armed, to close its trackers: killed there at every injected call, the target is as before and untracked', { timeout: 600_000 }, async () => {
  const s = await startSubject('dump-victim', ['--usr1', '8'], { pthread: true });
  try {
    const [p1, p2] = ['p1', 'p2'].map((n) => join(s.workDir, n)) as [string, string];
    for (const d of [p1, p2]) mkdirSync(d);
    const pid = String(s.pid);
    const before = snapshot(s.pid);
    const copyFails = String(FAULT_POINTS.indexOf('dump.memory') + 1);
    const check = async (what: string, r: CliResult): Promise<void> => {
      assert.notEqual(r.code, 0, `${what}: the pre-dump did not fail\n${r.stderr}`);
      assert.ok(isAlive(s.pid), `${what}: the target died\n${r.stderr}`);
      assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed\n${r.stderr}`);
      assert.deepEqual(userfaultfds(s.pid), [], `${what}: a tracker was left\n${r.stderr}`);
      assert.equal(writeProtectedPages(s.pid), 0, `${what}: pages left write-protected`);
      assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
    };
    // A second pre-dump (it scans the first one's tracker and makes none) and a first one (it makes one): both close what they touched.
    for (const [phase, args, prepare] of [
      ['pre-dump', ['pre-dump', '-t', pid, '-D', p1], async () => undefined],
      ['pre-dump --prev-images-dir', ['pre-dump', '-t', pid, '-D', p2, '--prev-images-dir', '../p1', '--track-mem'], async () => {
        const r = await runCli('criu-ts', ['pre-dump', '-t', pid, '-D', p1]);
        assert.equal(r.code, 0, r.stderr);
      }],
    ] as const) {
      await prepare();
      const failed = await withFault(`count,${copyFails}`, () => runCli('criu-ts', [...args]));
      assert.match(failed.stderr, new RegExp(`fault ${copyFails} \\(dump.memory\\) injected`), failed.stderr);
      await check(`${phase}: copy failed`, failed);
      const names = passesOf(failed.stderr);
      const from = names.indexOf('dump.memory') + 1;
      // Every pass after the failure, the second seize's scratch mmap included.
      const kills = names.map((n, i) => ({ n, k: i + 1 })).filter((x) => x.k > from);
      assert.ok(kills.length >= 3, `${phase}: passes after the failure: ${names.slice(from).join(' ')}`);
      for (const [i, x] of kills.entries()) {
        await prepare();
        const sig = i % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
        const what = `${phase}: copy failed, killed at pass ${x.k} (${x.n}) with ${sig}`;
        const r = await withFault(`${copyFails},@${x.k}:${sig}`, () => runCli('criu-ts', [...args]));
        assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian\n${r.stderr}`);
        await check(what, r);
      }
    }
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

/**
 * criu-ts killed in the middle of `dump --leave-stopped` (issue 9, "never
 * harm the target"). As in e2e-killed-dumper, CRIU_TS_FAULT=@K:SIG makes
 * criu-ts send itself SIG at its K-th fault point, spread over the whole
 * run (the release that stops the tree included). A dump that failed must
 * leave the target as it was: running, untraced in every thread, masks and
 * address space as before, handling a SIGUSR1. Only a dump that completed
 * may leave it stopped, as asked: every thread in group stop, untraced,
 * carrying on when continued. A dump completes when its images are: killed
 * in the release that follows (some tasks stopped already), criu-ts's
 * guardian stops the rest and says so, so that a tree never ends half
 * stopped and half running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, type Subject } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { handlesUsr1, passesOf, settled, snapshot, spread } from '../lib/kill-walk.js';
import { dumpedPids, withSubject } from '../lib/harness.js';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** The state letter of every thread of pid (/proc/PID/task/TID/stat): 'T' for a group stop. */
function threadStates(pid: number): string {
  return readdirSync(`/proc/${pid}/task`).sort().map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  }).join('');
}

/** Every thread of pid in group stop (state T), within a second. */
async function stoppedAll(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (/^T+$/.test(threadStates(pid))) return true;
    await sleep(10);
  }
  return false;
}

/** The subject's own check at the end: PASS. */
async function passes(s: Subject): Promise<void> {
  const res = await s.terminateAndResult(20_000);
  assert.ok(res.ok, res.text);
}

/** After a dump that completed: stopped as asked, untraced; continued, it is as before. */
async function checkStoppedThenContinue(pid: number, before: string, what: string, stderr: string): Promise<void> {
  assert.ok(await stoppedAll(pid), `${what}: not stopped in every thread (${threadStates(pid)})\n${stderr}`);
  process.kill(pid, 'SIGCONT');
  assert.equal(await settled(pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed\n${stderr}`);
  assert.ok(await handlesUsr1(pid), `${what}: SIGUSR1 not handled after SIGCONT`);
}

test('dump --leave-stopped completes: the target is left stopped in every thread, untraced, and carries on when continued', async () => {
  await withSubject('dump-victim', ['--usr1', '1'], 'leave-stopped', async (s, work) => {
    const before = snapshot(s.pid);
    const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work, '--leave-stopped']);
    assert.equal(r.code, 0, r.stderr);
    await checkStoppedThenContinue(s.pid, before, 'dump -s', r.stderr);
    await passes(s);
  }, { pthread: true });
});

test('criu-ts killed at 18 points of dump --leave-stopped (SIGKILL/SIGTERM/SIGINT): failed, the target runs on as before; completed, it is stopped as asked', { timeout: 600_000 }, async () => {
  await withSubject('dump-victim', ['--usr1', '10'], 'killed-stopped', async (s, work) => {
    const before = snapshot(s.pid);
    const r0 = await withFault('count', () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work, '-s']));
    assert.equal(r0.code, 0, r0.stderr);
    await checkStoppedThenContinue(s.pid, before, 'the counting run', r0.stderr);
    const names = passesOf(r0.stderr);
    // The known window of docs/robustness.md (the first injected call of a process) is left out, as in e2e-killed-dumper.
    const firstInject = names.indexOf('inject') + 1;
    const imagesAt = names.indexOf('dump.images') + 1;
    assert.ok(firstInject > 0 && imagesAt > 0, names.join(' '));
    // Half over the whole run, half from the images on: the release that stops the tree is where 'stop' differs.
    const plan = [...new Set([...spread(1, names.length, 9, new Set([firstInject])), ...spread(imagesAt, names.length, 9, new Set([firstInject]))])];
    for (const [i, k] of plan.entries()) {
      const sig = SIGNALS[i % SIGNALS.length] as string;
      const what = `kill ${i + 1}/${plan.length} at pass ${k} (${names[k - 1]}) with ${sig}`;
      const r = await withFault(`@${k}:${sig}`, () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work, '-s']));
      assert.ok(isAlive(s.pid), `${what}: the target died\n${r.stderr}`);
      if (r.code === 0) {
        await checkStoppedThenContinue(s.pid, before, what, r.stderr);
        continue;
      }
      assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian`);
      if (/the dump was leaving its tree stopped/.test(r.stderr)) {
        assert.ok(k > imagesAt, `${what}: stopped before its images were complete\n${r.stderr}`);
        await checkStoppedThenContinue(s.pid, before, what, r.stderr);
        continue;
      }
      assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed, or left stopped (${threadStates(s.pid)})\n${r.stderr}`);
      assert.doesNotMatch(threadStates(s.pid), /[Tt]/, `${what}: the dump failed but the target is stopped\n${r.stderr}`);
      assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
    }
    await passes(s);
  }, { pthread: true });
});

test('criu-ts killed while dump --leave-stopped releases a tree of processes: the whole tree ends stopped (the images complete), never part of it', { timeout: 600_000 }, async () => {
  await withSubject('tree', [], 'killed-stopped-tree', async (s, work) => {
    let n = 0;
    const next = (): string => {
      const d = join(work, String(n++));
      mkdirSync(d);
      return d;
    };
    let pids: number[] = [];
    const states = (): string => pids.map((p) => `${p}:${threadStates(p)}`).join(' ');
    const allStopped = async (): Promise<boolean> => {
      for (let i = 0; i < 100; i++) {
        if (pids.every((p) => /^T+$/.test(threadStates(p)))) return true;
        await sleep(10);
      }
      return false;
    };
    const cont = (): void => {
      for (const p of pids) process.kill(p, 'SIGCONT');
    };
    try {
      const r0 = await withFault('count', () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', next(), '-s']));
      assert.equal(r0.code, 0, r0.stderr);
      pids = dumpedPids(join(work, '0'));
      assert.ok(pids.length >= 3, `a tree: ${pids.join(' ')}`);
      assert.ok(await allStopped(), `the completed dump left the tree stopped: ${states()}`);
      cont();
      const names = passesOf(r0.stderr);
      const imagesAt = names.indexOf('dump.images') + 1;
      assert.ok(imagesAt > 0, names.join(' '));
      // The release: every pass after the images (cures, their injected calls), at most 8.
      const plan = [...new Set(spread(imagesAt + 1, names.length, Math.min(8, names.length - imagesAt), new Set()))];
      assert.ok(plan.length >= 2, `passes after the images: ${names.slice(imagesAt).join(' ')}`);
      let stoppedRuns = 0;
      for (const [i, k] of plan.entries()) {
        const sig = SIGNALS[i % SIGNALS.length] as string;
        const what = `killed at pass ${k} (${names[k - 1]}) with ${sig}`;
        const r = await withFault(`@${k}:${sig}`, () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', next(), '-s']));
        assert.ok(pids.every(isAlive), `${what}: a task of the tree died\n${r.stderr}`);
        if (r.code === 0 || /the dump was leaving its tree stopped/.test(r.stderr)) {
          assert.ok(await allStopped(), `${what}: the tree is not stopped as a whole: ${states()}\n${r.stderr}`);
          stoppedRuns++;
          cont();
        } else {
          await sleep(100);
          assert.doesNotMatch(states(), /[Tt]/, `${what}: the dump failed, yet part of the tree is stopped: ${states()}\n${r.stderr}`);
        }
      }
      assert.ok(stoppedRuns > 0, 'no kill landed in the release');
      await passes(s);
    } finally {
      // The tree spans three sessions: its process group is not all of it.
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
});

/**
 * criu-ts killed at the first injected call of a process (issue 9, point 3):
 * the mmap of its scratch area, which until session 9 was the one window a
 * kill was not covered in (the target died). The call now runs with a
 * self-cure frame on the thread's own stack, and the guardian is told where
 * the area will be before the call (src/infect/first-call.ts).
 *
 * CRIU_TS_FAULT=@inject#K:SIG kills criu-ts with its registers set for
 * that call, before it runs: the thread runs it alone, then its sigreturn.
 * A process stopped by SIGSTOP does not run it at all until SIGCONT: the
 * guardian puts it back from its frame. In a tree, the first calls of all
 * processes go side by side: inject#1..N are theirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { dumpPasses, handlesUsr1, settled, snapshot, withDumpVictim } from '../lib/kill-walk.js';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;

function readOr(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

/** The process's state letter (R, S, T...). */
const stateOf = (pid: number): string => /\nState:\s+(\S)/.exec(readOr(`/proc/${pid}/status`))?.[1] ?? '?';

test('criu-ts killed at the first injected call (the scratch mmap), with and without -R, running or stopped: the target as before', async () => {
  await withDumpVictim(['--usr1', '6'], '/tmp/criu-ts-first-call-', async (s, work, before) => {
    assert.equal((await dumpPasses(s.pid, work))[1], 'inject', 'the first injected call comes right after the seize');
    let n = 0;
    for (const stopped of [false, true]) {
      for (const [i, sig] of SIGNALS.entries()) {
        const leaveRunning = i !== 1;
        const what = `${sig}${leaveRunning ? ', -R' : ''}${stopped ? ', target stopped' : ''}`;
        if (stopped) process.kill(s.pid, 'SIGSTOP');
        const args = ['dump', '-t', String(s.pid), '-D', work, ...(leaveRunning ? ['-R'] : [])];
        const r = await withFault(`@inject#1:${sig}`, () => runCli('criu-ts', args));
        assert.notEqual(r.code, 0, `${what}: the dump did not fail\n${r.stderr}`);
        assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian\n${r.stderr}`);
        if (stopped) {
          assert.equal(stateOf(s.pid), 'T', `${what}: the stopped target runs`);
          process.kill(s.pid, 'SIGCONT');
        }
        assert.ok(isAlive(s.pid), `${what}: the target died\n${r.stderr}`);
        assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed\n${r.stderr}`);
        assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
        n++;
      }
    }
    assert.equal(n, 6);
    // After all that, a dump works and leaves it as it was.
    const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work, '-R']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await settled(s.pid, before), before);
  });
});

test('criu-ts killed at the first injected call of each process of a tree: every process as before', async () => {
  const s = await startSubject('tree', []);
  const work = mkdtempSync('/tmp/criu-ts-first-call-tree-');
  try {
    const pids = (): number[] => [s.pid, ...descendants(s.pid)];
    const all = pids();
    assert.ok(all.length >= 3, `tree: ${all.join(' ')}`);
    const before = all.map((p) => snapshot(p));
    for (let k = 1; k <= all.length; k++) {
      const sig = SIGNALS[k % SIGNALS.length] as string;
      const r = await withFault(`@inject#${k}:${sig}`, () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work, '-R']));
      assert.notEqual(r.code, 0, `inject#${k}: the dump did not fail\n${r.stderr}`);
      assert.match(r.stderr, /criu-ts: interrupted/, `inject#${k}: no word from the guardian\n${r.stderr}`);
      for (const [j, p] of all.entries()) {
        assert.ok(isAlive(p), `inject#${k} ${sig}: task ${p} died\n${r.stderr}`);
        assert.equal(await settled(p, before[j] as string), before[j], `inject#${k} ${sig}: task ${p} changed\n${r.stderr}`);
      }
    }
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const tid of readdirSync(`/proc/${p}/task`)) {
      const kids = readOr(`/proc/${p}/task/${tid}/children`).trim();
      for (const c of kids === '' ? [] : kids.split(' ').map(Number)) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

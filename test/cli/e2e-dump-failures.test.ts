/**
 * "Never harm the target" (issue 3): a dump that cannot finish says why in
 * one line on stderr (exit 1, no stack trace) and leaves the task running
 * exactly as before, which the subject proves by still PASSing when it is
 * terminated (counter still moving by +1, memory intact). Covers an
 * unusable images dir, a dir that fills up mid-dump, fds of kinds we cannot
 * dump, threads exiting under the dump, the task killed mid-dump, and a
 * task another tracer holds.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { oneLineFailure, runCli } from '../lib/run.js';
import { Tracee } from '../../src/infect/tracee.js';
import {
  fdTarget, killAndWait, removeDir, sleep, strayStubs, tempDir, waitFor, waitGone, useE2eHarness, withSubject,
} from '../lib/harness.js';

useE2eHarness();

/** What a failed dump must leave exactly as it was: mappings (no scratch page), fds, signal masks and dispositions. */
function snapshot(pid: number): string {
  const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b).map((fd) => `${fd} ${fdTarget(pid, fd) ?? '?'}`);
  const sig = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(SigBlk|SigIgn|SigCgt|NoNewPrivs|Seccomp):/.test(l));
  return [readFileSync(`/proc/${pid}/maps`, 'utf8'), ...fds, ...sig].join('\n');
}

/** The subject survived: same state as before, running, no tracer, then PASS on SIGTERM after running a little longer. */
async function unharmed(s: Subject, before?: string): Promise<void> {
  assert.ok(isAlive(s.pid), `subject ${s.pid} died`);
  const status = readFileSync(`/proc/${s.pid}/status`, 'utf8');
  assert.match(status, /^TracerPid:\s+0$/m, 'no tracer left attached');
  assert.doesNotMatch(status, /^State:\s+[tT]/m, 'not left stopped');
  if (before !== undefined) assert.equal(snapshot(s.pid), before, 'maps, fds and signal state as before the dump');
  await sleep(50);
  const res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);
}

/** Subject `name` and a work dir for the length of `body` (test/lib/harness.ts withSubject). */
function withTarget(name: string, args: string[], pthread: boolean, body: (s: Subject, work: string) => Promise<void>): Promise<void> {
  return withSubject(name, args, 'e2e-dumpfail', body, { pthread });
}

test('images dir under a regular file: refused before touching the task', { timeout: 60_000 }, async () => {
  await withTarget('counter-loop', [], false, async (s, work) => {
    writeFileSync(join(work, 'file'), 'x');
    const dir = join(work, 'file', 'images');
    oneLineFailure(await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]), /^criu-ts: cannot open images directory .*file\/images/);
    await unharmed(s);
  });
});

test('missing images dir with -o dump.log: the dir is named, not the log file in it', { timeout: 60_000 }, async () => {
  await withTarget('counter-loop', [], false, async (s, work) => {
    const dir = join(work, 'no-such-dir');
    oneLineFailure(await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir, '-v4', '-o', 'dump.log']),
      /^criu-ts: cannot open images directory .*no-such-dir: no such directory$/);
    oneLineFailure(await runCli('criu-ts', ['restore', '-D', dir, '-d', '-v4', '-o', 'restore.log']),
      /^criu-ts: cannot open images directory .*no-such-dir: no such directory$/);
    await unharmed(s);
  });
});

test('images dir that fills up mid-dump (64 KiB tmpfs): ENOSPC, task unharmed', { timeout: 60_000 }, async (t: TestContext) => {
  await withTarget('counter-loop', [], false, async (s, work) => {
    const dir = join(work, 'small');
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`cannot mount a small tmpfs here: ${(e as Error).message.split('\n')[0] ?? ''}`);
      return;
    }
    try {
      // counter-loop holds 1 MiB of data: the pages cannot fit in 64 KiB.
      const before = snapshot(s.pid);
      const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir, '-o', 'dump.log']);
      oneLineFailure(r, /^Error \(criu-ts\): .*(ENOSPC|[Nn]o space left)/);
      await unharmed(s, before);
    } finally {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    }
  });
});

for (const [kind, inode] of [['perf', 'perf_event'], ['io_uring', 'io_uring']] as const) {
  test(`a ${kind} fd cannot be dumped: refused with the fd named, task unharmed`, { timeout: 60_000 }, async (t: TestContext) => {
    const work = tempDir('e2e-unsup');
    let s: Subject | undefined;
    try {
      try {
        s = await startSubject('perf-uring-fd', ['--kind', kind]);
      } catch (e) {
        // The subject exits 3 when the kernel will not create the fd (e.g. io_uring disabled by sysctl).
        t.skip(`no ${kind} fd on this kernel: ${(e as Error).message.split('\n').find((l) => l.includes('cannot create')) ?? ''}`);
        return;
      }
      const images = join(work, 'images');
      mkdirSync(images);
      const before = snapshot(s.pid);
      const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', images, '-o', 'dump.log']);
      oneLineFailure(r, new RegExp(`^Error \\(criu-ts\\): task ${s.pid} fd 40: anon_inode:\\[${inode}\\]: .*not supported`));
      await unharmed(s, before);
    } finally {
      if (s !== undefined) {
        await killAndWait(s.pid);
        s.cleanup();
      }
      removeDir(work);
    }
  });
}

test('threads exiting under the dump (-R, 8 rounds): each round ends cleanly, task unharmed', { timeout: 180_000 }, async () => {
  await withTarget('thread-churn', [], true, async (s, work) => {
    const before = snapshot(s.pid);
    for (let round = 0; round < 8; round++) {
      const images = join(work, `images-${round}`);
      mkdirSync(images);
      const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', images, '-R', '-o', 'dump.log'], { timeoutMs: 60_000 });
      // Either outcome is fine; a hang, a crash or a harmed task is not.
      if (r.code !== 0) oneLineFailure(r, /^Error \(criu-ts\): /);
      assert.ok(isAlive(s.pid), `round ${round}: task died (dump exit ${r.code}: ${r.stderr})`);
    }
    await unharmed(s, before);
  });
});

test('task killed mid-dump: the dump fails with one line, never hangs, leaves nothing', { timeout: 180_000 }, async () => {
  // SIGKILL at growing delays after the CLI starts: before the seize, while
  // freezing, while memory is read (64 MiB takes a few hundred ms here).
  for (const delayMs of [20, 100, 150, 200, 300, 450]) {
    await withTarget('big-memory', ['--mib', '64'], false, async (s, work) => {
      const images = join(work, 'images');
      mkdirSync(images);
      const dumping = runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', images, '-o', 'dump.log'], { timeoutMs: 60_000 });
      await sleep(delayMs);
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // the dump finished first and killed it
      }
      const r = await dumping;
      // A dump that finished before the kill is fine (and killed the task itself).
      if (r.code !== 0) oneLineFailure(r, /^(Error \(criu-ts\)|criu-ts): /);
      assert.ok(await waitGone(s.pid), `pid ${s.pid} left behind (delay ${delayMs} ms)`);
    });
  }
  assert.ok(await waitFor(() => strayStubs().length === 0, 5000), 'nothing left behind');
});

test('a task another tracer holds (a debugger, strace): refused in one line naming the tracer, task unharmed', { timeout: 60_000 }, async () => {
  await withTarget('counter-loop', [], false, async (s, work) => {
    // This test process is the other tracer (it holds the task stopped): a task has one tracer at a time.
    const t = Tracee.seize(s.pid);
    try {
      const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work], { timeoutMs: 30_000 });
      oneLineFailure(r, new RegExp(`^Error \\(criu-ts\\): task ${s.pid} is traced by ${process.pid} \\(node\\): a task being traced cannot be dumped`));
    } finally {
      t.detach();
    }
    await unharmed(s);
  });
});

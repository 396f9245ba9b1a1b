/**
 * Syscall restart after restore follows the kernel's rules: a task restored
 * inside sigsuspend() whose SIGUSR1 handler runs before it gets to run again
 * sees EINTR (the call is not simply issued again), so a
 * `while (!flag) sigsuspend()` loop ends. The signal is sent while the
 * restored task is still stopped (--leave-stopped), so the order is certain.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { startSubject, type Subject } from '../lib/subjects.js';
import { closeInheritedFds, becomeSubreaper, finishSubject, tempDir, removeDir, waitTreeGone } from '../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a handled signal that arrives before a restored sigsuspend() runs again interrupts it (EINTR), as the kernel would', { timeout: 60_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('restart-img');
  try {
    s = await startSubject('signal-wakes-restarted');
    await sleep(50); // let it enter sigsuspend
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const r = await restore({ imagesDir: dir, leaveStopped: true, progress: false });
    assert.equal(r.pid, s.pid);
    process.kill(s.pid, 'SIGUSR1');
    process.kill(s.pid, 'SIGCONT');
    const woke = join(s.workDir, 'woke');
    for (let i = 0; i < 500 && !existsSync(woke); i++) await sleep(10);
    assert.ok(existsSync(woke), 'the SIGUSR1 handler ran but sigsuspend went on sleeping');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finishSubject(s, dir);
  }
});

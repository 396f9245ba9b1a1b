/**
 * `restore --verify` catches what the kernel silently drops. The images ask
 * for a signal action with SA_UNSUPPORTED (0x400) in its flags: rt_sigaction
 * accepts it and the kernel clears the bit (Linux 5.11+), so a plain
 * restore "succeeds" with a different action. With --verify the restore
 * fails with one line naming the task and the field, and no task is left;
 * with --verify=warn it goes on (the difference is only logged).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import type { CoreEntry } from '../../src/images/messages.js';
import { isCriuTsError } from '../../src/errors.js';
import { startSubject, isAlive, type Subject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { closeInheritedFds, becomeSubreaper, tempDir, removeDir, waitTreeGone, killAndWait } from '../e2e/helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const SA_UNSUPPORTED = 0x400n;
const SIGUSR1 = 10;

/** Set SA_UNSUPPORTED on SIGUSR1's action in the task's core image. */
function askForDroppedFlag(dir: string, pid: number): void {
  const path = join(dir, `core-${pid}.img`);
  const core = readImage(path).entries[0] as unknown as CoreEntry;
  const sa = core.tc?.sigactions?.[SIGUSR1 - 2]; // the list leaves out SIGKILL (9)
  assert.ok(sa, 'the core has a SIGUSR1 action');
  sa.flags |= SA_UNSUPPORTED;
  writeImage(path, 'CORE', [core as unknown as Record<string, unknown>]);
}

test('restore --verify refuses a tree the kernel restored differently (a dropped sigaction flag), and leaves no task', { timeout: 90_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('verify-img');
  try {
    s = await startSubject('signals');
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    askForDroppedFlag(dir, s.pid);
    await assert.rejects(
      restore({ imagesDir: dir, progress: false, verify: true, skipChecksums: true }),
      (e: unknown) => isCriuTsError(e) && /^restore --verify: task \d+: sigactions\[8\]\.flags: dumped 0x[0-9a-f]+, restored 0x[0-9a-f]+/.test(e.message),
    );
    assert.ok(!isAlive(s.pid), 'a refused restore left the task behind');
    // The same through the command line: one line, non-zero exit.
    const cli = await runCli('criu-ts', ['restore', '-d', '-D', dir, '--skip-checksums', '--verify']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr.trim(), /^Error.*restore --verify: task \d+: sigactions\[8\]\.flags/m);
    assert.ok(!isAlive(s.pid), 'a refused CLI restore left the task behind');
    // --verify=warn: logged, and the tree runs.
    const r = await restore({ imagesDir: dir, progress: false, verify: 'warn', skipChecksums: true });
    assert.equal(r.pid, s.pid);
    assert.ok(isAlive(s.pid));
  } finally {
    if (s) {
      await killAndWait(s.pid);
      s.cleanup();
    }
    removeDir(dir);
  }
});

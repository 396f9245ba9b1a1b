/**
 * What the special-file kinds refuse, with a message naming the task, the
 * fd and what is wrong, and the task left running: an epoll whose target
 * no fd of the task holds, queued inotify events, a pidfd of a process
 * outside the dump.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../../src/api/index.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { removeDir, tempDir, killSubject } from '../../lib/harness.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

async function refused(name: string, args: string[], message: RegExp): Promise<void> {
  const dir = tempDir(`kind-refused-${name}`);
  let s: Subject | undefined;
  try {
    s = await startSubject(name, args);
    const pid = s.pid;
    await assert.rejects(dump({ pid, imagesDir: dir, progress: false }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`task ${pid} fd \\d+: `));
      assert.match(e.message, message);
      return true;
    });
    assert.ok(isAlive(pid), 'the task runs on after a refused dump');
  } finally {
    await killSubject(s);
    removeDir(dir);
  }
}

test('epoll watching a file that no fd of the task holds any more (only a child does) is refused', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refused('epoll', ['--gone-target', '1'], /epoll watches a file \(inode \d+\) that no fd of the task holds \(its fd 28 was closed\)/);
});

test('an inotify with an event queued is refused (never a silent loss)', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refused('inotify', ['--pending', '1'], /fd 20: inotify has \d+ bytes queued for reading, which criu-ts cannot save without consuming them$/);
});

test('pidfd of a process outside the dump is refused', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refused('pidfd', ['--outside', '1'], /pidfd of process \d+, which is outside the dump/);
});

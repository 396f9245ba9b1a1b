/**
 * The frame most namespace tests share: a subject started, dumped and
 * restored, then asked to check itself from inside; whatever happens, the
 * restored tree is killed, the subject's files and the test's dirs go.
 *
 *   const run = new SubjectRun();
 *   try {
 *     const dir = run.dir('pid-ns');
 *     run.subject = await startSubject('pid-ns', [], { launcher: true });
 *     ... dump, look at the images, restore ...
 *     await run.passesAt(res.pid);
 *   } finally {
 *     await run.cleanup();
 *   }
 */
import assert from 'node:assert/strict';
import { killAndWait, removeDir, tempDir } from './harness.js';
import type { Subject } from './subjects.js';

export class SubjectRun {
  subject: Subject | undefined;
  /** the root of the restored tree, killed at cleanup */
  restored: number | undefined;
  private readonly dirs: string[] = [];

  /** A temporary dir, removed at cleanup. */
  dir(prefix: string): string {
    const d = tempDir(prefix);
    this.dirs.push(d);
    return d;
  }

  /** A dir of the caller's making, removed at cleanup. */
  removes(dir: string): string {
    this.dirs.push(dir);
    return dir;
  }

  /** The restored tree's root is `pid`: the subject, now there, must pass its own checks. */
  async passesAt(pid: number): Promise<void> {
    this.restored = pid;
    const s = this.subject;
    assert.ok(s, 'no subject was started');
    s.pid = pid;
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
  }

  async cleanup(): Promise<void> {
    if (this.restored !== undefined) await killAndWait(this.restored);
    this.subject?.cleanup();
    for (const d of this.dirs) removeDir(d);
  }
}

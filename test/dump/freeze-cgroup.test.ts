/**
 * --freeze-cgroup: a tree that forks (and a process that spawns threads)
 * all the time is frozen through its cgroup, seized while frozen, dumped,
 * and restored; with the cgroup v1 freezer and with cgroup v2's
 * cgroup.freeze. Skipped, with the reason, where a hierarchy is missing.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { startSubject, type Subject } from '../lib/subjects.js';
import { closeInheritedFds, becomeSubreaper, finishSubject, tempDir, removeDir, waitTreeGone } from '../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const HIERARCHIES = [
  { name: 'v1 freezer', root: '/sys/fs/cgroup/freezer', control: 'freezer.state' },
  { name: 'v2 cgroup.freeze', root: '/sys/fs/cgroup/unified', control: 'cgroup.freeze' },
];

function makeCgroup(root: string, control: string): string | undefined {
  if (!existsSync(root)) return undefined;
  const cg = join(root, `criu-ts-test-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(cg);
  } catch {
    return undefined;
  }
  if (!existsSync(join(cg, control))) {
    rmdirSync(cg);
    return undefined;
  }
  return cg;
}

function removeCgroup(cg: string): void {
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(cg);
      return;
    } catch {
      // tasks still leaving it
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

for (const h of HIERARCHIES) {
  for (const subject of [{ name: 'fork-churn', pthread: false }, { name: 'thread-churn', pthread: true }]) {
    const probe = makeCgroup(h.root, h.control);
    if (probe) removeCgroup(probe);
    test(`${h.name}: ${subject.name} is dumped through --freeze-cgroup and restored`, { skip: probe ? false : `no ${h.root} with ${h.control} here`, timeout: 120_000 }, async () => {
      const cg = makeCgroup(h.root, h.control) as string;
      const dir = tempDir('freeze-img');
      let s: Subject | undefined;
      try {
        s = await startSubject(subject.name, [], { pthread: subject.pthread });
        writeFileSync(join(cg, 'cgroup.procs'), String(s.pid));
        await new Promise((r) => setTimeout(r, 100));
        // First with --leave-running: the frozen, dumped tree must carry on unharmed.
        await dump({ pid: s.pid, imagesDir: dir, freezeCgroup: cg, leaveRunning: true, progress: false });
        assert.equal(readFileSync(`/proc/${s.pid}/stat`, 'latin1').includes(') T'), false, 'left stopped');
        removeDir(dir);
        // Then for real: dump (kill) and restore.
        await dump({ pid: s.pid, imagesDir: dir, freezeCgroup: cg, progress: false });
        assert.deepEqual(await waitTreeGone(dir), [], 'dumped tasks still alive');
        const r = await restore({ imagesDir: dir, progress: false });
        assert.equal(r.pid, s.pid);
        const res = await s.terminateAndResult(30_000);
        assert.ok(res.ok, res.text);
      } finally {
        await finishSubject(s, dir);
        removeCgroup(cg);
      }
    });
  }
}

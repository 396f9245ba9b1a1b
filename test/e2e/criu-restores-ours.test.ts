/**
 * Images go both ways: CRIU 4.2 itself restores what criu-ts dumped (a
 * counter, a tree with a pipe and a shared epoll, a process with 8 threads,
 * live FPU and AVX-512 registers, uts+ipc namespaces with SysV objects), and each subject carries on with the
 * same pid and passes its own check. Needs a CRIU binary: set CRIU_BIN to
 * it (README, "Benchmarks", says how to build CRIU 4.2 from its source);
 * skipped without one.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dump } from '../../src/api/index.js';
import { startSubject, type Subject } from '../lib/subjects.js';
import { SUBJECTS } from '../lib/subject-table.js';
import { spawnSync } from 'node:child_process';
import { closeInheritedFds, becomeSubreaper, tempDir, removeDir, waitTreeGone, killSubject, passesAfterRestore } from '../lib/harness.js';

const CRIU = process.env['CRIU_BIN'];
const skip = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

// Not cow-fork: CRIU restores its contents, but keeps a page shared only
// where parent and child have the very same VMA, and the subject has a
// region the child merged after an mprotect (criu-ts keeps those too).
const CASES: readonly { name: string; args?: string[] }[] = [
  { name: 'counter-loop' },
  { name: 'tree' },
  { name: 'unix-fork' },
  { name: 'pipe-data' },
  { name: 'threads', args: [] },
  { name: 'fpu' },
  { name: 'avx512' },
  { name: 'aio-ring', args: ['--criu-shape', '1'] },
  { name: 'ipc-ns', args: ['--criu-shape', '1'] },
];

for (const k of CASES) {
  const c = SUBJECTS.find((x) => x.name === k.name && (k.args === undefined || x.args.join(' ') === k.args.join(' ')));
  if (c === undefined) throw new Error(`no subject ${k.name} in the table`);
  test(`CRIU restores criu-ts's dump of ${c.name} (${c.feature}) and it carries on`, { skip: skip || c.skip || false, timeout: 120_000 }, async () => {
    let s: Subject | undefined;
    const dir = tempDir('criu-restores');
    try {
      s = await startSubject(c.name, c.args, { pthread: c.pthread });
      if (c.runMs > 0) await new Promise((r) => setTimeout(r, c.runMs));
      await dump({ pid: s.pid, imagesDir: dir, progress: false });
      assert.deepEqual(await waitTreeGone(dir), [], 'tasks still there after the dump');
      const r = spawnSync(CRIU as string, ['restore', '-d', '-D', dir, '-o', 'restore.log', '-v4'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(r.status, 0, `criu restore failed (see ${dir}/restore.log): ${r.stderr}`);
      await passesAfterRestore(s);
    } finally {
      await killSubject(s);
      removeDir(dir);
    }
  });
}

/**
 * Table-driven checkpoint/restore of every C subject (test/lib/subject-table):
 * build, start, let it run, dump through the API (which kills it), see the
 * pid vanish, restore it detached with the same pid and --verify (read back
 * and compared with the images before it runs), then SIGTERM and expect
 * PASS. Subjects that need a feature still being written are listed below
 * with the reason and run as node:test `todo`: reported, never red, and the
 * report shows when one starts passing. Two subjects also go through the real
 * command line, as a user would type it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import type { CommonOptions } from '../../src/api/index.js';
import { startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { SUBJECTS } from '../lib/subject-table.js';
import { runCli } from '../lib/run.js';
import {
  becomeSubreaper, closeInheritedFds, imageModes, removeDir, sleep, strayStubs, tempDir, waitGone, waitTreeGone,
  killSubject, passesAfterRestore,
} from '../lib/harness.js';

/** Subjects that cannot pass yet, and why. Remove a line when its feature lands. */
const EXPECTED_FAILING: Readonly<Record<string, string>> = {
};

/** Dump options a subject needs, as a user would pass them (CRIU refuses file locks without --file-locks). */
const DUMP_OPTIONS: Readonly<Record<string, Partial<CommonOptions>>> = {
  'fd-kinds': { fileLocks: true },
  'file-lease': { fileLocks: true },
  'tcp-conn': { tcpEstablished: true },
  'link-remap': { linkRemap: true },
  'tcp-states': { tcpEstablished: true },
  'tcp-close': { tcpEstablished: true, skipInFlight: true },
};

const STEP_TIMEOUT_MS = 120_000;

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

after(() => {
  // Restored subjects are our children (we are their subreaper): nothing may outlive the file.
  assert.deepEqual(strayStubs(), [], 'restore stubs left behind');
});

/** Kill what is left of a subject: its process group too (children of multi-process subjects). */
async function finish(s: Subject | undefined, dirs: string[]): Promise<void> {
  await killSubject(s);
  for (const d of dirs) removeDir(d);
}

for (const c of SUBJECTS) {
  const todo = EXPECTED_FAILING[c.name];
  const skip = c.skip === undefined ? {} : { skip: c.skip };
  test(`${c.name} survives dump + restore (API): ${c.feature}`, { timeout: STEP_TIMEOUT_MS, ...skip, ...(todo === undefined ? {} : { todo }) }, async () => {
    let s: Subject | undefined;
    const dir = tempDir('e2e-img');
    try {
      s = await startSubject(c.name, c.args, { pthread: c.pthread });
      if (c.runMs > 0) await sleep(c.runMs);
      const d = await dump({ ...DUMP_OPTIONS[c.name], pid: s.pid, imagesDir: dir, progress: false });
      assert.equal(d.pids[0], s.pid);
      assert.deepEqual(await waitTreeGone(dir), [], 'tasks (by pid) still there after the dump');
      // --verify: every subject is read back before it runs and compared with its images (issue 10, point 7).
      const r = await restore({ ...DUMP_OPTIONS[c.name], imagesDir: dir, progress: false, verify: true });
      assert.equal(r.pid, s.pid, 'restored with the same pid');
      await passesAfterRestore(s);
    } finally {
      await finish(s, [dir]);
    }
  });
}

/**
 * A restored task must be as dumpable as the original (no scratch page, stub
 * leftover or moved vDSO in the way): two full cycles, then PASS.
 */
for (const name of ['counter-loop', 'mappings', 'signals', 'fpu', 'pipe-data', 'tree', 'threads']) {
  const c = SUBJECTS.find((x) => x.name === name);
  if (c === undefined) continue; // the table changed: nothing to cycle
  test(`${name} survives two dump + restore cycles (API)`, { timeout: STEP_TIMEOUT_MS }, async () => {
    let s: Subject | undefined;
    const dirs = [tempDir('e2e-cycle'), tempDir('e2e-cycle')];
    try {
      s = await startSubject(c.name, c.args, { pthread: c.pthread });
      if (c.runMs > 0) await sleep(c.runMs);
      for (const dir of dirs) {
        await dump({ ...DUMP_OPTIONS[c.name], pid: s.pid, imagesDir: dir, progress: false });
        assert.deepEqual(await waitTreeGone(dir), [], 'tasks left after the dump');
        const r = await restore({ ...DUMP_OPTIONS[c.name], imagesDir: dir, progress: false });
        assert.equal(r.pid, s.pid);
        await sleep(Math.max(c.runMs, 20));
      }
      const res = await s.terminateAndResult(30_000);
      assert.ok(res.ok, res.text);
    } finally {
      await finish(s, dirs);
    }
  });
}

/** The two commands of the quick start, with the options users copy from CRIU's docs. */
for (const name of ['counter-loop', 'file-offsets']) {
  const c = SUBJECTS.find((x) => x.name === name);
  if (c === undefined) throw new Error(`${name} missing from the subject table`);
  test(`${name} survives criu-ts dump + restore -d (CLI)`, { timeout: STEP_TIMEOUT_MS }, async () => {
    let s: Subject | undefined;
    const dir = tempDir('e2e-cli');
    try {
      s = await startSubject(c.name, c.args, { pthread: c.pthread });
      if (c.runMs > 0) await sleep(c.runMs);
      const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir, '-v4', '-o', 'dump.log']);
      assert.equal(d.code, 0, `dump: ${d.stderr}`);
      assert.ok(existsSync(join(dir, 'dump.log')), 'dump.log in the images dir');
      assert.ok(await waitGone(s.pid), `pid ${s.pid} still exists after the dump`);
      for (const { name: img, mode } of imageModes(dir)) assert.equal(mode, 0o600, `${img} mode ${mode.toString(8)}`);

      const pidfile = join(dir, 'restored.pid');
      const r = await runCli('criu-ts', ['restore', '-D', dir, '-d', '--pidfile', pidfile, '-v4', '-o', 'restore.log']);
      assert.equal(r.code, 0, `restore: ${r.stderr}`);
      assert.ok(existsSync(join(dir, 'restore.log')), 'restore.log in the images dir');
      assert.equal(readFileSync(pidfile, 'utf8'), String(s.pid), 'pidfile holds the pid, no newline');
      await passesAfterRestore(s);
    } finally {
      await finish(s, [dir]);
    }
  });
}

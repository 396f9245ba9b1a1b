/**
 * Copy-on-write sharing between a parent and its child (subject cow-fork,
 * which checks by physical frame that the pages they share since fork are
 * still one page): kept by a restore, and never broken by a dump that
 * leaves the tree running or by a pre-dump (reading a shared page with
 * process_vm_readv would pin it, and the kernel copies a pinned shared
 * anonymous page). The restore's counts land in its stats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, preDump, restore } from '../../src/api/index.js';
import { startSubject } from '../lib/subjects.js';
import { waitGone, useE2eHarness } from './helpers.js';

useE2eHarness();

test('a dump with --leave-running and a pre-dump leave the pages a parent and child share shared', { timeout: 120_000 }, async () => {
  const s = await startSubject('cow-fork', []);
  try {
    const a = join(s.workDir, 'a');
    const b = join(s.workDir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    await dump({ pid: s.pid, imagesDir: a, leaveRunning: true });
    await preDump({ pid: s.pid, imagesDir: b });
    const r = await s.terminateAndResult(30_000);
    assert.ok(r.ok, r.text);
  } finally {
    s.cleanup();
  }
});

test('a restore keeps them shared and counts the pages it compared and left shared', { timeout: 120_000 }, async () => {
  const s = await startSubject('cow-fork', []);
  try {
    const dir = join(s.workDir, 'img');
    mkdirSync(dir);
    await dump({ pid: s.pid, imagesDir: dir });
    assert.ok(await waitGone(s.pid));
    const r = await restore({ imagesDir: dir });
    // The child's 16 + 8 + 4 + 1 inherited pages with data, less the dropped one (cow-fork.c).
    assert.ok(r.stats.pagesCompared >= 28, `compared ${r.stats.pagesCompared}`);
    assert.ok(r.stats.pagesSkippedCow >= 22, `left shared ${r.stats.pagesSkippedCow}`);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
  }
});

/**
 * Issue 15: a restore through a pre-dump chain checks the pages it takes
 * from parent images against each parent's own criu-ts-checksums (only the
 * blocks it reads: restore/images.ts checkParentPages), as it checks its own
 * images; and `criu-ts dedup` keeps the parents' checksums true, so the
 * last dump still restores checked while a parent that lost pages is
 * refused instead of restored with holes (kinds/memory/dedup-punch.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { dump, preDump, restore, isCriuTsError } from '../../src/api/index.js';
import { loadDump } from '../../src/restore/images.js';
import { parentReads } from '../../src/kinds/memory/parent-reads.js';
import { startSubject } from '../lib/subjects.js';
import { memDirtyPhase } from '../lib/page-server.js';
import { runCli } from '../lib/run.js';
import { waitGone, useE2eHarness, killSubject } from '../lib/harness.js';

useE2eHarness();

/** Flip one byte of `path` at `off`; returns a function that puts it back. */
function flipByte(path: string, off: number): () => void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, off);
  const was = b[0] as number;
  writeSync(fd, Buffer.from([was ^ 0x5a]), 0, 1, off);
  closeSync(fd);
  return () => {
    const fd2 = openSync(path, 'r+');
    writeSync(fd2, Buffer.from([was]), 0, 1, off);
    closeSync(fd2);
  };
}

test('a plain restore of an incremental dump checks the parent pages it reads: a changed parent block is refused in one line, nothing is created', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const pre1 = join(s.workDir, 'pre1');
    const fin = join(s.workDir, 'final');
    mkdirSync(pre1);
    mkdirSync(fin);
    await preDump({ pid: s.pid, imagesDir: pre1 });
    await memDirtyPhase(s, 1);
    await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre1' });
    assert.ok(await waitGone(s.pid));
    // A byte the final dump takes from pre1 (a PE_PARENT page).
    const img = loadDump(fin);
    const reads = parentReads(fin, img.tasks.map((t) => ({ pid: t.pstree.pid, mm: t.mm, pagemap: t.pagemap })), false);
    const [path, ranges] = [...reads][0] ?? [];
    assert.ok(path !== undefined && ranges !== undefined && path.startsWith(pre1), `final reads pages from pre1 (${[...reads.keys()].join(', ')})`);
    const putBack = flipByte(path, Number((ranges[0] as { start: bigint }).start) + 100);
    const cli = await runCli('criu-ts', ['restore', '-D', fin, '-d']);
    assert.notEqual(cli.code, 0);
    const lines = cli.stderr.trim().split('\n');
    assert.equal(lines.length, 1, cli.stderr);
    assert.match(lines[0] as string, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: contents changed since the dump at bytes`));
    assert.ok(!existsSync(`/proc/${s.pid}`), 'the refused restore created nothing');
    await assert.rejects(restore({ imagesDir: fin }), (e: unknown) => isCriuTsError(e) && e.code === 'EIMAGE');
    // Put back, the chain restores, checked.
    putBack();
    await restore({ imagesDir: fin });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

test('dedup rewrites the parents\' checksums: the last dump restores with every parent page checked, a parent that lost pages is refused', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const snap1 = join(s.workDir, 'snap1');
    const snap2 = join(s.workDir, 'snap2');
    mkdirSync(snap1);
    mkdirSync(snap2);
    await dump({ pid: s.pid, imagesDir: snap1, leaveRunning: true, trackMem: true });
    await memDirtyPhase(s, 1);
    await dump({ pid: s.pid, imagesDir: snap2, prevImagesDir: '../snap1', trackMem: true });
    assert.ok(await waitGone(s.pid));
    const cli = await runCli('criu-ts', ['dedup', '-D', snap2]);
    assert.equal(cli.code, 0, cli.stderr);
    // snap1 is a whole dump, but some of its pages are holes now.
    await assert.rejects(restore({ imagesDir: snap1 }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EIMAGE');
      assert.match(e.message, /freed by `criu-ts dedup` of a later dump of this chain/);
      return true;
    });
    assert.ok(!existsSync(`/proc/${s.pid}`), 'the refused restore created nothing');
    await restore({ imagesDir: snap2 });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

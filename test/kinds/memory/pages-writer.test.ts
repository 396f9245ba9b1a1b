/**
 * PagesWriter reading another task: a range the task no longer maps is an
 * error for a stopped task's dump, and zeros for a pre-dump's copy while
 * the task runs (goneAsZeros: deferred-pages.ts), whose next dump copies
 * whatever is mapped there again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PagesWriter } from '../../../src/kinds/memory/pages-writer.js';
import { parseMaps } from '../../../src/proc/index.js';

test('a range gone from a running task: zeros in a pre-dump\'s copy, an error in a dump\'s', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const dir = mkdtempSync('/tmp/criu-ts-test-pages-writer-');
  try {
    await new Promise((r) => setTimeout(r, 100));
    const pid = child.pid as number;
    const stack = parseMaps(pid).find((m) => m.path === '[stack]');
    assert.ok(stack);
    const gone = 0x10000n; // below every mapping of a sleep (vm.mmap_min_addr)
    const live = stack.end - 4096n;
    const copy = new PagesWriter(dir, 1, pid);
    copy.goneAsZeros = true;
    copy.add(gone, 1, 0, false);
    copy.add(live, 1, 0, false);
    copy.close();
    const pages = readFileSync(join(dir, 'pages-1.img'));
    assert.equal(pages.length, 8192);
    assert.ok(pages.subarray(0, 4096).every((b) => b === 0), 'the gone page is zeros');
    const strict = new PagesWriter(dir, 2, pid);
    strict.add(gone, 1, 0, false);
    assert.throws(() => strict.close(), (e: unknown) => (e as { code?: string }).code === 'EIO');
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * readAllAsync: a whole file read on a worker thread through a stdio
 * stream whose reads are as small as asked (the smaps reads of a dump):
 * the same bytes as a plain read, an empty file as an empty buffer, a file
 * of `cap` bytes or more as undefined, and the fd closed in every case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAllAsync } from '../../src/sys/index.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('readAllAsync: whole files in small reads, empty and too big ones, no fd left', async () => {
  const dir = mkdtempSync('/tmp/criu-ts-test-read-all-');
  try {
    const before = openFds();
    // Text with no NUL, longer than many reads, and not a multiple of the read size.
    const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 37)}\n`).join(''));
    writeFileSync(join(dir, 'text'), text);
    const got = await readAllAsync(openSync(join(dir, 'text'), 'r'), 1 << 20, 2048);
    assert.ok(got !== undefined);
    assert.ok(got.equals(text), 'the bytes read are the file');
    writeFileSync(join(dir, 'empty'), '');
    const empty = await readAllAsync(openSync(join(dir, 'empty'), 'r'), 4096, 2048);
    assert.equal(empty?.length, 0);
    // cap bytes or more: not read this way (the buffer grows past cap inside libc, and is freed).
    assert.equal(await readAllAsync(openSync(join(dir, 'text'), 'r'), text.length, 2048), undefined);
    assert.equal(await readAllAsync(openSync(join(dir, 'text'), 'r'), 1000, 2048), undefined);
    // A /proc seq file, as the dump reads it.
    const smaps = await readAllAsync(openSync('/proc/self/maps', 'r'), 1 << 20, 2048);
    assert.ok(smaps !== undefined && smaps.length > 0 && smaps.toString('latin1').endsWith('\n'));
    assert.equal(openFds(), before, 'every fd closed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

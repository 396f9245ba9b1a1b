/**
 * Image files on disk: writeImage is atomic with mode 0600, readImage and
 * the streaming iterateImage agree, and the stream closes its file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iterateImage, readImage, readImageBytes, writeImage } from '../../src/images/index.js';

function openFds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).includes('crit-io-');
    } catch {
      return false;
    }
  }).length;
}

test('writeImage: 0600, no temp file left, readImage gives the entries back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crit-io-'));
  try {
    const p = join(dir, 'pstree.img');
    const entries = [{ pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 2] }, { pid: 5, ppid: 1, pgid: 1, sid: 1, threads: [5] }];
    writeImage(p, 'PSTREE', entries);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['pstree.img']);
    assert.deepEqual(readImage(p).entries, entries);
    assert.equal(readImageBytes(p).readUInt32LE(4), 0x50273030);
    writeImage(p, 'PSTREE', entries.slice(0, 1)); // replaces atomically
    assert.equal(readImage(p).entries.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('iterateImage streams a big image in order and closes the file, also on early exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crit-io-'));
  try {
    const p = join(dir, 'pipes-data.img');
    const n = 3000;
    const entries = Array.from({ length: n }, (_, i) => ({ pipe_id: i, bytes: i % 300 }));
    const extras = entries.map((e) => Buffer.alloc(e.bytes, e.pipe_id & 0xff));
    // a 100 KB payload crosses the reader's window
    entries.push({ pipe_id: n, bytes: 100_000 });
    extras.push(Buffer.alloc(100_000, 7));
    writeImage(p, 'PIPES_DATA', entries, extras);
    const before = openFds();
    const s = iterateImage(p);
    assert.equal(s.kind.name, 'PIPES_DATA');
    let i = 0;
    for (const fr of s.entries) {
      assert.equal(fr.index, i);
      assert.deepEqual(fr.entry, entries[i]);
      assert.ok(fr.extra?.equals(extras[i] ?? Buffer.alloc(0)), `extra ${i}`);
      i++;
    }
    assert.equal(i, n + 1);
    assert.equal(openFds(), before);
    const early = iterateImage(p);
    for (const fr of early.entries) if (fr.index === 3) break;
    assert.equal(openFds(), before);
    assert.ok(readFileSync(p).length > 400_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

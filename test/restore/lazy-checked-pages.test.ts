/**
 * The lazy-pages daemon's checked source of pages (restore/lazy-checked-pages.ts):
 * what prepare() opens ahead, when the daemon starts, is kept at the
 * restore's connection only if the checksums and the pages images are
 * unchanged; a dump rewritten in the same directory in between is read
 * again and served against its own checksums, and a pages image changed
 * without its checksums is still refused where it is read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckedPages } from '../../src/restore/lazy-checked-pages.js';
import { FileHasher, beginChecksums, checksumEntries, endChecksums, storeImage } from '../../src/images/index.js';

const BLOCK = 65536;

/** A "dump" of one pages image of 3 blocks filled with `fill`, and its criu-ts-checksums (block digests). */
function dumpPages(dir: string, fill: number): string {
  const path = join(dir, 'pages-1.img');
  const data = Buffer.alloc(3 * BLOCK, fill);
  beginChecksums(dir);
  const h = new FileHasher(path, true, data.length);
  h.update(data);
  h.done();
  writeFileSync(path, data);
  storeImage(dir, 'CRIU_TS_CHECKSUMS', undefined, checksumEntries(dir));
  endChecksums(dir);
  return path;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('prepare(): what was opened ahead is read again when the dump changed before the restore; a changed block is still refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-checked-pages-'));
  try {
    const path = dumpPages(dir, 1);
    const pages = new CheckedPages(false);
    pages.prepare(dir);
    // Another dump into the same directory (in place: same inodes) after the daemon started.
    await sleep(20);
    dumpPages(dir, 2);
    pages.prepare(dir);
    const buf = Buffer.alloc(2 * BLOCK);
    const r = pages.read(path, BigInt(BLOCK), BLOCK, buf);
    assert.equal(r.len, BLOCK);
    assert.ok(buf.subarray(r.at, r.at + r.len).every((b) => b === 2), 'the new dump\'s pages, checked against its own digests');
    pages.close();

    // Unchanged since: kept; a block changed behind the checksums' back is refused where it is read.
    const again = new CheckedPages(false);
    again.prepare(dir);
    again.prepare(dir);
    await sleep(20);
    const changed = Buffer.alloc(3 * BLOCK, 2);
    changed[2 * BLOCK + 7] = 9;
    writeFileSync(path, changed);
    assert.throws(() => again.read(path, BigInt(2 * BLOCK), BLOCK, buf), /contents changed since the dump/);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

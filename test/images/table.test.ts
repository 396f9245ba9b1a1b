/**
 * The image table as code uses it: one key per file kind, file names made
 * from CRIU's patterns (and read back), and typed loads that refuse a file
 * holding another kind of image or lacking its first entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IMAGE_KINDS, imageFile, imageIdOf, imagePath, kindByKey, loadImage, loadImageIfAny, storeImage,
} from '../../src/images/index.js';
import { isCriuTsError } from '../../src/errors.js';

const code = (c: string) => (e: unknown): boolean => isCriuTsError(e) && e.code === c;

test('every image kind has a key of its own', () => {
  const keys = IMAGE_KINDS.map((k) => k.key);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(kindByKey('SHMEM_PAGEMAP').name, 'PAGEMAP');
  assert.equal(kindByKey('PSIGNAL').pattern, 'signal-p-%d.img');
});

test('imageFile makes CRIU\'s names, and imageIdOf reads the id back', () => {
  assert.equal(imageFile('CORE', 42), 'core-42.img');
  assert.equal(imageFile('FILES'), 'files.img');
  assert.equal(imageFile('GHOST_FILE', 26), 'ghost-file-1a.img');
  assert.equal(imageFile('TCP_STREAM', 0xabcdn), 'tcp-stream-abcd.img');
  assert.equal(imageFile('STATS', 'dump'), 'stats-dump');
  assert.equal(imageFile('SHMEM_PAGEMAP', 7), 'pagemap-shmem-7.img');
  assert.equal(imagePath('/d', 'PAGES', 3), '/d/pages-3.img');
  assert.throws(() => imageFile('CORE'), code('EINTERNAL'));
  assert.throws(() => imageFile('FILES', 1), code('EINTERNAL'));
  assert.equal(imageIdOf('SHMEM_PAGEMAP', 'pagemap-shmem-7.img'), '7');
  assert.equal(imageIdOf('PAGEMAP', 'pagemap-shmem-7.img'), undefined);
  assert.equal(imageIdOf('CORE', '/x/core-12.img'), '12');
  assert.equal(imageIdOf('CORE', 'core-12.img.tmp'), undefined);
});

test('storeImage and loadImage: typed entries round trip; absent, foreign and headless files are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-table-'));
  try {
    storeImage(dir, 'PAGEMAP', 5, [{ pages_id: 2 }, { vaddr: 0x1000n, compat_nr_pages: 0, flags: 4, nr_pages: 3n }]);
    const [head, ...entries] = loadImage(dir, 'PAGEMAP', 5).entries;
    assert.equal(head.pages_id, 2);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.vaddr, 0x1000n);
    assert.equal(loadImageIfAny(dir, 'PAGEMAP', 6), undefined);
    assert.throws(() => loadImage(dir, 'PAGEMAP', 6), code('ENOIMAGE'));
    // A pstree image under a core's name is refused, naming both kinds.
    storeImage(dir, 'PSTREE', undefined, [{ pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1] }]);
    renameSync(imagePath(dir, 'PSTREE'), imagePath(dir, 'CORE', 1));
    assert.throws(() => loadImage(dir, 'CORE', 1), (e: unknown) => code('EIMAGE')(e) && /a PSTREE image, not CORE/.test((e as Error).message));
    // A pagemap without its head.
    storeImage(dir, 'SHMEM_PAGEMAP', 9, [] as unknown as Parameters<typeof storeImage<'SHMEM_PAGEMAP'>>[3]);
    assert.throws(() => loadImage(dir, 'SHMEM_PAGEMAP', 9), (e: unknown) => code('EIMAGE')(e) && /pagemap_head/.test((e as Error).message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

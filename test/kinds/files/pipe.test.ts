import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readImage } from '../../../src/images/index.js';
import { join } from 'node:path';
import { roundtrip } from './roundtrip.js';

test('pipes: bytes in flight, lone ends, 64 KiB and 1 MiB buffers, dup and reopened ends survive', async () => {
  const r = await roundtrip('pipe-data', [], true);
  try {
    assert.equal(r.result.text, 'PASS');
    const data = readImage(join(r.imagesDir, 'pipes-data.img'));
    const sizes = data.entries.map((e) => [e['bytes'], e['size']]);
    // one entry per pipe object: 100 bytes, full 64 KiB, empty, full 1 MiB, empty
    assert.deepEqual(sizes.sort((a, b) => Number(a[0]) - Number(b[0])), [
      [0, 65536], [0, 65536], [100, 65536], [65536, 65536], [1 << 20, 1 << 20],
    ]);
    const files = readImage(join(r.imagesDir, 'files.img')).entries.filter((e) => e['type'] === 'PIPE');
    // 20 and 29 are two descriptions of one read end, 26 shares 20's
    assert.equal(files.length, 9);
  } finally {
    r.cleanup();
  }
});

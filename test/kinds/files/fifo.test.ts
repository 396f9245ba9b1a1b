import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import { roundtrip } from './roundtrip.js';

test('FIFOs: O_RDWR, reader and writer, lone writer, lone reader, with data and buffer size', async () => {
  const r = await roundtrip('fifo', [], true);
  try {
    assert.equal(r.result.text, 'PASS');
    const data = readImage(join(r.imagesDir, 'fifo-data.img')).entries;
    assert.deepEqual(data.map((e) => e['bytes']).sort((x, y) => Number(x) - Number(y)), [0, 10, 100, 5000]);
    const files = readImage(join(r.imagesDir, 'files.img')).entries;
    const fifos = files.filter((e) => e['type'] === 'FIFO');
    assert.equal(fifos.length, 5);
    for (const f of fifos) {
      const regfId = (f['fifo'] as { regf_id: number }).regf_id;
      const reg = files.find((e) => e['id'] === regfId)?.['reg'] as { name: string } | undefined;
      assert.match(reg?.name ?? '', /\/f[1-4]$/);
    }
  } finally {
    r.cleanup();
  }
});

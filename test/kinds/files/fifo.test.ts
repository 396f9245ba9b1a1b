import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import { roundTrip, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('FIFOs: O_RDWR, reader and writer, lone writer, lone reader, with data and buffer size; an unlinked FIFO as one ghost', { timeout: STEP_TIMEOUT_MS }, () => roundTrip({
  name: 'fifo',
  check(dir) {
    const data = readImage(join(dir, 'fifo-data.img')).entries;
    assert.deepEqual(data.map((e) => e['bytes']).sort((x, y) => Number(x) - Number(y)), [0, 10, 10, 100, 5000]);
    const files = readImage(join(dir, 'files.img')).entries;
    const fifos = files.filter((e) => e['type'] === 'FIFO');
    assert.equal(fifos.length, 7);
    const regfIds: number[] = [];
    for (const f of fifos) {
      const regfId = (f['fifo'] as { regf_id: number }).regf_id;
      regfIds.push(regfId);
      const reg = files.find((e) => e['id'] === regfId)?.['reg'] as { name: string } | undefined;
      assert.match(reg?.name ?? '', /\/f[1-5]$/);
    }
    // f5 was unlinked: both its opens are remapped to one ghost FIFO.
    const remaps = readImage(join(dir, 'remap-fpath.img')).entries;
    assert.equal(remaps.length, 2);
    assert.ok(remaps.every((m) => m['remap_type'] === 'GHOST' && regfIds.includes(m['orig_id'] as number)));
    assert.equal(new Set(remaps.map((m) => m['remap_id'])).size, 1);
    const ghost = readImage(join(dir, `ghost-file-${(remaps[0]?.['remap_id'] as number).toString(16)}.img`)).entries[0];
    assert.equal((ghost?.['mode'] as number) & 0o170777, 0o010604);
  },
}));

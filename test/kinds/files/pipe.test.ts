import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readImage } from '../../../src/images/index.js';
import { join } from 'node:path';
import { roundTrip, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('pipes: bytes in flight, lone ends, 64 KiB and 1 MiB buffers, dup and reopened ends survive', { timeout: STEP_TIMEOUT_MS }, () => roundTrip({
  name: 'pipe-data',
  check(dir) {
    const data = readImage(join(dir, 'pipes-data.img'));
    const sizes = data.entries.map((e) => [e['bytes'], e['size']]);
    // one entry per pipe object: 100 bytes, full 64 KiB, empty, full 1 MiB, empty
    assert.deepEqual(sizes.sort((a, b) => Number(a[0]) - Number(b[0])), [
      [0, 65536], [0, 65536], [100, 65536], [65536, 65536], [1 << 20, 1 << 20],
    ]);
    const files = readImage(join(dir, 'files.img')).entries.filter((e) => e['type'] === 'PIPE');
    // 20 and 29 are two descriptions of one read end, 26 shares 20's
    assert.equal(files.length, 9);
  },
}));

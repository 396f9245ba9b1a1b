import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { parseTimensOffsetsText, readTimensOffsets } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { waitSleeping } from '../lib/harness.js';

test('timens_offsets text: seconds and nanoseconds, negative seconds, clocks it does not know passed over; a bad line refused', () => {
  const text = 'monotonic         100         5\nboottime          -2 999999999\nfuture 1 2\n';
  assert.deepEqual(parseTimensOffsetsText(text, 'f'), { monotonic: 100_000_000_005n, boottime: -2n * 1_000_000_000n + 999_999_999n });
  assert.throws(() => parseTimensOffsetsText('monotonic x\n', 'f'), (e) => isCriuTsError(e) && e.code === 'EPROC');
});

test('the offsets of a live task: ours are zero, a task that made a time namespace for its children has them', async () => {
  assert.deepEqual(readTimensOffsets('self'), { monotonic: 0n, boottime: 0n });
  // unshare --time without --fork: sleep runs in our time namespace, its children would be born in the new one.
  const child = spawn('unshare', ['--time', '--monotonic', '100', '--boottime', '50', 'sleep', '30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  try {
    assert.ok(await waitSleeping(pid));
    assert.deepEqual(readTimensOffsets(pid), { monotonic: 100_000_000_000n, boottime: 50_000_000_000n });
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  assert.throws(() => readTimensOffsets(pid), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
});

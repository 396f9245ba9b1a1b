/**
 * --verify's timer rules (restore/verify/signals.ts verifyTimers) on their own:
 * an ITIMER_REAL read back as 0 is expired, and passes only with its SIGALRM
 * pending, whether the core's read of pending signals saw it or the check after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Collector } from '../../src/restore/verify/diff.js';
import { verifyTimers } from '../../src/restore/verify/signals.js';
import type { CoreEntry } from '../../src/images/messages.js';

type Tc = NonNullable<CoreEntry['tc']>;
type Task = Parameters<typeof verifyTimers>[0];

// Dumped 3.4 ms before its expiry, every 50 ms.
const dumped = { cores: [{ tc: { timers: { real: { isec: 0n, iusec: 50_000n, vsec: 0n, vusec: 3_398n } } } }] } as unknown as Task;
// Read back after it expired: 0 until its SIGALRM is taken, no SIGALRM in the pending signals read before the timers.
const readBack = { timers: { real: { isec: 0n, iusec: 50_000n, vsec: 0n, vusec: 0n } } } as unknown as Tc;

test('an ITIMER_REAL that expired between the read of pending signals and the read of timers passes when its SIGALRM is pending now', () => {
  const c = new Collector(1);
  verifyTimers(dumped, readBack, c, () => true);
  assert.deepEqual(c.diffs, []);
});

test('an ITIMER_REAL read as 0 with no SIGALRM pending, then or now, is a difference', () => {
  const c = new Collector(1);
  verifyTimers(dumped, readBack, c, () => false);
  assert.equal(c.diffs.length, 1);
  assert.equal(c.diffs[0]?.field, 'timers.real.value');
  const without = new Collector(1);
  verifyTimers(dumped, readBack, without);
  assert.equal(without.diffs.length, 1);
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseTimers } from '../../src/proc/index.js';
import { startProcTarget } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

test('parseTimers reads the POSIX timer', () => {
  const timers = parseTimers(t.subject.pid);
  assert.equal(timers.length, 1);
  assert.deepEqual(timers[0], {
    id: Number(t.info['timer']), signal: 37, sigevValue: 0xabcdefn, notifyHow: 'signal',
    notifyThreadId: false, notifyTid: t.subject.pid, clockId: 1,
  });
  assert.deepEqual(parseTimers(process.pid).length >= 0, true);
});

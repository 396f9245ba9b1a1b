/**
 * /proc files of the task itself (/proc/self/status, stat, cmdline, the
 * /proc/self directory): REG entries by their /proc/PID path, which is
 * right again after restore since the pid is kept.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('/proc files of the task are reopened by path', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'proc-files',
    check(dir, s) {
      const regs = new Map(fileEntries(dir).flatMap((e) => (e.reg ? [[e.reg.name, e.reg]] : [])));
      assert.equal(regs.get(`/proc/${s.pid}/stat`)?.pos, 5n);
      for (const p of ['status', 'cmdline']) assert.ok(regs.has(`/proc/${s.pid}/${p}`), p);
      assert.ok(regs.has(`/proc/${s.pid}`), '/proc/self directory');
      sameAsCrit(dir, ['files.img']);
    },
  });
});

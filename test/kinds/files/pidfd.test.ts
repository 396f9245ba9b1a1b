/**
 * pidfds of the task itself and of its child: PIDFD entries naming the
 * pids, pidfd_open again at restore. (Debian's crit 3.17 predates the
 * PIDFD type, so there is no oracle comparison here.)
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileEntries, roundTrip, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const O_NONBLOCK = 0o4000;

test('pidfd: of ourselves (non-blocking), of a child, of reaped children', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pidfd',
    check(dir, s) {
      const pidfds = fileEntries(dir).flatMap((e) => (e.pidfd ? [e.pidfd] : []));
      // ours, the child's, and three of two reaped children (nspid -1, one inode per dead process)
      assert.equal(pidfds.length, 5);
      const dead = pidfds.filter((p) => p.nspid === -1);
      assert.equal(dead.length, 3);
      assert.equal(new Set(dead.map((p) => p.ino)).size, 2);
      const self = pidfds.find((p) => p.nspid === s.pid);
      assert.ok(self && self.flags & O_NONBLOCK, 'the pidfd of the task, non-blocking');
      assert.ok(pidfds.some((p) => p.nspid !== s.pid && p.nspid > 0), 'the pidfd of the child');
    },
  });
});

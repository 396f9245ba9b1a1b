/**
 * Netlink sockets (NETLINKSK): port ids (picked by the kernel or bound),
 * groups past the first 32, a connected socket, one never bound, SO_PASSCRED;
 * images as crit decodes them; a message waiting to be read refused at
 * dump in one line.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetlinkSkEntry } from '../../../src/images/messages.js';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS, refusedAtDump } from './round-trip.js';

before(setUpRunner);

test('netlink sockets keep port ids, groups, peer and options', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'netlink-sock',
    check(dir, s) {
      const nl = fileEntries(dir).filter((e) => e.type === 'NETLINKSK').map((e) => e.nlsk as NetlinkSkEntry);
      assert.equal(nl.length, 5);
      const route = nl.filter((n) => n.protocol === 0);
      assert.deepEqual(route.map((n) => n.groups ?? []).sort((a, b) => a.length - b.length), [[], [0x1000, 1]]);
      assert.ok(nl.some((n) => n.protocol === 16 && n.portid === s.pid + 1000000));
      const user = nl.filter((n) => n.protocol === 2);
      assert.ok(user.some((n) => n.state === 1 && n.dst_portid === s.pid + 2000000));
      assert.ok(user.some((n) => n.portid === s.pid + 2000000 && n.opts.so_passcred === true));
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('a netlink message waiting to be read is refused at dump in one line, and the task keeps running', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refusedAtDump('netlink-sock', ['--queued', '1'], /^task \d+ fd 23: netlink socket \d+ \(protocol 2\): \d+ bytes of messages waiting to be read$/);
});

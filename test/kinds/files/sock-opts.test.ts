/**
 * Generic socket options beyond the plain integers (sk_opts_entry): classic
 * BPF filters on UDP and unix sockets (a datagram queued before the filter
 * went on comes back), SO_LINGER, SO_BINDTODEVICE, a SO_REUSEPORT group of
 * listeners one of which left it; images as crit decodes them; a locked
 * filter refused at dump in one line.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InetSkEntry, UnixSkEntry } from '../../../src/images/messages.js';
import { fileEntries, roundTrip, sameAsCrit, sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS, refusedAtDump } from './round-trip.js';

before(setUpRunner);

/** Fields CRIU 4.2 writes that crit 3.17 does not know (it drops them). */
const NEWER_FIELDS = ['ttl', 'tos', 'pktinfo', 'tcp_opts'];

test('socket filters, linger, bound device and a SO_REUSEPORT group come back', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'sock-opts',
    check(dir) {
      const files = fileEntries(dir);
      const isk = files.filter((e) => e.type === 'INETSK').map((e) => e.isk as InetSkEntry);
      const filtered = isk.find((i) => i.opts.so_filter !== undefined);
      // ld len; jge #12; ret #0xffff; ret #0, as code << 48 | jt << 40 | jf << 32 | k
      assert.deepEqual(filtered?.opts.so_filter, [0x80n << 48n, (0x35n << 48n) | (1n << 32n) | 12n, (0x06n << 48n) | 0xffffn, 0x06n << 48n]);
      assert.equal(isk.find((i) => i.opts.so_linger !== undefined)?.opts.so_linger, 7);
      assert.equal(isk.filter((i) => i.opts.so_bound_dev === 'lo').length, 1);
      const group = isk.filter((i) => i.state === 10);
      assert.equal(group.length, 2);
      assert.equal(group[0]?.src_port, group[1]?.src_port);
      assert.deepEqual(group.map((i) => i.opts.so_reuseport).sort(), [false, true]);
      const usk = files.filter((e) => e.type === 'UNIXSK').map((e) => e.usk as UnixSkEntry);
      assert.deepEqual(usk.map((u) => u.opts.so_filter?.length ?? 0).sort(), [0, 1]);
      sameAsCritWithout(dir, 'files.img', NEWER_FIELDS);
      sameAsCrit(dir, ['sk-queues.img']);
    },
  });
});

test('a locked socket filter is refused at dump in one line, and the task keeps running', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refusedAtDump('sock-opts', ['--lock', '1'], /^task \d+ fd 20: IPv4 UDP socket \d+: its socket filter is locked \(SO_LOCK_FILTER\), which the image cannot carry$/);
});

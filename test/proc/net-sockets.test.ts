/**
 * procNetSockets (src/proc/net-sockets.ts) against sockets of our own:
 * a raw ICMP socket and an IPv6 one are listed by inode in
 * /proc/PID/net/raw and raw6, with the protocol as their port, unbound and
 * unconnected, nothing queued; a socket of another table is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { procNetSockets } from '../../src/proc/index.js';
import { AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6, SOCK_RAW, closeQuiet, socket } from '../../src/sys/index.js';

test('raw sockets of ours are listed in net/raw and net/raw6 by inode, with their protocol', () => {
  const v4 = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  const v6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  try {
    const [i4, i6] = [fstatSync(v4).ino, fstatSync(v6).ino];
    const raw = procNetSockets(process.pid, 'raw');
    const raw6 = procNetSockets(process.pid, 'raw6');
    const s4 = raw.get(i4);
    assert.ok(s4, `inode ${i4} in /proc/${process.pid}/net/raw`);
    assert.deepEqual({ local: s4.local, localPort: s4.localPort, remote: s4.remote, remotePort: s4.remotePort, txQueue: s4.txQueue, rxQueue: s4.rxQueue },
      { local: [0], localPort: IPPROTO_ICMP, remote: [0], remotePort: 0, txQueue: 0, rxQueue: 0 });
    const s6 = raw6.get(i6);
    assert.ok(s6, `inode ${i6} in /proc/${process.pid}/net/raw6`);
    assert.deepEqual([s6.local, s6.localPort], [[0, 0, 0, 0], IPPROTO_ICMPV6]);
    assert.equal(raw.get(i6), undefined, 'an IPv6 socket is not in net/raw');
  } finally {
    closeQuiet(v4);
    closeQuiet(v6);
  }
});

/**
 * TCP connections beyond ESTABLISHED (--tcp-established): half closed,
 * closing, closed by a reset, over IPv4, IPv6 and v4-mapped IPv6, both ends
 * in the dumped process; the images carry each state and the queues
 * without the FINs.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import type { InetSkEntry, TcpStreamEntry } from '../../../src/images/messages.js';
import { fileEntries, roundTrip, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const S = { ESTABLISHED: 1, FIN_WAIT1: 4, FIN_WAIT2: 5, CLOSE: 7, CLOSE_WAIT: 8, LAST_ACK: 9, CLOSING: 11 };

test('half-closed, closing and reset TCP connections come back in their states with every byte', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'tcp-states',
    dumpOpts: { tcpEstablished: true },
    check(dir) {
      const isk = fileEntries(dir).filter((e) => e.type === 'INETSK').map((e) => e.isk as InetSkEntry);
      const states = isk.map((i) => i.state).sort((x, y) => x - y);
      assert.deepEqual(states, [S.ESTABLISHED, S.FIN_WAIT1, S.FIN_WAIT2, S.FIN_WAIT2, S.FIN_WAIT2, S.CLOSE, S.CLOSE_WAIT, S.LAST_ACK, S.CLOSING]);
      const stream = (i: InetSkEntry): TcpStreamEntry => readImage(join(dir, `tcp-stream-${i.ino.toString(16)}.img`)).entries[0] as unknown as TcpStreamEntry;
      const reset = isk.find((i) => i.state === S.CLOSE);
      assert.ok(reset && reset.dst_port !== 0, 'the reset socket keeps its peer address');
      assert.equal(stream(reset).inq_len, 3);
      assert.equal(stream(reset).outq_len, 0);
      const mapped = isk.find((i) => i.state === S.LAST_ACK);
      assert.equal(mapped?.family, 10);
      assert.deepEqual(mapped?.src_addr?.slice(0, 3), [0, 0, 0xffff0000]);
      // A FIN is no data: the send queue of a FIN_WAIT1 socket holds the bytes only.
      const fw1 = isk.find((i) => i.state === S.FIN_WAIT1);
      assert.ok(fw1);
      const img = readImage(join(dir, `tcp-stream-${fw1.ino.toString(16)}.img`));
      assert.equal(img.extras[0]?.length, stream(fw1).inq_len + stream(fw1).outq_len);
      assert.ok(stream(fw1).outq_len > 0);
    },
  });
});

test('connections whose ends are in two tasks (a parent and its child) come back alive, not reset', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({ name: 'tcp-states', args: ['--split', '1'], dumpOpts: { tcpEstablished: true } });
});

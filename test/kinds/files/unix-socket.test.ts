import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import { roundTrip, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const T = { timeout: STEP_TIMEOUT_MS };

test('unix socketpairs: stream, dgram, seqpacket with queues both ways, shutdown, options, orphaned stream and datagram socket', T, () => roundTrip({
  name: 'unix-pair',
  check(dir) {
    const q = readImage(join(dir, 'sk-queues.img')).entries;
    // datagram and record boundaries are kept as separate entries
    assert.deepEqual(q.map((e) => e['length']).filter((n) => n === 1 || n === 100 || n === 3000 || n === 10 || n === 20000).length, 5);
    const usk = readImage(join(dir, 'files.img')).entries.filter((e) => e['type'] === 'UNIXSK');
    // 4 pairs, the orphaned stream and the orphaned datagram socket (a dup shares its entry)
    assert.equal(usk.length, 10);
  },
}));

test('unix sockets by name: absolute, relative and abstract binds, queued datagrams, a connected client, listeners with pending connections', T, () => roundTrip({
  name: 'unix-bound',
  check(dir) {
    const usk = readImage(join(dir, 'files.img')).entries
      .filter((e) => e['type'] === 'UNIXSK')
      .map((e) => e['usk'] as { ino: number; state: number; peer: number; backlog: number; name: Buffer; name_dir?: string });
    const listener = usk.find((u) => u.name.toString() === 'lsn.sock\0' && u.state === 10);
    assert.ok(listener, 'listener dumped');
    assert.equal(listener.backlog, 7);
    assert.ok(listener.name_dir?.startsWith('/'), 'relative name keeps its directory');
    // the two clients waiting in the accept queue name the listener as their peer, like CRIU
    assert.equal(usk.filter((u) => u.peer === listener.ino).length, 2);
  },
}));

test('a socketpair split over a fork, queued bytes from the child, a dgram pair shared by both', T, () => roundTrip({ name: 'unix-fork' }));

test('datagram sockets connected by name across a fork, with a datagram queued', T, () => roundTrip({ name: 'unix-dgram-fork' }));

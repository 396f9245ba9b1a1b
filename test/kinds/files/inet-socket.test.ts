/**
 * TCP and UDP sockets (INETSK): listeners on IPv4, IPv6 and dual stack,
 * bound-only and unbound sockets, UDP sockets bound, connected and shut down
 * with queued datagrams; images as crit decodes them; an established
 * connection refused at dump; a listener whose port another process took
 * refused at restore with the port and the fd.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { InetSkEntry, TcpStreamEntry } from '../../../src/images/messages.js';
import { isAlive, repoRoot, startSubject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone } from '../../e2e/helpers.js';
import { CRIT, fileEntries, roundTrip, sameAsCrit, sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

/** Fields CRIU 4.2 writes that crit 3.17 does not know (it drops them). */
const NEWER_FIELDS = ['ttl', 'tos', 'pktinfo', 'tcp_opts'];

function sameAsCritNoPayload(path: string): void {
  if (!existsSync(CRIT)) return;
  const theirs = execFileSync(CRIT, ['show', '--nopl', path], { encoding: 'utf8' });
  const ours = execFileSync(process.execPath, [join(repoRoot(), 'bin', 'crit-ts'), 'show', '--nopl', path], { encoding: 'utf8' });
  assert.equal(ours, theirs, `${path}: crit-ts and crit 3.17 disagree`);
}

const inetEntries = (dir: string): InetSkEntry[] =>
  fileEntries(dir).filter((e) => e.type === 'INETSK').map((e) => e.isk as InetSkEntry);

test('TCP listeners (127.0.0.1, [::1], dual-stack [::]), bound-only and unbound sockets keep ports and options and accept', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'tcp-listen',
    check(dir) {
      const isk = inetEntries(dir);
      assert.equal(isk.length, 5);
      const listeners = isk.filter((i) => i.state === 10);
      assert.deepEqual(listeners.map((i) => i.backlog).sort(), [3, 5, 9]);
      const v4 = listeners.find((i) => i.family === 2);
      assert.deepEqual(v4?.src_addr, [0x0100007f]);
      assert.equal(v4?.tcp_opts?.nodelay, true);
      assert.equal(v4?.tcp_opts?.keepidle, 100);
      const dual = listeners.find((i) => i.family === 10 && i.v6only === false);
      assert.equal(dual?.opts.so_reuseport, true);
      const closed = isk.filter((i) => i.state === 7);
      assert.equal(closed.length, 2);
      assert.ok(closed.some((i) => i.src_port !== 0) && closed.some((i) => i.src_port === 0), 'one bound-only, one unbound');
      assert.ok(isk.every((i) => i.ns_id !== undefined && i.opts.so_passcred === undefined));
      sameAsCritWithout(dir, 'files.img', NEWER_FIELDS);
    },
  });
});

test('UDP over IPv4/IPv6: bound, connected, unbound, shut down, queued datagrams, options', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'udp',
    check(dir) {
      const isk = inetEntries(dir);
      assert.equal(isk.length, 7);
      assert.equal(isk.filter((i) => i.state === 1).length, 3, 'three connected');
      assert.equal(isk.filter((i) => i.shutdown === 'WRITE').length, 1);
      const tuned = isk.find((i) => i.ip_opts?.ttl === 33);
      assert.equal(tuned?.ip_opts?.tos, 0x10);
      assert.equal(tuned?.opts.so_broadcast, true);
      const q = readImage(join(dir, 'sk-queues.img'));
      assert.deepEqual(q.extras.map((b) => b?.toString()), ['one', 'two', 'v6q']);
      sameAsCritWithout(dir, 'files.img', NEWER_FIELDS);
      sameAsCrit(dir, ['sk-queues.img']);
    },
  });
});

/** A node process running `script` (argv[1] = `arg`) in its own session; `ready` appears when it is set up. */
function startNode(script: string, ready: string): { pid: number } {
  const child = spawn(process.execPath, ['-e', script, ready], { detached: true, stdio: 'ignore' });
  child.unref();
  if (child.pid === undefined) throw new Error('node did not start');
  return { pid: child.pid };
}

test('established TCP connections (--tcp-established): queued bytes both ways, unsent bytes, IPv4 and IPv6, a listener sharing the port', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'tcp-conn',
    dumpOpts: { tcpEstablished: true },
    check(dir) {
      const isk = inetEntries(dir);
      const est = isk.filter((i) => i.state === 1);
      assert.equal(est.length, 4);
      for (const i of est) {
        const img = readImage(join(dir, `tcp-stream-${i.ino.toString(16)}.img`));
        const e = img.entries[0] as unknown as TcpStreamEntry;
        assert.equal(img.extras[0]?.length, e.inq_len + e.outq_len);
      }
      const streams = est.map((i) => readImage(join(dir, `tcp-stream-${i.ino.toString(16)}.img`)).entries[0] as unknown as TcpStreamEntry);
      assert.ok(streams.some((e) => e.outq_len > 0 && (e.unsq_len ?? 0) > 0), 'a send queue with bytes never sent');
      assert.ok(streams.some((e) => e.inq_len > 9), 'a receive queue');
      // Megabytes of payload: compare without it (crit show --nopl).
      for (const i of est) sameAsCritNoPayload(join(dir, `tcp-stream-${i.ino.toString(16)}.img`));
      sameAsCritWithout(dir, 'files.img', NEWER_FIELDS);
    },
  });
});

test('--tcp-established with --leave-running: the connections go on working in the task left running', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-est-leave');
  const s = await startSubject('tcp-conn', []);
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, leaveRunning: true });
    assert.ok(isAlive(s.pid));
    const r = await s.terminateAndResult(30_000);
    assert.equal(r.text, 'PASS');
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('an established TCP connection is refused at dump in one line, and the task keeps running', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-est');
  const ready = join(dir, 'ready');
  const script = `
    const net = require('net'), fs = require('fs');
    const s = net.createServer((c) => c.on('data', () => {})).listen(0, '127.0.0.1', () => {
      const c = net.connect(s.address().port, '127.0.0.1', () => fs.writeFileSync(process.argv[1], ''));
      c.on('data', () => {});
    });`;
  const { pid } = startNode(script, ready);
  try {
    assert.ok(await waitFor(() => existsSync(ready)), 'node set up');
    await assert.rejects(dump({ pid, imagesDir: join(dir, 'img'), progress: false }), (e: Error) => {
      assert.match(e.message, /^task \d+ fd \d+: IPv4 TCP socket \d+: ESTABLISHED TCP connection 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+: established connections need --tcp-established \(or --tcp-close\)$/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    assert.ok(isAlive(pid), 'the refused task still runs');
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});

test('a listener whose port another process took fails to restore naming port and fd; restores once it is free', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-taken');
  const s = await startSubject('tcp-listen', []);
  let squatter: Server | undefined;
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(s.pid));
    const v4 = inetEntries(dir).find((i) => i.family === 2 && i.state === 10);
    assert.ok(v4);
    const port = v4.src_port;
    const srv = createServer();
    squatter = srv;
    await new Promise<void>((res) => srv.listen(port, '127.0.0.1', res));
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: Error) => {
      assert.match(e.message, new RegExp(`fd 20: TCP port 127\\.0\\.0\\.1:${port} is taken by another socket`));
      return true;
    });
    assert.ok(!isAlive(s.pid), 'nothing left of the failed restore');
    await new Promise<void>((res) => srv.close(() => res()));
    squatter = undefined;
    await restore({ imagesDir: dir, progress: false });
    const r = await s.terminateAndResult(30_000);
    assert.equal(r.text, 'PASS');
  } finally {
    squatter?.close();
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});


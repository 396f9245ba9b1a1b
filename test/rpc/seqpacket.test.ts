/**
 * The packet socket wrappers (src/sys/seqpacket.ts) on their own, and a
 * `criu-ts swrk` driven from this process over a socketpair: a client that
 * dies while a NOTIFY waits for its answer must neither hang the worker nor
 * harm the task it was about to dump.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeMessage, encodeMessage } from '../../src/images/index.js';
import {
  POLLIN, close, peerCred, pollFd, read, recvPacket, sendPacket, seqpacketPair, pipe2, write,
} from '../../src/sys/index.js';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import { killAndWait, removeDir, tempDir } from '../e2e/helpers.js';

const BINARY = join(repoRoot(), 'bin', 'criu-ts');

test('seqpacket: packets keep their bounds, carry fds, and end with null at hang-up', () => {
  const [a, b] = seqpacketPair();
  const [pr, pw] = pipe2();
  try {
    assert.equal(pollFd(b, POLLIN, 0), 0, 'nothing queued yet');
    sendPacket(a, Buffer.from('first'));
    sendPacket(a, Buffer.alloc(70_000, 7), [pw]);
    assert.equal(peerCred(b).pid, process.pid);
    assert.notEqual(pollFd(b, POLLIN, 0) & POLLIN, 0);
    assert.deepEqual(recvPacket(b, 1), { data: Buffer.from('first'), fds: [] });
    const big = recvPacket(b, 1);
    assert.equal(big?.data.length, 70_000, 'read whole, whatever its size');
    const passed = big?.fds[0];
    assert.ok(passed !== undefined && passed !== pw);
    write(passed, Buffer.from('x'));
    const one = Buffer.alloc(1);
    assert.equal(read(pr, one), 1, 'the received fd is the same pipe');
    close(passed);
    close(a);
    assert.equal(recvPacket(b), null);
  } finally {
    for (const fd of [b, pr, pw]) closeSync(fd);
  }
});

function childExit(p: ReturnType<typeof spawn>, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), timeoutMs);
    p.once('exit', (code, sig) => {
      clearTimeout(t);
      resolve(code ?? String(sig));
    });
  });
}

async function receive(fd: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while ((pollFd(fd, POLLIN, 0) & POLLIN) === 0) {
    if (Date.now() > deadline) throw new Error('no answer from swrk');
    await new Promise((r) => setTimeout(r, 10));
  }
  const pkt = recvPacket(fd);
  assert.ok(pkt !== null, 'swrk hung up without answering');
  return decodeMessage('criu_resp', pkt.data);
}

test('swrk: a client gone while a NOTIFY waits ends the worker; the task is left running', { timeout: 60_000 }, async () => {
  const dir = tempDir('rpc-dead');
  const s = await startSubject('counter-loop');
  const [ours, theirs] = seqpacketPair();
  const dirFd = openSync(dir, 'r');
  try {
    const swrk = spawn(process.execPath, [BINARY, 'swrk', '3'], { stdio: ['ignore', 'ignore', 'pipe', theirs] });
    closeSync(theirs);
    const req = { type: 'DUMP', opts: { images_dir_fd: dirFd, pid: s.pid, notify_scripts: true, log_file: 'dump.log' } };
    sendPacket(ours, encodeMessage('criu_req', req));
    const notify = await receive(ours, 20_000);
    assert.deepEqual(notify, { type: 'NOTIFY', success: true, notify: { script: 'pre-dump' } });
    close(ours);
    assert.equal(await childExit(swrk, 10_000), 0, 'swrk leaves once its client is gone');
    assert.ok(isAlive(s.pid));
    assert.ok(!readdirSync(dir).includes('pstree.img'), 'nothing dumped');
    assert.match(readFileSync(join(dir, 'dump.log'), 'utf8'), /pre-dump/);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    closeSync(dirFd);
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('swrk: an fd that is no socket is a usage error (exit 1, one line)', { timeout: 30_000 }, async () => {
  const p = spawn(process.execPath, [BINARY, 'swrk', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  assert.equal(await childExit(p, 20_000), 1);
  assert.match(err, /swrk: fd 0 is not an RPC socket/);
});

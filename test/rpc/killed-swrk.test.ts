/**
 * An RPC worker (`criu-ts swrk 3`) killed in the middle of a request
 * (issue 9, point 3, over RPC): PRE_DUMP, a second PRE_DUMP on top of it
 * (parent_img, track_mem) and DUMP with leave_running, each killed at
 * named points spread over its run (CRIU_TS_FAULT in the worker's
 * environment: the seize, the arming, injected calls, the cure, the copy
 * while the tree runs, the record), by SIGKILL, SIGTERM and SIGINT in
 * turn. The worker serves requests in its own process, with the same
 * guardian as the CLI: after each kill the dump-victim is alive, untraced,
 * with its masks and maps as before, holds no memory tracker but the one a
 * record on disk names, and handles a SIGUSR1. At the end it checks its
 * registers, heap and masks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeMessage, encodeMessage } from '../../src/images/index.js';
import type { CriuReq, CriuResp } from '../../src/images/messages.js';
import { POLLIN, pollFd, recvPacket, sendPacket, seqpacketPair } from '../../src/sys/index.js';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import { handlesUsr1, settled, snapshot, userfaultfds, writeProtectedPages } from '../lib/kill-walk.js';
import { killSubject, sleep } from '../lib/harness.js';

const BINARY = join(repoRoot(), 'bin', 'criu-ts');

/** One request on a fresh worker run with CRIU_TS_FAULT=`fault`; the worker must die before it answers. */
async function killedRequest(req: CriuReq, fault: string): Promise<{ signal: string | null; stderr: string }> {
  const [ours, theirs] = seqpacketPair();
  const child = spawn(BINARY, ['swrk', '3'], { stdio: ['ignore', 'ignore', 'pipe', theirs], env: { ...process.env, CRIU_TS_FAULT: fault } });
  closeSync(theirs);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const closed = new Promise<string | null>((res) => child.on('close', (_code, signal) => res(signal)));
  try {
    sendPacket(ours, encodeMessage('criu_req', req as unknown as Record<string, unknown>));
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(Date.now() < deadline, `${fault}: the worker neither answered nor died`);
      if ((pollFd(ours, POLLIN, 0) & POLLIN) === 0) {
        await sleep(10);
        continue;
      }
      const pkt = recvPacket(ours, 4);
      assert.equal(pkt, null, `${fault}: the worker answered instead of dying`);
      break;
    }
  } finally {
    closeSync(ours);
  }
  return { signal: await closed, stderr };
}

/** An answered request on a fresh worker: success. */
async function request(req: CriuReq): Promise<void> {
  const [ours, theirs] = seqpacketPair();
  const child = spawn(BINARY, ['swrk', '3'], { stdio: ['ignore', 'ignore', 'pipe', theirs] });
  closeSync(theirs);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const closed = new Promise((res) => child.on('close', res));
  try {
    sendPacket(ours, encodeMessage('criu_req', req as unknown as Record<string, unknown>));
    for (let t = 0; t < 6000 && (pollFd(ours, POLLIN, 0) & POLLIN) === 0; t++) await sleep(10);
    const pkt = recvPacket(ours, 4);
    assert.ok(pkt !== null, `no answer: ${stderr}`);
    const resp = decodeMessage('criu_resp', pkt.data) as unknown as CriuResp;
    assert.equal(resp.success, true, `${req.type}: ${JSON.stringify(resp)} ${stderr}`);
  } finally {
    closeSync(ours);
  }
  await closed;
}

test('swrk killed inside PRE_DUMP, a second PRE_DUMP and DUMP leave_running (SIGKILL, SIGTERM, SIGINT at named points): the target carries on as before', { timeout: 900_000 }, async () => {
  const s = await startSubject('dump-victim', ['--usr1', '15'], { pthread: true });
  try {
    const [p1, p2, fin] = ['p1', 'p2', 'final'].map((n) => join(s.workDir, n)) as [string, string, string];
    for (const d of [p1, p2, fin]) mkdirSync(d);
    const before = snapshot(s.pid);
    const pre1: CriuReq = { type: 'PRE_DUMP', opts: { pid: s.pid, images_dir_fd: -1, images_dir: p1 } } as CriuReq;
    const pre2: CriuReq = { type: 'PRE_DUMP', opts: { pid: s.pid, images_dir_fd: -1, images_dir: p2, parent_img: '../p1', track_mem: true } } as CriuReq;
    const dump: CriuReq = { type: 'DUMP', opts: { pid: s.pid, images_dir_fd: -1, images_dir: fin, parent_img: '../p2', track_mem: true, leave_running: true } } as CriuReq;
    const points = ['@dump.seized', '@dump.self-cure', '@inject#6', '@cure#2', '@dump.memory'];
    const walks: { name: string; req: CriuReq; prepare: CriuReq[]; parent?: string; points: string[] }[] = [
      { name: 'PRE_DUMP', req: pre1, prepare: [], points },
      { name: 'PRE_DUMP on a parent', req: pre2, prepare: [pre1], parent: p1, points: ['@dump.seized', '@dump.self-cure', '@inject#2', '@cure#2', '@dump.memory'] },
      { name: 'DUMP leave_running on a parent', req: dump, prepare: [pre2], parent: p2, points: ['@dump.seized', '@inject#6', '@dump.task', '@dump.images', '@cure#2'] },
    ];
    const signals = ['SIGKILL', 'SIGTERM', 'SIGINT'];
    let n = 0;
    for (const w of walks) {
      for (const point of w.points) {
        for (const r of w.prepare) await request(r);
        const sig = signals[n % signals.length] as string;
        const what = `${w.name} killed at ${point} with ${sig}`;
        const k = await killedRequest(w.req, `${point}:${sig}`);
        assert.equal(k.signal, sig, `${what}: ${k.stderr}`);
        assert.match(k.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian\n${k.stderr}`);
        assert.ok(isAlive(s.pid), `${what}: the target died`);
        assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed`);
        const rec = w.parent === undefined ? undefined : join(w.parent, 'criu-ts-track.json');
        const live = rec !== undefined && existsSync(rec)
          ? Object.values((JSON.parse(readFileSync(rec, 'utf8')) as { tasks: Record<string, { fd: number; ino: string }> }).tasks).map((t) => `${t.fd}:${t.ino}`)
          : [];
        assert.deepEqual(userfaultfds(s.pid), live, `${what}: trackers other than a live record's`);
        if (live.length === 0) assert.equal(writeProtectedPages(s.pid), 0, `${what}: pages left write-protected`);
        assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
        n++;
      }
    }
    assert.equal(n, 15);
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

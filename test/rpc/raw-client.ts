/**
 * A raw RPC client for tests that need what pycriu cannot do (fds passed
 * with a NOTIFY) or a CRIU binary next to criu-ts: one request on a fresh
 * `BIN swrk 3`, every NOTIFY answered yes, the fds that came with each
 * kept for the caller.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { decodeMessage, encodeMessage } from '../../src/images/index.js';
import type { CriuReq, CriuResp } from '../../src/images/messages.js';
import { POLLIN, pollFd, recvPacket, sendPacket, seqpacketPair } from '../../src/sys/index.js';
import { sleep } from '../e2e/helpers.js';

export interface Exchange {
  resp: CriuResp;
  /** every NOTIFY on the way, with the fds that came with it (the caller's to close) */
  notes: { script: string; fds: number[] }[];
}

export async function swrkRequest(binary: string, req: CriuReq, timeoutMs = 60_000): Promise<Exchange> {
  const [ours, theirs] = seqpacketPair();
  const child = spawn(binary, ['swrk', '3'], { stdio: ['ignore', 'ignore', 'pipe', theirs] });
  closeSync(theirs);
  const notes: Exchange['notes'] = [];
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  try {
    sendPacket(ours, encodeMessage('criu_req', req as unknown as Record<string, unknown>));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      assert.ok(Date.now() < deadline, `no answer from ${binary} swrk`);
      if ((pollFd(ours, POLLIN, 0) & POLLIN) === 0) {
        await sleep(10);
        continue;
      }
      const pkt = recvPacket(ours, 4);
      assert.ok(pkt !== null, `${binary} swrk closed the connection without an answer: ${stderr}`);
      const resp = decodeMessage('criu_resp', pkt.data) as unknown as CriuResp;
      if (resp.type !== 'NOTIFY') return { resp, notes };
      notes.push({ script: resp.notify?.script ?? '', fds: pkt.fds });
      sendPacket(ours, encodeMessage('criu_req', { type: 'NOTIFY', notify_success: true }));
    }
  } finally {
    closeSync(ours);
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
  }
}

/**
 * A server keeps its clients: a TCP echo server (subject tcp-echo) with
 * four clients in another process outside the dump, sending all the time,
 * also while the server is dumped (--tcp-established, network lock
 * nftables) and restored. Every byte each client sent comes back once, in
 * order: the lock held the clients' segments back during the freeze and
 * TCP retransmitted them after.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { startSubject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const skip = ['/usr/sbin/nft', '/sbin/nft'].some((p) => existsSync(p)) ? false : 'no nft program (nftables)';

/** Clients: byte i of client k is (i * 31 + k * 7) & 255; each checks its echo as it comes. */
const CLIENTS = `
const net = require('net'), fs = require('fs');
const [port, dir] = [Number(process.argv[1]), process.argv[2]];
const N = 4, CHUNK = 4096;
const byte = (k, i) => (i * 31 + k * 7) & 255;
const st = [];
let done = 0;
for (let k = 0; k < N; k++) {
  const s = { k, sent: 0, echoed: 0, error: null, sock: net.connect(port, '127.0.0.1') };
  st.push(s);
  s.sock.on('data', (d) => {
    for (let j = 0; j < d.length; j++) if (d[j] !== byte(k, s.echoed + j) && !s.error) s.error = 'byte ' + (s.echoed + j) + ' differs';
    s.echoed += d.length;
  });
  s.sock.on('error', (e) => { s.error = s.error || e.message; });
  s.sock.on('close', () => { s.error = s.error || 'closed'; });
}
fs.writeFileSync(dir + '/clients.ready', '');
const tick = setInterval(() => {
  if (fs.existsSync(dir + '/stop')) {
    clearInterval(tick);
    const t0 = Date.now();
    const wait = setInterval(() => {
      if (st.every((s) => s.echoed === s.sent) || Date.now() - t0 > 30000) {
        clearInterval(wait);
        fs.writeFileSync(dir + '/clients.json', JSON.stringify(st.map(({ k, sent, echoed, error }) => ({ k, sent, echoed, error }))));
        for (const s of st) s.sock.destroy();
      }
    }, 20);
    return;
  }
  for (const s of st) {
    // Keep writing while the server is frozen: the kernel buffers it, the lock holds it back.
    if (s.sock.writableLength > (1 << 20)) continue;
    const b = Buffer.alloc(CHUNK);
    for (let j = 0; j < CHUNK; j++) b[j] = byte(s.k, s.sent + j);
    s.sent += CHUNK;
    s.sock.write(b);
  }
}, 2);
`;

test('an echo server with four clients outside the dump: every byte sent during the freeze comes back once, in order', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-echo');
  const s = await startSubject('tcp-echo', []);
  const portFile = join(s.workDir, 'port');
  assert.ok(await waitFor(() => existsSync(portFile)));
  const clients = spawn(process.execPath, ['-e', CLIENTS, readFileSync(portFile, 'utf8').trim(), dir], { stdio: 'ignore' });
  try {
    assert.ok(await waitFor(() => existsSync(join(dir, 'clients.ready'))));
    await new Promise((r) => setTimeout(r, 300));
    const img = join(dir, 'img');
    await dump({ pid: s.pid, imagesDir: img, progress: false, tcpEstablished: true, networkLock: 'nftables' });
    assert.ok(await waitGone(s.pid));
    // The clients keep sending into the frozen connections for a while.
    await new Promise((r) => setTimeout(r, 500));
    await restore({ imagesDir: img, progress: false });
    await new Promise((r) => setTimeout(r, 700));
    writeFileSync(join(dir, 'stop'), '');
    assert.ok(await waitFor(() => existsSync(join(dir, 'clients.json')), 40_000), 'the clients report');
    const res = JSON.parse(readFileSync(join(dir, 'clients.json'), 'utf8')) as { k: number; sent: number; echoed: number; error: string | null }[];
    assert.equal(res.length, 4);
    for (const c of res) {
      assert.equal(c.error, null, `client ${c.k}: ${c.error}`);
      assert.ok(c.sent > 0);
      assert.equal(c.echoed, c.sent, `client ${c.k}: ${c.echoed} of ${c.sent} bytes came back`);
    }
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    clients.kill('SIGKILL');
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

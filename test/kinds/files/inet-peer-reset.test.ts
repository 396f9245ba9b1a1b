/**
 * A TCP connection whose peer (outside the dump) reset it while the server
 * was dumped (subject tcp-peer-reset): the restored server must know of the
 * reset before its first instruction, as CRIU orders it (network lock
 * lifted, then repair mode off: its window probe meets the peer's kernel,
 * which answers with a reset). zdtm's socket-tcp-reseted checks the same
 * with an iptables REJECT rule; with repair mode left while the lock still
 * dropped the probe, the reset came only with TCP's next retransmission,
 * after the task had sent (a flake of that test under load).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { startSubject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const skip = ['/usr/sbin/nft', '/sbin/nft'].some((p) => existsSync(p)) ? false : 'no nft program (nftables)';

test('a peer that reset the connection while the server was dumped: the restored server sees the reset before it sends', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-peer-reset');
  const s = await startSubject('tcp-peer-reset', []);
  const client = connect(Number(readFileSync(join(s.workDir, 'port'), 'utf8').trim()), '127.0.0.1');
  try {
    await new Promise<void>((ok, no) => client.once('connect', ok).once('error', no));
    client.on('error', () => { /* the reset below is ours */ });
    client.write('ping');
    assert.ok(await waitFor(() => existsSync(join(s.workDir, 'accepted'))), 'the subject never saw the ping');
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'nftables' });
    assert.ok(await waitGone(s.pid));
    // Gone with a reset the lock drops: the peer's socket is no more, the server's image still connected.
    client.resetAndDestroy();
    await new Promise((r) => client.once('close', r));
    await restore({ imagesDir: dir, progress: false });
    const r = await s.terminateAndResult(10_000);
    assert.equal(r.text, 'PASS');
  } finally {
    client.destroy();
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

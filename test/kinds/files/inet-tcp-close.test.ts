/**
 * --tcp-close and --skip-in-flight: connections dumped without their state
 * (or with it) and restored closed; the images say so and a restore without
 * --tcp-close is refused; a listener with a connection not accepted yet is
 * refused unless --skip-in-flight, which leaves that connection out.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitGone } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

/** Run `body` on the tcp-close subject in MODE with a fresh images dir; the subject and dir go afterwards. */
async function withTcpClose(mode: string, tag: string, body: (s: Subject, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir(tag);
  const s = await startSubject('tcp-close', ['--mode', mode]);
  try {
    await body(s, dir);
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
}

/** After the restore: SIGTERM, and the subject says PASS. */
async function passes(s: Subject): Promise<void> {
  const r = await s.terminateAndResult(30_000);
  assert.equal(r.text, 'PASS');
}

test('--tcp-close: connections are dumped without TCP_REPAIR, restore insists on --tcp-close and brings them back closed', { timeout: STEP_TIMEOUT_MS }, async () => {
  await withTcpClose('close', 'inet-tcp-close', async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpClose: true });
    assert.ok(await waitGone(s.pid));
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('tcp-stream-')), []);
    assert.equal(readImage(join(dir, 'inventory.img')).entries[0]?.['tcp_close'], true);
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: Error) => {
      assert.equal(e.message, 'the images were dumped with --tcp-close: restore them with --tcp-close too');
      return true;
    });
    assert.ok(!isAlive(s.pid));
    await restore({ imagesDir: dir, progress: false, tcpClose: true });
    await passes(s);
  });
});

test('dumped with --tcp-established, restored with --tcp-close: the connections come back closed', { timeout: STEP_TIMEOUT_MS }, async () => {
  await withTcpClose('close', 'inet-tcp-close-est', async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true });
    assert.ok(await waitGone(s.pid));
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('tcp-stream-')).length, 2);
    await restore({ imagesDir: dir, progress: false, tcpClose: true });
    await passes(s);
  });
});

test('restored closed, then dumped and restored again: the never-connected sockets stay shut down (read gives end of file)', { timeout: STEP_TIMEOUT_MS }, async () => {
  // zdtm's --iters runs: the second dump meets the closed sockets the first restore made.
  await withTcpClose('close', 'inet-tcp-close-again', async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true });
    assert.ok(await waitGone(s.pid));
    await restore({ imagesDir: dir, progress: false, tcpClose: true });
    const again = tempDir('inet-tcp-close-again2');
    try {
      await dump({ pid: s.pid, imagesDir: again, progress: false, tcpEstablished: true });
      assert.ok(await waitGone(s.pid));
      const shut = readImage(join(again, 'files.img')).entries
        .flatMap((e) => (e['type'] === 'INETSK' ? [e['isk'] as Record<string, unknown>] : []))
        .filter((i) => i['state'] !== 'LISTEN' && i['state'] !== 10).map((i) => i['shutdown']);
      assert.deepEqual(shut, ['READ', 'READ']);
      await restore({ imagesDir: again, progress: false, tcpClose: true });
      await passes(s);
    } finally {
      removeDir(again);
    }
  });
});

test('a connection not accepted yet is refused in one line, and left out with --skip-in-flight', { timeout: STEP_TIMEOUT_MS }, async () => {
  await withTcpClose('in-flight', 'inet-in-flight', async (s, dir) => {
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true }), (e: Error) => {
      assert.match(e.message, /^task \d+ fd 20: IPv4 TCP socket \d+: listening on 127\.0\.0\.1:\d+ with 1 connection\(s\) not accepted yet \(--skip-in-flight leaves them out\)$/);
      return true;
    });
    assert.ok(isAlive(s.pid), 'the refused task runs on');
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, skipInFlight: true });
    assert.ok(await waitGone(s.pid));
    assert.ok(existsSync(join(dir, 'files.img')));
    await restore({ imagesDir: dir, progress: false });
    await passes(s);
  });
});

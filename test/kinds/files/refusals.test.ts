/**
 * Fds criu-ts cannot dump stop the dump with one line naming the task, the
 * fd and what it is, and the task carries on untouched; a unix socket whose
 * peer is outside the tree is refused unless extUnixSk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../../src/api/dump.js';
import { restore } from '../../../src/api/restore.js';
import { isCriuTsError } from '../../../src/errors.js';
import { startSubject } from '../../lib/subjects.js';

async function refused(name: string, args: string[], opts: { extUnixSk?: boolean }, pattern: RegExp, fd = 20): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `criu-ts-refuse-${name}-`));
  const s = await startSubject(name, args);
  try {
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false, ...opts }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`task ${s.pid} fd ${fd}:`));
      assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    const r = await s.terminateAndResult(10_000);
    assert.equal(r.text, 'PASS');
  } finally {
    s.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a packet-mode (O_DIRECT) pipe is refused by pid and fd; the task runs on', async () => {
  await refused('unsupported-fd', ['--kind', 'packet-pipe'], {}, /pipe:\[\d+\]: packet-mode \(O_DIRECT\) pipes are not supported/);
});

test('a POSIX message queue with a notification registered is refused by pid and fd, naming it; the task runs on, still registered', async () => {
  await refused('unsupported-fd', ['--kind', 'mqueue'], {}, /POSIX message queue \/criu-ts-subject-\d+ has a notification registered \(mq_notify, for pid \d+\): not supported/);
});

test('a loop of unix sockets only in flight (no task holds them) is refused; the messages stay queued', async () => {
  await refused('unix-scm', ['--loop', '2'], {}, /unix socket \d+: fd in flight: .*socket:\[\d+\] is in flight inside its own queue and no task holds it/, 22);
});

/** A datagram socket outside every dumped tree, printing what it receives. */
async function outsidePeer(path: string): Promise<{ proc: ChildProcess; lines: string[] }> {
  const py = 'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready",flush=True)\nwhile True: print(s.recv(100).decode(),flush=True)';
  const proc = spawn('python3', ['-c', py, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    proc.on('error', reject);
    proc.stdout?.on('data', (b: Buffer) => {
      lines.push(...b.toString().split('\n').filter((l) => l.length > 0));
      if (lines.includes('ready')) resolve();
    });
  });
  return { proc, lines };
}

test('a unix socket connected outside the tree: refused without extUnixSk, reconnected with it', async () => {
  const work = mkdtempSync(join(tmpdir(), 'criu-ts-ext-'));
  const peer = await outsidePeer(join(work, 'peer.sock'));
  try {
    await refused('unix-ext', ['--peer', join(work, 'peer.sock')], {}, /unix socket \d+ .*outside the dumped tree/);
    const dir = join(work, 'img');
    const s = await startSubject('unix-ext', ['--peer', join(work, 'peer.sock')]);
    try {
      await dump({ pid: s.pid, imagesDir: dir, progress: false, extUnixSk: true });
      await restore({ imagesDir: dir, progress: false, extUnixSk: true });
      assert.equal((await s.terminateAndResult(10_000)).text, 'PASS');
    } finally {
      s.cleanup();
    }
    for (let i = 0; i < 50 && peer.lines.filter((l) => l === 'after').length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(peer.lines, ['ready', 'before', 'after', 'before', 'after']);
  } finally {
    peer.proc.kill();
    rmSync(work, { recursive: true, force: true });
  }
});

/**
 * orphan_pts_master over RPC, as runc uses it for a container with a
 * terminal: the container's session runs on a pty slave whose master is
 * the client's (outside the dump). The dump saves the slave; the restore
 * makes a new master at the same index and sends it to the client in an
 * `orphan-pts-master` NOTIFY with the fd attached (SCM_RIGHTS), and the
 * restored session writes to the terminal the client now holds.
 *
 * The client here is a raw SOCK_SEQPACKET one (pycriu cannot take fds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { swrkRequest } from './raw-client.js';
import { closeSync, openSync, readFileSync, readlinkSync, readSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import type { CriuReq } from '../../src/images/messages.js';
import { POLLIN, ioctlTry, pollFd } from '../../src/sys/index.js';
import { repoRoot } from '../lib/subjects.js';
import { killAndWait, removeDir, sleep, tempDir, useE2eHarness } from '../e2e/helpers.js';

useE2eHarness();

const BINARY = join(repoRoot(), 'bin', 'criu-ts');
const TIOCGPTN = 0x80045430;
const TIOCSPTLCK = 0x40045431;

function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'rpc.log'), 'utf8').slice(-3000);
  } catch {
    return '(no log)';
  }
}

/** A new pty: our master and its index. */
function openPty(): { master: number; index: number } {
  const master = openSync('/dev/ptmx', fsc.O_RDWR | fsc.O_NOCTTY);
  ioctlTry(master, TIOCSPTLCK, Buffer.alloc(4));
  const n = Buffer.alloc(4);
  ioctlTry(master, TIOCGPTN, n);
  return { master, index: n.readInt32LE(0) };
}

/** Everything the terminal has to say within `ms`. */
async function readFor(master: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let out = '';
  const buf = Buffer.alloc(4096);
  while (Date.now() < deadline) {
    if ((pollFd(master, POLLIN, 0) & POLLIN) !== 0) {
      try {
        const n = readSync(master, buf);
        out += buf.subarray(0, n).toString();
      } catch {
        break;
      }
    } else await sleep(20);
  }
  return out;
}

test('orphan_pts_master: the new master of a session\'s terminal comes to the client over the socket', { timeout: 120_000 }, async () => {
  const dir = tempDir('orphan-pts');
  const pty = openPty();
  let master = pty.master;
  const slave = openSync(`/dev/pts/${pty.index}`, fsc.O_RDWR | fsc.O_NOCTTY);
  // setsid -c: a session of its own whose controlling terminal is the slave (its stdin), like runc's container init.
  const job = spawn('setsid', ['-c', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'], { stdio: [slave, slave, slave] });
  closeSync(slave);
  const pid = job.pid as number;
  let restored: number | undefined;
  try {
    assert.match(await readFor(master, 500), /tick \d+/);
    const opts = { images_dir_fd: -1, images_dir: dir, log_file: 'rpc.log', log_level: 4, notify_scripts: true, orphan_pts_master: true };
    const d = await swrkRequest(BINARY, { type: 'DUMP', opts: { ...opts, pid } } as CriuReq);
    assert.equal(d.resp.success, true, `dump: ${d.resp.cr_errmsg ?? ''}\n${logTail(dir)}`);
    assert.deepEqual(d.notes.filter((n) => n.fds.length > 0), [], 'a dump hands out no fd');
    await killAndWait(pid);
    closeSync(master); // the client's terminal goes away with the container, freeing the index
    master = -1;
    const r = await swrkRequest(BINARY, { type: 'RESTORE', opts } as CriuReq);
    assert.equal(r.resp.success, true, `restore: ${r.resp.cr_errmsg ?? ''}\n${logTail(dir)}`);
    restored = r.resp.restore?.pid;
    assert.equal(restored, pid);
    const orphan = r.notes.filter((n) => n.script === 'orphan-pts-master');
    assert.equal(orphan.length, 1, `one orphan-pts-master notification: ${JSON.stringify(r.notes)}`);
    assert.equal(orphan[0]?.fds.length, 1, 'the notification carries the master');
    for (const n of r.notes) if (n.script !== 'orphan-pts-master') assert.equal(n.fds.length, 0);
    master = orphan[0]?.fds[0] as number;
    const n = Buffer.alloc(4);
    ioctlTry(master, TIOCGPTN, n);
    assert.equal(n.readInt32LE(0), pty.index, 'the new master is at the dumped index');
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), `/dev/pts/${pty.index}`);
    // The restored session still has its terminal as controlling tty (stat field 7: tty_nr) and writes to our new master.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ttyNr = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    assert.notEqual(ttyNr, 0, 'the restored leader lost its controlling terminal');
    assert.match(await readFor(master, 1000), /tick \d+/, 'the restored session does not write to the new master');
  } finally {
    await killAndWait(restored ?? pid);
    if (master >= 0) closeSync(master);
    removeDir(dir);
  }
});

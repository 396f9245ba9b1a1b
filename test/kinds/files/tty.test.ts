/**
 * Terminals: a pty pair inside the task (controlling terminal, termios,
 * window size, packet mode, /dev/tty), bytes queued in a pair (saved, and
 * put back when the dump fails after reading them), controlling terminals
 * no fd holds, hung-up slaves, and a job whose stdio is a terminal held by
 * the caller (--shell-job): refused without the option, reopened by path
 * with it, also when the job holds a master of the same index in another
 * devpts instance.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dump } from '../../../src/api/index.js';
import { ioctl } from '../../../src/sys/index.js';
import { readImage } from '../../../src/images/index.js';
import type { TtyDataEntry, TtyInfoEntry } from '../../../src/images/messages.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import { runCli } from '../../lib/run.js';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';
import { tempDir, removeDir } from '../../e2e/helpers.js';

before(setUpRunner);

const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TIOCSWINSZ = 0x5414;

/** A pty of our own (the "shell's terminal"): master fd and slave path, 40x120. */
function openPty(): { master: number; path: string } {
  const master = openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY);
  ioctl(master, TIOCSPTLCK, Buffer.alloc(4));
  const n = Buffer.alloc(4);
  ioctl(master, TIOCGPTN, n);
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(40, 0);
  ws.writeUInt16LE(120, 2);
  ioctl(master, TIOCSWINSZ, ws);
  return { master, path: `/dev/pts/${n.readInt32LE(0)}` };
}

test('pty pair: controlling terminal, termios, winsize, packet mode, /dev/tty', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pty',
    check(dir, s) {
      const infos = readImage(join(dir, 'tty-info.img')).entries as unknown as TtyInfoEntry[];
      const master = infos.find((i) => i.id % 2 === 1 && i.type === 'PTY');
      const slave = infos.find((i) => i.id === (master?.id ?? 1) - 1);
      assert.ok(master?.packet_mode, 'packet mode on the master');
      assert.equal(slave?.sid, s.pid, 'controlling terminal of the session leader');
      assert.deepEqual([slave?.winsize?.ws_row, slave?.winsize?.ws_col], [33, 101]);
      assert.equal(slave?.termios?.c_ospeed, 9600);
      assert.ok(infos.some((i) => i.type === 'CTTY'), '/dev/tty');
      assert.equal(fileEntries(dir).filter((e) => e.type === 'TTY').length, 3);
      sameAsCrit(dir, ['files.img', 'tty-info.img']);
    },
  });
});

test('pty pair: /dev/tty before its terminal in fd order', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({ name: 'pty', args: ['--dev-tty-fd', '19'] });
});

test('pty pair split over a fork: the child keeps its controlling terminal', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pty-fork',
    check(dir) {
      const infos = readImage(join(dir, 'tty-info.img')).entries as unknown as TtyInfoEntry[];
      const slave = infos.find((i) => i.type === 'PTY' && i.id % 2 === 0);
      assert.ok(slave && slave.sid !== 0, 'the slave records the session it controls');
    },
  });
});

test('bytes queued in a pty pair, both ways: tty-data.img, back in their lines at restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pty-queued',
    check(dir) {
      const data = readImage(join(dir, 'tty-data.img')).entries as unknown as TtyDataEntry[];
      const infos = readImage(join(dir, 'tty-info.img')).entries as unknown as TtyInfoEntry[];
      const master = infos.find((i) => i.type === 'PTY' && i.id % 2 === 1);
      assert.ok(master);
      const forMaster = data.find((d) => d.tty_id === master.id);
      const forSlave = data.find((d) => d.tty_id === master.id - 1);
      assert.equal(forMaster?.data.toString('latin1'), 'out1\r\nout2', 'what the slave wrote, as the master reads it');
      // What to type to get the slave's queue back: ^D after the line it ended, ^V before the quoted ^D.
      assert.equal(forSlave?.data.toString('latin1'), 'line one\ntwo\neof-line\x04\x04q\x16\x04x\npartial');
      sameAsCrit(dir, ['files.img', 'tty-info.img', 'tty-data.img']);
    },
  });
});

test('a dump that fails after emptying the pty queues puts them back; so does --leave-running', { timeout: STEP_TIMEOUT_MS }, async () => {
  for (const how of ['fault', 'leave-running'] as const) {
    const s = await startSubject('pty-queued');
    const dir = tempDir('kind-tty-putback');
    try {
      if (how === 'fault') {
        // Fault point 6 (dump.images): every image is written, the queues already read.
        process.env['CRIU_TS_FAULT'] = '6';
        try {
          const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]);
          assert.notEqual(r.code, 0, 'the injected fault fails the dump');
          assert.match(r.stderr, /fault 6 \(dump\.images\) injected/);
        } finally {
          delete process.env['CRIU_TS_FAULT'];
        }
      } else {
        await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
      }
      assert.ok(isAlive(s.pid));
      const res = await s.terminateAndResult();
      assert.ok(res.ok, `${how}: ${res.text}`);
    } finally {
      s.cleanup();
      removeDir(dir);
    }
  }
});

test('controlling terminals no fd holds (own session and a child\'s), SIGHUP on hangup, slave owner', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pty-ctty',
    check(dir, s) {
      const infos = readImage(join(dir, 'tty-info.img')).entries as unknown as TtyInfoEntry[];
      const masters = infos.filter((i) => i.type === 'PTY' && i.id % 2 === 1);
      assert.ok(masters.some((m) => m.sid === s.pid), 'the master names the session its slave controls');
      const slave = infos.find((i) => i.type === 'PTY' && i.id % 2 === 0);
      assert.deepEqual([slave?.uid, slave?.gid], [4242, 4343]);
      sameAsCrit(dir, ['files.img', 'tty-info.img']);
    },
  });
});

test('hung-up slaves (master closed before the dump) come back hung up', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'pty-hangup',
    check(dir) {
      const infos = readImage(join(dir, 'tty-info.img')).entries as unknown as TtyInfoEntry[];
      assert.ok(infos.every((i) => i.termios === undefined), 'a hung-up terminal has no termios to read');
      sameAsCrit(dir, ['files.img', 'tty-info.img']);
    },
  });
});

test('shell job: a terminal outside the dump needs --shell-job, then is reopened', { timeout: STEP_TIMEOUT_MS }, async () => {
  const pty = openPty();
  try {
    const refusedDir = tempDir('kind-tty-refused');
    try {
      await roundTrip({
        name: 'tty-stdio',
        args: ['--tty', pty.path],
        dumpOpts: { shellJob: true },
        restoreOpts: { shellJob: true },
        async before(s) {
          await assert.rejects(dump({ pid: s.pid, imagesDir: refusedDir, progress: false }), (e: Error & { code?: string }) => {
            assert.equal(e.code, 'EUNSUPPORTED');
            assert.match(e.message, /--shell-job/);
            assert.match(e.message, new RegExp(pty.path));
            return true;
          });
          assert.ok(isAlive(s.pid), 'a refused dump leaves the task running');
        },
        check(dir) {
          const ttys = fileEntries(dir).filter((e) => e.type === 'TTY');
          assert.equal(ttys.length, 1, 'fds 0-2 share one description');
          sameAsCrit(dir, ['files.img', 'tty-info.img']);
        },
      });
    } finally {
      removeDir(refusedDir);
    }
  } finally {
    closeSync(pty.master);
  }
});

test('a master of the same index in another devpts instance is not the terminal\'s own', { timeout: STEP_TIMEOUT_MS }, async () => {
  const pty = openPty();
  const dir = tempDir('kind-tty-devpts');
  // A second devpts instance (as a container has), with its indexes counted from 0 again.
  const pts = join(dir, 'pts');
  mkdirSync(pts);
  execFileSync('mount', ['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666', 'devpts', pts]);
  try {
    const s = await startSubject('tty-stdio', ['--tty', pty.path, '--ptmx', join(pts, 'ptmx')]);
    try {
      await assert.rejects(dump({ pid: s.pid, imagesDir: join(dir, 'img'), progress: false }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'EUNSUPPORTED');
        assert.match(e.message, /master is outside the dump; use --shell-job/);
        assert.match(e.message, new RegExp(pty.path));
        return true;
      });
      assert.ok(isAlive(s.pid), 'a refused dump leaves the task running');
    } finally {
      s.kill();
      s.cleanup();
    }
  } finally {
    execFileSync('umount', ['-l', pts]);
    closeSync(pty.master);
    removeDir(dir);
  }
});

/**
 * Terminals: a pty pair inside the task (controlling terminal, termios,
 * window size, packet mode, /dev/tty), and a job whose stdio is a terminal
 * held by the caller (--shell-job): refused without the option, reopened by
 * path with it.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../../src/api/index.js';
import { ioctl } from '../../../src/sys/index.js';
import { readImage } from '../../../src/images/index.js';
import type { TtyInfoEntry } from '../../../src/images/messages.js';
import { isAlive } from '../../lib/subjects.js';
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

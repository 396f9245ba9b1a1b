/**
 * File locks: without --file-locks a held lock refuses the dump (and the
 * task runs on); with it, flock (shared and exclusive), POSIX (write and
 * read ranges, to EOF) and OFD locks are written to filelocks.img once
 * each and re-taken at restore, as a child of the restored task sees.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { dump } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { FileLockEntry } from '../../../src/images/messages.js';
import { isAlive } from '../../lib/subjects.js';
import { removeDir, tempDir } from '../../e2e/helpers.js';
import { roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('file locks: refused without --file-locks, kept with it', { timeout: STEP_TIMEOUT_MS }, async () => {
  const refusedDir = tempDir('kind-locks-refused');
  try {
    await roundTrip({
      name: 'file-locks',
      dumpOpts: { fileLocks: true },
      async before(s) {
        await assert.rejects(dump({ pid: s.pid, imagesDir: refusedDir, progress: false }), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'EUNSUPPORTED');
          assert.match(e.message, /--file-locks/);
          assert.match(e.message, /flock\.dat/);
          return true;
        });
        assert.ok(isAlive(s.pid), 'a refused dump leaves the task running');
      },
      check(dir, s) {
        const locks = readImage(join(dir, 'filelocks.img')).entries as unknown as FileLockEntry[];
        const rows = locks.map((l) => [l.flag, l.type, l.pid, l.fd, l.start, l.len]);
        assert.deepEqual(rows.sort(), [
          [2, 1, s.pid, 20, 0n, 0n], // flock LOCK_EX
          [2, 0, s.pid, 21, 0n, 0n], // flock LOCK_SH
          [1, 1, s.pid, 22, 100n, 100n], // POSIX write [100, 200)
          [1, 0, s.pid, 22, 300n, 0n], // POSIX read [300, EOF), once though fd 24 shows it too
          [4, 1, s.pid, 23, 0n, 10n], // OFD write [0, 10)
        ].sort());
        sameAsCrit(dir, ['filelocks.img', 'files.img']);
      },
    });
  } finally {
    removeDir(refusedDir);
  }
});

test('file locks: a flock shared with a forked child is re-taken once, owned by the open file', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'flock-shared',
    dumpOpts: { fileLocks: true },
    check(dir, s) {
      const locks = readImage(join(dir, 'filelocks.img')).entries as unknown as FileLockEntry[];
      assert.deepEqual(locks.map((l) => [l.flag, l.type, l.pid, l.fd]), [[2, 1, s.pid, 20]]);
    },
  });
});

test('leases: read, write, and one being broken (recorded as CRIU does), re-taken at restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'file-lease',
    dumpOpts: { fileLocks: true },
    check(dir, s) {
      const locks = readImage(join(dir, 'filelocks.img')).entries as unknown as FileLockEntry[];
      const rows = locks.map((l) => [l.flag, l.type, l.pid, l.fd]);
      assert.deepEqual(rows.sort(), [
        [8, 0, s.pid, 20], // FL_LEASE F_RDLCK
        [8, 1, s.pid, 21], // FL_LEASE F_WRLCK
        [8, 2 | 4, s.pid, 22], // breaking to F_UNLCK: LEASE_BREAKING
      ]);
      sameAsCrit(dir, ['filelocks.img']);
    },
  });
});

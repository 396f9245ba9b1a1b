/**
 * memfd open as fds: memfd.img (one inode entry per inode), MEMFD file
 * entries pointing at it, contents in pagemap-shmem + pages images; the
 * restored subject checks contents, holes, seals, modes and sharing.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import type { MemfdInodeEntry, PagemapEntry } from '../../../src/images/messages.js';
import { dump } from '../../../src/api/index.js';
import { startSubject, type Subject } from '../../lib/subjects.js';
import { removeDir, tempDir, killSubject } from '../../lib/harness.js';
import { fileEntries, roundTrip, sameAsCrit, sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('memfd: inodes, contents with holes, seals, shared inode', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'memfd',
    check(dir) {
      const inodes = readImage(join(dir, 'memfd.img')).entries as unknown as MemfdInodeEntry[];
      assert.deepEqual(inodes.map((i) => [i.name, i.size, i.seals, (i.mode ?? 0) & 0o7777]).sort(), [
        ['ts-memfd', 5n * 4096n + 100n, 2 | 4, 0o777],
        ['plain', 10n, 1, 0o640],
        ['wonly', 6n, 1, 0o777],
      ].sort());
      const memfds = fileEntries(dir).filter((e) => e.type === 'MEMFD').map((e) => e.memfd);
      assert.equal(memfds.length, 4, 'fds 20 and 23 share one description');
      const idOf = (name: string): number => Number(inodes.find((i) => i.name === name)?.inode_id);
      assert.deepEqual(memfds.map((m) => [m?.inode_id, m?.pos]).sort(), [
        [idOf('ts-memfd'), 4103n], [idOf('ts-memfd'), 3n], [idOf('plain'), 10n], [idOf('wonly'), 0n],
      ].sort());
      const first = inodes.find((i) => i.name === 'ts-memfd');
      assert.ok(first);
      const [, ...pm] = readImage(join(dir, `pagemap-shmem-${first.shmid}.img`)).entries as unknown as PagemapEntry[];
      assert.deepEqual(pm.map((e) => [e.vaddr, e.nr_pages]), [[0n, 1n], [0x2000n, 1n], [0x5000n, 1n]], 'holes left out');
      sameAsCrit(dir, ['files.img']);
      sameAsCritWithout(dir, 'memfd.img', ['mode']);
    },
  });
});

test('memfd: a dump that leaves the task running keeps its offsets (the contents are read through our own open)', { timeout: STEP_TIMEOUT_MS }, async () => {
  // The SEEK_DATA/SEEK_HOLE walk over the contents moved the offset of the
  // description the task shares with pidfd_getfd (zdtm memfd00 --snaps).
  const dir = tempDir('kind-memfd-running');
  let s: Subject | undefined;
  try {
    s = await startSubject('memfd', []);
    await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
    removeDir(dir);
  }
});

/**
 * The dump half of memfd mappings, offered to the memory kind:
 * memfdFileForMapping makes one MEMFD entry per mapped memfd inode and
 * writes its inode entry and contents once, shared with an fd of the same
 * memfd (the subject is not seized: /proc/PID/map_files is enough).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { memfdFileForMapping } from '../../../src/kinds/files/memfd.js';
import { DumpSession } from '../../../src/dump/context.js';
import { readImage } from '../../../src/images/index.js';
import type { MemfdInodeEntry, PagemapEntry } from '../../../src/images/messages.js';
import { startSubject, subjectFill, type Subject } from '../../lib/subjects.js';
import { removeDir, tempDir } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const PAGE = 4096;

function memfdMaps(pid: number): { start: bigint; end: bigint; path: string }[] {
  return readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n').flatMap((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+(\/memfd:.*)$/.exec(l);
    return m ? [{ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), path: m[3] ?? '' }] : [];
  });
}

/** The subject's memfds hold subject_fill's bytes of seed 73 (memfd-map.c). */
const pattern = (n: number): Buffer => subjectFill(n, 73n);

test('memfd mappings: one MEMFD entry and inode per memfd, contents from map_files', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('kind-memfd-map');
  let s: Subject | undefined;
  try {
    s = await startSubject('memfd-map');
    const pid = s.pid;
    const ctx = new DumpSession(dir, { shellJob: false, extUnixSk: false, fileLocks: false, ghostLimit: 1 << 20, linkRemap: false, tcpEstablished: false, tcpClose: false, skipInFlight: false, networkLock: 'skip', emptyNetNs: false, manageCgroups: 'soft', cgroupRoots: [], cgroupYard: undefined, cgroupDumpControllers: [], root: undefined, extMounts: new Map(), autoExtMounts: false, extSharing: false, extMasters: false });
    const maps = memfdMaps(pid);
    assert.equal(maps.length, 2);
    const ids = maps.map((m) => memfdFileForMapping(ctx, pid, m.start, m.end, m.path));
    // The same mapping asked twice gets the same entry.
    const first = maps[0];
    if (first) ids.push(memfdFileForMapping(ctx, pid, first.start, first.end, first.path));
    ctx.finishImages();
    const files = ctx.files;
    assert.equal(files.length, 2);
    assert.equal(ids[2], ids[0]);
    assert.deepEqual(files.map((f) => [f.type, f.memfd?.flags, f.memfd?.pos]), [['MEMFD', 0, 0n], ['MEMFD', 0, 0n]]);
    const inodes = readImage(join(dir, 'memfd.img')).entries as unknown as MemfdInodeEntry[];
    assert.deepEqual(inodes.map((i) => [i.name, i.size]).sort(), [['both', BigInt(2 * PAGE)], ['mapped', BigInt(3 * PAGE + 10)]]);
    for (const ie of inodes) {
      const [head, ...pm] = readImage(join(dir, `pagemap-shmem-${ie.shmid}.img`)).entries as unknown as [{ pages_id: number }, ...PagemapEntry[]];
      const pages = readFileSync(join(dir, `pages-${head.pages_id}.img`));
      assert.deepEqual(pm.map((e) => [e.vaddr, e.nr_pages]), [[0n, BigInt(Math.ceil(Number(ie.size) / PAGE))]]);
      assert.ok(pages.subarray(0, Number(ie.size)).equals(pattern(Number(ie.size))), `${ie.name}: contents`);
    }
    const res = await s.terminateAndResult(10_000);
    assert.ok(res.ok, res.text);
  } finally {
    s?.cleanup();
    removeDir(dir);
  }
});

/**
 * The pages of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, a
 * memfd-less shmem object of the kernel's): written once per object, by the
 * first task of the dump that maps it, into pagemap-shmem-<shmid>.img and a
 * pages image of its own, as offsets into the object. Which pages hold data
 * is asked of the object (SEEK_DATA/SEEK_HOLE), so pages only another task
 * touched are saved too; anonymous hugetlb objects ask per huge page.
 */
import { statSync, openSync, closeSync } from 'node:fs';
import { mapFilesPath, type PagemapReader, type SmapsEntry } from '../../proc/index.js';
import { PAGE_SIZE, lseek, isSyscallError } from '../../sys/index.js';
import { SEEK_DATA, SEEK_HOLE } from '../../sys/fcntl.js';
import type { PagemapEntry } from '../../images/messages.js';
import { PE_PRESENT } from '../../images/flags.js';
import type { PageServerClient } from './page-server-client.js';
import { hugePageSize, hugetlbDataRanges, isHugetlb } from './hugetlb.js';
import { PagesWriter } from './pages-writer.js';
import { forEachRun, pagePresent } from './pagemap-runs.js';

/** What the dump of a task hands the shared memory it maps (part of MemoryDumpContext). */
export interface ShmemDumpContext {
  pid: number;
  dir: string;
  nextPagesId(): number;
  onBytes?: (n: number) => void;
  pageServer?: PageServerClient;
}

/** One object's pagemap-shmem image: its entries (offsets into the object) and the id of its pages image. */
export interface ShmemPages { shmid: bigint; pagesId: number; entries: PagemapEntry[] }

/**
 * The pages of a shared anonymous object, from this task's window of it.
 * Which pages hold data is asked of the object itself (SEEK_DATA/SEEK_HOLE
 * on its /proc/PID/map_files entry), not of this task's page tables: pages
 * only another task touched are there too. They are then read through the
 * task's mapping. Falls back to the task's pagemap where the object cannot
 * be opened.
 */
export function dumpShmem(ctx: ShmemDumpContext, reader: PagemapReader, v: SmapsEntry): ShmemPages {
  const pagesId = ctx.nextPagesId();
  const base = v.start - v.pgoff;
  const remote = ctx.pageServer ? { client: ctx.pageServer, target: { type: 'shmem' as const, id: Number(v.inode) }, bias: base } : undefined;
  const w = new PagesWriter(ctx.dir, pagesId, ctx.pid, ctx.onBytes, Number(v.end - v.start), remote);
  try {
    const path = mapFilesPath(ctx.pid, v.start, v.end);
    // The whole object, not only this task's window: other windows (other
    // tasks', or ones this task unmapped since) hold data of it too.
    const lo = 0n;
    const hi = objectSize(path) ?? v.pgoff + (v.end - v.start);
    let ranges: [bigint, bigint][] | undefined;
    if (isHugetlb(v)) {
      // Huge pages this task maps, or that hold data (read without allocating any).
      const pm = reader.read(v.start, v.end);
      const mapped = (off: bigint): boolean => pagePresent(pm, Number((base + off - v.start) / BigInt(PAGE_SIZE)));
      ranges = hugetlbDataRanges(path, lo, hi, hugePageSize(v), mapped);
    } else {
      ranges = dataRanges(path, lo, hi);
    }
    if (ranges) {
      // Read from the object itself: windows this task does not map are in it too.
      const fd = openSync(path, 'r');
      try {
        for (const [from, to] of ranges) {
          w.breakRun();
          w.addFromFile(fd, from, base + from, Number((to - from) / BigInt(PAGE_SIZE)), PE_PRESENT);
        }
      } finally {
        closeSync(fd);
      }
    } else {
      const pm = reader.read(v.start, v.end);
      forEachRun(pm, false, v.swapKb > 0, (first, count) => {
        w.add(v.start + BigInt(first * PAGE_SIZE), count, PE_PRESENT, !v.prot.read);
      });
    }
    // Entries of a shmem pagemap are offsets into the object, like CRIU's.
    for (const e of w.entries) e.vaddr -= base;
  } finally {
    w.close();
  }
  return { shmid: v.inode, pagesId, entries: w.entries };
}

function objectSize(path: string): bigint | undefined {
  try {
    return BigInt(statSync(path).size);
  } catch {
    return undefined;
  }
}


/** Page-aligned [from, to) ranges of `path` between lo and hi that hold data; undefined if it cannot be asked. */
export function dataRanges(path: string, lo: bigint, hi: bigint): [bigint, bigint][] | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const out: [bigint, bigint][] = [];
    let off = lo;
    while (off < hi) {
      let data: bigint;
      try {
        data = BigInt(lseek(fd, off, SEEK_DATA));
      } catch (e) {
        if (isSyscallError(e, 6 /* ENXIO: no data after off */)) break;
        return undefined;
      }
      if (data >= hi) break;
      const hole = BigInt(lseek(fd, data, SEEK_HOLE));
      const page = BigInt(PAGE_SIZE);
      const from = (data / page) * page;
      const to = hole > hi ? hi : ((hole + page - 1n) / page) * page;
      if (to > from) out.push([from, to]);
      off = to;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * hugetlb memory (MAP_HUGETLB). Kernel object: anonymous mappings backed by
 * the kernel's internal hugetlbfs ("/anon_hugepage (deleted)"), private
 * (copied on fork) or shared (one hugetlbfs inode). CRIU's image: the VMA's
 * flags carry MAP_HUGETLB and the page size (log2 in bits 26-31, as
 * mmap's MAP_HUGE_* flags); a private one is ANON_PRIVATE with its pages in
 * the task's pagemap, a shared one ANON_SHARED (shmid = inode) with its
 * pages in pagemap-shmem-<shmid>.img, offsets into the object.
 *
 * Which pages of a shared object: the object is read through its
 * map_files entry from our side, one huge page at a time (a read of a hole
 * in hugetlbfs returns zeros and allocates nothing, where a touch through
 * a mapping would take a huge page from the pool); a huge page is saved
 * when this task maps it or it holds data. SEEK_DATA cannot tell
 * (hugetlbfs calls the whole file data).
 *
 * A hugetlb memfd's mappings are memfd mappings (files/memfd.ts keeps the
 * inode's page size). Limits: files of a mounted hugetlbfs are refused; a restore needs free huge pages of the
 * dumped size; huge pages that were allocated but all zeros come back as
 * holes in a shared object.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { SmapsEntry } from '../../proc/index.js';
import { MAP_HUGETLB, MAP_HUGE_SHIFT } from '../../sys/mman.js';

export const MAP_HUGE_MASK = 0x3f << MAP_HUGE_SHIFT;

export function isHugetlb(v: SmapsEntry): boolean {
  return v.vmFlags.includes('ht');
}

/** An anonymous hugetlb mapping (MAP_ANONYMOUS|MAP_HUGETLB, or a private /dev/zero mapping with MAP_HUGETLB). */
export function isAnonHugetlb(v: SmapsEntry): boolean {
  return isHugetlb(v) && v.path.startsWith('/anon_hugepage');
}

/** The page size of a hugetlb VMA, in bytes. */
export function hugePageSize(v: SmapsEntry): number {
  return v.kernelPageSizeKb * 1024;
}

/** MAP_HUGETLB with the page size, as the VMA's flags carry it. */
export function hugetlbFlags(v: SmapsEntry): number {
  const size = hugePageSize(v);
  const log2 = Math.round(Math.log2(size));
  return MAP_HUGETLB | ((log2 << MAP_HUGE_SHIFT) & MAP_HUGE_MASK);
}

/** Resident hugetlb memory of a VMA (smaps counts it apart from Rss), in KiB. */
export function hugetlbKb(v: SmapsEntry): number {
  return v.hugetlbKb;
}

/**
 * Offsets [from, to) into a shared hugetlb object (between lo and hi) of
 * the huge pages to save: those `mapped` says this task has, and those
 * that hold any data, read through `path` without allocating anything.
 */
export function hugetlbDataRanges(
  path: string, lo: bigint, hi: bigint, size: number, mapped: (off: bigint) => boolean,
): [bigint, bigint][] | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  const out: [bigint, bigint][] = [];
  const buf = Buffer.alloc(size);
  const zero = Buffer.alloc(size);
  const step = BigInt(size);
  try {
    for (let off = lo - (lo % step); off < hi; off += step) {
      const from = off < lo ? lo : off;
      const to = off + step > hi ? hi : off + step;
      let keep = mapped(from);
      if (!keep) {
        const n = readSync(fd, buf, 0, Number(to - from), Number(from));
        keep = buf.compare(zero, 0, n, 0, n) !== 0;
      }
      if (!keep) continue;
      const last = out[out.length - 1];
      if (last && last[1] === from) last[1] = to;
      else out.push([from, to]);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

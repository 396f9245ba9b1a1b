/**
 * /proc/PID/pagemap: one u64 per virtual page (Documentation/admin-guide/mm/pagemap.rst).
 * The reader does one pread per range; presentRuns scans a range through a
 * 32-bit view of the same bytes so a 1 GiB range (262144 entries) costs no
 * per-page allocation and no BigInt arithmetic.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { procError } from './read.js';
import { PAGE_SIZE, PAGE_SHIFT } from '../sys/index.js';
import { parseMaps } from './maps.js';


export const PM_PFN_MASK = (1n << 55n) - 1n;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;

export const isPresent = (e: bigint): boolean => (e & PM_PRESENT) !== 0n;
export const isSwapped = (e: bigint): boolean => (e & PM_SWAP) !== 0n;
export const isFilePage = (e: bigint): boolean => (e & PM_FILE) !== 0n;
export const isExclusive = (e: bigint): boolean => (e & PM_MMAP_EXCLUSIVE) !== 0n;
export const isSoftDirty = (e: bigint): boolean => (e & PM_SOFT_DIRTY) !== 0n;
export const isUffdWp = (e: bigint): boolean => (e & PM_UFFD_WP) !== 0n;
/** Page frame number; 0 unless the reader has CAP_SYS_ADMIN. Meaningless for swapped entries. */
export const pfn = (e: bigint): bigint => e & PM_PFN_MASK;

/** 256 KiB of entries (a 128 MiB range): the most a reader keeps between reads. */
const REUSE_ENTRIES = 1 << 15;

export class PagemapReader {
  readonly pid: number;
  private fd: number;
  private reused = new BigUint64Array(0);

  constructor(pid: number) {
    this.pid = pid;
    const file = `/proc/${pid}/pagemap`;
    try {
      this.fd = openSync(file, 'r');
    } catch (e) {
      throw procError(pid, file, e);
    }
  }

  /**
   * Entries for pages [start, end): both page-aligned virtual addresses.
   * The array is reused by the next read() (use it at once): a fresh one
   * per VMA was 16 KiB for each thread stack of a 1000-thread task, 16 MiB
   * of garbage V8 counts but does not hurry to collect. Reads of more than
   * REUSE_ENTRIES pages get an array of their own.
   */
  read(start: bigint, end: bigint): BigUint64Array {
    if (this.fd < 0) throw new CriuTsError('EINTERNAL', 'PagemapReader used after close', { pid: this.pid });
    const first = start >> PAGE_SHIFT;
    const n = Math.max(0, Number((end >> PAGE_SHIFT) - first));
    let out: BigUint64Array;
    if (n > REUSE_ENTRIES) {
      out = new BigUint64Array(n);
    } else {
      if (this.reused.length < n) this.reused = new BigUint64Array(Math.min(REUSE_ENTRIES, Math.max(n, this.reused.length * 2)));
      out = this.reused.subarray(0, n);
      out.fill(0n);
    }
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    let done = 0;
    // pagemap may return short reads at VMA boundaries on some kernels; loop until full.
    while (done < bytes.length) {
      let got: number;
      try {
        // bigint position: [vsyscall]'s entries lie beyond 2^53 bytes into the file.
        got = readSync(this.fd, bytes, done, bytes.length - done, first * 8n + BigInt(done));
      } catch (e) {
        throw procError(this.pid, `/proc/${this.pid}/pagemap`, e);
      }
      // EOF: the kernel ends pagemap at the task's address limit, so [vsyscall]
      // (above it) has no entries; the zeros left in place mean "not present".
      if (got <= 0) break;
      done += got;
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface PageRun {
  startIndex: number;
  count: number;
}

/**
 * Runs of consecutive entries with the present bit (or, with
 * includeSwapped, the swapped bit) set. Reads only the high 32-bit word
 * of each little-endian entry.
 */
export function presentRuns(entries: BigUint64Array, includeSwapped = false): PageRun[] {
  const hi = new Uint32Array(entries.buffer, entries.byteOffset, entries.length * 2);
  const mask = includeSwapped ? 0xc0000000 : 0x80000000; // bit 63 present, bit 62 swapped
  const runs: PageRun[] = [];
  const n = entries.length;
  let i = 0;
  while (i < n) {
    while (i < n && ((hi[2 * i + 1] ?? 0) & mask) === 0) i++;
    if (i >= n) break;
    const s = i;
    while (i < n && ((hi[2 * i + 1] ?? 0) & mask) !== 0) i++;
    runs.push({ startIndex: s, count: i - s });
  }
  return runs;
}

export interface CleanMapping {
  start: bigint;
  end: bigint;
  /** pages of it in our page tables, KiB */
  residentKb: number;
}

/**
 * criu-ts's own mappings of the file (st_dev `dev`, `inode`) whose pages
 * are all the file's: private, not writable, and no page a copy of our own
 * (a present page that is not a file page, or a swapped one, is the copy a
 * write made: the relocations of a now read-only RELRO segment, a
 * breakpoint); with some resident. What cli/trim-pages.ts may take out of
 * the resident set. From maps and pagemap (smaps would walk every VMA of
 * ours: 4 ms of CPU for node's).
 */
export function ownCleanMappingsOf(dev: bigint, inode: bigint): CleanMapping[] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xfff00n));
  const candidates = parseMaps(process.pid).filter((m) => m.inode === inode && m.devMajor === major && m.devMinor === minor
    && !m.shared && !m.prot.write && !m.deleted);
  if (candidates.length === 0) return [];
  const out: CleanMapping[] = [];
  const pm = new PagemapReader(process.pid);
  try {
    for (const m of candidates) {
      const entries = pm.read(m.start, m.end);
      const hi = new Uint32Array(entries.buffer, entries.byteOffset, entries.length * 2);
      let resident = 0;
      let copied = false;
      for (let i = 1; i < hi.length; i += 2) {
        const w = hi[i] ?? 0;
        if ((w & 0x40000000) !== 0) copied = true; // bit 62: swapped, so anonymous
        else if ((w & 0x80000000) !== 0) { // bit 63: present
          if ((w & 0x20000000) === 0) copied = true; // bit 61: a file page
          else resident++;
        }
        if (copied) break;
      }
      if (!copied && resident > 0) out.push({ start: m.start, end: m.end, residentKb: resident * (PAGE_SIZE / 1024) });
    }
  } finally {
    pm.close();
  }
  return out;
}

/**
 * userfaultfd write-protect and PAGEMAP_SCAN: the kernel ABI behind memory
 * tracking without soft-dirty (Documentation/admin-guide/mm/userfaultfd.rst,
 * pagemap.rst; include/uapi/linux/userfaultfd.h and fs.h, Linux 6.7+).
 *
 * The structs built here are laid out for x86_64 and handed either to our
 * own ioctl (PAGEMAP_SCAN on /proc/PID/pagemap works on another process's
 * address space) or copied into a task's scratch memory for an injected
 * ioctl (UFFDIO_* act on the caller's own userfaultfd).
 */
import { addr } from './libc.js';
import { ioctlTry } from './process.js';
import { SyscallError } from './error.js';

export const UFFD_API = 0xaan;
export const UFFD_USER_MODE_ONLY = 1;
export const UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1n << 0n;
export const UFFD_FEATURE_WP_UNPOPULATED = 1n << 13n;
export const UFFD_FEATURE_WP_ASYNC = 1n << 15n;

/** _IOWR(0xAA, nr, size) */
export const UFFDIO_API = 0xc018aa3f; // struct uffdio_api, 24 bytes
export const UFFDIO_REGISTER = 0xc020aa00; // struct uffdio_register, 32 bytes
export const UFFDIO_WRITEPROTECT = 0xc018aa06; // struct uffdio_writeprotect, 24 bytes
export const UFFDIO_REGISTER_MODE_WP = 2n;
export const UFFDIO_WRITEPROTECT_MODE_WP = 1n;

/** PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg), 96 bytes. */
export const PAGEMAP_SCAN = 0xc0606610;
export const PAGE_IS_WPALLOWED = 1 << 0;
export const PAGE_IS_WRITTEN = 1 << 1;
export const PAGE_IS_FILE = 1 << 2;
export const PAGE_IS_PRESENT = 1 << 3;
export const PAGE_IS_SWAPPED = 1 << 4;
export const PAGE_IS_PFNZERO = 1 << 5;
export const PAGE_IS_HUGE = 1 << 6;
export const PAGE_IS_GUARD = 1 << 8; // a MADV_GUARD_INSTALL guard region (Linux 6.14+)
/** Write-protect the pages reported, in the same walk. */
export const PM_SCAN_WP_MATCHING = 1;
/** Fail with EPERM where a VMA is not registered for async write-protect. */
export const PM_SCAN_CHECK_WPASYNC = 2;

export function uffdioApi(features: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(UFFD_API, 0);
  b.writeBigUInt64LE(features, 8);
  return b;
}

export function uffdioRegister(start: bigint, len: bigint, mode: bigint): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(start, 0);
  b.writeBigUInt64LE(len, 8);
  b.writeBigUInt64LE(mode, 16);
  return b;
}

export function uffdioWriteprotect(start: bigint, len: bigint, mode: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(start, 0);
  b.writeBigUInt64LE(len, 8);
  b.writeBigUInt64LE(mode, 16);
  return b;
}

export interface PageRegion {
  start: bigint;
  end: bigint;
  categories: number;
}

export interface PagemapScanQuery {
  flags: number;
  /** pages must have every one of these categories (after `inverted`) */
  mask: number;
  /** ... and at least one of these (0: no condition) */
  anyOf: number;
  /** categories that are matched when clear instead of set */
  inverted?: number;
  /** categories reported back in each region */
  report: number;
}

const VEC_LEN = 4096;
let vecBuf: Buffer | undefined;

/**
 * PAGEMAP_SCAN over [start, end) of the address space behind `pagemapFd`
 * (an open /proc/PID/pagemap). Loops until the whole range is walked (the
 * kernel stops early when the output vector is full). Throws SyscallError
 * (EPERM with PM_SCAN_CHECK_WPASYNC on a range not registered for async WP).
 */
export function pagemapScan(pagemapFd: number, start: bigint, end: bigint, q: PagemapScanQuery, pid?: number): PageRegion[] {
  vecBuf ??= Buffer.alloc(VEC_LEN * 24);
  const vec = vecBuf;
  const arg = Buffer.alloc(96);
  const out: PageRegion[] = [];
  let from = start;
  while (from < end) {
    arg.fill(0);
    arg.writeBigUInt64LE(96n, 0);
    arg.writeBigUInt64LE(BigInt(q.flags), 8);
    arg.writeBigUInt64LE(from, 16);
    arg.writeBigUInt64LE(end, 24);
    arg.writeBigUInt64LE(addr(vec), 40);
    arg.writeBigUInt64LE(BigInt(VEC_LEN), 48);
    arg.writeBigUInt64LE(BigInt(q.inverted ?? 0), 64);
    arg.writeBigUInt64LE(BigInt(q.mask), 72);
    arg.writeBigUInt64LE(BigInt(q.anyOf), 80);
    arg.writeBigUInt64LE(BigInt(q.report), 88);
    const n = ioctlTry(pagemapFd, PAGEMAP_SCAN, arg);
    if (n < 0) throw new SyscallError('ioctl(PAGEMAP_SCAN)', -n, pid);
    for (let i = 0; i < n; i++) {
      out.push({ start: vec.readBigUInt64LE(i * 24), end: vec.readBigUInt64LE(i * 24 + 8), categories: Number(vec.readBigUInt64LE(i * 24 + 16)) });
    }
    const walkEnd = arg.readBigUInt64LE(32);
    if (walkEnd <= from) break; // no progress: nothing more to learn
    from = walkEnd;
  }
  return out;
}

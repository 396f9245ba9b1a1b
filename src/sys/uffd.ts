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
import { addr, sysAsync, sysTry } from './libc.js';
import { ioctlTry } from './process.js';
import { SyscallError } from './error.js';
import { NR } from './nr.js';

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
      let s = vec.readBigUInt64LE(i * 24);
      const e = vec.readBigUInt64LE(i * 24 + 8);
      // Never the same page twice (see below): what was reported first stands.
      const last = out[out.length - 1];
      if (last !== undefined && s < last.end) s = last.end;
      if (s < e) out.push({ start: s, end: e, categories: Number(vec.readBigUInt64LE(i * 24 + 16)) });
    }
    // A vector not filled means the walk reached `end`. Its walk_end then
    // can still be short of it (seen on 6.18: 72 MiB into an 80 MiB range
    // whose regions all came back), and a walk from there reported the
    // tail twice: duplicate pagemap entries, and with PM_SCAN_WP_MATCHING a
    // second answer after the first had protected those pages again.
    if (n < VEC_LEN) break;
    const walkEnd = arg.readBigUInt64LE(32);
    if (walkEnd <= from) break; // no progress: nothing more to learn
    from = walkEnd;
  }
  return out;
}

// ---- lazy pages: MISSING mode (Documentation/admin-guide/mm/userfaultfd.rst) ----

export const UFFD_FEATURE_EVENT_FORK = 1n << 1n;
export const UFFD_FEATURE_EVENT_REMAP = 1n << 2n;
export const UFFD_FEATURE_EVENT_REMOVE = 1n << 3n;
export const UFFD_FEATURE_EVENT_UNMAP = 1n << 6n;
/** The non-cooperative events a lazy-pages server needs to follow the task (CRIU asks for the same four). */
export const UFFD_LAZY_FEATURES = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
export const UFFDIO_REGISTER_MODE_MISSING = 1n;
export const UFFDIO_COPY = 0xc028aa03; // struct uffdio_copy, 40 bytes
export const UFFDIO_ZEROPAGE = 0xc020aa04; // struct uffdio_zeropage, 32 bytes

export const UFFD_EVENT_PAGEFAULT = 0x12;
export const UFFD_EVENT_FORK = 0x13;
export const UFFD_EVENT_REMAP = 0x14;
export const UFFD_EVENT_REMOVE = 0x15;
export const UFFD_EVENT_UNMAP = 0x16;
/** struct uffd_msg */
export const UFFD_MSG_BYTES = 32;

export type UffdMsg =
  | { event: 'pagefault'; address: bigint }
  | { event: 'fork'; ufd: number }
  | { event: 'remap'; from: bigint; to: bigint; len: bigint }
  | { event: 'remove' | 'unmap'; start: bigint; end: bigint }
  | { event: 'other'; code: number };

export function decodeUffdMsg(b: Buffer, off = 0): UffdMsg {
  const ev = b.readUInt8(off);
  const a = off + 8;
  switch (ev) {
    case UFFD_EVENT_PAGEFAULT: return { event: 'pagefault', address: b.readBigUInt64LE(a + 8) };
    case UFFD_EVENT_FORK: return { event: 'fork', ufd: b.readUInt32LE(a) };
    case UFFD_EVENT_REMAP: return { event: 'remap', from: b.readBigUInt64LE(a), to: b.readBigUInt64LE(a + 8), len: b.readBigUInt64LE(a + 16) };
    case UFFD_EVENT_REMOVE: return { event: 'remove', start: b.readBigUInt64LE(a), end: b.readBigUInt64LE(a + 8) };
    case UFFD_EVENT_UNMAP: return { event: 'unmap', start: b.readBigUInt64LE(a), end: b.readBigUInt64LE(a + 8) };
    default: return { event: 'other', code: ev };
  }
}

/**
 * UFFDIO_COPY on our own userfaultfd `uffd`: `len` bytes of `src` (ours)
 * into the registered task's memory at `dst`, waking its faulting threads.
 * Returns the bytes copied, or -errno (EEXIST: a page there is present
 * already, the bytes before it were copied; EAGAIN: an event must be read
 * first; ESRCH: the task's memory is gone).
 */
export function uffdCopy(uffd: number, dst: bigint, src: Buffer, len: number): number {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(dst, 0);
  b.writeBigUInt64LE(addr(src), 8);
  b.writeBigUInt64LE(BigInt(len), 16);
  const r = ioctlTry(uffd, UFFDIO_COPY, b);
  const copied = Number(b.readBigInt64LE(32));
  if (r < 0) return copied > 0 ? copied : r;
  return copied;
}

const copyArg = Buffer.alloc(40);

/**
 * UFFDIO_COPY from our own memory at address `src` (a buffer of ours, or
 * a view into one). Returns as uffdCopy.
 */
export function uffdCopyFrom(uffd: number, dst: bigint, src: bigint, len: number): number {
  const b = copyArg;
  b.writeBigUInt64LE(dst, 0);
  b.writeBigUInt64LE(src, 8);
  b.writeBigUInt64LE(BigInt(len), 16);
  b.writeBigUInt64LE(0n, 24);
  b.writeBigInt64LE(0n, 32);
  const r = ioctlTry(uffd, UFFDIO_COPY, b);
  const copied = Number(b.readBigInt64LE(32));
  if (r < 0) return copied > 0 ? copied : r;
  return copied;
}

/** struct uffdio_copy's `copy` before the call: the kernel writes bytes copied or -errno over it. */
const NOT_WRITTEN = -(1n << 62n);

/**
 * uffdCopyFrom on a worker thread (sysAsync): the copy of one chunk runs
 * on another core while ours reads and checks the next one. Settles as
 * uffdCopyFrom returns. The kernel writes the outcome into the argument's
 * `copy` field; where it failed before writing it (EFAULT, ESRCH, an
 * early EAGAIN: which one the worker's errno would say) the call is made
 * again here, synchronously, to learn it. `src` must stay mapped and
 * unchanged until it settles.
 */
export async function uffdCopyAsync(uffd: number, dst: bigint, src: bigint, len: number): Promise<number> {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(dst, 0);
  b.writeBigUInt64LE(src, 8);
  b.writeBigUInt64LE(BigInt(len), 16);
  b.writeBigInt64LE(NOT_WRITTEN, 32);
  const r = await sysAsync(NR.ioctl, uffd, UFFDIO_COPY, addr(b));
  const copied = b.readBigInt64LE(32);
  if (r === 0) return Number(copied);
  if (copied === NOT_WRITTEN) return uffdCopyFrom(uffd, dst, src, len);
  return Number(copied);
}

/** UFFDIO_ZEROPAGE: map the zero page over [dst, dst+len); returns bytes done or -errno as uffdCopy. */
export function uffdZeropage(uffd: number, dst: bigint, len: number): number {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(dst, 0);
  b.writeBigUInt64LE(BigInt(len), 8);
  const r = ioctlTry(uffd, UFFDIO_ZEROPAGE, b);
  const done = Number(b.readBigInt64LE(24));
  if (r < 0) return done > 0 ? done : r;
  return done;
}

/** poll(2) over several fds at once: the revents of each (0 for none), all 0 on timeout. */
export function pollFds(fds: readonly number[], events: number, timeoutMs: number): number[] {
  const pfd = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    pfd.writeInt32LE(fd, i * 8);
    pfd.writeInt16LE(events, i * 8 + 4);
  });
  const r = sysTry(NR.poll, addr(pfd), fds.length, Math.max(0, Math.floor(timeoutMs)));
  if (r === -4 || r === 0) return fds.map(() => 0);
  if (r < 0) throw new SyscallError('poll', -r);
  return fds.map((_, i) => pfd.readUInt16LE(i * 8 + 6));
}

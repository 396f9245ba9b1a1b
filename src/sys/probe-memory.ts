/**
 * Memory-tracking probes for `criu-ts check` (sys/probe.ts): userfaultfd and
 * its write-protect modes, PAGEMAP_SCAN, soft-dirty bits. Each asks the
 * kernel on memory of our own and changes nothing else.
 */
import { openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { EINVAL } from './errno.js';
import { O_CLOEXEC, O_NONBLOCK } from './fcntl.js';
import { ioctlTry, closeQuiet } from './process.js';
import { processVmWritev } from './memory.js';
import * as uffd from './uffd.js';
import { yes, no, errnoReason, type ProbeResult } from './probe-result.js';

/** userfaultfd + UFFDIO_API handshake; returns the kernel's feature bits (null when unavailable). */
export function uffdFeatures(): { features: bigint } | { error: string } {
  const fd = sysTry(NR.userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return { error: errnoReason('userfaultfd', fd) };
  try {
    const api = Buffer.alloc(24); // struct uffdio_api { api, features, ioctls }
    api.writeBigUInt64LE(0xaan, 0);
    const r = ioctlTry(fd, 0xc018aa3f, api); // UFFDIO_API
    if (r < 0) return { error: errnoReason('UFFDIO_API', r) };
    return { features: api.readBigUInt64LE(8) };
  } finally {
    closeQuiet(fd);
  }
}

/** PAGEMAP_SCAN (6.7+): a wrong struct size gives EINVAL when the ioctl exists, ENOTTY when not. */
export function probePagemapScan(): ProbeResult {
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const r = ioctlTry(fd, 0xc0606610, Buffer.alloc(96)); // _IOWR('f', 16, struct pm_scan_arg), size field 0
    if (r === -EINVAL) return yes;
    return no(errnoReason('PAGEMAP_SCAN', r));
  } finally {
    closeSync(fd);
  }
}

/** PAGEMAP_SCAN reports guard regions (MADV_GUARD_INSTALL): PAGE_IS_GUARD is a category it knows. */
export function probePagemapScanGuard(): ProbeResult {
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const arg = Buffer.alloc(96);
    arg.writeBigUInt64LE(96n, 0); // size
    arg.writeBigUInt64LE(0x10000n, 16); // start
    arg.writeBigUInt64LE(0x11000n, 24); // end (no vector: only walk_end comes back)
    arg.writeBigUInt64LE(BigInt(uffd.PAGE_IS_GUARD), 88); // return_mask
    const r = ioctlTry(fd, uffd.PAGEMAP_SCAN, arg);
    return r >= 0 ? yes : no(errnoReason('PAGEMAP_SCAN with PAGE_IS_GUARD', r));
  } finally {
    closeSync(fd);
  }
}

/**
 * Dirty tracking without soft-dirty, tried for real on a page of our own:
 * an async write-protect userfaultfd over a fresh mapping, a write, then
 * PAGEMAP_SCAN must report exactly that page as written (and re-protect it).
 */
export function probeUffdWpTracking(): ProbeResult {
  const PAGE = 4096;
  const len = 4 * PAGE;
  const fd = sysTry(NR.userfaultfd, O_CLOEXEC | O_NONBLOCK | uffd.UFFD_USER_MODE_ONLY);
  if (fd < 0) return no(errnoReason('userfaultfd', fd));
  let map = -1n;
  let pm = -1;
  try {
    const api = uffd.uffdioApi(uffd.UFFD_FEATURE_WP_ASYNC);
    let r = ioctlTry(fd, uffd.UFFDIO_API, api);
    if (r < 0) return no(errnoReason('UFFDIO_API(WP_ASYNC)', r));
    const m = sysTry(NR.mmap, 0, len, 3, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
    if (m < 0 && m > -4096) return no(errnoReason('mmap', m));
    map = BigInt(m);
    r = ioctlTry(fd, uffd.UFFDIO_REGISTER, uffd.uffdioRegister(map, BigInt(len), uffd.UFFDIO_REGISTER_MODE_WP));
    if (r < 0) return no(errnoReason('UFFDIO_REGISTER(WP)', r));
    r = ioctlTry(fd, uffd.UFFDIO_WRITEPROTECT, uffd.uffdioWriteprotect(map, BigInt(len), uffd.UFFDIO_WRITEPROTECT_MODE_WP));
    if (r < 0) return no(errnoReason('UFFDIO_WRITEPROTECT', r));
    processVmWritev(process.pid, Buffer.from([7]), 0, [{ addr: map + BigInt(2 * PAGE), len: 1 }]);
    pm = openSync('/proc/self/pagemap', 'r');
    const q = { flags: uffd.PM_SCAN_WP_MATCHING | uffd.PM_SCAN_CHECK_WPASYNC, mask: uffd.PAGE_IS_WRITTEN, anyOf: 0, report: uffd.PAGE_IS_WRITTEN };
    let written;
    try {
      written = uffd.pagemapScan(pm, map, map + BigInt(len), q);
    } catch (e) {
      return no((e as Error).message);
    }
    const again = uffd.pagemapScan(pm, map, map + BigInt(len), q);
    const w = written[0];
    if (written.length !== 1 || !w || w.start !== map + BigInt(2 * PAGE) || w.end !== map + BigInt(3 * PAGE) || again.length !== 0) {
      return no('PAGEMAP_SCAN did not report exactly the written page');
    }
    return yes;
  } finally {
    if (pm >= 0) closeSync(pm);
    if (map >= 0n) sysTry(NR.munmap, map, len);
    closeQuiet(fd);
  }
}

/** Soft-dirty: clear our own soft-dirty bits, write a page, and look for pagemap bit 55 on it. */
export function probeSoftDirty(): ProbeResult {
  try {
    writeFileSync('/proc/self/clear_refs', '4');
  } catch (e) {
    return no(`clear_refs: ${(e as Error).message}`);
  }
  const buf = Buffer.alloc(3 * 4096);
  buf.fill(1);
  const page = (addr(buf) + 4095n) / 4096n;
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const entry = Buffer.alloc(8);
    readSync(fd, entry, 0, 8, Number(page * 8n));
    buf.fill(2); // keep buf alive and written across the read
    if ((entry.readBigUInt64LE(0) >> 55n) & 1n) return yes;
    return no('pagemap has no soft-dirty bit (kernel built without CONFIG_MEM_SOFT_DIRTY)');
  } finally {
    closeSync(fd);
  }
}

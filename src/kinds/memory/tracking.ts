/**
 * Memory tracking between pre-dumps without soft-dirty: an asynchronous
 * write-protect userfaultfd living inside each task (the "tracker").
 *
 * Kernel objects: a userfaultfd created in the task by injected syscalls
 * (userfaultfd(O_CLOEXEC|O_NONBLOCK|UFFD_USER_MODE_ONLY), UFFDIO_API with
 * UFFD_FEATURE_WP_ASYNC [| WP_UNPOPULATED], UFFDIO_REGISTER(MODE_WP) and
 * UFFDIO_WRITEPROTECT over the private VMAs). In async mode a write to a
 * protected page never waits for anybody: the kernel drops the protection
 * of that page and goes on, so the page reads as "written" to PAGEMAP_SCAN
 * until it is protected again. PAGEMAP_SCAN (from our side, on
 * /proc/PID/pagemap) reports the written runs and re-protects them in the
 * same walk (PM_SCAN_WP_MATCHING); PM_SCAN_CHECK_WPASYNC makes it fail with
 * EPERM over any range that is not registered (a VMA mapped, mremapped or
 * inherited through fork since the last pre-dump): such VMAs are dumped whole.
 *
 * Where it lives between pre-dumps: moved (dup3) to a high fd number,
 * min(RLIMIT_NOFILE soft, 1024) - 1 or the nearest free fd below it. It is
 * close-on-exec (an exec drops the old address space and the tracker with
 * it). Each pre-dump records pid → {fd, inode} in criu-ts-track.json in its
 * images dir; the next pre-dump or dump uses only a tracker that matches the
 * parent's record (same fd, same anon inode: every userfaultfd has its own).
 * Trackers that look like ours but are not in the record (a copy inherited
 * by a forked child, or one left by a criu-ts that died) are closed.
 *
 * Closing the last reference to the tracker unregisters every VMA and
 * clears all of its write-protect bits (measured on 6.18): the dump closes
 * it in every task once the pages are read, and a failed pre-dump closes the
 * ones it made. If criu-ts dies between pre-dumps the tracker stays: every
 * page then costs one minor fault on its first write (resolved by the
 * kernel, about 1 µs), then the task writes at full speed.
 *
 * Known limits: a task with a userfaultfd of its own cannot be dumped (the
 * fd kinds refuse it); VMAs the kernel refuses to register (EBUSY: another
 * userfaultfd) are dumped whole every time; shared memory is never tracked.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { listFds, readFdLink, parseFdinfo, parseLimits } from '../../proc/index.js';
import { NR, isSyscallError, pagemapScan, PAGE_IS_WRITTEN, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_FILE, PM_SCAN_WP_MATCHING, PM_SCAN_CHECK_WPASYNC,
  UFFD_USER_MODE_ONLY, UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_UNPOPULATED, UFFDIO_API, UFFDIO_REGISTER, UFFDIO_WRITEPROTECT,
  UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP, uffdioApi, uffdioRegister, uffdioWriteprotect, replaceFile, type PageRegion, type PagemapScanQuery } from '../../sys/index.js';
import type { Tracee } from '../../infect/tracee.js';
import { traceeObserver } from '../../infect/observer.js';
import { CriuTsError } from '../../errors.js';
import { logger } from '../../log.js';
import { O_NONBLOCK, O_CLOEXEC } from '../../sys/fcntl.js';
import { EPERM } from '../../sys/errno.js';
import type { Range } from './ranges.js';

const log = logger('mem');

export const TRACK_RECORD = 'criu-ts-track.json';
const UFFD_LINK = 'anon_inode:[userfaultfd]';

export interface Tracker {
  fd: number;
  ino: bigint;
  /**
   * Pages went to a page server (no pagemap image here): the addresses
   * that dump's pagemap covered, what a later dump may mark PE_PARENT.
   */
  covered?: { start: bigint; end: bigint }[];
}

type RecordDoc = { tasks?: Record<string, { fd: number; ino: string; covered?: [string, string][] }> };

/** pid → tracker, as recorded by the pre-dump in `dir` (empty when there is none). */
export function readTrackRecord(dir: string): Map<number, Tracker> {
  const out = new Map<number, Tracker>();
  let text: string;
  try {
    text = readFileSync(join(dir, TRACK_RECORD), 'utf8');
  } catch {
    return out;
  }
  try {
    const doc = JSON.parse(text) as RecordDoc;
    for (const [pid, t] of Object.entries(doc.tasks ?? {})) {
      const tr: Tracker = { fd: t.fd, ino: BigInt(t.ino) };
      if (t.covered) tr.covered = t.covered.map(([a, b]) => ({ start: BigInt(a), end: BigInt(b) }));
      out.set(Number(pid), tr);
    }
  } catch (e) {
    throw new CriuTsError('EIMAGE', `${join(dir, TRACK_RECORD)}: not a criu-ts tracking record`, { dir }, e);
  }
  return out;
}

export function writeTrackRecord(dir: string, trackers: Map<number, Tracker>): void {
  const tasks: NonNullable<RecordDoc['tasks']> = {};
  for (const [pid, t] of trackers) {
    tasks[String(pid)] = {
      fd: t.fd, ino: t.ino.toString(),
      ...(t.covered ? { covered: t.covered.map((r): [string, string] => [`0x${r.start.toString(16)}`, `0x${r.end.toString(16)}`]) } : {}),
    };
  }
  // Not through writeFileNoFollow: a record is no image and is not listed in criu-ts-checksums (the next dump deletes it).
  replaceFile(join(dir, TRACK_RECORD), Buffer.from(JSON.stringify({ version: 1, tasks }, null, 1) + '\n'));
}

/** Userfaultfds in the task that have our signature: async write-protect, O_NONBLOCK|O_CLOEXEC. */
export function findTrackers(pid: number): Tracker[] {
  const out: Tracker[] = [];
  for (const fd of listFds(pid)) {
    let link: string;
    try {
      link = readFdLink(pid, fd);
    } catch {
      continue;
    }
    if (link !== UFFD_LINK) continue;
    const info = parseFdinfo(pid, fd);
    const features = BigInt('0x' + (info.raw['API']?.split(':')[1] ?? '0'));
    const flags = O_NONBLOCK | O_CLOEXEC;
    if ((features & UFFD_FEATURE_WP_ASYNC) !== 0n && (info.flags & flags) === flags) out.push({ fd, ino: info.ino });
  }
  return out;
}

/** The inode behind fd `fd` of `pid` (every userfaultfd has an anon inode of its own). */
function inodeOf(pid: number, fd: number): bigint {
  return BigInt(statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino);
}

function highFd(pid: number): number {
  const soft = parseLimits(pid)[7]?.soft ?? 1024n;
  const used = new Set(listFds(pid));
  let fd = Number(soft < 1024n ? soft : 1024n) - 1;
  while (fd > 2 && used.has(fd)) fd--;
  if (fd <= 2) throw new CriuTsError('EDUMP', `task ${pid}: no free fd for the memory tracker`, { pid });
  return fd;
}

/** The inodes of every userfaultfd the task holds. */
function userfaultfdInodes(pid: number): bigint[] {
  const out: bigint[] = [];
  for (const fd of listFds(pid)) {
    try {
      if (readFdLink(pid, fd) === UFFD_LINK) out.push(inodeOf(pid, fd));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * Make a tracker in the task (main thread `t`, scratch mapped) at a high
 * fd. The guardian is told first (infect/guardian.ts): an injected call
 * whose registers are set runs even if criu-ts dies right then, so a
 * userfaultfd may appear that we never saw; if criu-ts dies, the guardian
 * closes every one the task did not hold before.
 */
export function createTracker(t: Tracee, pid: number): Tracker {
  traceeObserver()?.trackerMaking(pid, userfaultfdInodes(pid));
  const low = Number(t.syscall('userfaultfd', NR.userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  let fd = low;
  try {
    // WP_UNPOPULATED also protects pages not faulted in yet, so a first write
    // there is seen like any other; fall back without it on older kernels.
    let api = t.putScratch(uffdioApi(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED));
    if (t.syscallRaw(NR.ioctl, low, UFFDIO_API, api) < 0n) {
      // UFFDIO_API may be called once per fd: start over with a fresh one.
      t.syscall('close', NR.close, low);
      fd = Number(t.syscall('userfaultfd', NR.userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
      api = t.putScratch(uffdioApi(UFFD_FEATURE_WP_ASYNC));
      t.syscall('ioctl(UFFDIO_API)', NR.ioctl, fd, UFFDIO_API, api);
    }
    const want = highFd(pid);
    if (want !== fd) {
      t.syscall('dup3', NR.dup3, fd, want, O_CLOEXEC);
      t.syscall('close', NR.close, fd);
      fd = want;
    }
    return { fd, ino: inodeOf(pid, fd) };
  } catch (e) {
    t.syscallRaw(NR.close, fd);
    throw e;
  }
}

/**
 * Register and write-protect [start, end) with the tracker. Returns false
 * when the kernel refuses this range (it is then simply not tracked).
 */
export function protectRange(t: Tracee, tracker: Tracker, start: bigint, end: bigint): boolean {
  const reg = t.putScratch(uffdioRegister(start, end - start, UFFDIO_REGISTER_MODE_WP));
  const r = t.syscallRaw(NR.ioctl, tracker.fd, UFFDIO_REGISTER, reg);
  if (r < 0n) {
    log.debug(`task ${t.tid}: 0x${start.toString(16)}-0x${end.toString(16)} not tracked (UFFDIO_REGISTER: errno ${-r})`);
    return false;
  }
  const wp = t.putScratch(uffdioWriteprotect(start, end - start, UFFDIO_WRITEPROTECT_MODE_WP));
  t.syscall('ioctl(UFFDIO_WRITEPROTECT)', NR.ioctl, tracker.fd, UFFDIO_WRITEPROTECT, wp);
  return true;
}

export function closeTracker(t: Tracee, fd: number): void {
  t.syscallRaw(NR.close, fd);
}

/**
 * Runs of [start, end) that must be copied again: written since the last
 * protection, or the shared zero page (never taken from a parent). They are
 * protected again in the same walk. undefined: the range is not tracked.
 */
export function scanWritten(pagemapFd: number, pid: number, start: bigint, end: bigint): { start: bigint; end: bigint }[] | undefined {
  return scanTracked(pagemapFd, pid, start, end, {
    flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
    mask: 0,
    anyOf: PAGE_IS_WRITTEN | PAGE_IS_PFNZERO,
    report: PAGE_IS_WRITTEN | PAGE_IS_PFNZERO,
  });
}

/** PAGEMAP_SCAN with PM_SCAN_CHECK_WPASYNC over [start, end): undefined where the range is not tracked (EPERM). */
function scanTracked(pagemapFd: number, pid: number, start: bigint, end: bigint, q: PagemapScanQuery): PageRegion[] | undefined {
  try {
    return pagemapScan(pagemapFd, start, end, q, pid);
  } catch (e) {
    if (isSyscallError(e, EPERM)) return undefined;
    throw e;
  }
}

/**
 * A dump that ends the tracking (the final dump of an iteration, or one
 * that closes the tracker) asks both questions of an anonymous private
 * VMA in one walk of its page tables: which pages were written since the
 * last protection (or hold the shared zero page) and which hold data
 * (present, and swapped when `withSwap`). Nothing is protected again: the
 * tracker is closed or killed with the task after this dump, and a run
 * that fails closes it too (incremental.ts abort), so no later dump trusts
 * what it would have protected. Private file mappings keep the two scans
 * (their data scan leaves file pages out, which a shared walk cannot).
 * A 1 GiB VMA's walk is 1.2-2 ms on the benchmark VM; the final dump of an
 * iteration made two of them while the tree was frozen. undefined: the
 * range is not tracked (EPERM, as scanWritten).
 */
export function scanWrittenAndData(pagemapFd: number, pid: number, start: bigint, end: bigint, withSwap: boolean): { written: Range[]; data: Range[] } | undefined {
  const dataBits = PAGE_IS_PRESENT | (withSwap ? PAGE_IS_SWAPPED : 0);
  const writtenBits = PAGE_IS_WRITTEN | PAGE_IS_PFNZERO;
  const regions = scanTracked(pagemapFd, pid, start, end, {
    flags: PM_SCAN_CHECK_WPASYNC,
    mask: 0,
    anyOf: writtenBits | dataBits,
    report: writtenBits | dataBits,
  });
  if (regions === undefined) return undefined;
  return { written: runsWith(regions, writtenBits), data: runsWith(regions, dataBits) };
}

/** The regions (sorted) that have any of `bits`, neighbours joined. */
function runsWith(regions: readonly PageRegion[], bits: number): Range[] {
  const out: Range[] = [];
  for (const r of regions) {
    if ((r.categories & bits) === 0) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.end === r.start) last.end = r.end;
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/**
 * Runs of [start, end) that hold data: present pages, and swapped ones when
 * `withSwap` (a write-protect marker on a never-touched page reads as
 * swapped too: only VMAs with real swap ask for them); without file pages
 * when `anonOnly` (private file mappings: only their copied-on-write pages).
 * One ioctl answers with runs instead of one pagemap word per page.
 */
export function scanData(pagemapFd: number, pid: number, start: bigint, end: bigint, anonOnly: boolean, withSwap: boolean): { start: bigint; end: bigint }[] {
  return pagemapScan(pagemapFd, start, end, {
    flags: 0,
    mask: anonOnly ? PAGE_IS_FILE : 0,
    inverted: anonOnly ? PAGE_IS_FILE : 0,
    anyOf: PAGE_IS_PRESENT | (withSwap ? PAGE_IS_SWAPPED : 0),
    report: PAGE_IS_PRESENT | (withSwap ? PAGE_IS_SWAPPED : 0),
  }, pid);
}

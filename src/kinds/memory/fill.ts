/**
 * Filling a restored task's memory from pages images without a round trip
 * through us: injected preadv calls on the images, which criu-ts opens and
 * hands to the task (in a mount namespace of its own the images dir may
 * not be there), the kernel copying file to memory. A small fill is
 * written from our side instead (writeSmallFill). Pages a pre-dump chain left in parent
 * images are read from there (parent-images.ts).
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { AT_FDCWD, EINVAL, MADV_POPULATE_WRITE, NR, PAGE_SIZE, ProcMem, processVmWritev, type RemoteRange } from '../../sys/index.js';
import { inOwnNs, readRoot } from '../../proc/index.js';
import { installFd } from '../install-fd.js';
import { checkBeside } from '../../images/index.js';
import { CriuTsError } from '../../errors.js';
import { RemoteSyscallError } from '../../infect/tracee.js';
import { logger } from '../../log.js';
import type { PagemapEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { isParentEntry, isServedEntry, type ParentChain, type Segment } from './parent-images.js';
import { O_CLOEXEC } from '../../sys/fcntl.js';

const IOV_PER_CALL = 1024;

/**
 * A stretch of memory worth a call of its own to populate before the
 * preadv: each page the preadv's copy meets unmapped costs a fault (an
 * exception, dear in a VM: a 1 GiB fill took twice the task's CPU so), a
 * call costs a round trip through ptrace (docs/performance.md, "Restore,
 * session 11").
 */
const POPULATE_MIN = 64n * BigInt(PAGE_SIZE);

const log = logger('mem');

/**
 * Bytes of a pages file between two segments of one batch that no task
 * page takes (the vDSO's pages, which the running kernel's vDSO replaces)
 * are read into the scratch area, up to this many: one preadv instead of
 * two, one round trip fewer per process.
 */
const SINK_MAX = 32n * 1024n;
/** The vaddr of such a segment (no page is at a negative address). */
const SINK = -1n;

/** The path of a segment whose pages no image holds: a `dump --lazy-pages` serves them (isServedEntry). */
export const SERVED = '';

/**
 * Where each page of a pagemap is read from: its pages file, back to back,
 * or for entries marked PE_PARENT the parent images (`chain`), wherever the
 * chain has them; for pages a lazy dump's page server holds, nowhere here
 * (path SERVED).
 */
export function pageSegments(
  chain: ParentChain, name: string, pagesPath: string, pagemap: PagemapEntry[], skip: (e: PagemapEntry) => boolean = () => false,
): { segs: Segment[]; pages: number } {
  const segs: Segment[] = [];
  let fileOff = 0n;
  let pages = 0;
  for (const e of pagemap) {
    const bytes = nrPages(e) * BigInt(PAGE_SIZE);
    if (isParentEntry(e)) {
      if (!skip(e)) segs.push(...chain.locate(name, e.vaddr, bytes));
    } else if (isServedEntry(e)) {
      if (!skip(e)) segs.push({ path: SERVED, off: 0n, vaddr: e.vaddr, len: bytes });
    } else {
      if (!skip(e)) segs.push({ path: pagesPath, off: fileOff, vaddr: e.vaddr, len: bytes });
      fileOff += bytes;
    }
    if (!skip(e)) pages += Number(nrPages(e));
  }
  return { segs, pages };
}

/**
 * Inject preadv calls reading pages images straight into the task's
 * memory. Segments that follow each other in one file go in one call, up
 * to IOV_PER_CALL of them. `base` is added to each vaddr (shared memory:
 * offsets).
 */
export function fillSegments(t: RestoreTaskHandle, segs: readonly Segment[], base: bigint, unprotect?: Unprotect): void {
  if (segs.length === 0) return;
  if (writeSmallFill(t, segs, base, unprotect)) return;
  const fds = new Map<string, number>();
  const refused = { einval: false };
  // A batch: segments of one file that follow each other in it, one preadv.
  let batch: Segment[] = [];
  const flush = (): void => {
    const first = batch[0];
    if (!first) return;
    const pfd = fds.get(first.path) as number;
    const iov = Buffer.alloc(batch.length * 16);
    let want = 0n;
    let sinkLen = 0n;
    for (const sg of batch) if (sg.vaddr === SINK && sg.len > sinkLen) sinkLen = sg.len;
    // Overwritten by later scratch use, which is fine: nobody reads these bytes.
    const sink = sinkLen > 0n ? t.putBytes(Buffer.alloc(Number(sinkLen))) : 0n;
    batch.forEach((sg, j) => {
      iov.writeBigUInt64LE(sg.vaddr === SINK ? sink : sg.vaddr + base, j * 16);
      iov.writeBigUInt64LE(sg.len, j * 16 + 8);
      want += sg.len;
    });
    populate(t, batch, base, refused);
    let done = 0n;
    while (done < want) {
      // Re-describe what is left after a short read (preadv moves at most ~2 GiB per call).
      const rest = remainingIov(iov, done);
      const addr = t.putBytes(rest.buf);
      // While the task reads these bytes, we check the blocks they lie in (a pages file checked beside the fill; else nothing).
      const from = first.off + done;
      const got = t.tracee.syscallBeside('preadv', NR.preadv, [pfd, addr, rest.count, from, 0], (done) => checkBeside(first.path, from, first.off + want, done));
      if (got === 0n) throw new CriuTsError('EIMAGE', `${first.path}: ends before the pagemap says`, { path: first.path });
      done += got;
    }
    batch = [];
  };
  try {
    for (const sg of segs) {
      if (sg.path === SERVED) {
        throw new CriuTsError('EIMAGE', `pages at 0x${sg.vaddr.toString(16)} of task ${t.pid} are in no image: a dump --lazy-pages served them from the dumped tasks; restore such images with --lazy-pages and a \`lazy-pages --page-server\` daemon`, { pid: t.pid });
      }
      if (!fds.has(sg.path)) {
        flush();
        fds.set(sg.path, openImageIn(t, sg.path));
      }
      const last = batch[batch.length - 1];
      if (last) {
        const gap = sg.off - (last.off + last.len);
        if (last.path === sg.path && gap > 0n && gap <= SINK_MAX && batch.length + 2 <= IOV_PER_CALL) {
          batch.push({ path: sg.path, off: last.off + last.len, vaddr: SINK, len: gap });
        } else if (last.path !== sg.path || gap !== 0n || batch.length === IOV_PER_CALL) {
          flush();
        }
      }
      batch.push(sg);
    }
    flush();
  } finally {
    for (const fd of fds.values()) t.syscall('close', NR.close, fd);
  }
}

/**
 * A fill of at most this many bytes is read by us and written into the
 * task (process_vm_writev; /proc/PID/mem where that is refused), with no
 * call injected: the open of the pages file in the task, its preadv
 * calls and its close are three to four round trips through ptrace, each
 * two scheduler hops of the task, dearer than copying a few pages twice
 * (a lazy restore's eager pages: the rseq areas', the libraries' written
 * pages, tens of KiB).
 */
const OWN_WRITE_MAX = 256n * 1024n;

/**
 * Whether fillSegments writes `segs` from our side (OWN_WRITE_MAX), not
 * through calls in the task: then a read-only VMA among them may be mapped
 * with its final protection (see writeRanges).
 */
export function filledFromOurSide(segs: readonly Segment[]): boolean {
  let total = 0n;
  for (const sg of segs) {
    if (sg.path === SERVED) return false; // refused with its message by the preadv path
    total += sg.len;
  }
  return total <= OWN_WRITE_MAX;
}

/** Make the VMA at this address writable (an injected mprotect) and say so; false if it is none of those mapped read-only to be filled. */
export type Unprotect = (addr: bigint) => boolean;

/**
 * Fill small `segs` from our side (filledFromOurSide): false, with nothing
 * done, when they are more. Their blocks of a pages file checked beside
 * the fill are checked first (no call to check beside).
 */
function writeSmallFill(t: RestoreTaskHandle, segs: readonly Segment[], base: bigint, unprotect?: Unprotect): boolean {
  if (!filledFromOurSide(segs)) return false;
  const total = segs.reduce((n, sg) => n + sg.len, 0n);
  const buf = Buffer.allocUnsafe(Number(total));
  const ranges: { addr: bigint; len: number }[] = [];
  const ours = new Map<string, number>();
  try {
    let at = 0;
    for (const sg of segs) {
      let fd = ours.get(sg.path);
      if (fd === undefined) {
        fd = openImage(sg.path);
        ours.set(sg.path, fd);
      }
      checkBeside(sg.path, sg.off, sg.off + sg.len);
      const len = Number(sg.len);
      for (let got = 0; got < len;) {
        const n = readSync(fd, buf, at + got, len - got, sg.off + BigInt(got));
        if (n <= 0) throw new CriuTsError('EIMAGE', `${sg.path}: ends before the pagemap says`, { path: sg.path });
        got += n;
      }
      ranges.push({ addr: sg.vaddr + base, len });
      at += len;
    }
  } finally {
    for (const fd of ours.values()) closeSync(fd);
  }
  writeRanges(t.pid, buf, ranges, unprotect);
  return true;
}

/**
 * Write `ranges` (back to back in `buf`) into the task: process_vm_writev
 * for as many as it takes at once; the rest of one it refuses goes through
 * /proc/PID/mem, which writes a read-only private page as a tracer may
 * (FOLL_FORCE): a VMA mapped with its final protection (a library's relro,
 * restoreMemory) needs no mprotect to that protection after the fill, a
 * round trip through ptrace. Where that write is refused too (a kernel built with
 * PROC_MEM_NO_FORCE), `unprotect` makes the VMA writable first.
 */
export function writeRanges(pid: number, buf: Buffer, ranges: readonly RemoteRange[], unprotect?: Unprotect): void {
  let mem: ProcMem | undefined;
  try {
    let at = 0;
    for (let i = 0; i < ranges.length;) {
      let done = 0;
      try {
        done = processVmWritev(pid, buf, at, ranges.slice(i));
      } catch {
        done = 0;
      }
      for (let r = ranges[i]; r !== undefined && done >= r.len; r = ranges[++i]) {
        done -= r.len;
        at += r.len;
      }
      const r = ranges[i];
      if (r === undefined) break;
      mem ??= new ProcMem(pid, true);
      const rest = buf.subarray(at + done, at + r.len);
      const to = r.addr + BigInt(done);
      if (!writeAllQuiet(mem, to, rest)) {
        if (unprotect?.(to) !== true) throw new CriuTsError('ERESTORE', `task ${pid}: cannot write ${rest.length} bytes at 0x${to.toString(16)} through /proc/${pid}/mem`, { pid: pid });
        if (!writeAllQuiet(mem, to, rest)) throw new CriuTsError('ERESTORE', `task ${pid}: cannot write ${rest.length} bytes at 0x${to.toString(16)}, even made writable`, { pid: pid });
      }
      at += r.len;
      i++;
    }
  } finally {
    mem?.close();
  }
}

/** Write all of `data` at `to` through /proc/PID/mem: false where the kernel refuses (EIO, EFAULT). */
function writeAllQuiet(mem: ProcMem, to: bigint, data: Buffer): boolean {
  try {
    for (let off = 0; off < data.length;) {
      const n = mem.write(to + BigInt(off), data, off);
      if (n <= 0) return false;
      off += n;
    }
    return true;
  } catch {
    return false;
  }
}

/** A pages image opened by us, O_NOFOLLOW: one swapped for a link must not fill the task with another file. */
function openImage(path: string): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | O_CLOEXEC);
  } catch (e) {
    throw new CriuTsError('EIMAGE', `cannot open ${path}: ${(e as Error).message}`, { path }, e);
  }
}

/**
 * Populate the big stretches of a batch (segments that meet in memory
 * count as one), each with the check of its blocks beside it. Only the
 * pages the dump wrote are touched: the fill would allocate just these.
 * A populate that fails changes nothing the preadv would not meet: its
 * error is left for the preadv to report.
 */
function populate(t: RestoreTaskHandle, batch: readonly Segment[], base: bigint, refused: { einval: boolean }): void {
  if (refused.einval) return;
  let i = 0;
  while (i < batch.length) {
    const first = batch[i] as Segment;
    if (first.vaddr === SINK) {
      i++;
      continue;
    }
    let end = first.vaddr + first.len;
    let j = i + 1;
    for (let next = batch[j]; next !== undefined && next.vaddr === end; next = batch[++j]) end += next.len;
    const last = batch[j - 1] as Segment;
    i = j;
    if (end - first.vaddr < POPULATE_MIN) continue;
    const from = first.off;
    const to = last.off + last.len;
    try {
      t.tracee.syscallBeside('madvise', NR.madvise, [first.vaddr + base, end - first.vaddr, MADV_POPULATE_WRITE], (done) => checkBeside(first.path, from, to, done));
    } catch (e) {
      if (!(e instanceof RemoteSyscallError)) throw e;
      log.debug(`task ${t.pid}: populate 0x${(first.vaddr + base).toString(16)}+${end - first.vaddr}: ${e.message}`);
      // EINVAL: a kernel before 5.14 (or a mapping that cannot be populated): not asked again in this fill.
      if (e.errno === EINVAL) {
        refused.einval = true;
        return;
      }
    }
  }
}

/**
 * A pages image, opened by us (openImage) and given to the task: reopened there
 * through /proc/<us>/fd/N, one call, where the task sees our /proc and
 * root as we do (our mount, pid and user namespaces, our root); else handed
 * over through a socket pair (installFd: four calls).
 */
function openImageIn(t: RestoreTaskHandle, path: string): number {
  const ours = openImage(path);
  try {
    if (seesOurProc(t.pid)) {
      const r = t.tracee.syscallRaw(NR.openat, AT_FDCWD, t.putString(`/proc/${process.pid}/fd/${ours}`), constants.O_RDONLY | O_CLOEXEC, 0);
      if (r >= 0n) return Number(r);
    }
    return installFd(t, ours);
  } finally {
    closeSync(ours);
  }
}

/** Whether /proc/<our pid> in task `pid` is ours: same mount, pid and user namespaces (the last for the access check), same root. */
function seesOurProc(pid: number): boolean {
  try {
    return inOwnNs(pid, 'mnt') === true && inOwnNs(pid, 'pid') === true && inOwnNs(pid, 'user') === true && readRoot(pid) === '/';
  } catch {
    return false;
  }
}

function remainingIov(iov: Buffer, skip: bigint): { buf: Buffer; count: number } {
  const out: Buffer[] = [];
  let s = skip;
  for (let j = 0; j < iov.length; j += 16) {
    const a = iov.readBigUInt64LE(j);
    const l = iov.readBigUInt64LE(j + 8);
    if (s >= l) {
      s -= l;
      continue;
    }
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(a + s, 0);
    b.writeBigUInt64LE(l - s, 8);
    s = 0n;
    out.push(b);
  }
  return { buf: Buffer.concat(out), count: out.length };
}

export function nrPages(e: PagemapEntry): bigint {
  return e.nr_pages !== undefined && e.nr_pages !== 0n ? e.nr_pages : BigInt(e.compat_nr_pages);
}


/**
 * Lazy restore, the task's side (`restore --lazy-pages`): private
 * anonymous memory is mapped but not filled; a userfaultfd made inside the
 * task by injected syscalls (userfaultfd(2), UFFDIO_API with the
 * non-cooperative events FORK, REMAP, REMOVE and UNMAP, UFFDIO_REGISTER in
 * MISSING mode over each such VMA) is handed to the lazy-pages daemon
 * (restore/lazy-pages.ts), which fills each page on its first touch
 * (UFFDIO_COPY) and pushes the rest in the background.
 *
 * Which VMAs: private anonymous ones (CRIU's rule), not locked (mlock
 * wants its pages now), not growing down (the stack, which the task
 * touches at once), not hugetlb, droppable or an AIO ring's temporary home.
 * Every other mapping is filled by the restore as without lazy pages, and
 * so are the pages the kernel itself writes for a thread before it runs:
 * its rseq area (rseq(2) registration writes the area's cpu fields). Left
 * lazy, that write would fault inside our injected call and wait for the
 * daemon, before the task's first instruction (eagerPages).
 *
 * The uffd is created while the task still has the restore's (root)
 * credentials, without UFFD_USER_MODE_ONLY: faults taken by the kernel on
 * the task's behalf (a read(2) into a lazy buffer) reach the daemon too.
 * The task keeps no copy: ours goes to the daemon, the task's is closed.
 */
import { NR, PAGE_SIZE, UFFDIO_API, UFFDIO_REGISTER, UFFDIO_REGISTER_MODE_MISSING, UFFD_LAZY_FEATURES, uffdioApi, uffdioRegister, pidfdOpen, pidfdGetfd, closeQuiet } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import type { CoreEntry, PagemapEntry, VmaEntry } from '../../images/messages.js';
import type { LazyRange, RestoreTaskHandle } from '../types.js';
import { isParentEntry, isServedEntry, type Segment } from './parent-images.js';
import { nrPages, SERVED } from './fill.js';
import { VMA } from './vma.js';
import { MAP_GROWSDOWN, MAP_LOCKED, MAP_DROPPABLE, MAP_HUGETLB } from '../../sys/mman.js';
import { O_NONBLOCK, O_CLOEXEC } from '../../sys/fcntl.js';
import { merged, subtract, type Range } from './ranges.js';


export function isLazyVma(v: VmaEntry): boolean {
  if ((v.status & VMA.ANON_PRIVATE) === 0) return false;
  const special = VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL | VMA.AREA_AIORING | VMA.AREA_SYSVIPC | VMA.AREA_GUARD | VMA.AREA_SOCKET
    | VMA.AREA_MEMFD | VMA.FILE_PRIVATE | VMA.FILE_SHARED | VMA.ANON_SHARED | VMA.AREA_STACK;
  if ((v.status & special) !== 0) return false;
  return (v.flags & (MAP_GROWSDOWN | MAP_LOCKED | MAP_DROPPABLE | MAP_HUGETLB)) === 0;
}

/**
 * Pages of a process the restore fills itself even where they lie in lazy
 * VMAs: each thread's rseq area, which the kernel writes as the rseq call
 * that registers it runs (and again on every return to user space).
 */
export function eagerPages(cores: readonly CoreEntry[]): Range[] {
  const mask = ~BigInt(PAGE_SIZE - 1);
  const out: Range[] = [];
  for (const c of cores) {
    const r = c.thread_core?.rseq_entry;
    if (!r || r.rseq_abi_pointer === 0n) continue;
    const first = r.rseq_abi_pointer & mask;
    const last = (r.rseq_abi_pointer + BigInt(Math.max(1, r.rseq_abi_size)) - 1n) & mask;
    out.push({ start: first, end: last + BigInt(PAGE_SIZE) });
  }
  return merged(out);
}

/** The address ranges of `vmas` left to the lazy-pages daemon: whole VMAs, joined where adjacent, less the eager pages. */
export function lazyData(vmas: readonly VmaEntry[], eager: readonly Range[]): Range[] {
  return subtract(merged(vmas), eager);
}

/**
 * A task's lazy VMAs as the restore registers them (`lazy`, whole) and as
 * the daemon serves them (`served`: less the eager pages of its threads,
 * `cores`, that the restore can read itself; a page a dump --lazy-pages
 * left to its page server, `segs` path SERVED, only the daemon can ask for).
 */
export function lazyPlan(vmas: readonly VmaEntry[], cores: readonly CoreEntry[], segs: readonly Segment[]): { lazy: Range[]; served: Range[] } {
  const lazy = merged(vmas);
  const eager = lazy.length > 0 ? eagerPages(cores) : [];
  if (eager.length === 0) return { lazy, served: lazy };
  const remote = merged(segs.filter((sg) => sg.path === SERVED).map((sg) => ({ start: sg.vaddr, end: sg.vaddr + sg.len })));
  return { lazy, served: lazyData(vmas, subtract(eager, remote)) };
}

/**
 * The byte ranges of a task's pages file (its own pagemap's data, in
 * order) that fall in its lazy ranges (lazy VMAs less the eager pages of
 * its threads, `cores`): a lazy restore leaves them to the lazy-pages
 * daemon, which checks their block digests as it serves them
 * (restore/images.ts checks the rest before anything is created).
 */
export function lazyFileRanges(pagemap: readonly PagemapEntry[], vmas: readonly VmaEntry[], cores: readonly CoreEntry[] = []): LazyRange[] {
  const lazy = lazyData(vmas.filter(isLazyVma), eagerPages(cores));
  const out: LazyRange[] = [];
  let off = 0n;
  let j = 0; // pagemap entries come in address order: lazy VMAs are walked once
  for (const e of pagemap) {
    if (isParentEntry(e) || isServedEntry(e)) continue;
    const len = nrPages(e) * BigInt(PAGE_SIZE);
    while (j < lazy.length && (lazy[j] as Range).end <= e.vaddr) j++;
    for (let k = j; k < lazy.length; k++) {
      const v = lazy[k] as Range;
      if (v.start >= e.vaddr + len) break;
      const a = v.start > e.vaddr ? v.start : e.vaddr;
      const b = v.end < e.vaddr + len ? v.end : e.vaddr + len;
      const start = off + (a - e.vaddr);
      const last = out[out.length - 1];
      if (last && last.end === start) last.end = start + (b - a);
      else out.push({ start, end: start + (b - a) });
    }
    off += len;
  }
  return out;
}

/** Split segments into those outside every lazy range (filled now) and drop the parts inside (the daemon's). */
export function withoutLazy(segs: readonly Segment[], lazy: readonly LazyRange[]): Segment[] {
  if (lazy.length === 0) return [...segs];
  const out: Segment[] = [];
  for (const sg of segs) {
    let at = sg.vaddr;
    const end = sg.vaddr + sg.len;
    for (const r of lazy) {
      if (r.end <= at || r.start >= end) continue;
      if (r.start > at) out.push({ ...sg, off: sg.off + (at - sg.vaddr), vaddr: at, len: r.start - at });
      at = r.end < end ? r.end : end;
      if (at >= end) break;
    }
    if (at < end) out.push({ ...sg, off: sg.off + (at - sg.vaddr), vaddr: at, len: end - at });
  }
  return out;
}

/**
 * Lazy ranges joined where nothing lies between them: UFFDIO_REGISTER
 * walks the VMAs of its range and passes over holes, so one call covers
 * them all (a task with thousands of small mappings apart: thousands of
 * injected calls before its first instruction, now one). `occupied`: every
 * mapping the task has now (its dumped VMAs and our scratch area); a gap
 * that meets one keeps the ranges apart (a file mapping there would fail
 * the call, an anonymous one would be registered with them).
 */
export function registrationSpans(lazy: readonly Range[], occupied: readonly Range[]): { span: Range; ranges: Range[] }[] {
  const taken = merged(occupied);
  const out: { span: Range; ranges: Range[] }[] = [];
  let j = 0;
  for (const r of lazy) {
    const last = out[out.length - 1];
    if (last !== undefined) {
      const gap = { start: last.span.end, end: r.start };
      while (j < taken.length && (taken[j] as Range).end <= gap.start) j++;
      const t = taken[j];
      if (t === undefined || t.start >= gap.end) {
        last.span.end = r.end;
        last.ranges.push(r);
        continue;
      }
    }
    out.push({ span: { ...r }, ranges: [r] });
  }
  return out;
}

/**
 * Make and register the task's userfaultfd over `ranges` (sorted, apart),
 * joined across holes where none of `vmas` (all the task's) nor our scratch
 * area lies (registrationSpans); returns our copy of it. The task's is
 * closed, unless `sweptLater` (restoreFds's sweeps close it with no call of its own).
 */
export function registerLazy(t: RestoreTaskHandle, ranges: readonly LazyRange[], vmas: readonly Range[], sweptLater = false): number {
  const scratch = t.tracee.scratchRange;
  const occupied = scratch ? [...vmas, { start: scratch.addr, end: scratch.addr + BigInt(scratch.size) }] : vmas;
  const fd = Number(t.syscall('userfaultfd', NR.userfaultfd, O_CLOEXEC | O_NONBLOCK));
  let keep = false;
  try {
    const api = t.putBytes(uffdioApi(UFFD_LAZY_FEATURES));
    const r = t.tracee.syscallRaw(NR.ioctl, fd, UFFDIO_API, api);
    if (r < 0n) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: this kernel's userfaultfd lacks the events lazy pages need (FORK, REMAP, REMOVE, UNMAP): errno ${-r}`, { pid: t.pid });
    }
    const register = (g: Range): bigint => t.tracee.syscallRaw(NR.ioctl, fd, UFFDIO_REGISTER, t.putBytes(uffdioRegister(g.start, g.end - g.start, UFFDIO_REGISTER_MODE_MISSING)));
    for (const { span, ranges: rs } of registrationSpans(ranges, occupied)) {
      // A span refused as a whole (a mapping in a gap that we did not know of) goes range by range.
      if (rs.length > 1 && register(span) >= 0n) continue;
      for (const g of rs) t.syscall('ioctl(UFFDIO_REGISTER)', NR.ioctl, fd, UFFDIO_REGISTER, t.putBytes(uffdioRegister(g.start, g.end - g.start, UFFDIO_REGISTER_MODE_MISSING)));
    }
    const pidfd = pidfdOpen(t.pid);
    try {
      const ours = pidfdGetfd(pidfd, fd, t.pid);
      if (sweptLater) keep = true;
      return ours;
    } finally {
      closeQuiet(pidfd);
    }
  } finally {
    if (!keep) t.tracee.syscallRaw(NR.close, fd);
  }
}

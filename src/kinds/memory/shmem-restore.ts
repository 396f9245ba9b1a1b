/**
 * Shared anonymous memory at restore (MAP_SHARED|MAP_ANONYMOUS, also
 * hugetlb). Kernel object: one shmem (or hugetlbfs) inode that several
 * VMAs, in one task or many, map windows of (pgoff, length). Image:
 * ANON_SHARED VMAs with shmid = the inode, and the object's pages once in
 * pagemap-shmem-<shmid>.img, offsets into the object.
 *
 * The first task to map an object creates it whole: as big as the largest
 * window any task maps (and any saved page), every saved page filled in a
 * temporary mapping of all of it, then its own window moved into place
 * and the rest unmapped. Every later VMA maps that same object through the
 * creator's /proc/PID/map_files entry, so all share it as before.
 *
 * An fd on such an object (opened through /proc/PID/map_files, saved as a
 * memfd named "/dev/zero" as CRIU does) is opened on that very object
 * too: through the mapping that made it, or, if the fd comes first (a group
 * file opened before the task that maps it is forked, or no task maps it
 * any more), by making the object, keeping it through the fd alone, and
 * letting later mappings find it by its inode.
 */
import { readdirSync, statSync, ftruncateSync, fstatSync, openSync, closeSync } from 'node:fs';
import { NR } from '../../sys/index.js';
import type { MmEntry, PagemapEntry, VmaEntry } from '../../images/messages.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { VMA } from './vma.js';
import { PROT_WRITE, MAP_FIXED, MAP_ANONYMOUS, MAP_SHARED, MAP_NORESERVE, MAP_LOCKED, MAP_HUGETLB, MREMAP_MAYMOVE, MREMAP_FIXED } from '../../sys/mman.js';
import { MAP_HUGE_MASK } from './hugetlb.js';
import { fillSegments, nrPages, pageSegments } from './fill.js';
import { openOursInTask } from '../install-fd.js';
import { parentChainOf, type ParentChain } from './parent-images.js';
import { O_RDWR } from '../../sys/fcntl.js';
import { imageFile, imagePath } from '../../images/index.js';
import { CriuTsError } from '../../errors.js';

const PAGE = 4096n;

/** Where a made object can be opened: a mapping of it, or (made for an fd) any fd or mapping of its inode in that task. */
type Owner = { pid: number; start: bigint; end: bigint } | { pid: number; ino: number };

function ownerPath(o: Owner): string {
  if ('start' in o) return `/proc/${o.pid}/map_files/${o.start.toString(16)}-${o.end.toString(16)}`;
  // The fd it was made for may since have moved to its final number (or, for a mapping's fd, been closed).
  for (const dir of ['fd', 'map_files']) {
    for (const name of readdirSync(`/proc/${o.pid}/${dir}`)) {
      const path = `/proc/${o.pid}/${dir}/${name}`;
      try {
        if (statSync(path).ino === o.ino) return path;
      } catch {
        // closed or unmapped meanwhile
      }
    }
  }
  throw new CriuTsError('ERESTORE', `shared anonymous object (inode ${o.ino}) is no longer open or mapped in task ${o.pid}`, { pid: o.pid, ino: o.ino });
}

/** Objects already re-created (shmid → the creator's window), and each object's size. */
interface ShmemState { made: Map<bigint, Owner>; size: Map<bigint, bigint>; huge: Map<bigint, number> }
const SHMEM = stateKey<ShmemState>('memory:shmem');

function state(ctx: RestoreContext): ShmemState {
  return ctx.state(SHMEM, () => ({ made: new Map(), size: new Map(), huge: new Map() }));
}

/** Before any task is restored: how big each object must be, from every task's windows of it. */
export function planSharedAnon(ctx: RestoreContext, mms: readonly MmEntry[]): void {
  const { size, huge } = state(ctx);
  for (const mm of mms) {
    for (const v of mm.vmas ?? []) {
      if ((v.status & VMA.ANON_SHARED) === 0 || (v.status & VMA.AREA_SYSVIPC) !== 0) continue;
      const end = v.pgoff + (v.end - v.start);
      if (end > (size.get(v.shmid) ?? 0n)) size.set(v.shmid, end);
      huge.set(v.shmid, v.flags & (MAP_HUGETLB | MAP_HUGE_MASK));
    }
  }
}

/** Map a shared anonymous VMA, creating and filling its object if no task has yet. */
export function mapSharedAnon(t: RestoreTaskHandle, v: VmaEntry, ctx: RestoreContext, chain: ParentChain): void {
  const len = v.end - v.start;
  const flags = MAP_FIXED | MAP_SHARED | (v.flags & (MAP_NORESERVE | MAP_LOCKED));
  const st = state(ctx);
  const owner = st.made.get(v.shmid);
  if (owner) {
    // The same object, through the creator's mapping (this task's own, for a second window of it).
    // Opened by us: the task's /proc, if any, is its pid namespace's.
    const fd = openOursInTask(t, ownerPath(owner), O_RDWR);
    t.syscall('mmap(shared)', NR.mmap, v.start, len, v.prot | PROT_WRITE, flags, fd, v.pgoff);
    t.syscall('close', NR.close, fd);
    return;
  }
  const { base, size } = makeObject(t, v.shmid, v.pgoff + len, v.prot | PROT_WRITE, v.flags & MAP_NORESERVE, ctx, chain);
  t.syscall('mremap', NR.mremap, base + v.pgoff, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v.start);
  if (v.pgoff > 0n) t.syscall('munmap', NR.munmap, base, v.pgoff);
  if (v.pgoff + len < size) t.syscall('munmap', NR.munmap, base + v.pgoff + len, size - v.pgoff - len);
  if (v.flags & MAP_LOCKED) t.syscall('mlock', NR.mlock, v.start, len);
  st.made.set(v.shmid, { pid: t.pid, start: v.start, end: v.end });
}

/** The object, whole and filled, in a temporary shared mapping of all of it. */
function makeObject(
  t: RestoreTaskHandle, shmid: bigint, least: bigint, prot: number, noreserve: number, ctx: RestoreContext, chain: ParentChain,
): { base: bigint; size: bigint } {
  const st = state(ctx);
  const pages = objectPages(ctx, shmid);
  const dataEnd = pages.entries.reduce((m, e) => (e.vaddr + nrPages(e) * PAGE > m ? e.vaddr + nrPages(e) * PAGE : m), 0n);
  let size = st.size.get(shmid) ?? 0n;
  if (least > size) size = least;
  if (dataEnd > size) size = dataEnd;
  // hugetlb: only where the object is made (a map_files open is hugetlbfs already).
  const huge = st.huge.get(shmid) ?? 0;
  const base = t.syscall('mmap(shared anon)', NR.mmap, 0, size, prot, MAP_SHARED | MAP_ANONYMOUS | noreserve | huge, -1, 0);
  if (pages.path) fillSegments(t, pageSegments(chain, pages.name, pages.path, pages.entries).segs, base);
  return { base, size };
}

/** Whether the images hold a shared anonymous object `shmid` (some task maps it shared). */
export function isSharedAnonObject(ctx: RestoreContext, shmid: bigint): boolean {
  return state(ctx).size.has(shmid);
}

/**
 * An fd in the task on shared anonymous object `shmid`, opened with
 * `flags`, for a private mapping of it or an fd on it (opened through
 * map_files at dump). If no task made the object yet it is made here,
 * whole (at least `least` bytes), kept by that fd, and later tasks find it
 * by its inode in this task (ownerPath).
 */
export function openSharedAnon(t: RestoreTaskHandle, shmid: bigint, flags: number, ctx: RestoreContext, chain: ParentChain, least = 0n): number {
  const st = state(ctx);
  const owner = st.made.get(shmid);
  if (owner) return openOursInTask(t, ownerPath(owner), flags);
  const { base, size } = makeObject(t, shmid, least, 3 /* RW */, 0, ctx, chain);
  const fd = openOursInTask(t, `/proc/${t.pid}/map_files/${base.toString(16)}-${(base + size).toString(16)}`, flags);
  t.syscall('munmap', NR.munmap, base, size); // the fd keeps the object
  st.made.set(shmid, { pid: t.pid, ino: statSync(`/proc/${t.pid}/fd/${fd}`).ino });
  return fd;
}

/**
 * An fd in the task on shared anonymous object `shmid` for an fd the task
 * had on it (the object itself, not a copy: writes through the fd reach
 * every mapping of it), with the object's dumped size (an fd can truncate
 * or extend it past its mappings).
 */
export function openSharedAnonFd(t: RestoreTaskHandle, shmid: bigint, flags: number, size: bigint, ctx: RestoreContext): number {
  // Made here, it needs a page at least to be mapped while it is filled.
  const least = size > PAGE ? ((size + PAGE - 1n) / PAGE) * PAGE : PAGE;
  const fd = openSharedAnon(t, shmid, flags, ctx, parentChainOf(ctx), least);
  // Through a writable open of our own: the task's fd may be read-only.
  const rw = openSync(`/proc/${t.pid}/fd/${fd}`, 'r+');
  try {
    if (BigInt(fstatSync(rw).size) !== size) ftruncateSync(rw, Number(size));
  } finally {
    closeSync(rw);
  }
  return fd;
}

/** A mapping of object `shmid` later tasks can open it through, if none is known yet (or only its inode, which takes a search). */
export function noteSharedAnonMapping(ctx: RestoreContext, shmid: bigint, pid: number, start: bigint, end: bigint): void {
  const { made } = state(ctx);
  const known = made.get(shmid);
  if (known === undefined || !('start' in known)) made.set(shmid, { pid, start, end });
}

function objectPages(ctx: RestoreContext, shmid: bigint): { name: string; path: string | undefined; entries: PagemapEntry[] } {
  const name = imageFile('SHMEM_PAGEMAP', shmid);
  const img = ctx.image('SHMEM_PAGEMAP', shmid);
  if (!img) return { name, path: undefined, entries: [] }; // no page was ever touched
  const [head, ...entries] = img.entries;
  return { name, path: imagePath(ctx.dir, 'PAGES', head.pages_id), entries };
}

/**
 * Rebuilding a task's address space inside a freshly cloned stub child:
 * unmap everything the stub had except the vDSO/vvar, move those to the
 * dumped addresses (mremap), map every dumped VMA at its address, fill the
 * pages by injecting preadv on the pages image opened inside the task (the
 * kernel copies file to memory once, no round trip through us), then set
 * protections, madvise bits and the mm fields with PR_SET_MM_MAP.
 *
 * A dump without a vDSO (the task unmapped it) restores without one.
 * Known limits: a dump from a kernel whose vDSO/vvar sizes differ is refused. Pages of a pre-dump chain are read from the
 * parent images (parent-images.ts); a missing parent is one EIMAGE error.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseMaps, type MapsEntry } from '../../proc/index.js';
import { NR, PAGE_SIZE, PR, PR_SET_MM } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import type { FdinfoEntry, MmEntry, VmaEntry, PagemapEntry } from '../../images/messages.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { openMemfd } from '../files/memfd.js';
import {
  VMA, PROT_WRITE, MAP_FIXED, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MAP_GROWSDOWN, MAP_NORESERVE, MAP_LOCKED, MAP_DROPPABLE,
} from './vma.js';
import { ParentChain, isParentEntry, type Segment } from './parent-images.js';
import { logger } from '../../log.js';

const log = logger('mem');

const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const AT_FDCWD = -100;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const O_NOFOLLOW = 0o400000;
const RSEQ_FLAG_UNREGISTER = 1;
export const SCRATCH_BYTES = 1 << 20;
const IOV_PER_CALL = 1024;

interface Range { start: bigint; end: bigint }

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

/** A hole of `size` bytes free in both the dumped layout and the stub's. */
export function findHole(vmas: readonly Range[], current: readonly Range[], size: number): bigint {
  const all = [...vmas, ...current];
  for (let a = 0x100000000n; a < 0x7f0000000000n; a += 0x40000000n) {
    const r = { start: a, end: a + BigInt(size) };
    if (!all.some((v) => overlaps(v, r))) return a;
  }
  throw new CriuTsError('ERESTORE', 'no free address range for the restore scratch area', {});
}

const isSpecial = (m: MapsEntry): boolean => m.path === '[vdso]' || m.path === '[vvar]' || m.path === '[vvar_vclock]' || m.path === '[vsyscall]';

/**
 * Step 1: empty the stub child's address space, keep our scratch and the
 * vDSO (where the syscall gadget lives), and put the vDSO/vvar where the
 * dumped task had them. Returns the scratch address.
 */
export function prepareAddressSpace(t: RestoreTaskHandle, mm: MmEntry, rseq: { ptr: bigint; len: number; sig: number } | undefined): bigint {
  const vmas = mm.vmas ?? [];
  const cur = parseMaps(t.pid);
  const scratch = findHole(vmas, cur, SCRATCH_BYTES);
  t.tracee.mapScratch(SCRATCH_BYTES, scratch);
  // The stub's rseq area is about to disappear; a registered rseq pointing at
  // unmapped memory would kill the task on its next return to user mode.
  if (rseq && rseq.ptr !== 0n) t.syscall('rseq(unregister)', NR.rseq, rseq.ptr, rseq.len, RSEQ_FLAG_UNREGISTER, rseq.sig);
  // The stub's mappings go in as few calls as there are runs between the
  // ones we keep (vDSO, vvar, scratch): munmap of a range that spans a hole
  // unmaps what is there and ignores the hole.
  let run: { start: bigint; end: bigint } | undefined;
  const flush = (): void => {
    if (run) t.syscall('munmap', NR.munmap, run.start, run.end - run.start);
    run = undefined;
  };
  for (const m of [...cur].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    if (isSpecial(m) || m.start === scratch) {
      flush();
      continue;
    }
    if (run) run.end = m.end;
    else run = { start: m.start, end: m.end };
  }
  flush();
  moveVdso(t, vmas, cur, scratch);
  return scratch;
}

function moveVdso(t: RestoreTaskHandle, vmas: readonly VmaEntry[], cur: readonly MapsEntry[], scratch: bigint): void {
  const dumpedVdso = vmas.find((v) => (v.status & VMA.AREA_VDSO) !== 0);
  const curVdso = cur.find((m) => m.path === '[vdso]');
  if (!curVdso) throw new CriuTsError('EUNSUPPORTED', 'this kernel gives tasks no vDSO (criu-ts runs its injected syscalls from it)', {});
  const curBlock = cur.filter((m) => m.path === '[vdso]' || m.path === '[vvar]' || m.path === '[vvar_vclock]');
  if (!dumpedVdso) {
    // The task had unmapped its vDSO (or ran without one): ours only carries
    // the syscall gadget until the task's own code is mapped, out of the way
    // of every dumped VMA, and goes once memory is restored (dropStubVdso).
    const lo = curBlock.reduce((a, m) => (m.start < a ? m.start : a), curVdso.start);
    const hi = curBlock.reduce((a, m) => (m.end > a ? m.end : a), curVdso.end);
    const to = findHole(vmas, [...parseMaps(t.pid), { start: scratch, end: scratch + BigInt(SCRATCH_BYTES) }], Number(hi - lo));
    const gadgetOff = t.tracee.gadgetAddr - lo;
    t.syscall('mremap(park vdso)', NR.mremap, lo, hi - lo, hi - lo, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    t.tracee.setGadget(to + gadgetOff);
    return;
  }
  const dumpedBlock = vmas.filter((v) => (v.status & (VMA.AREA_VDSO | VMA.AREA_VVAR)) !== 0);
  const size = (rs: readonly Range[]): bigint => rs.reduce((n, r) => n + (r.end - r.start), 0n);
  const delta = dumpedVdso.start - curVdso.start;
  if (size(curBlock) !== size(dumpedBlock) || dumpedVdso.end - dumpedVdso.start !== curVdso.end - curVdso.start) {
    throw new CriuTsError('EUNSUPPORTED', 'the vDSO/vvar layout of this kernel differs from the dumped one', {});
  }
  if (delta === 0n) return;
  // Park every piece right after the scratch area first, so no move lands on a piece not yet moved.
  const park = scratch + BigInt(SCRATCH_BYTES) + 0x100000n;
  const gadgetOff = t.tracee.gadgetAddr - curVdso.start;
  const parked: { from: bigint; to: bigint; len: bigint }[] = [];
  for (const m of curBlock) {
    const len = m.end - m.start;
    const to = park + (m.start - curVdso.start) + 0x400000n;
    t.syscall('mremap(park)', NR.mremap, m.start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (m.path === '[vdso]') t.tracee.setGadget(to + gadgetOff);
    parked.push({ from: to, to: m.start + delta, len });
  }
  for (const p of parked) {
    t.syscall('mremap(vdso)', NR.mremap, p.from, p.len, p.len, MREMAP_MAYMOVE | MREMAP_FIXED, p.to);
  }
  t.tracee.setGadget(dumpedVdso.start + gadgetOff);
  log.debug(`vdso moved to 0x${dumpedVdso.start.toString(16)}`);
}

/**
 * For images without a vDSO: once the task's own code is mapped, injected
 * syscalls move to a syscall instruction in it, and the stub's vDSO/vvar
 * are unmapped, so the task has none, as when it was dumped.
 */
export function dropStubVdso(t: RestoreTaskHandle, mm: MmEntry): void {
  if ((mm.vmas ?? []).some((v) => (v.status & VMA.AREA_VDSO) !== 0)) return;
  const block = parseMaps(t.pid).filter((m) => m.path === '[vdso]' || m.path === '[vvar]' || m.path === '[vvar_vclock]');
  if (block.length === 0) return;
  t.tracee.moveGadgetOutOf(block);
  for (const m of block) t.syscall('munmap(vdso)', NR.munmap, m.start, m.end - m.start);
}

/**
 * Shared anonymous objects already re-created by a task of this restore
 * (shmid → where that task maps it): later tasks map the same object
 * through /proc/PID/map_files instead of making their own.
 */
const PARENT_CHAIN = stateKey<ParentChain>('memory:parent-chain');
const SHMEM = stateKey<Map<bigint, { pid: number; start: bigint; end: bigint; pgoff: bigint }>>('memory:shmem');

function filePath(ctx: RestoreContext, id: bigint): string {
  const f = ctx.fileById(Number(id));
  const name = f?.reg?.name;
  if (name === undefined) throw new CriuTsError('EIMAGE', `mapping refers to file id ${id}, not in files.img`, { id });
  return name;
}

/** Step 2: map every VMA, fill its pages, then set final protections. */
export function restoreMemory(t: RestoreTaskHandle, mm: MmEntry, pagemap: PagemapEntry[], pagesId: number, ctx: RestoreContext): number {
  // A socket's ring is mapped from the socket itself once the fds exist (restoreSocketMappings).
  const vmas = (mm.vmas ?? []).filter((v) => (v.status & (VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL | VMA.AREA_SOCKET)) === 0);
  const fds = new Map<string, number>();
  const fileFd = (id: bigint, fdflags: number): number => {
    const e = ctx.fileById(Number(id));
    const memfd = e?.memfd;
    const path = memfd ? `memfd:${id}` : filePath(ctx, id);
    const key = `${fdflags}:${path}`;
    let fd = fds.get(key);
    if (fd === undefined) {
      fd = memfd
        ? openMemfd(t, memfd, fdflags, ctx)
        : Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), fdflags | O_CLOEXEC, 0));
      fds.set(key, fd);
    }
    return fd;
  };
  // Only mappings that get pages need to be writable while we fill them; the
  // others (e.g. huge PROT_NONE reservations) are mapped as they were, so no
  // memory is committed for them.
  const filled = vmasWithPages(vmas, pagemap);
  const shmemToFill: VmaEntry[] = [];
  // SysV shm first: an attachment spans its whole segment until the parts the task had unmapped go again.
  attachSysvShm(t, vmas.filter((v) => (v.status & VMA.AREA_SYSVIPC) !== 0));
  for (const v of vmas) {
    const len = v.end - v.start;
    if (v.status & VMA.AREA_SYSVIPC) continue;
    if (v.status & VMA.ANON_SHARED) {
      if (mapSharedAnon(t, v, ctx)) shmemToFill.push(v);
      continue;
    }
    const fill = filled.has(v);
    const prot = fill ? v.prot | PROT_WRITE : v.prot; // writable while we fill; final protection below
    let flags = MAP_FIXED | (v.flags & (MAP_GROWSDOWN | MAP_NORESERVE | MAP_LOCKED));
    let fd = -1;
    let off = 0n;
    if (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) {
      fd = fileFd(v.shmid, v.fdflags ?? O_RDONLY);
      off = v.pgoff;
      flags |= v.status & VMA.FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
    } else {
      // MAP_DROPPABLE is a mapping type of its own, in place of MAP_PRIVATE.
      flags |= (v.flags & MAP_DROPPABLE ? MAP_DROPPABLE : MAP_PRIVATE) | MAP_ANONYMOUS;
    }
    // A shared file mapping must not gain PROT_WRITE on a read-only fd.
    const mapProt = v.status & VMA.FILE_SHARED ? v.prot : prot;
    t.syscall('mmap', NR.mmap, v.start, len, mapProt, flags, fd, off);
  }
  for (const fd of fds.values()) t.syscall('close', NR.close, fd);

  // CRIU writes the vDSO's pages too; the running kernel's vDSO is used instead.
  const special = (mm.vmas ?? []).filter((v) => (v.status & (VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL)) !== 0);
  const inSpecial = (e: PagemapEntry): boolean => special.some((v) => e.vaddr >= v.start && e.vaddr < v.end);
  // Pages a pre-dump chain left in parent images are read from there (one chain walker per restore).
  const chain = ctx.state(PARENT_CHAIN, () => new ParentChain(ctx.dir));
  const pages = fillPages(t, chain, `pagemap-${t.pid}.img`, join(ctx.dir, `pages-${pagesId}.img`), pagemap, 0n, inSpecial);
  for (const v of shmemToFill) fillShmem(t, v, ctx, chain);
  for (const v of vmas) {
    if (filled.has(v) && !(v.status & VMA.FILE_SHARED) && (v.prot & PROT_WRITE) === 0) {
      t.syscall('mprotect', NR.mprotect, v.start, v.end - v.start, v.prot);
    }
    const madv = v.madv ?? 0n;
    for (let a = 0n; a < 64n; a++) {
      if ((madv >> a) & 1n) t.syscall('madvise', NR.madvise, v.start, v.end - v.start, a);
    }
  }
  return pages;
}

/**
 * Map a shared anonymous VMA. The first task to map an object creates it
 * (and fills it: returns true); every later one opens the creator's
 * mapping through /proc/PID/map_files and maps that same object, so
 * writes are seen by all of them as before the dump.
 */
function mapSharedAnon(t: RestoreTaskHandle, v: VmaEntry, ctx: RestoreContext): boolean {
  const len = v.end - v.start;
  const flags = MAP_FIXED | MAP_SHARED | (v.flags & (MAP_NORESERVE | MAP_LOCKED));
  const shmem = ctx.state(SHMEM, () => new Map<bigint, { pid: number; start: bigint; end: bigint; pgoff: bigint }>());
  const owner = shmem.get(v.shmid);
  if (owner && owner.pid !== t.pid) {
    const path = `/proc/${owner.pid}/map_files/${owner.start.toString(16)}-${owner.end.toString(16)}`;
    const fd = Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), 2 /* O_RDWR */ | O_CLOEXEC, 0));
    t.syscall('mmap(shared)', NR.mmap, v.start, len, v.prot, flags, fd, v.pgoff);
    t.syscall('close', NR.close, fd);
    return false;
  }
  if (owner) {
    // A second mapping of the object in the same task: share it the same way.
    const path = `/proc/${t.pid}/map_files/${owner.start.toString(16)}-${owner.end.toString(16)}`;
    const fd = Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), 2 | O_CLOEXEC, 0));
    t.syscall('mmap(shared)', NR.mmap, v.start, len, v.prot | PROT_WRITE, flags, fd, v.pgoff);
    t.syscall('close', NR.close, fd);
    return false;
  }
  if (v.pgoff === 0n) {
    t.syscall('mmap(shared anon)', NR.mmap, v.start, len, v.prot | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  } else {
    // The object is bigger than this window of it: make it whole, keep the window.
    const whole = len + v.pgoff;
    const base = t.syscall('mmap(shared anon)', NR.mmap, 0, whole, v.prot | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    t.syscall('mremap', NR.mremap, base + v.pgoff, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v.start);
    t.syscall('munmap', NR.munmap, base, v.pgoff);
  }
  shmem.set(v.shmid, { pid: t.pid, start: v.start, end: v.end, pgoff: v.pgoff });
  return true;
}

const SHM_RDONLY = 0o10000;
const SHM_EXEC = 0o100000;

/**
 * SysV shm attachments (VMA_AREA_SYSVIPC; shmid is the segment's id, which
 * the ipc kind re-created in the task's new ipc namespace). VMAs of one
 * attachment share its address (start - pgoff): one injected shmat there,
 * read-only unless one of them was writable (fdflags O_RDWR), executable if
 * one is; then the parts of the segment the task had unmapped go again and
 * every VMA gets its own protection. The contents are the segment's own.
 */
function attachSysvShm(t: RestoreTaskHandle, vmas: readonly VmaEntry[]): void {
  if (vmas.length === 0) return;
  if (sameIpcNamespace(t.pid)) {
    const v = vmas[0] as VmaEntry;
    throw new CriuTsError(
      'EUNSUPPORTED',
      `task ${t.pid}: SysV shm segment ${v.shmid} attached at 0x${v.start.toString(16)}: the task is restored in criu-ts's own ipc namespace, where that segment is not the dump's (only a tree dumped in an ipc namespace of its own brings its segments back)`,
      { pid: t.pid, shmid: v.shmid },
    );
  }
  const groups = new Map<string, VmaEntry[]>();
  for (const v of vmas) {
    const key = `${v.shmid}@${v.start - v.pgoff}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  for (const group of groups.values()) {
    const first = group[0] as VmaEntry;
    const base = first.start - first.pgoff;
    const writable = group.some((v) => v.fdflags === undefined || (v.fdflags & 3) === 2 /* O_RDWR */);
    const exec = group.some((v) => (v.prot & 4 /* PROT_EXEC */) !== 0);
    const flags = (writable ? 0 : SHM_RDONLY) | (exec ? SHM_EXEC : 0);
    const at = t.syscall(`shmat(${first.shmid})`, NR.shmat, first.shmid, base, flags);
    if (at !== base) throw new CriuTsError('ERESTORE', `task ${t.pid}: SysV shm ${first.shmid} attached at 0x${at.toString(16)}, not 0x${base.toString(16)}`, { pid: t.pid });
    // The attachment as the kernel made it (the segment's size, rounded up to pages).
    const att = parseMaps(t.pid).find((m) => m.start === base);
    const end = att?.end ?? base;
    let cur = base;
    for (const v of [...group].sort((a, b) => (a.start < b.start ? -1 : 1))) {
      if (v.start > cur) t.syscall('munmap(shm hole)', NR.munmap, cur, v.start - cur);
      cur = v.end > cur ? v.end : cur;
    }
    if (end > cur) t.syscall('munmap(shm tail)', NR.munmap, cur, end - cur);
    const attProt = 1 | (writable ? PROT_WRITE : 0) | (exec ? 4 : 0);
    for (const v of group) {
      if (v.prot !== attProt) t.syscall('mprotect(shm)', NR.mprotect, v.start, v.end - v.start, v.prot);
    }
  }
}

/** Whether task `pid` is in criu-ts's own ipc namespace. */
function sameIpcNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/ipc`) === readlinkSync('/proc/thread-self/ns/ipc');
  } catch {
    return false;
  }
}

/** VMAs that some pagemap entry falls in (one walk over both, sorted by address), plus every shared anonymous one. */
function vmasWithPages(vmas: readonly VmaEntry[], pagemap: readonly PagemapEntry[]): Set<VmaEntry> {
  const out = new Set<VmaEntry>(vmas.filter((v) => (v.status & VMA.ANON_SHARED) !== 0 && (v.status & VMA.AREA_SYSVIPC) === 0));
  const vs = [...vmas].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const es = [...pagemap].sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  let i = 0;
  for (const e of es) {
    const end = e.vaddr + nrPages(e) * BigInt(PAGE_SIZE);
    while (i < vs.length && (vs[i] as VmaEntry).end <= e.vaddr) i++;
    // An entry may span adjacent VMAs in images from other writers: mark each it touches.
    for (let j = i; j < vs.length && (vs[j] as VmaEntry).start < end; j++) out.add(vs[j] as VmaEntry);
  }
  return out;
}

/**
 * Inject preadv calls reading pages images straight into the task's
 * memory. Entries of the pagemap follow each other in its pages file, so
 * one call covers up to IOV_PER_CALL entries. Entries marked PE_PARENT are
 * read from the parent images (`chain`), wherever the chain has them.
 * `base` is added to each entry's vaddr (shared memory: offsets).
 */
function fillPages(
  t: RestoreTaskHandle, chain: ParentChain, name: string, pagesPath: string, pagemap: PagemapEntry[], base: bigint,
  skip: (e: PagemapEntry) => boolean = () => false,
): number {
  const segs: Segment[] = [];
  let fileOff = 0n;
  let pages = 0;
  for (const e of pagemap) {
    const bytes = nrPages(e) * BigInt(PAGE_SIZE);
    if (isParentEntry(e)) {
      if (!skip(e)) segs.push(...chain.locate(name, e.vaddr, bytes));
    } else {
      if (!skip(e)) segs.push({ path: pagesPath, off: fileOff, vaddr: e.vaddr, len: bytes });
      fileOff += bytes;
    }
    if (!skip(e)) pages += Number(nrPages(e));
  }
  if (segs.length === 0) return 0;
  const fds = new Map<string, number>();
  // A batch: segments of one file that follow each other in it, one preadv.
  let batch: Segment[] = [];
  const flush = (): void => {
    const first = batch[0];
    if (!first) return;
    const pfd = fds.get(first.path) as number;
    const iov = Buffer.alloc(batch.length * 16);
    let want = 0n;
    batch.forEach((sg, j) => {
      iov.writeBigUInt64LE(sg.vaddr + base, j * 16);
      iov.writeBigUInt64LE(sg.len, j * 16 + 8);
      want += sg.len;
    });
    let done = 0n;
    while (done < want) {
      // Re-describe what is left after a short read (preadv moves at most ~2 GiB per call).
      const rest = remainingIov(iov, done);
      const addr = t.putBytes(rest.buf);
      const got = t.syscall('preadv', NR.preadv, pfd, addr, rest.count, first.off + done, 0);
      if (got === 0n) throw new CriuTsError('EIMAGE', `${first.path}: ends before the pagemap says`, { path: first.path });
      done += got;
    }
    batch = [];
  };
  try {
    for (const sg of segs) {
      if (!fds.has(sg.path)) {
        flush();
        // O_NOFOLLOW: the task is still root here; a pages image swapped for a link must not fill it with another file.
        fds.set(sg.path, Number(t.syscall(`open ${sg.path}`, NR.openat, AT_FDCWD, t.putString(sg.path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0)));
      }
      const last = batch[batch.length - 1];
      if (last && (last.path !== sg.path || last.off + last.len !== sg.off || batch.length === IOV_PER_CALL)) flush();
      batch.push(sg);
    }
    flush();
  } finally {
    for (const fd of fds.values()) t.syscall('close', NR.close, fd);
  }
  return pages;
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

function nrPages(e: PagemapEntry): bigint {
  return e.nr_pages !== undefined && e.nr_pages !== 0n ? e.nr_pages : BigInt(e.compat_nr_pages);
}

function fillShmem(t: RestoreTaskHandle, v: VmaEntry, ctx: RestoreContext, chain: ParentChain): void {
  const name = `pagemap-shmem-${v.shmid}.img`;
  const img = ctx.ownImage(name);
  if (!img) return; // no pages were ever touched
  const head = img.entries[0] as { pages_id: number } | undefined;
  if (!head) return;
  // Entries outside this window still move the file offset on: skipped, not dropped.
  const entries = img.entries.slice(1) as unknown as PagemapEntry[];
  const outside = (e: PagemapEntry): boolean => e.vaddr < v.pgoff || e.vaddr >= v.pgoff + (v.end - v.start);
  fillPages(t, chain, name, join(ctx.dir, `pages-${head.pages_id}.img`), entries, v.start - v.pgoff, outside);
}

/** Step 3: mm fields, auxv and /proc/PID/exe in one PR_SET_MM_MAP. */
export function restoreMmFields(t: RestoreTaskHandle, mm: MmEntry, ctx: RestoreContext): void {
  const exe = filePath(ctx, BigInt(mm.exe_file_id));
  const exeFd = Number(t.syscall(`open ${exe}`, NR.openat, AT_FDCWD, t.putString(exe), O_RDONLY | O_CLOEXEC, 0));
  const auxv = mm.mm_saved_auxv ?? [];
  const auxBuf = Buffer.alloc(auxv.length * 8);
  auxv.forEach((x, i) => auxBuf.writeBigUInt64LE(BigInt.asUintN(64, x), i * 8));
  const auxAddr = t.putBytes(auxBuf);
  const map = Buffer.alloc(104);
  const fields = [
    mm.mm_start_code, mm.mm_end_code, mm.mm_start_data, mm.mm_end_data, mm.mm_start_brk, mm.mm_brk,
    mm.mm_start_stack, mm.mm_arg_start, mm.mm_arg_end, mm.mm_env_start, mm.mm_env_end,
  ];
  fields.forEach((x, i) => map.writeBigUInt64LE(x, i * 8));
  map.writeBigUInt64LE(auxAddr, 88);
  map.writeUInt32LE(auxBuf.length, 96);
  map.writeInt32LE(exeFd, 100);
  const mapAddr = t.putBytes(map);
  t.syscall('prctl(PR_SET_MM_MAP)', NR.prctl, PR.SET_MM, PR_SET_MM.MAP, mapAddr, 104, 0);
  t.syscall('close', NR.close, exeFd);
  if (mm.dumpable !== undefined) t.syscall('prctl(SET_DUMPABLE)', NR.prctl, PR.SET_DUMPABLE, mm.dumpable);
  // Inherited from the stub (so from criu-ts): set it both ways.
  if (mm.thp_disabled !== undefined) t.syscall('prctl(SET_THP_DISABLE)', NR.prctl, PR.SET_THP_DISABLE, mm.thp_disabled ? 1 : 0);
}

/**
 * Step 3, once the task's fds are at their numbers: the rings of packet
 * sockets (VMA_AREA_SOCKET, shmid = the socket's file id) mapped again from
 * the task's fd on the socket, at their address. The kernel takes only a
 * mapping of the whole ring; its frames are new (none was saved).
 */
export function restoreSocketMappings(t: RestoreTaskHandle, mm: MmEntry, fds: readonly FdinfoEntry[]): void {
  for (const v of mm.vmas ?? []) {
    if ((v.status & VMA.AREA_SOCKET) === 0) continue;
    const fdi = fds.find((f) => f.id === Number(v.shmid));
    if (!fdi) {
      throw new CriuTsError('EIMAGE', `mapping 0x${v.start.toString(16)}: socket file ${v.shmid} is at no fd of task ${t.pid}`, { pid: t.pid, shmid: v.shmid });
    }
    const flags = MAP_FIXED | (v.flags & (MAP_SHARED | MAP_PRIVATE)) | (v.flags & MAP_LOCKED);
    t.syscall(`mmap(ring of fd ${fdi.fd})`, NR.mmap, v.start, v.end - v.start, v.prot, flags, fdi.fd, v.pgoff);
  }
}

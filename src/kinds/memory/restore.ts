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
import { parseMaps, type MapsEntry } from '../../proc/index.js';
import { NR, PAGE_SIZE, PR, PR_SET_MM, RSEQ_FLAG_UNREGISTER, ownThpDisabled, mremapMovesMany } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import { attachSysvShm } from './sysv-host.js';
import type { CoreEntry, FdinfoEntry, MmEntry, VmaEntry, PagemapEntry } from '../../images/messages.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { memfdShmid, openMemfd } from '../files/memfd.js';
import { VMA } from './vma.js';
import { PROT_WRITE, MAP_FIXED, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MAP_GROWSDOWN, MAP_NORESERVE, MAP_LOCKED, MAP_DROPPABLE, MAP_HUGETLB, MREMAP_MAYMOVE, MREMAP_FIXED } from '../../sys/mman.js';
import { closeFdsIn, openFileInTask } from '../install-fd.js';
import { parentChainOf } from './parent-images.js';
import { fillSegments, filledFromOurSide, nrPages, pageSegments } from './fill.js';
import { isSharedAnonObject, mapSharedAnon, noteSharedAnonMapping } from './shmem-restore.js';
import { inheritedRanges, settleInherited, splitSegments, type CowStats, type Inherited, type ParentMemory } from './cow.js';
import { subtract, unmapSpans, type Range } from './ranges.js';
import { adviceRuns, planAnonRuns, type AnonRun } from './reserve.js';
import { restoreAioRings } from './aio.js';
import { restoreGuardRegions } from './guard.js';
import { isLazyVma, lazyPlan, registerLazy, withoutLazy } from './lazy.js';
import { MAP_HUGE_MASK } from './hugetlb.js';
import { logger } from '../../log.js';
import { AT_FDCWD, O_RDONLY, O_CLOEXEC } from '../../sys/fcntl.js';
import { imageFile, imagePath } from '../../images/index.js';

const log = logger('mem');

export const SCRATCH_BYTES = 1 << 20;

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
 * dumped task had them. A child forked from its restored parent also keeps
 * the VMAs it inherited (`keep`, see cow.ts). Returns the scratch address.
 */
export function prepareAddressSpace(
  t: RestoreTaskHandle, mm: MmEntry, rseq: { ptr: bigint; len: number; sig: number } | undefined, keep: readonly Range[] = [],
): bigint {
  const vmas = mm.vmas ?? [];
  const cur = parseMaps(t.pid);
  // A scratch area it has (kept from the stub: restore/create.ts) that no
  // dumped VMA meets stays; another is left to the unmaps below (no munmap of its own).
  const had = t.tracee.scratchRange;
  const fits = had !== undefined && had.size >= SCRATCH_BYTES && !vmas.some((v) => overlaps(v, { start: had.addr, end: had.addr + BigInt(had.size) }));
  if (had && !fits) t.tracee.dropScratch();
  const scratch = fits ? had.addr : findHole(vmas, cur, SCRATCH_BYTES);
  t.tracee.mapScratch(SCRATCH_BYTES, scratch);
  const scratchEnd = scratch + BigInt(t.tracee.scratchRange?.size ?? SCRATCH_BYTES);
  // The stub's rseq area is about to disappear; a registered rseq pointing at
  // unmapped memory would kill the task on its next return to user mode.
  if (rseq && rseq.ptr !== 0n) t.syscall('rseq(unregister)', NR.rseq, rseq.ptr, rseq.len, RSEQ_FLAG_UNREGISTER, rseq.sig);
  const drop = cur.filter((m) => !isSpecial(m) && m.start !== scratch).map((m) => ({ start: m.start, end: m.end }));
  const kept = [...cur.filter(isSpecial), { start: scratch, end: scratchEnd }, ...keep];
  for (const r of unmapSpans(subtract(drop, keep), kept)) t.syscall('munmap', NR.munmap, r.start, r.end - r.start);
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
  const gadgetOff = t.tracee.gadgetAddr - curVdso.start;
  // One mremap moves the whole block where its pieces are adjacent and the
  // kernel moves several VMAs at once (6.17+): 1 call, not 3.
  const lo = curBlock.reduce((a, m) => (m.start < a ? m.start : a), curVdso.start);
  const hi = curBlock.reduce((a, m) => (m.end > a ? m.end : a), curVdso.end);
  const pieces = size(curBlock) === hi - lo && curBlock.length > 1 && mremapMovesMany() ? [{ start: lo, end: hi }] : curBlock;
  // Where no piece's new place meets a piece of the stub's block, each moves there at once.
  if (!curBlock.some((m) => curBlock.some((p) => overlaps({ start: m.start + delta, end: m.end + delta }, p)))) {
    for (const m of pieces) t.syscall('mremap(vdso)', NR.mremap, m.start, m.end - m.start, m.end - m.start, MREMAP_MAYMOVE | MREMAP_FIXED, m.start + delta);
    t.tracee.setGadget(dumpedVdso.start + gadgetOff);
    log.debug(`vdso moved to 0x${dumpedVdso.start.toString(16)}`);
    return;
  }
  // Else every piece is parked right after the scratch area first, so no move lands on a piece not yet moved.
  const park = scratch + BigInt(SCRATCH_BYTES) + 0x100000n;
  const parked: { from: bigint; to: bigint; len: bigint }[] = [];
  for (const m of pieces) {
    const len = m.end - m.start;
    const to = park + (m.start - curVdso.start) + 0x400000n;
    t.syscall('mremap(park)', NR.mremap, m.start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (m.start <= curVdso.start && curVdso.start < m.end) t.tracee.setGadget(to + gadgetOff);
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

function filePath(ctx: RestoreContext, id: bigint): string {
  const f = ctx.fileById(Number(id));
  const name = f?.reg?.name;
  if (name === undefined) throw new CriuTsError('EIMAGE', `mapping refers to file id ${id}, not in the images' file list`, { id });
  return name;
}

export interface MemoryRestored { pages: number; cow?: CowStats }

/**
 * Step 2: map every VMA, fill its pages, then set final protections. With
 * `from`, the task was forked from its restored parent: the VMAs it
 * inherited stay, and only their pages that differ are written (cow.ts).
 * `cores`: the task's threads; with lazy pages, the pages their rseq areas
 * are in are filled here even inside lazy VMAs (lazy.ts eagerPages).
 * `sweptLater`: the task's fds are restored after this into a table of its
 * own, whose sweeps close every fd not restored: the fds opened here are left to them.
 */
export function restoreMemory(
  t: RestoreTaskHandle, mm: MmEntry, pagemap: PagemapEntry[], pagesId: number, ctx: RestoreContext,
  from?: { inherited: Inherited; parent: ParentMemory }, cores: readonly CoreEntry[] = [], exeFd = -1, sweptLater = false,
): MemoryRestored {
  const inherited: Inherited = from?.inherited ?? new Map<VmaEntry, VmaEntry[]>();
  // The kernel's areas are not mapped here, guard regions are markers inside
  // other VMAs (guard.ts), and a socket's ring is mapped from the socket
  // itself once the fds exist (restoreSocketMappings).
  const vmas = (mm.vmas ?? []).filter((v) => (v.status & (VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL | VMA.AREA_GUARD | VMA.AREA_SOCKET)) === 0);
  // The executable, open in the task since restoreMmFields: its mappings use that fd (closed with the others below).
  const fds = new Map<string, number>(exeFd >= 0 ? [[`${O_RDONLY}:${filePath(ctx, BigInt(mm.exe_file_id))}`, exeFd]] : []);
  const fileFd = (id: bigint, fdflags: number): number => {
    const e = ctx.fileById(Number(id));
    const memfd = e?.memfd;
    const path = memfd ? `memfd:${id}` : filePath(ctx, id);
    const key = `${fdflags}:${path}`;
    let fd = fds.get(key);
    if (fd === undefined) {
      // A memfd entry may stand for a shared anonymous object (a private
      // mapping of it through map_files): openMemfd opens that very object.
      fd = memfd ? openMemfd(t, memfd, fdflags, ctx) : openFileInTask(t, path, fdflags);
      fds.set(key, fd);
    }
    return fd;
  };
  // Only mappings that get pages need to be writable while we fill them; the
  // others (e.g. huge PROT_NONE reservations) are mapped as they were, so no
  // memory is committed for them.
  const filled = vmasWithPages(vmas, pagemap);
  // Pages a pre-dump chain left in parent images are read from there (one chain walker per restore).
  const chain = parentChainOf(ctx);
  // CRIU writes the vDSO's pages too; the running kernel's vDSO is used instead.
  const special = (mm.vmas ?? []).filter((v) => (v.status & (VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL)) !== 0);
  const inSpecial = (e: PagemapEntry): boolean => special.some((v) => e.vaddr >= v.start && e.vaddr < v.end);
  const all = pageSegments(chain, imageFile('PAGEMAP', t.vpid), imagePath(ctx.dir, 'PAGES', pagesId), pagemap, inSpecial);
  // --lazy-pages: private anonymous VMAs stay empty here; the lazy-pages daemon fills them (lazy.ts).
  // Only VMAs with pages in the dump: an empty one reads as zeros anyway, and every registration is a syscall in the task.
  // Neighbours are registered as one range (UFFDIO_REGISTER spans VMAs);
  // the daemon serves them but for the eager pages, filled here first.
  const { lazy, served } = lazyPlan(ctx.lazy ? vmas.filter((v) => isLazyVma(v) && !inherited.has(v) && filled.has(v)) : [], cores, all.segs);
  const segs = lazy.length > 0 ? withoutLazy(all.segs, served) : all.segs;
  const pages = lazy.length > 0 ? Number(segs.reduce((n, sg) => n + sg.len, 0n) / BigInt(PAGE_SIZE)) : all.pages;
  // Read-only private file VMAs with pages (a library's relro) written from our side are mapped with their final
  // protection: the write goes through /proc/PID/mem (fill.ts writeRanges), no mprotect to it after, a call each;
  // `unprotect` where the kernel refuses such a write. Not for a child sharing inherited pages (cow.ts).
  const forced = new Set(!(from && inherited.size > 0) && filledFromOurSide(segs) ? vmas.filter((v) => filled.has(v) && !inherited.has(v)
    && (v.status & (VMA.FILE_PRIVATE | VMA.AREA_MEMFD)) === VMA.FILE_PRIVATE && (v.prot & PROT_WRITE) === 0) : []);
  const unprotect = (addr: bigint): boolean => {
    const v = [...forced].find((f) => addr >= f.start && addr < f.end);
    if (v === undefined) return false;
    t.syscall('mprotect(to fill)', NR.mprotect, v.start, v.end - v.start, v.prot | PROT_WRITE);
    forced.delete(v);
    return true;
  };
  // SysV shm first: an attachment spans its whole segment until the parts the task had unmapped go again.
  attachSysvShm(t, vmas.filter((v) => (v.status & VMA.AREA_SYSVIPC) !== 0));
  const protOf = (v: VmaEntry): number => (filled.has(v) && !forced.has(v) ? v.prot | PROT_WRITE : v.prot);
  // Runs of anonymous VMAs mapped by one mmap each (reserve.ts); `runs` maps every VMA inside one.
  const runs = planAnonRuns(vmas, (v) => inherited.has(v) || (v.status & (VMA.AREA_SYSVIPC | VMA.ANON_SHARED)) !== 0, protOf);
  const runsMapped = new Set<AnonRun>();
  for (const v of vmas) {
    const len = v.end - v.start;
    if (v.status & VMA.AREA_SYSVIPC) continue;
    if (inherited.has(v)) continue;
    if (v.status & VMA.ANON_SHARED) {
      mapSharedAnon(t, v, ctx, chain);
      continue;
    }
    const prot = protOf(v); // writable while we fill; final protection below
    const run = runs.get(v);
    if (run !== undefined && !runsMapped.has(run)) {
      runsMapped.add(run);
      t.syscall('mmap(anonymous run)', NR.mmap, run.start, run.end - run.start, run.prot, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | run.noreserve, -1, 0);
    }
    if (run?.anon.has(v)) {
      if (prot !== run.prot) t.syscall('mprotect', NR.mprotect, v.start, len, prot);
      continue;
    }
    let flags = MAP_FIXED | (v.flags & (MAP_GROWSDOWN | MAP_NORESERVE | MAP_LOCKED));
    let fd = -1;
    let off = 0n;
    if (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) {
      fd = fileFd(v.shmid, v.fdflags ?? O_RDONLY);
      off = v.pgoff;
      flags |= v.status & VMA.FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
    } else if (v.status & VMA.AREA_AIORING) {
      // A temporary home for the dumped ring's pages; the new ring replaces it (aio.ts).
      flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS;
    } else {
      // MAP_DROPPABLE is a mapping type of its own, in place of MAP_PRIVATE.
      flags |= (v.flags & MAP_DROPPABLE ? MAP_DROPPABLE : MAP_PRIVATE) | MAP_ANONYMOUS | (v.flags & (MAP_HUGETLB | MAP_HUGE_MASK));
    }
    // A shared file mapping must not gain PROT_WRITE on a read-only fd.
    const mapProt = v.status & VMA.FILE_SHARED ? v.prot : prot;
    t.syscall('mmap', NR.mmap, v.start, len, mapProt, flags, fd, off);
    const memfd = v.status & VMA.AREA_MEMFD ? ctx.fileById(Number(v.shmid))?.memfd : undefined;
    if (memfd) {
      const shmid = memfdShmid(ctx, memfd);
      if (isSharedAnonObject(ctx, shmid)) noteSharedAnonMapping(ctx, shmid, t.pid, v.start, v.end);
    }
  }
  // The mappings' fds (the exe's too) go now, or with the task's own fd table's sweeps (`sweptLater`: restoreFds).
  if (!sweptLater) closeFdsIn(t, fds.values());

  let cow: CowStats | undefined;
  if (from && inherited.size > 0) {
    const { fresh, shared } = splitSegments(segs, inheritedRanges(inherited));
    fillSegments(t, fresh, 0n);
    cow = settleInherited(t, inherited, shared, pagemap, from.parent);
  } else {
    fillSegments(t, segs, 0n, unprotect);
  }
  const rings = vmas.filter((v) => (v.status & VMA.AREA_AIORING) !== 0);
  if (rings.length > 0) restoreAioRings(t, rings.map((v) => ({ v, entry: (mm.aios ?? []).find((a) => a.id === v.start) })));
  const advised: VmaEntry[] = [];
  for (const v of vmas) {
    if (v.status & VMA.AREA_AIORING) continue;
    const ps = inherited.get(v);
    if (ps) {
      // Inherited with the parent's final protection (and the same madvise bits).
      if (ps.some((p) => p.prot !== v.prot)) t.syscall('mprotect', NR.mprotect, v.start, v.end - v.start, v.prot);
      continue;
    }
    if (filled.has(v) && !forced.has(v) && !(v.status & VMA.FILE_SHARED) && (v.prot & PROT_WRITE) === 0) {
      t.syscall('mprotect', NR.mprotect, v.start, v.end - v.start, v.prot);
    }
    if ((v.madv ?? 0n) !== 0n) advised.push(v);
  }
  // One madvise per advice for each run of adjacent VMAs that had it (a thread's stack and its guard page).
  for (const r of adviceRuns(advised)) t.syscall('madvise', NR.madvise, r.start, r.end - r.start, r.advice);
  restoreGuardRegions(t, mm.vmas ?? []);
  if (lazy.length > 0 && ctx.lazy) {
    ctx.lazy.handOver(t.pid, t.vpid, registerLazy(t, lazy, mm.vmas ?? [], sweptLater), served);
  }
  return cow ? { pages: pages - cow.skipped, cow } : { pages };
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
 * Step 3: mm fields, auxv and /proc/PID/exe in one PR_SET_MM_MAP. A task
 * forked from its restored parent running the same executable keeps the
 * exe it inherited (`keepExe`): the kernel refuses to change it while a
 * mapping of the old one remains, and inherited VMAs may be such mappings.
 * Returns the exe's fd in the task (or -1), left open for restoreMemory.
 */
export function restoreMmFields(t: RestoreTaskHandle, mm: MmEntry, ctx: RestoreContext, keepExe = false, inheritedThp?: boolean): number {
  const exe = filePath(ctx, BigInt(mm.exe_file_id));
  const exeFd = keepExe ? -1 : openFileInTask(t, exe, O_RDONLY);
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
  // (The dumpable flag is set after the credentials, finalizeTasks: a change of ids resets it.) The THP flag, set only
  // where it differs from the one the task has: a restored parent's (`inheritedThp`: fork copies it), else the stub's, ours.
  if (mm.thp_disabled !== undefined && mm.thp_disabled !== (inheritedThp ?? ownThpDisabled())) t.syscall('prctl(SET_THP_DISABLE)', NR.prctl, PR.SET_THP_DISABLE, mm.thp_disabled ? 1 : 0);
  return exeFd;
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

/**
 * Memory of one task: the VMAs (mm-<pid>.img), and the contents of every
 * page the task owns (pagemap-<pid>.img + pages-<id>.img).
 *
 * Which pages: present or swapped pages of private anonymous mappings, the
 * anonymous (copied-on-write) pages of private file mappings (pagemap's
 * "file page" bit clear), and every present page of shared anonymous memory
 * (written once per shared object, into pagemap-shmem-<shmid>.img). Shared
 * file mappings are not copied: the file holds their data. vvar (one VVAR
 * area, as CRIU records [vvar] + [vvar_vclock]) and vsyscall are recorded,
 * not copied; the vDSO's pages are copied, as CRIU does, though criu-ts's
 * restore uses the restoring kernel's own.
 *
 * SysV shm attachments are recorded as VMAs (VMA_AREA_SYSVIPC); their
 * pages go with the segment, saved with the task's ipc namespace when that
 * is dumped with it (kinds/ns/ipc-dump.ts), or left in criu-ts's own
 * namespace's segment, attached again at restore (sysv-host.ts). Mappings
 * of deleted files take the file along as a ghost. A packet socket's ring is a VMA_AREA_SOCKET VMA naming the socket's
 * file (dumped here through the task's fd on it), without pages. AIO rings
 * are written whole, with their aio_ring_entry (aio.ts); anonymous hugetlb
 * memory as anonymous memory with MAP_HUGETLB and its page size in the
 * flags (hugetlb.ts). Known limits: SysV shm segments of criu-ts's own ipc
 * namespace marked for removal and hugetlbfs files are refused with
 * EUNSUPPORTED; zero-page detection is not done (such pages
 * are written as zeros).
 */
import { statSync } from 'node:fs';
import { forEachSmaps, mapFilesPath, residentBytes, smapsStillHolds, PagemapReader, type SmapsEntry } from '../../proc/index.js';
import { PAGE_SIZE } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import { checkHostSegmentAtDump } from './sysv-host.js';
import type { AioRingEntry, VmaEntry, PagemapEntry } from '../../images/messages.js';
import type { PageServerClient } from './page-server-client.js';
import { dumpAioRing, isAioRing } from './aio.js';
import { dumpGuardRegions } from './guard.js';
import { hugetlbFlags, hugetlbKb, isAnonHugetlb, isHugetlb } from './hugetlb.js';
import { forEachRun, forEachSharing } from './pagemap-runs.js';
import { dumpShmem, type ShmemDumpContext, type ShmemPages } from './shmem-dump.js';
import { PagesWriter, type PageSink } from './pages-writer.js';
import { isLazyVma } from './lazy.js';
import { DeferredPages, type CopiedPages } from './deferred-pages.js';
import { PE_LAZY, PE_PRESENT } from '../../images/flags.js';
import { clip, subtract, splitBy, type Range } from './ranges.js';
import { VMA, classifyVma, madvOf, type VmaKind } from './vma.js';
import { MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_NORESERVE, MAP_LOCKED, MAP_DROPPABLE } from '../../sys/mman.js';
import { O_RDONLY, O_RDWR } from '../../sys/fcntl.js';
import { imagePath } from '../../images/index.js';
import { logger } from '../../log.js';
import { mark } from '../../timeline.js';

const log = logger('mem');

export interface MemoryDumpContext extends ShmemDumpContext {
  pid: number;
  /** the id its pagemap image is named by: the pid the tree sees (its own pid namespace's); default pid */
  imageId?: number;
  dir: string;
  /** id of the file entry (REG) for a path, creating it on first use */
  fileId(path: string, flags: number): number;
  /** the MEMFD file entry behind a mapping of a memfd (its inode and contents are dumped once) */
  memfdFileId(start: bigint, end: bigint, path: string): number;
  /**
   * The file entry of the socket a mapping shows (`socket:[ino]`, a packet
   * ring), dumped through the task's fd on it; absent where no files are
   * dumped (pre-dump: the VMA has no pages to save either way).
   */
  socketFileId?(start: bigint, end: bigint, path: string): number;
  /** the same for an unlinked file, reachable at openPath: its contents go into the images as a ghost */
  ghostFileId(path: string, flags: number, openPath: string, inode: bigint): number;
  /** shared anonymous objects already dumped by another task: shmid → true */
  shmemDone: Set<bigint>;
  nextPagesId(): number;
  onBytes?: (n: number) => void;
  /**
   * The task's SysV shm segments are dumped with its ipc namespace (one of
   * its own, taken along by the ipc kind). Otherwise they are criu-ts's own
   * namespace's, left in place and checked to outlive the dump. Either way
   * an attachment is a VMA_AREA_SYSVIPC VMA.
   */
  sysvShm: boolean;
  /** dump --page-server: pagemaps and pages go to this page server, not into the images dir */
  pageServer?: PageServerClient;
  /** our own scratch mappings inside the task, left out of the dump */
  exclude: { addr: bigint; size: number }[];
  /** incremental dump: what changed since the parent images, and what they hold */
  track?: MemoryTrackContext;
  /** the dump leaves a tracker behind (pre-dump, --track-mem -R): list the private ranges it must cover (else privateRanges is empty) */
  wantRanges?: boolean;
  /**
   * pre-dump: decide what to copy now (the tree stopped), read nothing;
   * MemoryDump.copy() reads and stores the task's own pages once the tree
   * runs again (deferred-pages.ts). Shared memory is still copied at once.
   */
  deferReads?: boolean;
  /**
   * dump --lazy-pages: the pages of lazy VMAs (lazy.ts isLazyVma, the
   * restore's own rule) are not read; PE_LAZY entries say where they are,
   * and the dump's page server serves them from the frozen task later.
   */
  lazy?: boolean;
  /** the task's smaps read early (dump/smaps-ahead.ts): used if its mappings still match it, else read again */
  smaps?: Buffer;
}

/**
 * Dirty tracking for an incremental dump (tracking.ts). A present page of a
 * private VMA is taken from the parent images (PE_PARENT) only when the VMA
 * is tracked, the page was not written since the parent was made and is not
 * the shared zero page, and the parent holds that address.
 */
export interface MemoryTrackContext {
  /** runs to copy again in [start, end) (re-protected as they are reported); undefined: the VMA is not tracked */
  scan(start: bigint, end: bigint): Range[] | undefined;
  /** runs of [start, end) that hold data (see tracking.ts scanData) */
  data(start: bigint, end: bigint, anonOnly: boolean, withSwap: boolean): Range[];
  /**
   * scan and data of an anonymous private VMA in one walk, nothing
   * protected again: only where the tracking ends with this dump
   * (tracking.ts scanWrittenAndData). undefined: the VMA is not tracked.
   */
  scanOnce?(start: bigint, end: bigint, withSwap: boolean): { written: Range[]; data: Range[] } | undefined;
  /** sorted, merged address ranges the parent images hold for this task */
  parent: Range[];
}


export interface MemoryDump {
  vmas: VmaEntry[];
  /** AIO rings (mm.aios), one per /[aio] mapping */
  aios: AioRingEntry[];
  pagemap: PagemapEntry[];
  pagesId: number;
  pagesScanned: number;
  pagesWritten: number;
  /** pages left in the frozen task for the dump's lazy page server (PE_LAZY entries) */
  pagesLazy: number;
  /** pages left in the parent images (PE_PARENT entries) */
  pagesSkippedParent: number;
  /** private VMAs whose pages were dumped (what a tracker should cover); empty unless the context's wantRanges */
  privateRanges: Range[];
  /** pagemap-shmem images to write: shmid → entries and pages id */
  shmem: ShmemPages[];
  /** deferReads: copy the planned pages now (the tree runs); `pagemap` and the page counts above are then the plan's */
  copy?: () => CopiedPages;
}

function vmaStatus(kind: VmaKind): { status: number; flags: number } {
  switch (kind) {
    case 'vsyscall': return { status: VMA.AREA_VSYSCALL | VMA.ANON_PRIVATE, flags: MAP_PRIVATE | MAP_ANONYMOUS };
    case 'vdso': return { status: VMA.AREA_REGULAR | VMA.AREA_VDSO | VMA.ANON_PRIVATE, flags: MAP_PRIVATE | MAP_ANONYMOUS };
    case 'vvar': return { status: VMA.AREA_REGULAR | VMA.ANON_PRIVATE | VMA.AREA_VVAR, flags: MAP_PRIVATE | MAP_ANONYMOUS };
    case 'anon-private': return { status: VMA.AREA_REGULAR | VMA.ANON_PRIVATE, flags: MAP_PRIVATE | MAP_ANONYMOUS };
    case 'anon-shared': return { status: VMA.AREA_REGULAR | VMA.ANON_SHARED, flags: MAP_SHARED | MAP_ANONYMOUS };
    case 'file-private': return { status: VMA.AREA_REGULAR | VMA.FILE_PRIVATE, flags: MAP_PRIVATE };
    case 'file-shared': return { status: VMA.AREA_REGULAR | VMA.FILE_SHARED, flags: MAP_SHARED };
    case 'skip': return { status: 0, flags: 0 };
  }
}

function refuse(pid: number, v: SmapsEntry, what: string): never {
  throw new CriuTsError('EUNSUPPORTED', `task ${pid}: mapping 0x${v.start.toString(16)}-0x${v.end.toString(16)} ${v.path || '(anon)'}: ${what} is not supported`, {
    pid, start: v.start, path: v.path,
  });
}

export function dumpMemory(ctx: MemoryDumpContext): MemoryDump {
  const { pid } = ctx;
  const vmas: VmaEntry[] = [];
  const pagesId = ctx.nextPagesId();
  // A size hint for the pages buffer (smaps' Rss summed, but read before the walk).
  const resident = residentBytes(pid);
  const remote = ctx.pageServer ? { client: ctx.pageServer, target: { type: 'pid' as const, id: ctx.imageId ?? pid } } : undefined;
  const deferred = ctx.deferReads ? new DeferredPages() : undefined;
  const writer: PageSink = deferred ?? new PagesWriter(ctx.dir, pagesId, pid, ctx.onBytes, resident, remote);
  const shmem: MemoryDump['shmem'] = [];
  const reader = new PagemapReader(pid);
  let scanned = 0;
  let skippedParent = 0;
  const privateRanges: Range[] = [];
  const shmemLater: SmapsEntry[] = [];
  const aios: AioRingEntry[] = [];
  /** VMAs that may hold guard regions (VmFlags `gu`): the only ones guard.ts need walk */
  const mayGuard: Range[] = [];
  try {
    // Read while the task was asked its questions, if its mappings are still the ones it shows.
    const early = ctx.smaps !== undefined && smapsStillHolds(pid, ctx.smaps, ctx.exclude.map((x) => ({ start: x.addr, end: x.addr + BigInt(x.size) })))
      ? ctx.smaps : undefined;
    if (ctx.smaps !== undefined && early === undefined) log.debug(`task ${pid}: mappings changed since smaps was read early; reading it again`);
    mark(`memory ${pid}: walk begins`);
    // One VMA at a time as smaps is read: no array of 20,000 entries alive through the copy.
    forEachSmaps(pid, (v) => {
      if (v.vmFlags.includes('gu')) mayGuard.push({ start: v.start, end: v.end });
      // An anonymous hugetlb mapping is a file of the kernel's hugetlbfs; it is saved as anonymous memory.
      const kind: VmaKind = isAnonHugetlb(v) ? (v.shared ? 'anon-shared' : 'anon-private') : classifyVma(v);
      if (kind === 'skip') return;
      if (ctx.exclude.some((x) => x.addr === v.start && x.addr + BigInt(x.size) === v.end)) return;
      const sysv = v.path.startsWith('/SYSV');
      // (a hugetlb SysV segment is saved by the ipc kind; its attachment is a VMA like any other's)
      if (isHugetlb(v) && !isAnonHugetlb(v) && !sysv && !v.path.startsWith('/memfd:')) refuse(pid, v, 'a mapping of a hugetlbfs file (not anonymous hugetlb memory, a memfd or a SysV segment)');
      // A segment of our own ipc namespace stays behind as a file would (sysv-host.ts).
      if (sysv && !ctx.sysvShm) checkHostSegmentAtDump(pid, v.start, v.inode);
      if (v.path.startsWith('socket:[')) {
        // A packet socket's ring: kernel memory of the socket, mapped again from
        // the restored socket (CRIU's VMA_AREA_SOCKET); its frames are not saved.
        vmas.push({
          start: v.start, end: v.end, pgoff: v.pgoff, shmid: BigInt(ctx.socketFileId?.(v.start, v.end, v.path) ?? 0),
          prot: v.prot.value, flags: v.shared ? MAP_SHARED : MAP_PRIVATE, status: VMA.AREA_REGULAR | VMA.AREA_SOCKET, fd: -1n,
        });
        return;
      }
      if (isAioRing(v)) {
        // The whole ring, whatever the page tables say (the kernel fills it, not the task).
        vmas.push({ start: v.start, end: v.end, pgoff: 0n, shmid: 0n, prot: v.prot.value, flags: MAP_SHARED, status: VMA.AREA_AIORING, fd: -1n });
        aios.push(dumpAioRing(pid, v));
        const n = Number((v.end - v.start) / BigInt(PAGE_SIZE));
        scanned += n;
        writer.breakRun();
        writer.add(v.start, n, PE_PRESENT, true);
        return;
      }
      const { status, flags: baseFlags } = vmaStatus(kind);
      let flags = baseFlags;
      if (v.vmFlags.includes('gd')) flags |= MAP_GROWSDOWN;
      if (isHugetlb(v)) flags |= hugetlbFlags(v);
      if (v.vmFlags.includes('nr')) flags |= MAP_NORESERVE;
      if (v.vmFlags.includes('lo')) flags |= MAP_LOCKED; // mlock()ed or MAP_LOCKED: locked again at restore
      // MAP_DROPPABLE (Linux 6.11): the kernel may drop its pages at any
      // time (they read back as zeros), so, as CRIU does, they are not saved.
      const droppable = v.vmFlags.includes('dp');
      if (droppable) flags = (flags & ~MAP_PRIVATE) | MAP_DROPPABLE;
      const entry: VmaEntry = {
        start: v.start,
        end: v.end,
        pgoff: kind.startsWith('file') || kind === 'anon-shared' ? v.pgoff : 0n,
        shmid: 0n,
        prot: v.prot.value,
        flags,
        status,
        fd: -1n,
      };
      const madv = madvOf(v);
      if (madv !== 0n) entry.madv = madv;
      if (kind === 'file-private' || kind === 'file-shared') {
        const writable = kind === 'file-shared' && v.vmFlags.includes('mw');
        const fdflags = writable ? 2 : 0;
        // A private mapping of a shared anonymous object (opened through
        // /proc/PID/map_files): the object is saved like a memfd, as CRIU
        // 4.2 does; the restore maps the very object other tasks share.
        const shmemObject = v.path === '/dev/zero' && v.deleted;
        if (v.path.startsWith('/memfd:') || shmemObject) {
          // A memfd stays a memfd (CRIU 4.2's VMA_AREA_MEMFD), shared with fds on it.
          entry.status |= VMA.AREA_MEMFD;
          entry.shmid = BigInt(ctx.memfdFileId(v.start, v.end, v.path));
        } else {
          entry.shmid = BigInt(v.deleted
            ? ctx.ghostFileId(v.path, fdflags, mapFilesPath(pid, v.start, v.end), v.inode)
            : ctx.fileId(v.path, fdflags));
        }
        entry.fdflags = fdflags;
        if (!shmemObject && v.path.startsWith('/dev/') && isCharDevice(v.path)) refuse(pid, v, 'a device mapping');
      }
      if (kind === 'anon-shared') entry.shmid = v.inode;
      if (sysv) {
        // As CRIU: the segment's id (its inode number) and whether it was attached writable; its pages go with the ipc namespace.
        entry.status |= VMA.AREA_SYSVIPC;
        entry.fdflags = v.vmFlags.includes('mw') ? O_RDWR : O_RDONLY;
        vmas.push(entry);
        return;
      }
      const prev = vmas[vmas.length - 1];
      if (kind === 'vvar' && prev !== undefined && (prev.status & VMA.AREA_VVAR) !== 0 && prev.end === v.start) {
        // [vvar] and [vvar_vclock] are one VVAR area in CRIU's images.
        prev.end = v.end;
        return;
      }
      vmas.push(entry);

      // The vDSO's pages are written as CRIU does (its restorer reads the
      // dumped vDSO to match it with the running one); criu-ts's restore
      // skips them and uses the kernel's own.
      if (kind === 'vvar' || kind === 'vsyscall' || kind === 'file-shared' || droppable) return;
      const nPages = Number((v.end - v.start) / BigInt(PAGE_SIZE));
      scanned += nPages;
      if (kind === 'anon-shared') {
        if (ctx.shmemDone.has(v.inode)) return;
        ctx.shmemDone.add(v.inode);
        // After the task's own pages: a page server takes one pagemap at a time, start to end.
        shmemLater.push(v);
        return;
      }
      if (ctx.wantRanges === true) privateRanges.push({ start: v.start, end: v.end });
      if (v.rssKb === 0 && v.swapKb === 0 && hugetlbKb(v) === 0) {
        // Nothing populated: no pagemap to read. The scan (one ioctl) still
        // tells the tracker that this VMA is registered, so that it is not
        // registered and protected again (two injected calls) after the dump.
        ctx.track?.scan(v.start, v.end);
        return;
      }
      const viaMem = !v.prot.read;
      const pageFlags = kind === 'anon-private' ? PE_LAZY | PE_PRESENT : PE_PRESENT;
      // dump --lazy-pages: this VMA's pages stay in the task for the page server.
      const put = ctx.lazy === true && kind === 'anon-private' && isLazyVma(entry)
        ? (at: bigint, n: number): void => writer.addLazy(at, n)
        : (at: bigint, n: number, f: number, mem: boolean): void => writer.add(at, n, f, mem);
      writer.breakRun();
      // Pages this task shares with another (copy-on-write since a fork)
      // are read through /proc/PID/mem: process_vm_readv pins what it
      // reads, and the kernel unshares (copies) an anonymous page it pins,
      // so the task would lose the sharing (a dump with -R or a pre-dump
      // would double a forking server's memory).
      const shared = v.sharedKb > 0;
      const tracked = ctx.track ? trackedRuns(ctx.track, v, kind) : undefined;
      if (tracked && ctx.track) {
        // Pages that hold data, cut where they are both unwritten and held
        // by the parent: those become PE_PARENT, the rest is copied.
        const { dirty, data } = tracked;
        // A page server without a parent image of this pagemap (its OPEN2 answer) gets every page, as CRIU's dumper sends them.
        const parent = writer.isRemote && !writer.remoteHasParent ? [] : clip(ctx.track.parent, v.start, v.end);
        const fromParent = subtract(parent, dirty);
        splitBy(data, fromParent, (start, end, inParent) => {
          const n = Number((end - start) / BigInt(PAGE_SIZE));
          if (inParent) {
            writer.addParent(start, n, { flags: pageFlags, viaMem: viaMem || shared });
            skippedParent += n;
          } else {
            put(start, n, pageFlags, viaMem || shared);
          }
        });
        return;
      }
      // Every page resident and anonymous (smaps says so; the shared zero
      // page is not counted): one run, no pagemap to read.
      const ownKb = kind === 'anon-private' ? v.rssKb : v.anonymousKb;
      if (v.swapKb === 0 && ownKb * 1024 === nPages * PAGE_SIZE && !shared) {
        put(v.start, nPages, pageFlags, viaMem);
        return;
      }
      const pm = reader.read(v.start, v.end);
      forEachRun(pm, kind === 'file-private', v.swapKb > 0, (first, count) => {
        if (!shared) {
          put(v.start + BigInt(first * PAGE_SIZE), count, pageFlags, viaMem);
          return;
        }
        forEachSharing(pm, first, count, (at, n, isShared) => {
          put(v.start + BigInt(at * PAGE_SIZE), n, pageFlags, viaMem || isShared);
        });
      });
    }, undefined, early);
    mark(`memory ${pid}: walked, last pages read`);
    writer.close();
    mark(`memory ${pid}: pages written`);
    for (const v of shmemLater) shmem.push(dumpShmem(ctx, reader, v));
  } finally {
    reader.close();
    writer.close();
  }
  // Guard regions live inside the VMAs above: entries of their own after them, as CRIU writes them.
  vmas.push(...dumpGuardRegions(pid, mayGuard));
  return {
    vmas, aios, pagemap: writer.entries, pagesId, pagesScanned: scanned, pagesWritten: writer.pagesWritten, pagesLazy: writer instanceof PagesWriter ? writer.pagesLazy : 0, pagesSkippedParent: skippedParent, privateRanges, shmem,
    ...(deferred ? { copy: () => deferred.replay(new PagesWriter(ctx.dir, pagesId, pid, ctx.onBytes, deferred.bytes, remote)) } : {}),
  };
}

function isCharDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice();
  } catch {
    return false;
  }
}

export function pagesImagePath(dir: string, id: number): string {
  return imagePath(dir, 'PAGES', id);
}

/**
 * What the tracker says of VMA `v`: the runs written since the parent's
 * protection and the runs that hold data (one walk where the tracking ends
 * with this dump, MemoryTrackContext.scanOnce); undefined where the VMA is
 * not tracked.
 */
function trackedRuns(track: MemoryTrackContext, v: SmapsEntry, kind: VmaKind): { dirty: Range[]; data: Range[] } | undefined {
  const withSwap = v.swapKb > 0;
  if (kind === 'anon-private' && track.scanOnce) {
    const once = track.scanOnce(v.start, v.end, withSwap);
    return once && { dirty: once.written, data: once.data };
  }
  const dirty = track.scan(v.start, v.end);
  return dirty && { dirty, data: track.data(v.start, v.end, kind === 'file-private', withSwap) };
}

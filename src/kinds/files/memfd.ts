/**
 * memfd files open as fds: CRIU's MEMFD file_entry (memfd_file_entry:
 * flags, pos, inode_id) plus one memfd_inode_entry per inode in memfd.img
 * (name, uid, gid, size, shmid = inode number, seals, mode), with the
 * contents in pagemap-shmem-<shmid>.img + pages-N.img, as CRIU 4.2 writes
 * them (pagemap entries hold offsets into the file).
 *
 * Dump reads the contents through a read-only open of its own (the
 * task's description keeps its offset), data runs only (SEEK_DATA/
 * SEEK_HOLE), and never touches the task. Restore
 * creates the memfd with memfd_create in the task, fills it from our side
 * through a pidfd_getfd copy (size, contents, owner, mode), then adds the
 * seals. Another open file description of the same inode (an open of
 * /proc/self/fd/N) reopens the first one's inode by its /proc path.
 *
 * Mappings of a memfd (VMA_AREA_MEMFD) are the memory kind's: it can use
 * memfdFileForMapping at dump and openMemfd at restore, which share the
 * inode entries with the fds of the same memfd.
 *
 * A hugetlb memfd (MFD_HUGETLB) keeps its page size (memfd_inode_entry's
 * hugetlb_flag); its huge pages that hold data are saved, and written back
 * through a mapping in the task (hugetlbfs has no write(2)).
 *
 * Known limits: contents are read whole into memory before they are written.
 */
import { type Stats, statfsSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, readdirSync, readSync, statSync, writeSync, readlinkSync, openSync, closeSync } from 'node:fs';
import { NR, fcntl, PROT_READ, PROT_WRITE, MAP_SHARED, lseek, pidfdGetfd, pidfdOpen, closeQuiet, O_RDWR, SEEK_SET, SEEK_DATA, SEEK_HOLE, AT_FDCWD, PAGE_SIZE, HUGETLBFS_MAGIC, O_CLOEXEC, O_LARGEFILE, shmemDev, F_ADD_SEALS, F_GET_SEALS, F_SEAL_SEAL, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_HUGE_SHIFT } from '../../sys/index.js';
import { isSharedAnonObject, openSharedAnonFd } from '../memory/shmem-restore.js';
import type { FileEntry, MemfdFileEntry, MemfdInodeEntry } from '../../images/messages.js';
import { stateKey, type DumpContext, type FileKind, type FdProbe, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { openOursInTask } from '../install-fd.js';
import { NO_FOWN } from './fown.js';
import { part } from './anon-inode.js';
import { writeShmemPages, readShmemPages, shmemPagesSaved, type DataRun } from './memfd-pages.js';
import { hostOwner, treeGid, treeUid } from '../ns/user.js';

const MEMFD_PREFIX = '/memfd:';
const PROT_RW = PROT_READ | PROT_WRITE;

/** Per dump: memfd inodes already written (inode number → inode_id), MEMFD entries made for mappings (inode_id → file id). */
const DUMPED = stateKey<{ byIno: Map<number, number>; next: number; mappingFile: Map<number, number> }>('memfd:dumped');

function dumpState(ctx: DumpContext): { byIno: Map<number, number>; next: number; mappingFile: Map<number, number> } {
  return ctx.memo(DUMPED, () => ({ byIno: new Map(), next: 1, mappingFile: new Map() }));
}

/**
 * The name in memfd.img: a memfd's own name, or, for a shared anonymous
 * object ("/dev/zero (deleted)"), the path the kernel shows, as CRIU 4.2
 * writes it ("/dev/zero": a leading slash no memfd link has).
 */
export function memfdName(link: string): string {
  const name = link.startsWith(MEMFD_PREFIX) ? link.slice(MEMFD_PREFIX.length) : link;
  return name.replace(/ \(deleted\)$/, '');
}

/** memfd.img's name for a shared anonymous object (MAP_SHARED|MAP_ANONYMOUS) opened as a file. */
const SHMEM_OBJECT_NAME = '/dev/zero';

/**
 * An fd opened on a shared anonymous mapping through /proc/PID/map_files:
 * a file of the kernel's shmem mount, shown as a deleted /dev/zero (a real
 * /dev/zero is a character device).
 */
function isSharedAnonFd(p: FdProbe): boolean {
  return p.link === `${SHMEM_OBJECT_NAME} (deleted)` && p.stat.isFile() && p.stat.dev === shmemDev();
}

/** Whether an inode entry stands for a shared anonymous object rather than a memfd (its fds and mappings open that object). */
function isSharedAnonInode(ctx: RestoreContext, ie: MemfdInodeEntry): boolean {
  // (an older criu-ts image names one "dev/zero": some task maps it shared then, which the memory kind knows)
  return (ie.name === SHMEM_OBJECT_NAME && ie.hugetlb_flag === undefined) || isSharedAnonObject(ctx, BigInt(ie.shmid));
}

/** The shmem inode (st_ino at dump) behind a MEMFD file entry. */
export function memfdShmid(ctx: RestoreContext, m: MemfdFileEntry): bigint {
  return BigInt(inodeEntry(ctx, m.inode_id).shmid);
}

export const memfdKind: FileKind = {
  name: 'memfd',
  type: 'MEMFD',
  detect: (p: FdProbe) => (p.link.startsWith(MEMFD_PREFIX) && p.stat.isFile()) || isSharedAnonFd(p),
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    // The inode is read through a read-only open of our own: the task's
    // description may be write-only, and its offset is the task's (the
    // SEEK_DATA/SEEK_HOLE walk would move it; a dump with -R or a
    // pre-dump leaves the task running with it).
    const inodeId = inodeIdOf(
      ctx,
      { pid: p.pid, what: `fd ${p.fd}`, link: p.link, stat: p.stat, fd: p.localFd },
      () => openSync(`/proc/${p.pid}/fd/${p.fd}`, 'r'),
    );
    const memfd: MemfdFileEntry = { id, flags: p.fdinfo.flags & ~O_CLOEXEC, pos: p.fdinfo.pos, fown: NO_FOWN, inode_id: inodeId };
    return { type: 'MEMFD', id, memfd };
  },
  // --inherit-fd fd[N]:/memfd:NAME, as CRIU names a memfd (its link without " (deleted)"); a shared anonymous object has no key.
  inheritKey: (e, ctx) => {
    if (e.memfd === undefined) return undefined;
    const ie = inodeEntry(ctx, e.memfd.inode_id);
    return isSharedAnonInode(ctx, ie) ? undefined : `${MEMFD_PREFIX}${ie.name}`;
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const m = part(e, 'memfd', 'MEMFD');
    const fd = openMemfd(t, m, m.flags, ctx);
    if (m.pos !== 0n) t.syscall('lseek', NR.lseek, fd, m.pos, SEEK_SET);
    return fd;
  },
};

/**
 * For the memory kind: the MEMFD file entry behind a shared mapping of a
 * memfd (VMA_AREA_MEMFD, whose shmid is this file id, as CRIU 4.2 writes
 * it), read through /proc/PID/map_files. One entry per inode per dump,
 * sharing the inode entry with fds of the same memfd.
 */
export function memfdFileForMapping(ctx: DumpContext, pid: number, start: bigint, end: bigint, path: string): number {
  const mapFile = `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
  const fd = openSync(mapFile, 'r');
  try {
    const stat = fstatSync(fd);
    const inodeId = inodeIdOf(ctx, { pid, what: `mapping ${mapFile}`, link: path, stat, fd }, () => fd);
    const st = dumpState(ctx);
    let id = st.mappingFile.get(inodeId);
    if (id === undefined) {
      id = ctx.addFile((i) => ({ type: 'MEMFD', id: i, memfd: { id: i, flags: 0, pos: 0n, fown: NO_FOWN, inode_id: inodeId } }));
      st.mappingFile.set(inodeId, id);
    }
    return id;
  } finally {
    closeSync(fd);
  }
}

/**
 * For the memory kind: an fd in the task on the memfd of entry `m`, opened
 * with `flags` (a VMA's fdflags): the inode is created on first use and
 * reopened afterwards (the inodes made are kept in the restore context,
 * so fds of the same memfd restored later find them).
 */
export function openMemfd(t: RestoreTaskHandle, m: MemfdFileEntry, flags: number, ctx: RestoreContext): number {
  const inodes = ctx.state(INODES, () => new Map<number, { pid: number; ino: number }>());
  const made = inodes.get(m.inode_id);
  if (made) return reopen(t, procFdOf(made.pid, made.ino, t.pid), flags);
  const ie = inodeEntry(ctx, m.inode_id);
  // The very object its mappings use, not a copy (the memory kind keeps track of it).
  if (isSharedAnonInode(ctx, ie)) {
    const fd = openSharedAnonFd(t, BigInt(ie.shmid), flags & ~O_CLOEXEC, ie.size, ctx);
    setOwnerAndMode(`/proc/${t.pid}/fd/${fd}`, ie, ctx);
    return fd;
  }
  const created = createInode(t, ie, ctx);
  inodes.set(m.inode_id, { pid: t.pid, ino: created.ino });
  if ((flags & ~O_LARGEFILE) === O_RDWR) return created.fd;
  const again = reopen(t, `/proc/self/fd/${created.fd}`, flags);
  t.syscall('close', NR.close, created.fd);
  return again;
}

interface InodeSource {
  pid: number;
  /** for messages: "fd 5", "mapping ..." */
  what: string;
  link: string;
  stat: Stats;
  /** an fd of ours on the inode, for F_GET_SEALS */
  fd: number;
}

/** The inode_id of a memfd inode in this dump; its entry and contents are written on first sight. */
function inodeIdOf(ctx: DumpContext, src: InodeSource, readFd: () => number): number {
  const st = dumpState(ctx);
  let inodeId = st.byIno.get(src.stat.ino);
  if (inodeId === undefined) {
    inodeId = st.next++;
    st.byIno.set(src.stat.ino, inodeId);
    const fd = readFd();
    try {
      dumpInode(ctx, src, fd, inodeId);
    } finally {
      if (fd !== src.fd) closeSync(fd);
    }
  }
  return inodeId;
}

/**
 * MFD_HUGETLB with the page size (log2 in bits 26-31) for a memfd on
 * hugetlbfs, as memfd_inode_entry.hugetlb_flag; undefined for a plain one.
 */
function hugetlbFlagOf(fd: number): { flag: number; pageSize: number } | undefined {
  const st = statfsSync(`/proc/self/fd/${fd}`);
  if (st.type !== HUGETLBFS_MAGIC) return undefined;
  return { flag: MFD_HUGETLB | (Math.round(Math.log2(st.bsize)) << MFD_HUGE_SHIFT), pageSize: st.bsize };
}

function dumpInode(ctx: DumpContext, src: InodeSource, readFd: number, inodeId: number): void {
  const huge = hugetlbFlagOf(src.fd);
  const ie: MemfdInodeEntry = {
    name: memfdName(src.link),
    uid: treeUid(ctx, src.stat.uid),
    gid: treeGid(ctx, src.stat.gid),
    size: BigInt(src.stat.size),
    shmid: src.stat.ino,
    seals: fcntl(src.fd, F_GET_SEALS),
    inode_id: BigInt(inodeId),
    mode: src.stat.mode,
    ...(huge ? { hugetlb_flag: huge.flag } : {}),
  };
  ctx.emit('MEMFD_INODE', ie);
  // A shared anonymous object whose mapping the memory kind saved already.
  const saved = shmemPagesSaved(ctx);
  if (saved.has(BigInt(src.stat.ino))) return;
  saved.add(BigInt(src.stat.ino));
  let runs = readDataRuns(readFd, src.stat.size);
  // hugetlbfs calls the whole file data (and reads holes as zeros): keep
  // only huge pages that hold some, so a restore takes no more from the pool.
  if (huge) runs = nonZeroPages(runs, huge.pageSize);
  writeShmemPages(ctx, src.stat.ino, runs);
}

/** The file's data, page-aligned runs that hold data (holes are left out). */
function readDataRuns(fd: number, size: number): DataRun[] {
  const runs: DataRun[] = [];
  let off = 0;
  while (off < size) {
    let start: number;
    try {
      start = lseek(fd, off, SEEK_DATA);
    } catch {
      break; // ENXIO: only a hole is left
    }
    const end = Math.min(lseek(fd, start, SEEK_HOLE), size);
    const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
    const last = Math.ceil(end / PAGE_SIZE) * PAGE_SIZE;
    const data = Buffer.alloc(last - first);
    let got = 0;
    while (got < end - first) {
      const n = readSync(fd, data, got, end - first - got, first + got);
      if (n === 0) break;
      got += n;
    }
    runs.push({ offset: first, data });
    off = last;
  }
  return runs;
}

/** The parts of runs that are not all zeros, cut in pages of `size` bytes (offsets stay aligned to it). */
function nonZeroPages(runs: readonly DataRun[], size: number): DataRun[] {
  const out: DataRun[] = [];
  const zero = Buffer.alloc(size);
  for (const r of runs) {
    for (let at = 0; at < r.data.length; at += size) {
      const end = Math.min(at + size, r.data.length);
      if (r.data.compare(zero, 0, end - at, at, end) === 0) continue;
      const last = out[out.length - 1];
      if (last && last.offset + last.data.length === r.offset + at) last.data = Buffer.concat([last.data, r.data.subarray(at, end)]);
      else out.push({ offset: r.offset + at, data: r.data.subarray(at, end) });
    }
  }
  return out;
}

/** memfd inodes created in this restore: inode_id → the task and inode number that hold it */
const INODES = stateKey<Map<number, { pid: number; ino: number }>>('memfd:inodes');

function inodeEntry(ctx: RestoreContext, inodeId: number): MemfdInodeEntry {
  const ie = ctx.kindImage('MEMFD_INODE').entries.find((x) => Number(x.inode_id) === inodeId);
  if (!ie) throw new CriuTsError('EIMAGE', `${imageFile('MEMFD_INODE')} has no inode ${inodeId}`, { inodeId });
  return ie;
}

function createInode(t: RestoreTaskHandle, ie: MemfdInodeEntry, ctx: RestoreContext): { fd: number; ino: number } {
  // A memfd made without MFD_ALLOW_SEALING carries exactly F_SEAL_SEAL.
  const sealable = ie.seals !== F_SEAL_SEAL;
  const huge = ie.hugetlb_flag ?? 0;
  const fd = Number(t.syscall(`memfd_create ${ie.name}`, NR.memfd_create, t.putString(ie.name), (sealable ? MFD_ALLOW_SEALING : 0) | huge));
  const pidfd = pidfdOpen(t.pid);
  let local = -1;
  try {
    local = pidfdGetfd(pidfd, fd, t.pid);
    ftruncateSync(local, Number(ie.size));
    if (huge !== 0) {
      // hugetlbfs has no write(2): the contents go in through a mapping in the task.
      fillThroughMapping(t, fd, Number(ie.size), readShmemPages(ctx, ie.shmid));
    } else {
      for (const run of readShmemPages(ctx, ie.shmid)) {
        let done = 0;
        while (done < run.data.length) done += writeSync(local, run.data, done, run.data.length - done, run.offset + done);
      }
    }
    // The pages of the last run reach past the size: cut back to it.
    ftruncateSync(local, Number(ie.size));
    const st = fstatSync(local);
    setOwnerAndMode(local, ie, ctx);
    if (sealable && ie.seals !== 0) fcntl(local, F_ADD_SEALS, ie.seals);
    return { fd, ino: st.ino };
  } finally {
    if (local >= 0) closeQuiet(local);
    closeQuiet(pidfd);
  }
}

/** The inode's dumped owner and mode, through our fd or path on it. */
function setOwnerAndMode(on: number | string, ie: MemfdInodeEntry, ctx: RestoreContext): void {
  const fd = typeof on === 'number' ? on : openSync(on, 'r');
  try {
    const st = fstatSync(fd);
    const owner = hostOwner(ctx, ie.uid, ie.gid, `memfd ${ie.name}`);
    if (st.uid !== owner.uid || st.gid !== owner.gid) fchownSync(fd, owner.uid, owner.gid);
    if (ie.mode !== undefined && (st.mode & 0o7777) !== (ie.mode & 0o7777)) fchmodSync(fd, ie.mode & 0o7777);
  } finally {
    if (fd !== on) closeSync(fd);
  }
}

function fillThroughMapping(t: RestoreTaskHandle, fd: number, size: number, runs: readonly DataRun[]): void {
  if (runs.length === 0 || size === 0) return;
  const at = t.syscall('mmap(memfd)', NR.mmap, 0, size, PROT_RW, MAP_SHARED, fd, 0);
  try {
    for (const r of runs) {
      const len = Math.min(r.data.length, size - r.offset);
      if (len > 0) t.tracee.writeMem(at + BigInt(r.offset), r.data.subarray(0, len));
    }
  } finally {
    t.syscall('munmap(memfd)', NR.munmap, at, size);
  }
}

/** /proc path of the fd of `pid` that holds inode `ino` (a memfd), as the task `self` would open it. */
function procFdOf(pid: number, ino: number, self: number): string {
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    const path = `/proc/${pid}/fd/${name}`;
    try {
      if (statSync(path).ino === ino && readlinkSync(path).startsWith(MEMFD_PREFIX)) {
        return pid === self ? `/proc/self/fd/${name}` : path;
      }
    } catch {
      // closed meanwhile
    }
  }
  // Made for a mapping (the memory kind closes its fd after mmap): reach it through map_files.
  for (const name of readdirSync(`/proc/${pid}/map_files`)) {
    const path = `/proc/${pid}/map_files/${name}`;
    try {
      if (statSync(path).ino === ino) return path;
    } catch {
      // unmapped meanwhile
    }
  }
  throw new CriuTsError('ERESTORE', `memfd inode ${ino} is no longer open or mapped in task ${pid}`, { pid, ino });
}

function reopen(t: RestoreTaskHandle, path: string, flags: number): number {
  // Opened by us and handed over: the task's /proc, if any, is its own pid namespace's.
  return openOursInTask(t, path.replace(/^\/proc\/self\//, `/proc/${t.pid}/`), flags & ~O_CLOEXEC);
}

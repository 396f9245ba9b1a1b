/**
 * The dump side of unlinked files: which remap a file entry gets (a ghost
 * copied into ghost-file-<gid>.img, a link remap, a dead /proc entry), and
 * the ghost image itself (index.ts has the whole story).
 */
import { openSync, fstatSync, statSync, readSync, closeSync, constants as FS } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import type { GhostFileEntry, GhostChunkEntry, RemapFilePathEntry } from '../../../images/messages.js';
import { lseek, readlinkFd, PID_MAX_LIMIT, O_PATH, SEEK_DATA, SEEK_HOLE } from '../../../sys/index.js';
import type { DumpContext } from '../../types.js';
import { logger } from '../../../log.js';
import { treeGid, treeUid } from '../../ns/user.js';
import { GHOSTS, S_IFMT, S_IFDIR, S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFLNK } from './common.js';
import { dumpLinkRemap } from './link-remap.js';

const log = logger('ghost');

const ST_UNIT = 512n;

/**
 * File entry `fileId` names `name`, which no longer exists; `openPath` (a
 * /proc fd, map_files or cwd link) reaches the inode. Records how the
 * restore gets it back: a ghost (nlink 0) or a link remap (--link-remap).
 */
export function dumpUnlinked(ctx: DumpContext, fileId: number, name: string, openPath: string, what: string): void {
  if (name === '/proc' || name.startsWith('/proc/')) {
    dumpDeadProcEntry(ctx, fileId, name, what);
    return;
  }
  const st = statSync(openPath, { bigint: true });
  if (st.nlink === 0n) {
    dumpGhost(ctx, fileId, name, openPath, what);
    return;
  }
  if (!ctx.opts.linkRemap) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${name} was unlinked but is still linked elsewhere (nlink ${st.nlink}); use --link-remap`, { id: fileId, name });
  }
  // The temporary name goes where the task sees the file: in its mount namespace, not ours.
  const holder = Number(/^\/proc\/(\d+)\//.exec(openPath)?.[1] ?? process.pid);
  dumpLinkRemap(ctx, fileId, name, openPath, holder, what);
}

/**
 * A /proc/PID entry (the directory or a file under it) of a process that
 * exited and was reaped: its dentry is unhashed, so the name reads
 * "(deleted)". As CRIU does, the restore stands in a helper task with that
 * pid while the files are opened and lets it go afterwards, which leaves the
 * same dead entry. PID is as the task sees it (its /proc), which is the pid
 * the helper gets in the tree's pid namespace.
 */
function dumpDeadProcEntry(ctx: DumpContext, fileId: number, name: string, what: string): void {
  const m = /^\/proc\/([1-9][0-9]*)(\/|$)/.exec(name);
  const pid = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(pid) || pid > PID_MAX_LIMIT) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${name} is a removed /proc entry that is not a process's directory; criu-ts cannot restore it`, { id: fileId, name });
  }
  const remap: RemapFilePathEntry = { orig_id: fileId, remap_id: pid, remap_type: 'PROCFS' };
  ctx.emit('REMAP_FPATH', remap);
  log.debug(`${what}: ${name} belongs to pid ${pid}, which exited: a helper with that pid stands in at restore`);
}

/** Copy the unlinked inode reachable at `openPath` into the images (once per inode) and remap file `id` to it. */
function dumpGhost(ctx: DumpContext, id: number, name: string, openPath: string, what: string): void {
  const ghosts = ctx.memo(GHOSTS, () => ({ byInode: new Map<string, number>(), next: 1 }));
  const st = statSync(openPath, { bigint: true });
  const key = `${st.dev}:${st.ino}`;
  let gid = ghosts.byInode.get(key);
  if (gid === undefined) {
    gid = ghosts.next++;
    writeGhostImage(ctx, gid, name, openPath, what);
    ghosts.byInode.set(key, gid);
  }
  const remap: RemapFilePathEntry = { orig_id: id, remap_id: gid, remap_type: 'GHOST' };
  ctx.emit('REMAP_FPATH', remap);
}

function timeval(sec: bigint, ns: bigint): { tv_sec: bigint; tv_usec: bigint } {
  return { tv_sec: sec, tv_usec: (ns % 1000000000n) / 1000n };
}

function writeGhostImage(ctx: DumpContext, gid: number, name: string, openPath: string, what: string): void {
  const ghostLimit = ctx.opts.ghostLimit;
  const st = statSync(openPath, { bigint: true });
  const mode = Number(st.mode);
  const g: GhostFileEntry = {
    uid: treeUid(ctx, Number(st.uid)), gid: treeGid(ctx, Number(st.gid)), mode, dev: Number(st.dev & 0xffffffffn), ino: st.ino,
    atim: timeval(st.atimeMs / 1000n, st.atimeNs), mtim: timeval(st.mtimeMs / 1000n, st.mtimeNs),
  };
  const type = mode & S_IFMT;
  if (type === S_IFDIR || type === S_IFIFO) {
    ctx.saveImage('GHOST_FILE', gid, [g]);
    return;
  }
  if (type === S_IFCHR || type === S_IFBLK) {
    g.rdev = Number(st.rdev & 0xffffffffn);
    ctx.saveImage('GHOST_FILE', gid, [g]);
    return;
  }
  if (type === S_IFLNK) {
    // The /proc fd link, followed, is the symlink itself: its target is read through an O_PATH fd on it.
    const fd = openSync(openPath, O_PATH);
    try {
      g.symlnk_target = readlinkFd(fd);
    } finally {
      closeSync(fd);
    }
    ctx.saveImage('GHOST_FILE', gid, [g]);
    return;
  }
  if (type !== S_IFREG) throw new CriuTsError('EUNSUPPORTED', `${what}: ${name} is unlinked and of a type criu-ts cannot recreate (mode 0${mode.toString(8)})`, { name, mode });
  const allocated = st.blocks * ST_UNIT;
  if (allocated > BigInt(ghostLimit)) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: unlinked file ${name} takes ${allocated} bytes on disk, more than --ghost-limit ${ghostLimit}`, { name, size: allocated });
  }
  g.chunks = true;
  g.size = st.size;
  const entries: [GhostFileEntry, ...GhostChunkEntry[]] = [g];
  const payloads: (Buffer | undefined)[] = [undefined];
  const fd = openSync(openPath, FS.O_RDONLY);
  try {
    const size = Number(fstatSync(fd, { bigint: true }).size);
    let total = 0;
    for (let off = 0; off < size;) {
      let start: number;
      try {
        start = lseek(fd, off, SEEK_DATA);
      } catch {
        break; // ENXIO: nothing but a hole up to the end
      }
      if (start >= size) break;
      const end = Math.min(lseek(fd, start, SEEK_HOLE), size);
      total += end - start;
      // A file system without hole reporting calls everything data: the blocks still bound what we copy.
      if (total > ghostLimit && BigInt(total) > allocated) {
        throw new CriuTsError('EUNSUPPORTED', `${what}: unlinked file ${name} has more than --ghost-limit ${ghostLimit} bytes of data`, { name });
      }
      const data = Buffer.alloc(end - start);
      for (let got = 0; got < data.length;) {
        const n = readSync(fd, data, got, data.length - got, start + got);
        if (n <= 0) throw new CriuTsError('EDUMP', `${what}: unlinked file ${name} shrank while it was read`, { name });
        got += n;
      }
      const chunk: GhostChunkEntry = { len: BigInt(data.length), off: BigInt(start) };
      entries.push(chunk);
      payloads.push(data);
      off = end;
    }
    ctx.saveImage('GHOST_FILE', gid, entries, payloads);
    log.debug(`${what}: ghost ${name} (${size} bytes, ${total} of data in ${entries.length - 1} runs) as ghost ${gid.toString(16)}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * An fsnotify watch or mark on the unlinked inode (dev, ino as stat gives
 * them): it can come back only on the ghost a task of the dump makes of
 * that inode (an fd, a mapping, a cwd). Checked once every task is dumped.
 */
export function requireGhostOf(ctx: DumpContext, inode: { dev: bigint; ino: bigint }, what: string): void {
  ctx.atEnd(() => {
    const ghosts = ctx.memo(GHOSTS, () => ({ byInode: new Map<string, number>(), next: 1 }));
    if (!ghosts.byInode.has(`${inode.dev}:${inode.ino}`)) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: the watched inode was unlinked and no task of the dump holds it open`, { ino: inode.ino });
    }
  });
}

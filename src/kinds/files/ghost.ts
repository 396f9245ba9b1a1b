/**
 * Files whose name is gone while a task still holds them (open, mapped, or
 * as cwd). Two remaps, as CRIU (remap-fpath.img says which file entry is
 * backed by what):
 *
 * - GHOST: the inode has no name left (nlink 0). Its contents travel in
 *   ghost-file-<gid>.img: a ghost_file_entry (type, mode with suid/sgid,
 *   owner, times, size, rdev) then, for a regular file, its data runs as
 *   ghost_chunk_entry + bytes, found with SEEK_DATA/SEEK_HOLE so holes stay
 *   holes. One ghost per inode (dev, ino) for the whole dump: every fd,
 *   mapping and cwd of that inode in every task points at it, so the restore
 *   makes one inode again. --ghost-limit is compared with the blocks the
 *   file really takes (st_blocks * 512), not its apparent size.
 * - LINKED (--link-remap): the name is gone but the inode is still linked
 *   elsewhere (nlink > 0). The dump gives it a temporary hard link
 *   `link_remap.<id>` in its old directory (linkat through /proc), recorded
 *   as a REG entry; the restore opens that name and removes it afterwards.
 *
 * At restore a ghost is created at its old path if that name is free (so
 * the task's fd reads "NAME (deleted)" again, as after CRIU's restore),
 * else next to it (`<path>.cr.<gid>.ghost`; a directory at its own path,
 * missing parents made), everybody opens it, and it is removed again once
 * the restore is over. In a tree of its own mount namespace all of this
 * happens in that namespace, once its root task has built it
 * (tree-paths.ts).
 *
 * An unlinked symlink (held by an O_PATH|O_NOFOLLOW fd) keeps its target in
 * symlnk_target, as CRIU; it comes back as a symlink the task reopens
 * through our fd's magic link, followed once: that lands on the symlink
 * itself.
 *
 * Known limits: an unlinked socket inode is refused; a ghost symlink's
 * times are not kept; a ghost on a read-only mount can be made only in a
 * tree's own mount namespace (ghost-rofs.ts); there, ghosts left by a criu-ts killed during
 * the restore are not removed by its guardian (they stay under --root).
 */
import { openSync, symlinkSync, fstatSync, statSync, readSync, closeSync, writeSync, ftruncateSync, fchownSync, fchmodSync, chownSync, chmodSync, mkdirSync, rmSync, rmdirSync, unlinkSync, constants as FS } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { CriuTsError } from '../../errors.js';
import { treePathsOf, closeTreeFds, type TreePaths } from './tree-paths.js';
import type { GhostFileEntry, GhostChunkEntry, RemapFilePathEntry } from '../../images/messages.js';
import {
  lseek, mknod, linkOpenFile, futimens, isSyscallError, closeQuiet, openPathNoFollow, utimensFollow, readlinkFd,
  fchownFd, PID_MAX_LIMIT, type FileTimes, O_PATH, O_NOFOLLOW, SEEK_DATA, SEEK_HOLE,
} from '../../sys/index.js';
import { stateKey, type DumpContext, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { writableWhileRestoring, removeBeforeReadOnly } from './ghost-rofs.js';
import { imageFile } from '../../images/index.js';
import { logger } from '../../log.js';
import { hostOwner, treeGid, treeUid } from '../ns/user.js';

const log = logger('ghost');

export const DELETED_SUFFIX = ' (deleted)';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFLNK = 0o120000;
const ST_UNIT = 512n;
/** Old images say "ghost" with this bit of remap_id instead of remap_type. */
const REMAP_GHOST_BIT = 0x80000000;

/** Ghosts of this dump: one per inode ("dev:ino" → ghost id). */
const GHOSTS = stateKey<{ byInode: Map<string, number>; next: number }>('ghost:files');

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

/**
 * At restore: the pids whose /proc entries the dump saw dead (PROCFS
 * remaps). The plan adds a short-lived helper task for each.
 */
export function deadProcPids(ctx: RestoreContext): number[] {
  const pids = new Set<number>();
  for (const r of ctx.kindImage('REMAP_FPATH').entries) {
    if (r.remap_type !== 'PROCFS' && r.remap_type !== 2) continue;
    if (!Number.isSafeInteger(r.remap_id) || r.remap_id < 1 || r.remap_id > PID_MAX_LIMIT) {
      throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} names dead pid ${r.remap_id}, which is not a pid`, { id: r.orig_id });
    }
    pids.add(r.remap_id);
  }
  return [...pids].sort((a, b) => a - b);
}

function dumpLinkRemap(ctx: DumpContext, fileId: number, name: string, openPath: string, holder: number, what: string): void {
  let linkPath = '';
  const fds: number[] = [];
  let made = '';
  const lid = ctx.addFile((id) => {
    // Any unique name works: the restore finds it by file id. The parent may be gone too: go up.
    let dir = dirname(name);
    for (;;) {
      linkPath = join(dir, `link_remap.${id}`);
      try {
        // linkat never follows the new name; its directory is the task's (tree-paths.ts).
        made = treePathsOf(holder, fds).at(linkPath);
        linkOpenFile(openPath, made);
        break;
      } catch (e) {
        if (!isSyscallError(e) || e.errno !== 2 /* ENOENT */ || dir === '/') {
          closeTreeFds(fds);
          throw new CriuTsError('EDUMP', `${what}: cannot link ${name} as ${linkPath}: ${(e as Error).message}`, { id: fileId, name }, e);
        }
        dir = dirname(dir);
      }
    }
    return { type: 'REG', id, reg: { id, flags: 0, pos: 0n, fown: { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 }, name: linkPath } };
  });
  // The link must outlive the dump only when the tasks are gone and a restore needs it.
  ctx.atExit((tasksLive) => {
    try {
      if (tasksLive) rmSync(made, { force: true });
    } finally {
      closeTreeFds(fds);
    }
  });
  const remap: RemapFilePathEntry = { orig_id: fileId, remap_id: lid, remap_type: 'LINKED' };
  ctx.emit('REMAP_FPATH', remap);
  log.debug(`${what}: ${name} linked as ${linkPath} (file ${lid})`);
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

/** What a restore created for remaps, to remove once it is over. */
export interface MaterializedRemaps {
  /**
   * ghost files and directories, then directories made for them (removed
   * in this order), as criu-ts reaches them: in a tree of its own mount
   * namespace, through fds of `fds` (remove them before closing those)
   */
  ghosts: string[];
  /** link_remap.N names made by the dump, as `ghosts`: removed after a successful restore only (a retry needs them) */
  links: string[];
  /**
   * our O_PATH fds on the ghosts (the tasks open them through
   * /proc/<us>/fd/N, never by name: docs/security.md) and on the tree's
   * directories; closed by removeRemapFds
   */
  fds: number[];
  /** made in a mount namespace other than ours: the names are fd links, meaningless to another process */
  foreign: boolean;
}

/** Close the fds that pinned the ghosts (after the restore, whatever its outcome). */
export function removeRemapFds(made: MaterializedRemaps): void {
  closeTreeFds(made.fds);
}

/**
 * The ghost we just made at `path`, held by an O_PATH|O_NOFOLLOW fd: it must
 * be of the type we made and ours (root's, or the very inode `ino`), so a
 * name swapped by a user who owns the directory is refused, never used.
 * Returns the path the tasks open: our fd's magic link, which names this
 * inode whatever happens to the name meanwhile.
 */
function pinGhost(path: string, type: number, fds: number[], ino?: number | bigint): { fd: number; reopen: string } {
  const fd = openPathNoFollow(path);
  const st = fstatSync(fd, { bigint: true });
  const mine = ino === undefined ? st.uid === 0n : st.ino === BigInt(ino);
  if ((Number(st.mode) & S_IFMT) !== type || !mine) {
    closeQuiet(fd);
    throw new CriuTsError('ERESTORE', `ghost ${path} was replaced by another file while being made`, { path });
  }
  fds.push(fd);
  return { fd, reopen: `/proc/${process.pid}/fd/${fd}` };
}

/**
 * Before any task opens a file: create every ghost once (per ghost id) and
 * point each file entry remapped to it, or to a link remap, at the name to
 * open. The names are the tree's: with `tree`, the restored tree's root
 * task once it built its mount namespace, they are made in that namespace
 * (tree-paths.ts; a read-only mount there is made writable meanwhile,
 * ghost-rofs.ts); without, in ours.
 */
export function materializeRemaps(ctx: RestoreContext, tree?: RestoreTaskHandle): MaterializedRemaps {
  const made: MaterializedRemaps = { ghosts: [], links: [], fds: [], foreign: false };
  const ghostPaths = new Map<number, string>();
  try {
    const paths = treePathsOf(tree?.pid ?? process.pid, made.fds);
    made.foreign = paths.foreign;
    for (const r of ctx.kindImage('REMAP_FPATH').entries) {
      let type = r.remap_type as string | number | undefined;
      let remapId = r.remap_id;
      if (type === undefined) {
        type = (remapId & REMAP_GHOST_BIT) !== 0 ? 'GHOST' : 'LINKED';
        remapId = (remapId & ~REMAP_GHOST_BIT) >>> 0;
      }
      const f = ctx.fileById(r.orig_id);
      if (!f?.reg) throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} is not a regular file entry`, { id: r.orig_id });
      if (type === 'GHOST' || type === 1) {
        let path = ghostPaths.get(remapId);
        if (path === undefined) {
          path = createGhost(ctx, remapId, f.reg.name, paths, made.ghosts, made.fds, tree);
          ghostPaths.set(remapId, path);
        }
        f.reg.name = path;
        // A symlink ghost is reached by following our fd's magic link once (which lands on the link itself).
        if (ghostIsSymlink(ctx, remapId)) f.reg.flags &= ~O_NOFOLLOW;
      } else if (type === 'LINKED' || type === 0) {
        const link = ctx.fileById(remapId)?.reg?.name;
        if (link === undefined) throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: link remap ${remapId} of file ${r.orig_id} is missing`, { id: r.orig_id });
        f.reg.name = link;
        const ours = paths.at(link);
        if (!made.links.includes(ours)) made.links.push(ours);
      } else if (type === 'PROCFS' || type === 2) {
        // Opened by its own name while the helper with that pid lives (deadProcPids).
      } else {
        throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} (${f.reg.name}) has unknown remap type ${String(type)}`, { id: r.orig_id });
      }
    }
  } catch (e) {
    removeGhosts(made.ghosts);
    removeRemapFds(made);
    throw e;
  }
  return made;
}

function ghostIsSymlink(ctx: RestoreContext, gid: number): boolean {
  const g = ctx.image('GHOST_FILE', gid)?.entries[0];
  return g !== undefined && (g.mode & S_IFMT) === S_IFLNK;
}

/**
 * Make ghost `gid` near `orig` (the tree's name, reached through `paths`);
 * returns the path to open. Everything created is pushed onto `created`,
 * our fds on `fds`.
 */
function createGhost(ctx: RestoreContext, gid: number, orig: string, paths: TreePaths, created: string[], fds: number[], tree?: RestoreTaskHandle): string {
  const file = imageFile('GHOST_FILE', gid);
  const img = ctx.image('GHOST_FILE', gid);
  if (!img) throw new CriuTsError('ENOIMAGE', `${file}: no such image`, { id: gid });
  const [dumped, ...chunks] = img.entries;
  // The image holds the owner as the tree saw it; we chown from outside.
  const g: GhostFileEntry = { ...dumped, ...hostOwner(ctx, dumped.uid, dumped.gid, `ghost ${orig}`) };
  const type = g.mode & S_IFMT;
  const perm = g.mode & 0o7777;
  if (type === S_IFDIR) {
    // A directory comes back at its own path (a removed cwd reads the same), missing parents made too.
    const name = paths.exists(orig) ? `${orig}.cr.${gid.toString(16)}.ghost` : orig;
    const path = reachable(paths, name);
    const made = mkdirSync(path, { recursive: true, mode: 0o700 });
    const parents: string[] = [];
    if (made !== undefined) for (let d = dirname(path); d.length >= made.length; d = dirname(d)) parents.push(d);
    created.push(path);
    // Parents after the ghost itself: they are removed in that order.
    created.push(...parents);
    const pin = pinGhost(path, S_IFDIR, fds);
    applyMetadata(pin.fd, g, perm);
    return pin.reopen;
  }
  let dir = dirname(orig);
  const temp = `${basename(orig)}.cr.${gid.toString(16)}.ghost`;
  // First the file's own name, if free: the task's fd then reads "NAME
  // (deleted)" again, as after CRIU's restore. Else a temporary name.
  let own = true;
  let rofs: number | undefined; // the read-only mount made writable for it
  for (;;) {
    const name = join(dir, own ? basename(orig) : temp);
    let path = name;
    let ino: bigint | undefined;
    try {
      path = paths.at(name);
      if (type === S_IFREG) ino = writeRegGhost(path, g, chunks, img.extras.slice(1), perm);
      else if (type === S_IFIFO) mknod(path, S_IFIFO | 0o600);
      else if (type === S_IFLNK) {
        if (g.symlnk_target === undefined) throw new CriuTsError('EIMAGE', `${file}: a symlink without its target`, { id: gid });
        symlinkSync(g.symlnk_target, path);
      }
      else if (type === S_IFCHR || type === S_IFBLK) {
        if (g.rdev === undefined) throw new CriuTsError('EIMAGE', `${file}: a device without rdev`, { id: gid });
        mknod(path, type | 0o600, g.rdev);
      } else {
        throw new CriuTsError('EUNSUPPORTED', `ghost ${orig}: file type 0${type.toString(8)} cannot be recreated`, { id: gid });
      }
    } catch (e) {
      const errno = (e as { errno?: number; code?: string }).errno;
      const code = (e as { code?: string }).code;
      if (own && (code === 'EEXIST' || errno === 17)) {
        own = false;
        continue;
      }
      if ((code === 'EROFS' || errno === 30) && paths.foreign && tree !== undefined) {
        rofs = paths.mountOf(dir);
        writableWhileRestoring(tree, ctx, rofs, orig);
        continue;
      }
      const enoent = code === 'ENOENT' || errno === 2;
      if (enoent && dir !== '/') {
        dir = dirname(dir); // the parent is gone too: as CRIU, try the grandparent
        own = false;
        continue;
      }
      throw new CriuTsError('ERESTORE', `cannot create ghost ${name}: ${(e as Error).message}`, { path: name }, e);
    }
    created.push(path);
    if (rofs !== undefined) removeBeforeReadOnly(ctx, rofs, path);
    const pin = pinGhost(path, type, fds, ino);
    if (type === S_IFLNK) fchownFd(pin.fd, g.uid, g.gid); // a symlink has no mode of its own
    else if (type !== S_IFREG) applyMetadata(pin.fd, g, perm);
    return pin.reopen;
  }
}

/**
 * The directory `path` of the tree for us: its deepest existing ancestor
 * resolved in the tree, then the missing components, which mkdir makes.
 */
function reachable(paths: TreePaths, path: string): string {
  if (!paths.foreign) return path;
  let have = dirname(path);
  while (have !== '/' && !paths.exists(have)) have = dirname(have);
  const rest = path.slice(have === '/' ? 1 : have.length + 1);
  return `${paths.dir(have)}/${rest}`;
}

/** A regular ghost: exclusive create, size, data runs at their offsets (holes stay holes), then owner, mode, times. */
function writeRegGhost(path: string, g: GhostFileEntry, chunks: GhostChunkEntry[], data: (Buffer | undefined)[], perm: number): bigint {
  const fd = openSync(path, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
  try {
    if (g.chunks === true) {
      ftruncateSync(fd, Number(g.size ?? 0n));
      chunks.forEach((c, i) => writeAll(fd, data[i] ?? Buffer.alloc(0), Number(c.off)));
    } else {
      // Old images: the whole contents follow the entry.
      writeAll(fd, data[0] ?? Buffer.alloc(0), 0);
      if (g.size !== undefined) ftruncateSync(fd, Number(g.size));
    }
    fchownSync(fd, g.uid, g.gid);
    // After chown, which clears suid/sgid.
    fchmodSync(fd, perm);
    const t = timesOf(g);
    if (t) futimens(fd, t);
    return fstatSync(fd, { bigint: true }).ino;
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, b: Buffer, at: number): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off, at + off);
}

/** The image keeps times as timevals (microseconds), as CRIU. */
function timesOf(g: GhostFileEntry): FileTimes | undefined {
  if (!g.atim || !g.mtim) return undefined;
  return {
    atimeSec: BigInt(g.atim.tv_sec), atimeNsec: BigInt(g.atim.tv_usec) * 1000n,
    mtimeSec: BigInt(g.mtim.tv_sec), mtimeNsec: BigInt(g.mtim.tv_usec) * 1000n,
  };
}

/** Owner, mode (after chown, which clears suid/sgid), times: through our O_PATH fd's magic link, never by name. */
function applyMetadata(pathFd: number, g: GhostFileEntry, perm: number): void {
  const viaFd = `/proc/self/fd/${pathFd}`;
  chownSync(viaFd, g.uid, g.gid);
  chmodSync(viaFd, perm);
  const t = timesOf(g);
  if (t) utimensFollow(viaFd, [t.atimeSec, t.atimeNsec], [t.mtimeSec, t.mtimeNsec]);
}

export function removeGhosts(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      unlinkSync(p);
    } catch {
      try {
        rmdirSync(p);
      } catch {
        // already gone, or a directory the task filled meanwhile
      }
    }
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

/** The kernel's dev_t (fdinfo's sdev) as major/minor. */
function kernelMajorMinor(sdev: number): [number, number] {
  return [sdev >>> 20, sdev & 0xfffff];
}

/** A stat dev_t (ghost_file_entry.dev) as major/minor. */
function userMajorMinor(dev: number): [number, number] {
  return [((dev >>> 8) & 0xfff), (dev & 0xff) | ((dev >>> 12) & 0xfff00)];
}

/**
 * At restore, after materializeRemaps: the path to reach the ghost made for
 * inode `ino` of device `sdev` (kernel encoding, as fsnotify images keep
 * it), or undefined when the dump has no ghost of it.
 */
export function ghostReopenPath(ctx: RestoreContext, sdev: number, ino: bigint): string | undefined {
  const [major, minor] = kernelMajorMinor(sdev);
  for (const r of ctx.kindImage('REMAP_FPATH').entries) {
    const type = r.remap_type as string | number | undefined;
    if (type !== 'GHOST' && type !== 1) continue;
    const g = ctx.image('GHOST_FILE', r.remap_id)?.entries[0];
    if (!g || g.ino === undefined || BigInt(g.ino) !== BigInt(ino) || g.dev === undefined) continue;
    const [gmaj, gmin] = userMajorMinor(g.dev);
    if (gmaj === major && gmin === minor) return ctx.fileById(r.orig_id)?.reg?.name;
  }
  return undefined;
}

/**
 * Making one ghost at restore: its own name if free, else a temporary name
 * beside it (a parent gone too: further up), created exclusively and never
 * through a link, then pinned by an O_PATH fd the tasks reopen.
 */
import { openSync, symlinkSync, fstatSync, closeSync, writeSync, ftruncateSync, fchownSync, fchmodSync, chownSync, chmodSync, mkdirSync } from 'node:fs';
import { constants as FS } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import type { GhostFileEntry, GhostChunkEntry } from '../../../images/messages.js';
import { mknod, futimens, closeQuiet, openPathNoFollow, utimensFollow, fchownFd, asMappedIfNeeded, type FileTimes } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { imageFile } from '../../../images/index.js';
import { hostOwner } from '../../ns/user.js';
import type { TreePaths } from '../tree-paths.js';
import { writableWhileRestoring, removeBeforeReadOnly } from './rofs.js';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFLNK } from './common.js';

/**
 * The ghost we just made at `path`, held by an O_PATH|O_NOFOLLOW fd: it must
 * be of the type we made and ours (made by fsuid `madeBy`, or the very
 * inode `ino`), so a
 * name swapped by a user who owns the directory is refused, never used.
 * Returns the path the tasks open: our fd's magic link, which names this
 * inode whatever happens to the name meanwhile.
 */
function pinGhost(path: string, type: number, fds: number[], madeBy: number, ino?: number | bigint): { fd: number; reopen: string } {
  const fd = openPathNoFollow(path);
  const st = fstatSync(fd, { bigint: true });
  const mine = ino === undefined ? st.uid === BigInt(madeBy) : st.ino === BigInt(ino);
  if ((Number(st.mode) & S_IFMT) !== type || !mine) {
    closeQuiet(fd);
    throw new CriuTsError('ERESTORE', `ghost ${path} was replaced by another file while being made`, { path });
  }
  fds.push(fd);
  return { fd, reopen: `/proc/${process.pid}/fd/${fd}` };
}

/**
 * Make ghost `gid` near `orig` (the tree's name, reached through `paths`);
 * returns the path to open and the tree's name it was made at. Everything created is pushed onto `created`,
 * our fds on `fds`.
 */
export function createGhost(ctx: RestoreContext, gid: number, orig: string, paths: TreePaths, created: string[], fds: number[], tree?: RestoreTaskHandle): { reopen: string; name: string; dir: boolean } {
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
    let made: string | undefined;
    const madeBy = asMappedIfNeeded(g.uid, g.gid, () => {
      made = mkdirSync(path, { recursive: true, mode: 0o700 });
    });
    const parents: string[] = [];
    if (made !== undefined) for (let d = dirname(path); d.length >= made.length; d = dirname(d)) parents.push(d);
    created.push(path);
    // Parents after the ghost itself: they are removed in that order.
    created.push(...parents);
    const pin = pinGhost(path, S_IFDIR, fds, madeBy);
    applyMetadata(pin.fd, g, perm);
    return { reopen: pin.reopen, name, dir: true };
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
    let madeBy = 0;
    try {
      path = paths.at(name);
      const make = (): void => {
        if (type === S_IFREG) ino = writeRegGhost(path, g, chunks, img.extras.slice(1), perm);
        else if (type === S_IFIFO) mknod(path, S_IFIFO | 0o600);
        else if (type === S_IFLNK) {
          if (g.symlnk_target === undefined) throw new CriuTsError('EIMAGE', `${file}: a symlink without its target`, { id: gid });
          symlinkSync(g.symlnk_target, path);
        } else if (type === S_IFCHR || type === S_IFBLK) {
          if (g.rdev === undefined) throw new CriuTsError('EIMAGE', `${file}: a device without rdev`, { id: gid });
          mknod(path, type | 0o600, g.rdev);
        } else {
          throw new CriuTsError('EUNSUPPORTED', `ghost ${orig}: file type 0${type.toString(8)} cannot be recreated`, { id: gid });
        }
      };
      // On a filesystem of the tree's user namespace, made as its owner (sys/fs-ids.ts).
      madeBy = asMappedIfNeeded(g.uid, g.gid, make);
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
    const pin = pinGhost(path, type, fds, madeBy, ino);
    if (type === S_IFLNK) fchownFd(pin.fd, g.uid, g.gid); // a symlink has no mode of its own
    else if (type !== S_IFREG) applyMetadata(pin.fd, g, perm);
    return { reopen: pin.reopen, name, dir: false };
  }
}

/**
 * The directory `path` of the tree for us: its deepest existing ancestor
 * resolved in the tree (in ours: following no user's symlink), then the
 * missing components, which mkdir makes.
 */
function reachable(paths: TreePaths, path: string): string {
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

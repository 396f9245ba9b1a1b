/**
 * The names of unix sockets at restore: binding a socket to its dumped name
 * (a path in the task's view of the file system, relative to the directory
 * it was bound from, or an abstract name in its net namespace), the owner
 * and mode of the socket file, and a name that was unlinked at dump: bound
 * again, reached through a temporary name while the restore runs, then
 * removed (with any directory made for it). Also how a socket is reached by
 * name, from a task or from our side.
 */
import { chmodSync, chownSync, closeSync, existsSync, fstatSync, linkSync, lstatSync, mkdirSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import { pathSeenBy } from '../../../proc/index.js';
import type { UnixSkEntry } from '../../../images/messages.js';
import {
  NR, AF_UNIX, AT_FDCWD, O_PATH, O_DIRECTORY, O_CLOEXEC, RESOLVE, closeQuiet, openPathNoFollow, openat2, openDir, asMappedIfNeeded,
} from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { heldFds } from '../../install-fd.js';
import { nameText } from './diag.js';
import { hostGid, hostOwner, hostUid } from '../../ns/user.js';
import { coveredDir } from '../../ns/mnt/index.js';
import { bindCovered } from './covered.js';

/** How errors name a socket of a task. */
export const what = (t: RestoreTaskHandle, u: UnixSkEntry): string => `task ${t.pid}: unix socket ${u.ino}`;

/** Absolute path of a socket bound to a path; undefined for unbound and abstract sockets. */
function pathOf(u: UnixSkEntry): string | undefined {
  if (u.name.length === 0 || u.name[0] === 0) return undefined;
  const n = nameText(u.name);
  return n.startsWith('/') || !u.name_dir ? n : `${u.name_dir}/${n}`;
}

function sockaddr(name: Buffer): Buffer {
  const b = Buffer.alloc(2 + name.length);
  b.writeUInt16LE(AF_UNIX, 0);
  name.copy(b, 2);
  return b;
}

/** The path a task reaches a socket by (a relative name made absolute); undefined for abstract names. */
function reachPath(u: UnixSkEntry, ctx: RestoreContext): string | undefined {
  // A socket whose name was unlinked at dump is reached through its temporary name while the restore runs.
  return ctx.state(NAMES, newNames).reach.get(u.ino) ?? pathOf(u);
}

/** Address for a task of the restore to reach a socket by. */
export function reachAddr(u: UnixSkEntry, ctx: RestoreContext): Buffer {
  const path = reachPath(u, ctx);
  return sockaddr(path === undefined ? u.name : Buffer.from(`${path}\0`));
}

/**
 * Run `fn` with an address by which criu-ts reaches socket `u` as task
 * `pid` sees it. A path is the task's (its root, in its mount namespace):
 * it is opened O_PATH inside that root (symlinks resolved as the task's
 * would be) and given as /proc/self/fd/N, which connect() follows to the
 * socket. An abstract name belongs to a net namespace: the socket `fn`
 * uses must be one made in the task's (`socketIn`).
 */
export function withReach<T>(pid: number, u: UnixSkEntry, ctx: RestoreContext, fn: (addr: Buffer) => T): T {
  // Bound under a mount that covers its name: only our fd of its file reaches it.
  const covered = coveredFiles(ctx).get(u.ino);
  if (covered !== undefined) return fn(sockaddr(Buffer.from(`/proc/self/fd/${covered}\0`)));
  const path = reachPath(u, ctx);
  if (path === undefined) return fn(sockaddr(u.name));
  const root = openDir(`/proc/${pid}/root`);
  let fd: number;
  try {
    fd = openat2(root, path, O_PATH | O_CLOEXEC, 0, RESOLVE.IN_ROOT);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${pid}: unix socket ${u.ino}: ${path}: ${(e as Error).message}`, { path }, e);
  } finally {
    closeSync(root);
  }
  try {
    return fn(sockaddr(Buffer.from(`/proc/self/fd/${fd}\0`)));
  } finally {
    closeSync(fd);
  }
}

/**
 * Names of sockets whose own name was unlinked at dump: the path each bound
 * (by inode), the temporary name others reach it by, and what to remove once
 * every file is done (temporary names first, then directories made for them).
 */
interface Names {
  bound: Map<number, string>;
  reach: Map<number, string>;
  temps: string[];
  dirs: string[];
  /** a path as the tasks see it, as criu-ts reaches it (through the root's /proc/PID/root in a mount namespace of its own) */
  view: (path: string) => string;
}
const NAMES = stateKey<Names>('unix-socket:names');
const newNames = (): Names => ({ bound: new Map(), reach: new Map(), temps: [], dirs: [], view: (p) => p });

/** The names state, with its cleanup registered on first use. */
function names(ctx: RestoreContext): Names {
  return ctx.state(NAMES, () => {
    const n = newNames();
    ctx.afterAllFiles(() => {
      for (const p of n.temps) rmSync(p, { force: true });
      for (const d of n.dirs) {
        try {
          rmdirSync(d);
        } catch {
          // gone, or a task put something there meanwhile
        }
      }
    }, { alsoOnFailure: true });
    return n;
  });
}

export function bindName(t: RestoreTaskHandle, fd: number, u: UnixSkEntry, ctx: RestoreContext): void {
  const path = pathOf(u);
  const cover = path !== undefined && u.mnt_id !== undefined && u.deleted !== true ? coveredDir(ctx, t.vpid, u.mnt_id, dirname(path), what(t, u)) : undefined;
  if (path !== undefined && cover !== undefined) {
    const file = bindCovered(t, fd, u, path, cover, what(t, u));
    coveredFiles(ctx).set(u.ino, file);
    if (u.file_perms) permsThroughFd(t, u, file, path, { mode: u.file_perms.mode, ...hostOwner(ctx, u.file_perms.uid, u.file_perms.gid, `${what(t, u)}: ${path}`) });
    names(ctx).bound.set(u.ino, path);
    return;
  }
  // The name is bound by the task, in its view; what we do to the file system around it, we do through that view.
  names(ctx).view = (p) => pathSeenBy(t.pid, p);
  const here = path === undefined ? undefined : pathSeenBy(t.pid, path);
  if (here !== undefined && u.deleted && !existsSync(dirname(here))) {
    // Its directory was removed too: made for the bind, removed again once every file is done.
    const first = mkdirSync(dirname(here), { recursive: true, mode: 0o700 });
    // Owned by the root of the tree's user namespace, if it has one: the task binds in them as that root.
    const uid = hostUid(ctx, 0);
    const gid = hostGid(ctx, 0);
    if (first !== undefined) {
      for (let d = dirname(here); d.length >= first.length; d = dirname(d)) {
        names(ctx).dirs.push(d);
        if (uid !== undefined && gid !== undefined && (uid !== 0 || gid !== 0)) chownSync(d, uid, gid);
      }
    }
  }
  if (path !== undefined && here !== undefined) {
    let st;
    try {
      st = lstatSync(here);
    } catch {
      st = undefined;
    }
    if (st && u.deleted) {
      // The name was unlinked at dump and the path is someone else's now: step it aside while we bind.
      const aside = `${here}.criu-ts-${process.pid}`;
      renameSync(here, aside);
      movedAside.set(u, aside);
    } else if (st?.isSocket()) unlinkSync(here);
    else if (st) throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} exists and is not a socket`, { path });
  }
  const addr = sockaddr(u.name);
  const relative = path !== undefined && !nameText(u.name).startsWith('/') && u.name_dir !== undefined;
  let saved = -1;
  if (relative && u.name_dir !== undefined) {
    // Bind the relative name itself (getsockname shows it) from inside its directory.
    saved = Number(t.syscall('open .', NR.openat, AT_FDCWD, t.putString('.'), O_PATH | O_DIRECTORY, 0));
    t.syscall(`chdir ${u.name_dir}`, NR.chdir, t.putString(u.name_dir));
  }
  try {
    t.syscall(`bind ${JSON.stringify(nameText(u.name))}`, NR.bind, fd, t.putBytes(addr), addr.length);
  } finally {
    if (saved >= 0) {
      t.syscall('fchdir', NR.fchdir, saved);
      t.syscall('close', NR.close, saved);
    }
  }
  if (here !== undefined && u.file_perms) setSocketFilePerms(t, u, here, { mode: u.file_perms.mode, ...hostOwner(ctx, u.file_perms.uid, u.file_perms.gid, `${what(t, u)}: ${here}`) });
  if (path !== undefined) names(ctx).bound.set(u.ino, path);
  // At once: another socket of the dump may have had the same name (bound, unlinked, bound again).
  if (path !== undefined && u.deleted) dropDeletedName(u, ctx);
}

/**
 * Owner and mode of the socket's name, never through a link: the name is in
 * a directory a user may own and may have been swapped since bind, so it is
 * opened O_PATH|O_NOFOLLOW, must be a socket, and is changed through that fd.
 */
function setSocketFilePerms(t: RestoreTaskHandle, u: UnixSkEntry, path: string, p: { mode: number; uid: number; gid: number }): void {
  let fd: number;
  try {
    fd = openPathNoFollow(path);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} is gone after bind: ${(e as Error).message}`, { path }, e);
  }
  try {
    permsThroughFd(t, u, fd, path, p);
  } finally {
    closeSync(fd);
  }
}

/** Owner and mode of the socket file our O_PATH fd `fd` holds. */
function permsThroughFd(t: RestoreTaskHandle, u: UnixSkEntry, fd: number, path: string, p: { mode: number; uid: number; gid: number }): void {
  if (!fstatSync(fd).isSocket()) throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} is no longer a socket after bind`, { path });
  const viaFd = `/proc/self/fd/${fd}`;
  chownSync(viaFd, p.uid, p.gid);
  chmodSync(viaFd, p.mode & 0o7777);
}

/** Our O_PATH fds of the files of sockets bound under a mount covering their names (by inode), closed once every file is done. */
const COVERED = stateKey<Map<number, number>>('unix-socket:covered');
export function coveredFiles(ctx: RestoreContext): Map<number, number> {
  return heldFds(ctx, COVERED);
}

/** Files put aside while a socket whose name was unlinked is bound at that path again. */
const movedAside = new WeakMap<UnixSkEntry, string>();

/**
 * The name was unlinked at dump: take it away again. Sockets restored later
 * may still have to connect to this one, so the socket file first gets a
 * temporary name (link fails rather than replace anything there) that stays
 * until every file is done; the socket itself keeps reporting its old name.
 * Only the socket that bound the name drops it (an accepted one only shows
 * its listener's).
 */
function dropDeletedName(u: UnixSkEntry, ctx: RestoreContext): void {
  const n = names(ctx);
  const path = n.bound.get(u.ino);
  if (!u.deleted || path === undefined || n.reach.has(u.ino)) return;
  const temp = join(dirname(path), `.${basename(path)}.cr-usk.${u.ino}`);
  // On a filesystem of the tree's user namespace, linked as the socket file's owner (sys/fs-ids.ts).
  const owner = lstatSync(n.view(path));
  asMappedIfNeeded(owner.uid, owner.gid, () => linkSync(n.view(path), n.view(temp)));
  n.reach.set(u.ino, temp);
  n.temps.push(n.view(temp));
  unlinkSync(n.view(path));
  const aside = movedAside.get(u);
  if (aside !== undefined) {
    renameSync(aside, n.view(path));
    movedAside.delete(u);
  }
}

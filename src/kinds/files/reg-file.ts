/**
 * Regular files, directories, character and block devices opened by path
 * (/dev/null, /dev/zero, /dev/urandom, ...), and symlinks themselves (an
 * O_PATH|O_NOFOLLOW fd): CRIU's REG file_entry.
 * Restored by opening the same path with the same flags and seeking to the
 * saved position. A regular file whose size differs from the image is
 * refused at restore, as CRIU does, because its contents changed.
 *
 * Unlinked files travel as ghosts (./ghost/). Known limits: files on
 * other mount namespaces are opened by path from ours; POSIX message queues
 * (mqueue filesystem) are not taken (refused as an unsupported fd).
 */
import { closeSync, existsSync, lstatSync, openSync, statSync, statfsSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { NR, O_ACCMODE, O_CREAT, O_TRUNC, O_APPEND, O_CLOEXEC, FD_CLOEXEC, O_LARGEFILE, AT_FDCWD, SEEK_SET, EPERM, EACCES, errnoName, O_TMPFILE, MQUEUE_MAGIC, PROC_SUPER_MAGIC } from '../../sys/index.js';
import { RemoteSyscallError } from '../../infect/tracee.js';
import type { FdinfoEntry, FileEntry, RegFileEntry, FownEntry } from '../../images/messages.js';
import { parseMountinfo, pathSeenBy, inOwnNs, readRoot } from '../../proc/index.js';
import { openOursInTask } from '../install-fd.js';
import { foreignMountTask, isHiddenMount, isTreeMount } from '../ns/mnt/index.js';
import { stateKey, type FileKind, type FdProbe, type RestoreTaskHandle, type DumpContext, type RestoreContext } from '../types.js';
import { dumpUnlinked, ghostOnOwnMount, DELETED_SUFFIX } from './ghost/index.js';
import { NO_FOWN } from './fown.js';



/** A REG entry for a path we only know by name (mapped files, cwd, root, exe), as task `pid` sees it. */
export function regEntryForPath(id: number, path: string, flags: number, pid: number): FileEntry {
  const reg: RegFileEntry = { id, flags, pos: 0n, fown: NO_FOWN, name: path };
  try {
    const st = statSync(pathSeenBy(pid, path), { bigint: true });
    if (st.isFile()) reg.size = st.size;
    reg.mode = Number(st.mode);
  } catch {
    // Path vanished between readlink and stat: restore will report it.
  }
  return { type: 'REG', id, reg };
}


/** Is the fd a POSIX message queue (a file of the mqueue filesystem)? Asked of our own copy. */
export function isMqueue(p: FdProbe): boolean {
  try {
    return statfsSync(`/proc/self/fd/${p.localFd}`).type === MQUEUE_MAGIC;
  } catch {
    return false;
  }
}

/** The name CRIU gives a file --external named at dump (file[mnt_id:ino]): it can only come back through --inherit-fd. */
const EXTERNAL_FILE = /^file\[[0-9a-f]+:[0-9a-f]+\]$/;

export const regFileKind: FileKind = {
  name: 'reg',
  type: 'REG',
  byPath(ctx: DumpContext, path: string, flags: number, pid: number, unlinked?: { openPath: string; what: string }): number {
    const id = ctx.addFile((i) => regEntryForPath(i, path, flags, pid));
    if (unlinked) dumpUnlinked(ctx, id, path, unlinked.openPath, unlinked.what);
    return id;
  },
  inheritKey: (e) => (e.reg ? (e.reg.name.startsWith('/') ? e.reg.name.slice(1) : e.reg.name) : undefined),
  detect(p: FdProbe): boolean {
    if (!p.link.startsWith('/')) return false;
    if (!(p.stat.isFile() || p.stat.isDirectory() || p.stat.isCharacterDevice() || p.stat.isBlockDevice() || p.stat.isSymbolicLink())) return false;
    // A POSIX message queue looks like a regular file named "/<queue>", but reopening that path would open another file.
    return !(p.stat.isFile() && isMqueue(p));
  },
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    refuseForeignMount(p, ctx);
    let name = p.link;
    if (name.endsWith(DELETED_SUFFIX) && isUnlinked(name, p)) {
      name = name.slice(0, -DELETED_SUFFIX.length);
      dumpUnlinked(ctx, id, name, `/proc/${p.pid}/fd/${p.fd}`, `task ${p.pid} fd ${p.fd}`);
    } else if (isDeadProcEntry(p)) {
      dumpUnlinked(ctx, id, name, `/proc/${p.pid}/fd/${p.fd}`, `task ${p.pid} fd ${p.fd}`);
    }
    let flags = p.fdinfo.flags & ~O_CLOEXEC;
    // An O_TMPFILE file keeps O_TMPFILE (which includes O_DIRECTORY) in its flags: it is reopened as a plain file.
    if (p.stat.isFile()) flags &= ~O_TMPFILE;
    const reg: RegFileEntry = {
      id,
      flags,
      pos: p.fdinfo.pos,
      fown: NO_FOWN,
      name,
      mode: p.stat.mode,
    };
    if (p.fdinfo.mntId !== undefined) reg.mnt_id = p.fdinfo.mntId;
    if (p.stat.isFile()) reg.size = BigInt(p.stat.size);
    return { type: 'REG', id, reg };
  },
  restore(t: RestoreTaskHandle, e: FileEntry, fdi: FdinfoEntry, ctx: RestoreContext): number {
    const reg = e.reg;
    if (!reg) throw new CriuTsError('EIMAGE', `file ${e.id}: REG entry without reg data`, { id: e.id });
    if (EXTERNAL_FILE.test(reg.name)) {
      throw new CriuTsError('EUSAGE', `task ${t.pid}: ${reg.name} was external at dump: hand it over with --inherit-fd fd[N]:${reg.name}`, { pid: t.pid, key: reg.name });
    }
    // A file opened through a mount of another namespace of the tree is looked at there too.
    const there = foreignMountTask(ctx, t.vpid, reg.mnt_id);
    // A ghost made through another mount than this fd's gets a name on this fd's mount.
    const name = ghostOnOwnMount(ctx, e.id, reg.mnt_id) ?? reg.name;
    checkSize({ ...reg, name }, there ?? t.pid);
    let flags = reg.flags & ~(O_CREAT | O_TRUNC);
    // Images from an O_TMPFILE file may carry O_TMPFILE: opening the ghost with it would make a new file.
    if (reg.size !== undefined) flags &= ~O_TMPFILE;
    // A ghost is reached through our fd on it: opened here, as the task's /proc may not show ours.
    const fd = name.startsWith(`/proc/${process.pid}/fd/`)
      ? openOursInTask(t, name, flags)
      : there !== undefined ? openOursInTask(t, `/proc/${there}/root${name}`, flags) : openInTask(t, name, flags, fdi, ctx);
    if (reg.pos !== 0n) t.syscall('lseek', NR.lseek, fd, reg.pos, SEEK_SET);
    return fd;
  },
};

const NS_MOUNTS = stateKey<Map<number, ReadonlySet<number> | undefined>>('reg:ns-mounts');

/**
 * A task in a mount namespace of its own reopens its files by path inside
 * it at restore: one opened through a mount that is in no dumped
 * namespace (inherited from outside before it moved in) has no path
 * there. One opened through a mount of another namespace of the tree (a
 * nested namespace's parent) is reopened through that namespace.
 */
function refuseForeignMount(p: FdProbe, ctx: DumpContext): void {
  const mntId = p.fdinfo.mntId;
  if (mntId === undefined) return;
  if (isHiddenMount(ctx, mntId)) {
    throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: ${p.link} was opened through mount ${mntId}, which another mount covers: no path reaches it to reopen it there`, { pid: p.pid, fd: p.fd, mntId });
  }
  const cache = ctx.memo(NS_MOUNTS, () => new Map<number, ReadonlySet<number> | undefined>());
  // A chroot'ed task's mountinfo lists only the mounts below its root: not checked.
  if (!cache.has(p.pid)) cache.set(p.pid, pathSeenBy(p.pid, '/') === '/' || readRoot(p.pid) !== '/' ? undefined : new Set(parseMountinfo(p.pid).map((m) => m.mntId)));
  const ids = cache.get(p.pid);
  if (ids === undefined || ids.has(mntId) || isTreeMount(ctx, mntId)) return;
  throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: ${p.link} was opened through mount ${mntId}, which is not in the task's mount namespace: it cannot be reopened there`, { pid: p.pid, fd: p.fd, mntId });
}

/**
 * Open `name` in the task. A task in a user namespace of its own may be
 * refused a file it held (one of criu-ts's, inherited, such as a log it
 * writes to: its capabilities do not reach owners the namespace does not
 * map); criu-ts then opens it from outside, by the task's root, and hands
 * the task that open file.
 */
function openInTask(t: RestoreTaskHandle, name: string, flags: number, fdi: FdinfoEntry, ctx: RestoreContext): number {
  // O_CLOEXEC as the fd had FD_CLOEXEC (a CRIU image's flags may hold it either way): no F_SETFD after.
  const r = t.tracee.syscallRaw(NR.openat, AT_FDCWD, t.putString(name), (flags & ~O_CLOEXEC) | (fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0), 0);
  if (r >= 0n) {
    ctx.cloexecAsAsked?.(Number(r));
    return Number(r);
  }
  const errno = Number(-r);
  if ((errno !== EACCES && errno !== EPERM) || !inOtherUserNs(t.pid)) throw new RemoteSyscallError(`open ${name}`, errno, t.pid);
  let ours: number;
  try {
    ours = openSync(`/proc/${t.pid}/root${name.startsWith('/') ? '' : '/'}${name}`, flags | O_CLOEXEC);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${t.pid}: cannot open ${name}, in the task (${errnoName(errno)}) nor from outside: ${(e as Error).message}`, { pid: t.pid, path: name }, e);
  }
  try {
    return t.installFd(ours);
  } finally {
    closeSync(ours);
  }
}

function inOtherUserNs(pid: number): boolean {
  return inOwnNs(pid, 'user') === false;
}

/**
 * "NAME (deleted)": the open file lost this name. Unless the inode has no
 * link left, the suffix could be part of a real name: then the path must not
 * name this inode.
 */
function isUnlinked(link: string, p: FdProbe): boolean {
  if (p.stat.nlink === 0) return true;
  try {
    // A symlink fd is the link itself: compare with the link, not its target.
    const seen = pathSeenBy(p.pid, link);
    const st = p.stat.isSymbolicLink() ? lstatSync(seen) : statSync(seen);
    return !(st.ino === p.stat.ino && st.dev === p.stat.dev);
  } catch {
    return true;
  }
}


/**
 * A file under /proc/PID of a process that exited and was reaped: only
 * /proc/PID itself reads "(deleted)"; a file below it (/proc/PID/mountinfo)
 * keeps its name. As CRIU: a procfs file whose /proc/PID the task no
 * longer sees.
 */
function isDeadProcEntry(p: FdProbe): boolean {
  const pid = /^\/proc\/([1-9][0-9]*)\//.exec(p.link)?.[1];
  if (pid === undefined) return false;
  try {
    if (statfsSync(`/proc/self/fd/${p.localFd}`).type !== PROC_SUPER_MAGIC) return false;
  } catch {
    return false;
  }
  return !existsSync(pathSeenBy(p.pid, `/proc/${pid}`));
}

function checkSize(reg: RegFileEntry, pid: number): void {
  if (reg.size === undefined) return;
  let size: bigint;
  try {
    // Files are restored once the task's mount tree is in place: its view of the path.
    const ours = reg.name.startsWith(`/proc/${process.pid}/fd/`); // a ghost, through our fd
    size = statSync(ours ? reg.name : pathSeenBy(pid, reg.name), { bigint: true }).size;
  } catch (err) {
    throw new CriuTsError('ERESTORE', `file ${reg.name} is missing: ${(err as Error).message}`, { path: reg.name }, err);
  }
  if (size !== reg.size) {
    throw new CriuTsError('ERESTORE', `file ${reg.name} has size ${size}, the image expects ${reg.size}`, { path: reg.name });
  }
}

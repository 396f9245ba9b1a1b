/**
 * Files criu-ts creates as root in directories other users may own (images
 * dirs, work dirs, next to a ghost file's old path): never through a link
 * someone planted. Every file is created relative to a directory fd with
 * openat2(O_CREAT|O_EXCL|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
 * so a name that already exists (a symlink, a hard link, anything) makes
 * the creation fail instead of writing through it. A file that must end up
 * under a name that may already exist is written under a private temporary
 * name and renamed over it with renameat: rename replaces the name (a
 * planted symlink itself), never the file it points to.
 *
 * The directory path itself is resolved as given (following links in it
 * is the caller's choice); only the last component is protected. Where
 * the directory is a user's (next to a ghost file's old path),
 * openDirRootLinksOnly follows no link of theirs on the way.
 */
import { fstatSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR } from './fcntl.js';
import { SyscallError } from './error.js';
import { randomBytesSync } from './random.js';

const NR_OPENAT2 = 437;
const NR_RENAMEAT = 264;

export const O = {
  RDONLY: 0, WRONLY: 1, RDWR: 2, CREAT: 0o100, EXCL: 0o200, NOCTTY: 0o400, TRUNC: 0o1000, APPEND: 0o2000,
  NONBLOCK: 0o4000, DIRECTORY: 0o200000, NOFOLLOW: 0o400000, CLOEXEC: 0o2000000, PATH: 0o10000000,
} as const;

/** openat2 resolve flags (linux/openat2.h). */
export const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08, IN_ROOT: 0x10 } as const;


function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** openat2(2): struct open_how {u64 flags, u64 mode, u64 resolve}. */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const p = cstr(path);
  try {
    return sys('openat2', NR_OPENAT2, undefined, dirfd, addr(p), addr(how), 24);
  } catch (e) {
    if (e instanceof SyscallError) throw new SyscallError('openat2', e.errno, undefined, path);
    throw e;
  }
}

export function renameat(oldDirfd: number, oldName: string, newDirfd: number, newName: string): void {
  const a = cstr(oldName);
  const b = cstr(newName);
  sys('renameat', NR_RENAMEAT, undefined, oldDirfd, addr(a), newDirfd, addr(b));
}

/** unlinkat(2); `dir` removes an empty directory. Returns false when the name was not there. */
export function unlinkat(dirfd: number, name: string, dir = false): boolean {
  const p = cstr(name);
  const r = sysTry(NR.unlinkat, dirfd, addr(p), dir ? AT_REMOVEDIR : 0);
  if (r === -2) return false;
  if (r < 0) throw new SyscallError('unlinkat', -r, undefined, name);
  return true;
}

export function mkdirat(dirfd: number, name: string, mode: number): void {
  const p = cstr(name);
  const r = sysTry(NR.mkdirat, dirfd, addr(p), mode);
  if (r < 0) throw new SyscallError('mkdirat', -r, undefined, name);
}

export function fchown(fd: number, uid: number, gid: number): void {
  sys('fchown', NR.fchown, undefined, fd, uid, gid);
}

export function fchmod(fd: number, mode: number): void {
  sys('fchmod', NR.fchmod, undefined, fd, mode);
}

/** A directory fd (O_PATH is enough for the *at calls), following the path as given. */
export function openDir(path: string): number {
  return openat2(AT_FDCWD, path, O.PATH | O.DIRECTORY | O.CLOEXEC, 0, 0);
}

/**
 * An O_PATH fd on the directory `path` (absolute), resolved a component at
 * a time from our root and following only symlinks root owns: a link a
 * user planted anywhere in the path (a directory of theirs swapped for a
 * link to /etc) is refused with ELOOP, never followed by us as root. What
 * is made or removed relative to the fd stays in that very directory.
 */
export function openDirRootLinksOnly(path: string): number {
  let fd = openat2(AT_FDCWD, '/', O.PATH | O.DIRECTORY | O.CLOEXEC, 0, 0);
  const todo = path.split('/').filter((c) => c !== '' && c !== '.');
  let links = 0;
  try {
    while (todo.length > 0) {
      const c = todo.shift() as string;
      const next = openat2(fd, c, O.PATH | O.NOFOLLOW | O.CLOEXEC, 0, RESOLVE.NO_MAGICLINKS);
      const st = fstatSync(next);
      if (st.isDirectory()) {
        sysTry(NR.close, fd);
        fd = next;
        continue;
      }
      if (!st.isSymbolicLink()) {
        sysTry(NR.close, next);
        throw new SyscallError('openat2', 20 /* ENOTDIR */, undefined, `${path}: ${c}`);
      }
      let target: string;
      try {
        if (st.uid !== 0) throw new SyscallError('openat2', 40 /* ELOOP */, undefined, `${path}: ${c} is a symlink of uid ${st.uid}, not followed as root`);
        if (++links > 40) throw new SyscallError('openat2', 40 /* ELOOP */, undefined, path);
        target = readlinkAt(next);
      } finally {
        sysTry(NR.close, next);
      }
      if (target.startsWith('/')) {
        sysTry(NR.close, fd);
        fd = openat2(AT_FDCWD, '/', O.PATH | O.DIRECTORY | O.CLOEXEC, 0, 0);
      }
      todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
    }
    return fd;
  } catch (e) {
    sysTry(NR.close, fd);
    throw e;
  }
}

/** The target of the symlink an O_PATH|O_NOFOLLOW fd is open on (readlinkat with an empty path). */
function readlinkAt(fd: number): string {
  const out = Buffer.alloc(4097);
  const e = cstr('');
  const n = sys('readlinkat', NR.readlinkat, undefined, fd, addr(e), addr(out), out.length);
  return out.subarray(0, n).toString();
}

/** An O_PATH fd on `path` itself: a symlink there is opened as the link, never followed (fstat then says so). */
export function openPathNoFollow(path: string): number {
  return openat2(AT_FDCWD, path, O.PATH | O.NOFOLLOW | O.CLOEXEC, 0, 0);
}

/** An O_PATH fd on what `path` names (links followed), resolved with the current fs credentials. */
export function openPathAs(path: string): number {
  return openat2(AT_FDCWD, path, O.PATH | O.CLOEXEC, 0, 0);
}

/** A single path component: no '/', not '.' or '..' (RESOLVE_BENEATH would refuse those too; say why earlier). */
export function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new SyscallError('openat2', 22 /* EINVAL */, undefined, `${name}: not a single file name`);
  }
}

/**
 * Create `name` in `dirfd`, failing with EEXIST if anything has that name
 * (a symlink is never followed). `extra` adds access flags (O.WRONLY...).
 */
export function createAt(dirfd: number, name: string, mode: number, extra: number = O.WRONLY): number {
  checkName(name);
  return openat2(dirfd, name, extra | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, mode, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS);
}

/** Open an existing `name` in `dirfd` for reading without following any link. */
export function openExistingAt(dirfd: number, name: string, flags: number = O.RDONLY): number {
  checkName(name);
  return openat2(dirfd, name, flags | O.NOFOLLOW | O.CLOEXEC, 0, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS);
}

/** Random bytes for temporary names, drawn from the CSPRNG 4 KiB at a time (a dump names 7 files per process). */
let randomPool: Buffer = Buffer.alloc(0);
let randomAt = 0;

/** A private name next to `name`: unpredictable, so nobody can plant anything there first. */
export function tempNameFor(name: string): string {
  if (randomAt + 6 > randomPool.length) {
    randomPool = randomBytesSync(4096);
    randomAt = 0;
  }
  const r = randomPool.toString('hex', randomAt, randomAt + 6);
  randomAt += 6;
  return `.${name}.${process.pid}.${r}.tmp`;
}

/**
 * Create a file exclusively at `path` (its directory resolved as given,
 * its last component never followed). Returns the open fd.
 */
export function createExclusive(path: string, mode: number, extra: number = O.WRONLY): number {
  const dirfd = openDir(dirname(path));
  try {
    return createAt(dirfd, basename(path), mode, extra);
  } finally {
    sysTry(NR.close, dirfd);
  }
}

/** flock(2) operations (linux/fcntl.h). */
export const FLOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;

/**
 * flock(2) on `fd`: 0, or -errno (-EWOULDBLOCK with FLOCK.NB when another
 * open file holds the lock). The lock belongs to the open file and goes
 * when its last fd is closed, so also when its holder dies.
 */
export function flockTry(fd: number, op: number): number {
  return sysTry(NR.flock, fd, op);
}

/** Write all of `data` to `fd` from its current offset. */
export function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

const NR_RENAMEAT2 = 316;
const RENAME_NOREPLACE = 1;

/**
 * Create `path` with `data`, complete or not at all, and only if nothing
 * has that name (CRIU's O_EXCL pidfiles, without a moment where a reader
 * sees the file empty): written under a private name, then
 * renameat2(RENAME_NOREPLACE), which fails with EEXIST instead of
 * replacing anything (a planted link included).
 */
export function createFileExclusive(path: string, data: Buffer, mode = 0o600): void {
  const name = basename(path);
  checkName(name);
  const dirfd = openDir(dirname(path));
  const tmp = tempNameFor(name);
  try {
    const fd = createAt(dirfd, tmp, mode);
    try {
      writeAll(fd, data);
    } finally {
      sysTry(NR.close, fd);
    }
    const a = cstr(tmp);
    const b = cstr(name);
    const r = sysTry(NR_RENAMEAT2, dirfd, addr(a), dirfd, addr(b), RENAME_NOREPLACE);
    if (r < 0) {
      unlinkat(dirfd, tmp);
      throw new SyscallError('renameat2', -r, undefined, path);
    }
  } finally {
    sysTry(NR.close, dirfd);
  }
}


/** utimensat following links (for a /proc/self/fd/N magic link of an O_PATH fd); times as [sec, nsec] pairs. */
export function utimensFollow(path: string, atime: [bigint, bigint], mtime: [bigint, bigint]): void {
  const p = cstr(path);
  const ts = Buffer.alloc(32);
  ts.writeBigInt64LE(atime[0], 0);
  ts.writeBigInt64LE(atime[1], 8);
  ts.writeBigInt64LE(mtime[0], 16);
  ts.writeBigInt64LE(mtime[1], 24);
  sys('utimensat', NR.utimensat, undefined, AT_FDCWD, addr(p), addr(ts), 0);
}

const NR_FACCESSAT2 = 439;
const AT_EACCESS = 0x200;
export const ACCESS = { R_OK: 4, W_OK: 2, X_OK: 1 } as const;

/** faccessat2(fd, "", mode, AT_EACCESS|AT_EMPTY_PATH): may the current fs credentials use `fd` so? */
export function fdAccessible(fd: number, mode: number): boolean {
  const p = cstr('');
  return sysTry(NR_FACCESSAT2, fd, addr(p), mode, AT_EACCESS | AT_EMPTY_PATH) === 0;
}

export interface FsCreds {
  uid: number;
  gid: number;
  groups: readonly number[];
}

/**
 * Run `fn` with the calling thread's filesystem credentials set to `c`
 * (setfsuid/setfsgid/setgroups as raw syscalls act on this thread only;
 * Node's synchronous fs calls run on it). A non-zero fsuid drops the
 * filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER...) for the
 * duration, so the kernel checks permissions exactly as for that user.
 * Everything is put back afterwards, whatever `fn` does.
 */
export function withFsCreds<T>(c: FsCreds, fn: () => T): T {
  const saved = Buffer.alloc(4 * 65536);
  const nSaved = sys('getgroups', NR.getgroups, undefined, 65536, addr(saved));
  const groups = Buffer.alloc(4 * Math.max(1, c.groups.length));
  c.groups.forEach((g, i) => groups.writeUInt32LE(g, i * 4));
  const oldGid = sysTry(NR.setfsgid, c.gid);
  sys('setgroups', NR.setgroups, undefined, c.groups.length, addr(groups));
  const oldUid = sysTry(NR.setfsuid, c.uid);
  try {
    return fn();
  } finally {
    sysTry(NR.setfsuid, oldUid);
    sysTry(NR.setgroups, nSaved, addr(saved));
    sysTry(NR.setfsgid, oldGid);
  }
}

/** Could user `c` reach directory `path` and use it with `mode` (ACCESS bits)? Asked of the kernel with c's fs credentials. */
export function dirAccessibleBy(c: FsCreds, path: string, mode: number): boolean {
  return withFsCreds(c, () => {
    let fd: number;
    try {
      fd = openDir(path);
    } catch {
      return false;
    }
    try {
      return fdAccessible(fd, mode);
    } finally {
      sysTry(NR.close, fd);
    }
  });
}

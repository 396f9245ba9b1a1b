/**
 * File-system calls Node's fs module lacks: mknodat (FIFOs and device nodes
 * put back as ghosts), linkat through a /proc fd link (a name for an
 * open file whose own name is gone, for --link-remap), and readlinkat /
 * fchownat on an O_PATH fd of a symlink (its target, its owner), and
 * inotify watches added from our side (on a ghost only we can name).
 */
import { sys, addr } from './libc.js';
import { NR } from './nr.js';
import { AT_EMPTY_PATH, AT_FDCWD } from './fcntl.js';

/** linkat: follow a /proc/PID/fd/N magic link to the open file itself. */
const AT_SYMLINK_FOLLOW = 0x400;

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

/** mknod(path, mode, dev): mode carries the file type (S_IFIFO, S_IFCHR, S_IFBLK); dev is the kernel's encoding. */
export function mknod(path: string, mode: number, dev = 0): void {
  const p = cstr(path);
  sys('mknodat', NR.mknodat, undefined, AT_FDCWD, addr(p), mode, dev);
}

/** Give the file open at `procFdPath` (a /proc/PID/fd/N link) the new name `newPath`; fails if `newPath` exists. */
export function linkOpenFile(procFdPath: string, newPath: string): void {
  const a = cstr(procFdPath);
  const b = cstr(newPath);
  sys('linkat', NR.linkat, undefined, AT_FDCWD, addr(a), AT_FDCWD, addr(b), AT_SYMLINK_FOLLOW);
}

/** Access and modification times, to the nanosecond (Node's fs rounds through a double). */
export interface FileTimes {
  atimeSec: bigint;
  atimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
}

function timespecs(t: FileTimes): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(t.atimeSec, 0);
  b.writeBigInt64LE(t.atimeNsec, 8);
  b.writeBigInt64LE(t.mtimeSec, 16);
  b.writeBigInt64LE(t.mtimeNsec, 24);
  return b;
}

/** utimensat on an open fd (futimens). */
export function futimens(fd: number, t: FileTimes): void {
  const ts = timespecs(t);
  sys('utimensat', NR.utimensat, undefined, fd, 0, addr(ts), 0);
}

/** utimensat on a path, not following a final symlink. */
export function lutimens(path: string, t: FileTimes): void {
  const p = cstr(path);
  const ts = timespecs(t);
  sys('utimensat', NR.utimensat, undefined, AT_FDCWD, addr(p), addr(ts), 0x100 /* AT_SYMLINK_NOFOLLOW */);
}

/** AT_EMPTY_PATH: act on the fd itself (an O_PATH fd of a symlink: the link, not its target). */

/** The target of the symlink `fd` (O_PATH) is open on. */
export function readlinkFd(fd: number): string {
  const out = Buffer.alloc(4097);
  const e = cstr('');
  const n = sys('readlinkat', NR.readlinkat, undefined, fd, addr(e), addr(out), out.length);
  return out.subarray(0, n).toString();
}

/** Owner of the file `fd` is open on (O_PATH too: a symlink itself). */
export function fchownFd(fd: number, uid: number, gid: number): void {
  const e = cstr('');
  sys('fchownat', NR.fchownat, undefined, fd, addr(e), uid, gid, AT_EMPTY_PATH);
}

/** inotify_rm_watch(2) on x86_64 (not in NR). */
export const NR_INOTIFY_RM_WATCH = 255;

/** inotify_add_watch on our copy of an inotify fd (the instance is shared with its task); returns the wd. */
export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  const p = cstr(path);
  return sys('inotify_add_watch', NR.inotify_add_watch, undefined, fd, addr(p), mask >>> 0);
}

export function inotifyRmWatch(fd: number, wd: number): void {
  sys('inotify_rm_watch', NR_INOTIFY_RM_WATCH, undefined, fd, wd);
}

// Used by the kinds (src/kinds), declared here once.
export const TTYAUX_MAJOR = 5;
export const PTS_MAJOR_FIRST = 136;
export const PTS_MAJOR_LAST = 143;
export const TUN_MAJOR = 10;
export const TUN_MINOR = 200;

/**
 * What the anon-inode kinds (eventfd, epoll, timerfd, signalfd, inotify,
 * fanotify) share: recognising their /proc/PID/fd link, the file flags CRIU
 * stores (f_flags without O_CLOEXEC, which belongs to the fd), the creation
 * flags their *_create syscalls take, and reading the entry's sub-message.
 */
import { CriuTsError } from '../../errors.js';
import { ioctlTry, O_NONBLOCK, FIONREAD, O_CLOEXEC } from '../../sys/index.js';
import type { FileEntry } from '../../images/messages.js';
import type { FdProbe } from '../types.js';


/** "anon_inode:[eventfd]" and "anon_inode:inotify" (no brackets) both. */
export function isAnonLink(p: FdProbe, name: string): boolean {
  return p.link === `anon_inode:[${name}]` || p.link === `anon_inode:${name}`;
}

/** f_flags as CRIU records them: without O_CLOEXEC (an fd flag, restored by the core). */
export function fileFlags(p: FdProbe): number {
  return p.fdinfo.flags & ~O_CLOEXEC;
}

/**
 * The O_NONBLOCK bit, the only status flag the create syscalls take
 * (EFD_/TFD_/SFD_/IN_NONBLOCK all equal O_NONBLOCK); O_CLOEXEC is left to
 * the core, which sets it per fd.
 */
export function createFlags(flags: number): number {
  return flags & O_NONBLOCK;
}

/** The typed sub-message of a file entry, or a clear image error. */
export function part<K extends keyof FileEntry>(e: FileEntry, key: K, kind: string): NonNullable<FileEntry[K]> {
  const v = e[key];
  if (v === undefined || v === null) {
    throw new CriuTsError('EIMAGE', `file ${e.id}: ${kind} entry without its ${String(key)} data`, { id: e.id });
  }
  return v as NonNullable<FileEntry[K]>;
}


/**
 * Queued bytes waiting to be read on our copy of the fd (FIONREAD: inotify
 * and fanotify events, terminal input), 0 when the file cannot say.
 */
export function queuedBytes(localFd: number): number {
  const n = Buffer.alloc(4);
  return ioctlTry(localFd, FIONREAD, n) < 0 ? 0 : n.readInt32LE(0);
}

/**
 * Events (or bytes) queued on an fd that cannot be read back without
 * consuming them: the dump refuses rather than lose them.
 */
export function refuseQueued(p: FdProbe, what: string): void {
  const n = queuedBytes(p.localFd);
  if (n > 0) {
    throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: ${what} has ${n} bytes queued for reading, which criu-ts cannot save without consuming them`, { pid: p.pid, fd: p.fd, queued: n });
  }
}

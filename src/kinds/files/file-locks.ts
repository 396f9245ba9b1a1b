/**
 * File locks held on regular files (flock, POSIX and OFD record locks):
 * CRIU's filelocks.img, one file_lock_entry per lock (flag FL_POSIX 1 /
 * FL_FLOCK 2 / FL_OFD 4, type F_RDLCK 0 / F_WRLCK 1, owner pid, the fd
 * it is reached through, start, len with 0 for "to EOF"). Found in
 * /proc/PID/fdinfo/N lock lines, which list the locks this fd's file
 * (flock, OFD) or this task (POSIX) owns.
 *
 * Without --file-locks a held lock refuses the dump, as CRIU does. This
 * kind is REG plus locks: it takes regular files that hold locks (and, as
 * the first REG kind of the registry, restores every REG entry by handing
 * it to the REG kind), and re-takes the locks in `finish`, non-blocking.
 * A POSIX lock goes away when the task closes any fd of the file, and the
 * core closes its parked copies after `finish`: so the non-final fds of
 * that inode are closed first (the task's final fd numbers come from its
 * fdinfo image).
 *
 * A flock or OFD lock belongs to the open file, so it is re-taken in the
 * task that creates the file, also when that file is shared with others.
 *
 * Known limits: blocked lock requests are not recorded (the blocked call
 * is restarted instead); leases and locks on non-regular files are not
 * handled; a POSIX lock on a file shared by several tasks is refused at
 * restore (the core would close its parked copy after `finish`).
 */
import { readdirSync, statSync } from 'node:fs';
import { NR } from '../../sys/index.js';
import type { FileEntry, FileLockEntry } from '../../images/messages.js';
import type { LockInfo } from '../../proc/index.js';
import { stateKey, type DumpContext, type FileKind, type FdProbe, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { regFileKind } from './reg-file.js';
import { fileIdAt, isFinalFd, taskFdinfo } from './task-fds.js';

export const FL_POSIX = 1;
export const FL_FLOCK = 2;
export const FL_OFD = 4;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_SETLK = 6;
const F_OFD_SETLK = 37;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const SEEK_SET = 0;

/** POSIX locks show on every fd of the file in the task: write each once per dump. */
const SEEN_POSIX = stateKey<Set<string>>('file-locks:seen-posix');

function heldLocks(p: FdProbe): LockInfo[] {
  return (p.fdinfo.locks ?? []).filter((l) => !l.blocked && ['FLOCK', 'POSIX', 'OFDLCK'].includes(l.type));
}

function flagOf(l: LockInfo): number {
  return l.type === 'POSIX' ? FL_POSIX : l.type === 'FLOCK' ? FL_FLOCK : FL_OFD;
}

function toEntry(p: FdProbe, l: LockInfo): FileLockEntry {
  return {
    flag: flagOf(l),
    type: l.mode === 'WRITE' ? F_WRLCK : F_RDLCK,
    pid: p.pid,
    fd: p.fd,
    start: l.start,
    len: l.end === undefined ? 0n : l.end + 1n - l.start,
  };
}

export const lockedRegKind: FileKind = {
  name: 'reg+locks',
  type: 'REG',
  detect: (p: FdProbe) => heldLocks(p).length > 0 && regFileKind.detect(p),
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    const locks = heldLocks(p);
    if (!ctx.opts.fileLocks) {
      const what = [...new Set(locks.map((l) => l.type))].join(', ');
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: ${p.link} holds a file lock (${what}); dump with --file-locks to keep it`, {
        pid: p.pid, fd: p.fd, link: p.link,
      });
    }
    const e = regFileKind.dump(p, id, ctx);
    const seen = ctx.memo(SEEN_POSIX, () => new Set<string>());
    for (const l of locks) {
      if (l.type === 'POSIX') {
        const key = `${p.pid}:${l.devMajor}:${l.devMinor}:${l.ino}:${l.start}:${l.end ?? 'EOF'}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      ctx.emit('FILE_LOCKS', toEntry(p, l));
    }
    return e;
  },
  group: (e: FileEntry) => regFileKind.group?.(e),
  restore: (t, e, fdi, ctx) => regFileKind.restore(t, e, fdi, ctx),
  finish(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
    regFileKind.finish?.(t, e, fd, ctx);
    // A lock names the fd it was seen through; it belongs to this open file if that fd held it.
    const locks = locksOf(ctx).filter((l) => fileIdAt(ctx, l.pid, l.fd) === e.id);
    if (locks.some((l) => l.flag === FL_POSIX)) {
      if (!locks.every((l) => l.flag !== FL_POSIX || l.pid === t.pid) || !isFinalFd(ctx, t.pid, fd, e.id)) {
        throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: POSIX lock on ${e.reg?.name ?? `file ${e.id}`}, a file shared by several tasks: not supported yet`, { pid: t.pid, id: e.id });
      }
      closeOtherCopies(t, fd, ctx);
    }
    // flock and OFD locks belong to the open file: take them through whichever fd we have.
    for (const l of locks) takeLock(t, fd, l);
  },
};

function locksOf(ctx: RestoreContext): readonly FileLockEntry[] {
  return ctx.kindImage('FILE_LOCKS').entries;
}

function takeLock(t: RestoreTaskHandle, fd: number, l: FileLockEntry): void {
  if (l.flag === FL_FLOCK) {
    t.syscall(`flock(${fd})`, NR.flock, fd, (l.type === F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
    return;
  }
  const fl = Buffer.alloc(32); // struct flock on x86_64
  fl.writeInt16LE(l.type, 0);
  fl.writeInt16LE(SEEK_SET, 2);
  fl.writeBigInt64LE(l.start, 8);
  fl.writeBigInt64LE(l.len, 16);
  const cmd = l.flag === FL_OFD ? F_OFD_SETLK : F_SETLK;
  t.syscall(`fcntl(${fd}, ${l.flag === FL_OFD ? 'F_OFD_SETLK' : 'F_SETLK'})`, NR.fcntl, fd, cmd, t.putBytes(fl));
}

/** Close the task's fds of `fd`'s inode that are not among its final fds (the core's parked copies). */
function closeOtherCopies(t: RestoreTaskHandle, fd: number, ctx: RestoreContext): void {
  const finals = new Set(taskFdinfo(ctx, t.pid).map((f) => f.fd));
  const target = statSync(`/proc/${t.pid}/fd/${fd}`);
  for (const name of readdirSync(`/proc/${t.pid}/fd`)) {
    const n = Number(name);
    if (finals.has(n)) continue;
    try {
      const st = statSync(`/proc/${t.pid}/fd/${n}`);
      if (st.ino === target.ino && st.dev === target.dev) t.syscall(`close(${n})`, NR.close, n);
    } catch {
      // gone meanwhile
    }
  }
}

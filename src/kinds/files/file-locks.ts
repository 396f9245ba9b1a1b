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
 * Leases (F_SETLEASE) belong to the open file too: FL_LEASE 8 with the
 * lease type, re-taken with F_SETLEASE. A lease being broken (an open is
 * waiting for it) is recorded as CRIU does, the type it breaks to with
 * LEASE_BREAKING 4; it comes back as the lease it was (read for a read-only
 * file, else write), broken again by an open of ours in the conflicting
 * mode (O_NONBLOCK: it starts the break and returns). The file has no owner
 * meanwhile, so the holder is not signalled twice (the signal it got before
 * the dump is restored as pending, if it was); its break time starts anew.
 *
 * Known limits: blocked lock requests are not recorded (the blocked call
 * is restarted instead); locks on non-regular files are not handled; a
 * POSIX lock on a file shared by several tasks is refused at restore (the
 * core would close its parked copy after `finish`).
 */
import { statSync } from 'node:fs';
import { listFds } from '../../proc/index.js';
import { NR, SEEK_SET, F_GETFL, F_SETOWN_EX, O_ACCMODE, O_RDONLY, O_WRONLY, O_NONBLOCK, AT_FDCWD, EAGAIN, LEASE_BREAKING, F_SETLEASE, F_RDLCK, F_WRLCK, F_SETLK, F_OFD_SETLK, LOCK_SH, LOCK_EX, LOCK_NB, F_SETOWN, F_GETOWN_EX, F_UNLCK } from '../../sys/index.js';
import type { FileEntry, FileLockEntry } from '../../images/messages.js';
import type { LockInfo } from '../../proc/index.js';
import { stateKey, type DumpContext, type FileKind, type FdProbe, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { regFileKind } from './reg-file.js';
import { fileIdAt, isFinalFd, taskFdinfo } from './task-fds.js';

export const FL_POSIX = 1;
export const FL_FLOCK = 2;
export const FL_OFD = 4;
export const FL_LEASE = 8;

/** POSIX locks show on every fd of the file in the task: write each once per dump. */
const SEEN_POSIX = stateKey<Set<string>>('file-locks:seen-posix');

function heldLocks(p: FdProbe): LockInfo[] {
  return (p.fdinfo.locks ?? []).filter((l) => !l.blocked &&
    (['FLOCK', 'POSIX', 'OFDLCK'].includes(l.type) || (l.type === 'LEASE' && (l.kind === 'ACTIVE' || l.kind === 'BREAKING'))));
}

function flagOf(l: LockInfo): number {
  return l.type === 'POSIX' ? FL_POSIX : l.type === 'FLOCK' ? FL_FLOCK : l.type === 'LEASE' ? FL_LEASE : FL_OFD;
}

/** A lease's type; for one being broken, the type it breaks to (what fdinfo shows) with LEASE_BREAKING. */
function typeOf(l: LockInfo): number {
  const t = l.mode === 'WRITE' ? F_WRLCK : l.mode === 'UNLCK' ? F_UNLCK : F_RDLCK;
  return l.type === 'LEASE' && l.kind === 'BREAKING' ? t | LEASE_BREAKING : t;
}

function toEntry(p: FdProbe, l: LockInfo, ctx: DumpContext): FileLockEntry {
  return {
    flag: flagOf(l),
    type: typeOf(l),
    // The holder as the tree sees itself (its image pid).
    pid: ctx.vpid(p.pid) ?? p.pid,
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
      ctx.emit('FILE_LOCKS', toEntry(p, l, ctx));
    }
    return e;
  },
  group: (e: FileEntry) => regFileKind.group?.(e),
  restore: (t, e, fdi, ctx) => regFileKind.restore(t, e, fdi, ctx),
  inheritKey: (e, ctx) => regFileKind.inheritKey?.(e, ctx),
  finish(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
    regFileKind.finish?.(t, e, fd, ctx);
    // A lock names the fd it was seen through; it belongs to this open file if that fd held it.
    const locks = locksOf(ctx).filter((l) => fileIdAt(ctx, l.pid, l.fd) === e.id);
    if (locks.some((l) => l.flag === FL_POSIX)) {
      if (!locks.every((l) => l.flag !== FL_POSIX || l.pid === t.vpid) || !isFinalFd(ctx, t.vpid, fd, e.id)) {
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
  if (l.flag === FL_LEASE) {
    takeLease(t, fd, l.type);
    return;
  }
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
  const finals = new Set(taskFdinfo(ctx, t.vpid).map((f) => f.fd));
  const target = statSync(`/proc/${t.pid}/fd/${fd}`);
  for (const n of listFds(t.pid)) {
    if (finals.has(n)) continue;
    try {
      const st = statSync(`/proc/${t.pid}/fd/${n}`);
      if (st.ino === target.ino && st.dev === target.dev) t.syscall(`close(${n})`, NR.close, n);
    } catch {
      // gone meanwhile
    }
  }
}


/**
 * F_SETLEASE makes the task the file's owner: the owner the core restored
 * is put back after. A lease being broken is taken as it was before the
 * break, then broken again by our own nonblocking open in the mode that
 * breaks it to its dumped target, with no owner to signal meanwhile.
 */
function takeLease(t: RestoreTaskHandle, fd: number, type: number): void {
  const ownerAt = t.putBytes(Buffer.alloc(8));
  t.syscall(`fcntl(${fd}, F_GETOWN_EX)`, NR.fcntl, fd, F_GETOWN_EX, ownerAt);
  const owner = t.tracee.readMem(ownerAt, 8);
  try {
    if ((type & LEASE_BREAKING) === 0) {
      t.syscall(`fcntl(${fd}, F_SETLEASE)`, NR.fcntl, fd, F_SETLEASE, type);
      return;
    }
    const target = type & ~LEASE_BREAKING;
    const readOnly = (Number(t.syscall(`fcntl(${fd}, F_GETFL)`, NR.fcntl, fd, F_GETFL)) & O_ACCMODE) === O_RDONLY;
    t.syscall(`fcntl(${fd}, F_SETLEASE)`, NR.fcntl, fd, F_SETLEASE, readOnly ? F_RDLCK : F_WRLCK);
    t.syscall(`fcntl(${fd}, F_SETOWN 0)`, NR.fcntl, fd, F_SETOWN, 0);
    const path = `/proc/self/fd/${fd}`;
    // A reader breaks a write lease down to read; a writer breaks any lease to none.
    const mode = target === F_RDLCK ? O_RDONLY : O_WRONLY;
    let opened: number;
    try {
      opened = Number(t.syscall(`open ${path} to break its lease`, NR.openat, AT_FDCWD, t.putString(path), mode | O_NONBLOCK, 0));
    } catch (e) {
      if ((e as { errno?: number }).errno === EAGAIN) return; // the break has started
      throw e;
    }
    t.syscall('close', NR.close, opened);
    throw new CriuTsError('ERESTORE', `task ${t.pid} fd ${fd}: the lease to break back did not conflict with an open`, { pid: t.pid, fd });
  } finally {
    t.syscall(`fcntl(${fd}, F_SETOWN_EX)`, NR.fcntl, fd, F_SETOWN_EX, t.putBytes(owner));
  }
}

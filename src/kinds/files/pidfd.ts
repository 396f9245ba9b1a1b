/**
 * pidfds (pidfd_open, clone with CLONE_PIDFD): CRIU 4.x's PIDFD file_entry
 * (pidfd_entry: flags, nspid = the pid as the task sees it, ino). Restored
 * with pidfd_open in the task: pids are kept by restore, so the same
 * number names the same process again.
 *
 * A pidfd of a process that has exited (fdinfo Pid -1) is recorded with
 * nspid -1 and its pidfs inode: at restore we start a short-lived process,
 * open a pidfd on it, kill and reap it, and hand that pidfd to the task
 * (one dead process per dumped inode, so pidfds that named one process
 * still share an inode, and different ones do not).
 *
 * Known limits: a pidfd of a process outside the dump is refused (it could
 * name another process after restore); the target must exist when the fd
 * is made, i.e. be an ancestor, the task itself or created before it.
 * pidfds of one dead process share one open file description at restore.
 */
import { childProcess } from '../../builtins.js';
import { NR, closeQuiet, pidfdOpen, waitPid, O_NONBLOCK } from '../../sys/index.js';
import type { FileEntry, PidfdEntry } from '../../images/messages.js';
import { stateKey, type FileKind, type FdProbe, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { parseStatus } from '../../proc/index.js';
import { NO_FOWN } from './fown.js';
import { heldFds } from '../install-fd.js';
import { fileFlags, isAnonLink, part } from './anon-inode.js';

/** PIDFD_THREAD (a pidfd of one thread) is O_EXCL. */
const PIDFD_THREAD = 0o200;

function tracedByUs(pid: number): boolean {
  try {
    return parseStatus(pid).tracerPid === process.pid;
  } catch {
    return false;
  }
}


/** Our pidfds of dead processes made for this restore, by dumped inode. */
const DEAD = stateKey<Map<number, number>>('pidfd:dead');

function deadPidfd(t: RestoreTaskHandle, pf: PidfdEntry, ctx: RestoreContext): number {
  if (!ctx.installFd) throw new CriuTsError('EINTERNAL', 'no way to hand a pidfd to the task', { pid: t.pid });
  const dead = heldFds(ctx, DEAD);
  let ours = dead.get(pf.ino);
  if (ours === undefined) {
    const child = childProcess().spawn('/bin/sleep', ['1000'], { stdio: 'ignore' });
    child.unref(); // reaped by us below: nothing for the event loop to wait for
    const pid = child.pid;
    if (pid === undefined) throw new CriuTsError('ERESTORE', `task ${t.pid}: cannot start a process to make a pidfd of a dead one`, { pid: t.pid });
    try {
      ours = pidfdOpen(pid);
    } finally {
      process.kill(pid, 'SIGKILL');
      waitPid(pid, 0); // reaped: the pidfd now names a process that is gone, as at dump
    }
    dead.set(pf.ino, ours);
  }
  const fd = ctx.installFd(t, ours);
  if (pf.flags & O_NONBLOCK) t.syscall('fcntl(F_SETFL)', NR.fcntl, fd, 4 /* F_SETFL */, O_NONBLOCK);
  return fd;
}

export const pidfdKind: FileKind = {
  name: 'pidfd',
  type: 'PIDFD',
  detect: (p: FdProbe) => isAnonLink(p, 'pidfd') || (p.fdinfo.pidfd !== undefined && p.link.startsWith('pidfd:')),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.pidfd;
    const target = info?.pid ?? -1;
    const ino = Number(BigInt.asUintN(32, BigInt(p.stat.ino))); // uint32 in CRIU's image, as CRIU stores st_ino
    if (target <= 0) {
      return { type: 'PIDFD', id, pidfd: { id, ino, flags: fileFlags(p), nspid: -1, fown: NO_FOWN } };
    }
    // Every task of the dump is traced by us; anything else is outside it.
    if (target !== p.pid && !tracedByUs(target)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: pidfd of process ${target}, which is outside the dump`, { pid: p.pid, fd: p.fd, target });
    }
    const nspid = info?.nsPid[info.nsPid.length - 1] ?? target;
    const pidfd: PidfdEntry = { id, ino, flags: fileFlags(p), nspid, fown: NO_FOWN };
    return { type: 'PIDFD', id, pidfd };
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const pf = part(e, 'pidfd', 'PIDFD');
    if (pf.nspid < 0) return deadPidfd(t, pf, ctx);
    return Number(t.syscall(`pidfd_open(${pf.nspid})`, NR.pidfd_open, pf.nspid, pf.flags & (O_NONBLOCK | PIDFD_THREAD)));
  },
};

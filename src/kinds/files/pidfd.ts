/**
 * pidfds (pidfd_open, clone with CLONE_PIDFD): CRIU 4.x's PIDFD file_entry
 * (pidfd_entry: flags, nspid = the pid as the task sees it, ino). Restored
 * with pidfd_open in the task: pids are kept by restore, so the same
 * number names the same process again.
 *
 * Known limits: a pidfd of a process outside the dump is refused (it could
 * name another process after restore), and so is one of a process that
 * has exited (fdinfo Pid -1); the target must exist when the fd is made,
 * i.e. be an ancestor, the task itself or created before it.
 */
import { readFileSync } from 'node:fs';
import { NR } from '../../sys/index.js';
import type { FileEntry, PidfdEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './reg-file.js';
import { fileFlags, isAnonLink, part, O_NONBLOCK } from './anon-inode.js';

/** PIDFD_THREAD (a pidfd of one thread) is O_EXCL. */
const PIDFD_THREAD = 0o200;

function tracedByUs(pid: number): boolean {
  try {
    return /^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] === String(process.pid);
  } catch {
    return false;
  }
}

export const pidfdKind: FileKind = {
  name: 'pidfd',
  type: 'PIDFD',
  detect: (p: FdProbe) => isAnonLink(p, 'pidfd') || (p.fdinfo.pidfd !== undefined && p.link.startsWith('pidfd:')),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.pidfd;
    const target = info?.pid ?? -1;
    if (target <= 0) {
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: pidfd of a process that has exited`, { pid: p.pid, fd: p.fd });
    }
    // Every task of the dump is traced by us; anything else is outside it.
    if (target !== p.pid && !tracedByUs(target)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: pidfd of process ${target}, which is outside the dump`, { pid: p.pid, fd: p.fd, target });
    }
    const nspid = info?.nsPid[info.nsPid.length - 1] ?? target;
    const pidfd: PidfdEntry = { id, ino: Number(BigInt.asUintN(32, BigInt(p.stat.ino))) /* uint32 in CRIU's image, as CRIU stores st_ino */, flags: fileFlags(p), nspid, fown: NO_FOWN };
    return { type: 'PIDFD', id, pidfd };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const pf = part(e, 'pidfd', 'PIDFD');
    return Number(t.syscall(`pidfd_open(${pf.nspid})`, NR.pidfd_open, pf.nspid, pf.flags & (O_NONBLOCK | PIDFD_THREAD)));
  },
};

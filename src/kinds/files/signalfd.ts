/**
 * signalfd: CRIU's SIGNALFD file_entry (signalfd_entry: flags, sigmask).
 * fdinfo prints the mask the task asked for; restored with signalfd4(-1,
 * mask) in the task. Signals pending for the task are restored by the core,
 * so a signal queued at dump time is still readable through the new fd.
 */
import { NR } from '../../sys/index.js';
import type { FileEntry, SignalfdEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { createFlags, fileFlags, isAnonLink, part } from './anon-inode.js';

const SIGSET_BYTES = 8;

export const signalfdKind: FileKind = {
  name: 'signalfd',
  type: 'SIGNALFD',
  detect: (p: FdProbe) => isAnonLink(p, 'signalfd'),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.signalfd;
    if (!info) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: signalfd without sigmask in fdinfo`, { pid: p.pid, fd: p.fd });
    const sgfd: SignalfdEntry = { id, flags: fileFlags(p), fown: NO_FOWN, sigmask: info.sigmask };
    return { type: 'SIGNALFD', id, sgfd };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const sgfd = part(e, 'sgfd', 'SIGNALFD');
    const mask = Buffer.alloc(SIGSET_BYTES);
    mask.writeBigUInt64LE(BigInt.asUintN(64, sgfd.sigmask));
    return Number(t.syscall('signalfd4', NR.signalfd4, -1, t.putBytes(mask), SIGSET_BYTES, createFlags(sgfd.flags)));
  },
};

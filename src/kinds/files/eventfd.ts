/**
 * eventfd counters: CRIU's EVENTFD file_entry (eventfd_file_entry: flags,
 * counter). Restored with eventfd2 in the task, then the counter is added
 * with write(), since eventfd2 takes only a 32-bit initial value.
 *
 * EFD_SEMAPHORE lives in the eventfd context, not in f_flags, and CRIU's
 * image has no field for it (CRIU loses it). We keep it in bit 0 of
 * `flags` (O_WRONLY's bit, never set for an eventfd, which is always
 * O_RDWR): CRIU restores flags with F_SETFL, which ignores access-mode
 * bits, so such an image still restores under CRIU (as a plain counter).
 */
import { NR, O_ACCMODE, EFD_SEMAPHORE } from '../../sys/index.js';
import type { EventfdFileEntry, FileEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { createFlags, fileFlags, isAnonLink, part } from './anon-inode.js';


export const eventfdKind: FileKind = {
  name: 'eventfd',
  type: 'EVENTFD',
  detect: (p: FdProbe) => isAnonLink(p, 'eventfd'),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.eventfd;
    if (!info) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: eventfd without eventfd-count in fdinfo`, { pid: p.pid, fd: p.fd });
    const efd: EventfdFileEntry = {
      id,
      flags: fileFlags(p) | (info.semaphore ? EFD_SEMAPHORE : 0),
      fown: NO_FOWN,
      counter: info.count,
    };
    return { type: 'EVENTFD', id, efd };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const efd = part(e, 'efd', 'EVENTFD');
    // Bit 0 is our semaphore mark only when the access mode is not O_RDWR's alone.
    const semaphore = (efd.flags & O_ACCMODE) === (2 | EFD_SEMAPHORE);
    const fd = Number(t.syscall('eventfd2', NR.eventfd2, 0, createFlags(efd.flags) | (semaphore ? EFD_SEMAPHORE : 0)));
    if (efd.counter !== 0n) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(efd.counter);
      t.syscall('write(eventfd)', NR.write, fd, t.putBytes(b), 8);
    }
    return fd;
  },
};

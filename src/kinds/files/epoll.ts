/**
 * epoll instances: CRIU's EVENTPOLL file_entry (eventpoll_file_entry with
 * one eventpoll_tfd_entry per watched fd: fd number, events, data, and the
 * target's dev/inode/pos for identification).
 *
 * Restore creates the epoll with epoll_create1, and adds the targets in
 * the `finish` hook, when every fd of the task has its final number (the
 * numbers recorded are the task's own fd numbers).
 *
 * Known limits: a watched file whose fd was closed in the task (epoll
 * keeps watching it while another descriptor holds the file) is refused,
 * and so is a number now used by another file. An epoll shared by several
 * tasks gets its targets in the first of them (whose fd numbers the dump
 * recorded), once every task's fds are final.
 */
import { statSync } from 'node:fs';
import { NR } from '../../sys/index.js';
import type { EventpollTfdEntry, FileEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreContext, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './reg-file.js';
import { fileFlags, isAnonLink, part } from './anon-inode.js';
import { isFinalFd } from './task-fds.js';

const EPOLL_CTL_ADD = 1;

/** Is the task's fd `tfd` still the file the epoll watches? (inode and device) */
function sameTarget(pid: number, tfd: number, ino: bigint, sdev: number): boolean {
  try {
    // fdinfo prints the kernel's dev_t (major << 20 | minor); stat gives glibc's encoding.
    const st = statSync(`/proc/${pid}/fd/${tfd}`, { bigint: true });
    const major = Number((st.dev >> 8n) & 0xfffn);
    const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n));
    return st.ino === ino && ((major << 20) | minor) === sdev;
  } catch {
    return false;
  }
}

export const epollKind: FileKind = {
  name: 'epoll',
  type: 'EVENTPOLL',
  detect: (p: FdProbe) => isAnonLink(p, 'eventpoll'),
  dump(p: FdProbe, id: number): FileEntry {
    const tfd: EventpollTfdEntry[] = [];
    for (const w of p.fdinfo.epoll ?? []) {
      if (!sameTarget(p.pid, w.tfd, w.ino, w.sdev)) {
        throw new CriuTsError('EUNSUPPORTED',
          `task ${p.pid} fd ${p.fd}: epoll watches fd ${w.tfd} (inode ${w.ino}), which is no longer that fd of the task`,
          { pid: p.pid, fd: p.fd, tfd: w.tfd });
      }
      // CRIU leaves the per-target id 0 (a leftover of the old per-type image).
      tfd.push({ id: 0, tfd: w.tfd, events: w.events, data: w.data, dev: w.sdev, inode: w.ino, pos: w.pos });
    }
    return { type: 'EVENTPOLL', id, epfd: { id, flags: fileFlags(p), fown: NO_FOWN, tfd } };
  },
  restore(t: RestoreTaskHandle): number {
    // epoll_create1 takes only EPOLL_CLOEXEC (the core's business); f_flags are always O_RDWR.
    return Number(t.syscall('epoll_create1', NR.epoll_create1, 0));
  },
  finish(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
    const epfd = part(e, 'epfd', 'EVENTPOLL');
    // Finished on a parked fd (created for several tasks at once): the targets are not in place yet.
    if ((epfd.tfd ?? []).length > 0 && !isFinalFd(ctx, t.pid, fd, e.id)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: epoll (file ${e.id}) shared by several tasks: its targets cannot be added yet`, { pid: t.pid, id: e.id });
    }
    for (const w of epfd.tfd ?? []) {
      const ev = Buffer.alloc(12); // struct epoll_event is packed on x86_64
      ev.writeUInt32LE(w.events >>> 0, 0);
      ev.writeBigUInt64LE(BigInt.asUintN(64, w.data), 4);
      t.syscall(`epoll_ctl(ADD ${w.tfd})`, NR.epoll_ctl, fd, EPOLL_CTL_ADD, w.tfd, t.putBytes(ev));
    }
  },
};

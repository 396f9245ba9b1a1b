/**
 * epoll instances: CRIU's EVENTPOLL file_entry (eventpoll_file_entry with
 * one eventpoll_tfd_entry per watched fd: fd number, events, data, and the
 * target's dev/inode/pos for identification).
 *
 * Restore creates the epoll with epoll_create1, and adds the targets in
 * the `finish` hook, when every fd of the task has its final number (the
 * numbers recorded are the task's own fd numbers).
 *
 * A watched file whose fd was closed (or whose number now names another
 * file) while another fd of the task still holds it is found with
 * kcmp(KCMP_EPOLL_TFD) and recorded under that fd, as CRIU does.
 *
 * An epoll in flight (SCM_RIGHTS in a socket queue) keeps the fd numbers
 * of the task that added its targets. The dump checks, with kcmp, that the
 * task holding the socket whose queue carries it holds each target under
 * that number (CRIU does not check); the restore makes it in the task that
 * restores that queue and, once every fd of the tree is final, adds the
 * targets through that task's fds, after checking each fd is the file the
 * epoll watched (same inode as dumped).
 *
 * Known limits: a watched file no fd of the task holds any more is refused;
 * so is an in-flight epoll whose targets the holder of the queue does not
 * hold under the same numbers. An epoll shared by several
 * tasks gets its targets in the first of them (whose fd numbers the dump
 * recorded), once every task's fds are final.
 */
import { statSync } from 'node:fs';
import { listFds } from '../../proc/index.js';
import { NR, kcmpEpollTarget, pidfdOpen, pidfdGetfd, closeQuiet, EPOLL_CTL_ADD } from '../../sys/index.js';
import type { EventpollTfdEntry, FdinfoEntry, FileEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreContext, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { fileFlags, isAnonLink, part } from './anon-inode.js';
import { isFinalFd } from './task-fds.js';


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

/** The task's fd holding the file epoll `p` watches as target (tfd, toff), if any. */
function findTarget(p: FdProbe, tfd: number, toff: number): number | undefined {
  let fds: number[];
  try {
    fds = listFds(p.pid);
  } catch {
    return undefined;
  }
  return fds.find((fd) => fd !== p.fd && kcmpEpollTarget(p.pid, fd, p.fd, tfd, toff));
}

export const epollKind: FileKind = {
  name: 'epoll',
  type: 'EVENTPOLL',
  detect: (p: FdProbe) => isAnonLink(p, 'eventpoll'),
  dump(p: FdProbe, id: number): FileEntry {
    // In flight in a socket queue (the probe is our own copy): its targets' fd numbers are the
    // ones of the task that added them, which must be the holder of the queue (see the header).
    if (p.pid === process.pid) return dumpInFlight(p, id);
    const tfd: EventpollTfdEntry[] = [];
    for (const { w, toff } of withOffsets(p)) {
      let at = w.tfd;
      if (!sameTarget(p.pid, w.tfd, w.ino, w.sdev)) {
        // Its fd was closed (or the number reused); another fd of the task may still hold the file.
        // As CRIU, the target is recorded under that fd: restored, the epoll watches the same file.
        const other = findTarget(p, w.tfd, toff);
        if (other === undefined) {
          throw new CriuTsError('EUNSUPPORTED',
            `task ${p.pid} fd ${p.fd}: epoll watches a file (inode ${w.ino}) that no fd of the task holds (its fd ${w.tfd} was closed)`,
            { pid: p.pid, fd: p.fd, tfd: w.tfd });
        }
        at = other;
      }
      tfd.push(tfdEntry(w, at));
    }
    return epollEntry(p, id, tfd);
  },
  restore(t: RestoreTaskHandle, e: FileEntry, fdi: FdinfoEntry, ctx: RestoreContext): number {
    // epoll_create1 takes only EPOLL_CLOEXEC (the core's business); f_flags are always O_RDWR.
    const fd = Number(t.syscall('epoll_create1', NR.epoll_create1, 0));
    // In flight (no fd of its own in the task): the core takes it away at once; keep a copy for the targets.
    if (fdi.fd < 0 && (part(e, 'epfd', 'EVENTPOLL').tfd ?? []).length > 0) addTargetsLater(t, e, fd, ctx);
    return fd;
  },
  finish(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
    const epfd = part(e, 'epfd', 'EVENTPOLL');
    // Finished on a parked fd (created for several tasks at once): the targets are not in place yet.
    if ((epfd.tfd ?? []).length > 0 && !isFinalFd(ctx, t.vpid, fd, e.id)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: epoll (file ${e.id}) shared by several tasks: its targets cannot be added yet`, { pid: t.pid, id: e.id });
    }
    addTargets(t, fd, epfd.tfd ?? []);
  },
};

/** The in-flight epoll `p` (our copy): targets as the queue's holder numbers them, each checked with kcmp. */
function dumpInFlight(p: FdProbe, id: number): FileEntry {
  const holder = p.inFlightFrom;
  const tfd: EventpollTfdEntry[] = [];
  for (const { w, toff } of withOffsets(p)) {
    if (holder === undefined || holder === process.pid || !kcmpEpollTarget(holder, w.tfd, p.localFd, w.tfd, toff, process.pid)) {
      throw new CriuTsError('EUNSUPPORTED',
        `an epoll in flight watches a file (inode ${w.ino}) under fd ${w.tfd}, which ${holder === undefined || holder === process.pid ? 'no task' : `task ${holder}, holding the queue,`} does not hold under that number`,
        { fd: p.fd, tfd: w.tfd, ...(holder === undefined ? {} : { pid: holder }) });
    }
    tfd.push(tfdEntry(w, w.tfd));
  }
  return epollEntry(p, id, tfd);
}

type Watch = NonNullable<FdProbe['fdinfo']['epoll']>[number];

/** Each target with its `toff`: targets registered under one fd number come in the kernel's order, the n-th is toff n. */
function* withOffsets(p: FdProbe): Generator<{ w: Watch; toff: number }> {
  const seen = new Map<number, number>();
  for (const w of p.fdinfo.epoll ?? []) {
    const toff = seen.get(w.tfd) ?? 0;
    seen.set(w.tfd, toff + 1);
    yield { w, toff };
  }
}

/** A target recorded under fd `at`; CRIU leaves the per-target id 0 (a leftover of the old per-type image). */
function tfdEntry(w: Watch, at: number): EventpollTfdEntry {
  return { id: 0, tfd: at, events: w.events, data: w.data, dev: w.sdev, inode: w.ino, pos: w.pos };
}

function epollEntry(p: FdProbe, id: number, tfd: EventpollTfdEntry[]): FileEntry {
  return { type: 'EVENTPOLL', id, epfd: { id, flags: fileFlags(p), fown: NO_FOWN, tfd } };
}

/** The inode file `e` had at dump, where its image says (sockets, pipes); undefined where it does not. */
function dumpedInode(e: FileEntry | undefined): bigint | undefined {
  const ino = e?.usk?.ino ?? e?.isk?.ino ?? e?.pipe?.pipe_id ?? e?.fifo?.pipe_id;
  return ino === undefined ? undefined : BigInt(ino);
}

/**
 * Our copy of the in-flight epoll made in task `t` (its fd `fd` there, about
 * to be taken away by the core): once every task's fds are final, put it
 * back into `t`, add the targets by the numbers the dump recorded, close it.
 */
function addTargetsLater(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
  const pidfd = pidfdOpen(t.pid);
  let ours: number;
  try {
    ours = pidfdGetfd(pidfd, fd, t.pid);
  } finally {
    closeQuiet(pidfd);
  }
  // Steps run in the order registered: the targets first, then (also after a failure) our copy goes.
  ctx.afterAllFiles(() => {
    const epfd = part(e, 'epfd', 'EVENTPOLL');
    const fds = ctx.taskFds(t.vpid) ?? [];
    for (const w of epfd.tfd ?? []) {
      const fdi = fds.find((f) => f.fd === w.tfd);
      let ino = dumpedInode(fdi && ctx.fileById(fdi.id));
      let now = w.inode === undefined ? -1n : BigInt(w.inode);
      if (fdi && ino === undefined) {
        // A file that keeps its inode (a regular file): the restored fd must be that very inode.
        ino = now;
        try {
          now = statSync(`/proc/${t.pid}/fd/${w.tfd}`, { bigint: true }).ino;
        } catch {
          now = -1n;
        }
      }
      if (!fdi || ino !== now) {
        throw new CriuTsError('ERESTORE', `task ${t.pid}: epoll in flight (file ${e.id}) watches fd ${w.tfd}, which is not the file it watched`, { pid: t.pid, id: e.id, tfd: w.tfd });
      }
    }
    if (!ctx.installFd) throw new CriuTsError('EINTERNAL', 'the restore core cannot put a file back into a task', {});
    const n = ctx.installFd(t, ours);
    try {
      addTargets(t, n, epfd.tfd ?? []);
    } finally {
      t.syscall('close', NR.close, n);
    }
  });
  ctx.afterAllFiles(() => closeQuiet(ours), { alsoOnFailure: true });
}

function addTargets(t: RestoreTaskHandle, fd: number, targets: readonly EventpollTfdEntry[]): void {
  for (const w of targets) {
    const ev = Buffer.alloc(12); // struct epoll_event is packed on x86_64
    ev.writeUInt32LE(w.events >>> 0, 0);
    ev.writeBigUInt64LE(BigInt.asUintN(64, w.data), 4);
    t.syscall(`epoll_ctl(ADD ${w.tfd})`, NR.epoll_ctl, fd, EPOLL_CTL_ADD, w.tfd, t.putBytes(ev));
  }
}

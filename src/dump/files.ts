/**
 * Open files of one task: each fd becomes an fdinfo entry pointing to a
 * file_entry in the global files table. Open file descriptions shared
 * between fds (dup, fork) are found with kcmp(KCMP_FILE) and written once.
 * The fd itself is copied into our process with pidfd_getfd so kinds can
 * fstat/peek it from our side without touching the task.
 */
import { fstatSync } from 'node:fs';
import { listFds, readFdLink, parseFdinfo } from '../proc/index.js';
import { pidfdOpen, pidfdGetfd, closeQuiet, kcmp, KCMP, getsockoptInt, O_CLOEXEC, FD_CLOEXEC } from '../sys/index.js';
import { CriuTsError, isCriuTsError } from '../errors.js';
import { fileKindFor, fownUidsAsSeen, socketNetNsId, stateKey, readFown, withFown, NO_FOWN, type DumpContext, type FdProbe } from '../kinds/index.js';
import type { FdinfoEntry, FownEntry } from '../images/messages.js';
import { logger } from '../log.js';

const log = logger('files');

/** An open file description already dumped, by a representative (pid, fd). */
interface Seen {
  pid: number;
  fd: number;
  ino: bigint;
  id: number;
}

/**
 * Open file descriptions dumped so far, to find one again from another fd
 * (dup, fork, passed over a socket) with kcmp(KCMP_FILE). Kept per inode,
 * each list in kcmp's order of the files, so a lookup costs log2(n) kcmp
 * calls: every eventfd, epoll and timerfd shares the one anonymous inode,
 * and a scan of the whole list per fd made a dump of 10,000 fds spend 23 s
 * in kcmp. A list whose order cannot be had (a compare fails, or the
 * kernel gives no order) is scanned as before.
 */
class SeenFiles {
  private readonly byIno = new Map<bigint, { list: Seen[]; ordered: boolean }>();

  find(pid: number, fd: number, ino: bigint): Seen | undefined {
    const b = this.byIno.get(ino);
    if (b === undefined) return undefined;
    if (b.ordered) {
      const at = this.locate(b, pid, fd);
      if (at !== undefined) return typeof at === 'number' ? undefined : at;
    }
    return b.list.find((s) => sameFile(s.pid, s.fd, pid, fd));
  }

  add(s: Seen): void {
    let b = this.byIno.get(s.ino);
    if (b === undefined) {
      b = { list: [], ordered: true };
      this.byIno.set(s.ino, b);
    }
    const at = b.ordered ? this.locate(b, s.pid, s.fd) : undefined;
    if (typeof at === 'number') b.list.splice(at, 0, s);
    else b.list.push(s);
  }

  /** The entry for this file, or where it would go in order; undefined when the order is lost (the list is then scanned). */
  private locate(b: { list: Seen[]; ordered: boolean }, pid: number, fd: number): Seen | number | undefined {
    let lo = 0;
    let hi = b.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const s = b.list[mid] as Seen;
      let order: number;
      try {
        order = kcmp(pid, s.pid, KCMP.FILE, fd, s.fd);
      } catch {
        order = -1;
      }
      if (order === 0) return s;
      // 1: this file sorts before the entry's; 2: after
      if (order === 1) hi = mid;
      else if (order === 2) lo = mid + 1;
      else {
        b.ordered = false;
        return undefined;
      }
    }
    return lo;
  }
}

const SEEN = stateKey<SeenFiles>('files:seen');

/** The fdinfo entries of task `pid` (in net namespace `netNsId`); new open files go into the dump's files table. */
export function dumpFds(pid: number, ctx: DumpContext, netNsId: number | undefined, hidden?: number): FdinfoEntry[] {
  const out: FdinfoEntry[] = [];
  const pidfd = pidfdOpen(pid);
  try {
    for (const fd of listFds(pid)) {
      // `hidden`: our memory tracker kept in the task by `dump --track-mem -R` (kinds/memory/incremental.ts), not the task's own.
      if (fd === hidden) continue;
      const { id, type, fdFlags } = fileOfFd(pid, pidfd, fd, ctx, netNsId);
      out.push({ id, flags: fdFlags, type, fd });
    }
  } finally {
    closeQuiet(pidfd);
  }
  return out;
}

/** The file entry of task `pid`'s fd `fd`: one already dumped (the same open file description), or a new one. */
function fileOfFd(pid: number, pidfd: number, fd: number, ctx: DumpContext, netNsId: number | undefined): { id: number; type: FdinfoEntry['type']; fdFlags: number } {
  const seen = ctx.memo(SEEN, () => new SeenFiles());
  const link = readFdLink(pid, fd);
  const fdinfo = parseFdinfo(pid, fd);
  const fdFlags = fdinfo.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
  const same = seen.find(pid, fd, fdinfo.ino);
  if (same) {
    heldByTasks(ctx).add(same.id); // (it may have been met in flight first)
    return { id: same.id, type: ctx.fileById(same.id)?.type ?? 'REG', fdFlags };
  }
  const localFd = pidfdGetfd(pidfd, fd, pid);
  try {
    const stat = fstatSync(localFd);
    // A socket's own net namespace (it may not be its holder's): where the restore makes it.
    const netNs = stat.isSocket() ? socketNetNsId(ctx, { pid, fd, link, localFd }, netNsId) : netNsId;
    const probe: FdProbe = { pid, fd, link, fdinfo, stat, localFd, netNsId: netNs };
    const external = externalFile(probe, ctx);
    if (external !== undefined) {
      const id = ctx.addFile((i) => ({ type: 'REG', id: i, reg: { id: i, flags: fdinfo.flags & ~O_CLOEXEC, pos: fdinfo.pos, fown: NO_FOWN, name: external } }));
      seen.add({ pid, fd, ino: fdinfo.ino, id });
      log.debug(`task ${pid} fd ${fd}: external ${external} id ${id} (${link})`);
      return { id, type: 'REG', fdFlags };
    }
    const kind = fileKindFor(probe);
    if (!kind) {
      const what = describeUnknown(probe);
      throw new CriuTsError('EUNSUPPORTED', `task ${pid} fd ${fd}: ${link}${what}: this kind of file is not supported`, { pid, fd, link });
    }
    const fown = ownerAsSeen(readFown(localFd, fdinfo.flags), ctx, `task ${pid} fd ${fd} (${link})`);
    // Known by its id before its kind dumps it: a socket whose queue carries itself finds its own entry.
    const id = ctx.addFile((i) => {
      seen.add({ pid, fd, ino: fdinfo.ino, id: i });
      heldByTasks(ctx).add(i);
      return withFown(kind.dump(probe, i, ctx), fown, `task ${pid} fd ${fd} (${link})`);
    });
    log.debug(`task ${pid} fd ${fd}: ${kind.name} id ${id} (${link})`);
    return { id, type: kind.type, fdFlags };
  } finally {
    closeQuiet(localFd);
  }
}

/**
 * A file --external names (file[MNT_ID:INODE], as CRIU keys it: the mount id
 * the task sees, the inode, hex): saved as a REG entry named by that key
 * and nothing else, as CRIU does; the restore takes it from --inherit-fd.
 */
function externalFile(p: FdProbe, ctx: DumpContext): string | undefined {
  const ext = ctx.opts.externals;
  if (ext === undefined || ext.size === 0 || p.fdinfo.mntId === undefined || p.stat.isSocket()) return undefined;
  const key = `file[${p.fdinfo.mntId.toString(16)}:${BigInt(p.stat.ino).toString(16)}]`;
  return ext.has(key) ? key : undefined;
}

/**
 * For the memory kind: the file entry of the socket a mapping of task `pid`
 * shows (`socket:[ino]`, a packet socket's ring), dumped through an fd of
 * the task on it (memory is dumped before the fds; those find it again).
 * Refused when no fd holds the socket any more, or when it is not a packet
 * socket.
 */
export function socketFileForMapping(ctx: DumpContext, pid: number, start: bigint, end: bigint, path: string, netNsId: number | undefined): number {
  const where = `task ${pid}: mapping 0x${start.toString(16)}-0x${end.toString(16)} ${path}`;
  const fd = listFds(pid).find((f) => readFdLink(pid, f) === path);
  if (fd === undefined) {
    throw new CriuTsError('EUNSUPPORTED', `${where}: no fd of the task holds this socket any more, so it cannot be made again`, { pid, path });
  }
  const pidfd = pidfdOpen(pid);
  try {
    const { id, type } = fileOfFd(pid, pidfd, fd, ctx, netNsId);
    if (type !== 'PACKETSK') throw new CriuTsError('EUNSUPPORTED', `${where}: a mapping of a ${type} socket is not supported (only packet rings)`, { pid, path, type });
    return id;
  } finally {
    closeQuiet(pidfd);
  }
}

/** Our fds on files in flight, kept open until the dump ends (kcmp compares later fds with them); inodes being dumped now, with whose queue they were met in. */
const IN_FLIGHT = stateKey<{ fds: number[]; busy: Map<bigint, string> }>('files:in-flight');
/** Ids of the files some task holds (an fd of a task), whether or not they were met in flight first. */
const HELD_BY_TASKS = stateKey<Set<number>>('files:held-by-tasks');

function heldByTasks(ctx: DumpContext): Set<number> {
  return ctx.memo(HELD_BY_TASKS, () => new Set<number>());
}

/**
 * Files met in flight inside their own queue, directly or through others
 * (a socket carrying itself): restorable when a task holds the file (its
 * queue is filled once every task's fds exist, with that very file), not
 * when it lives only in flight (nothing would exist to send first).
 * Checked once every task's fds are dumped.
 */
const LOOPS = stateKey<Map<number, string>>('files:in-flight-loops');

function noteLoop(ctx: DumpContext, id: number, message: string): void {
  const loops = ctx.memo(LOOPS, () => {
    const made = new Map<number, string>();
    ctx.atEnd(() => {
      const held = heldByTasks(ctx);
      for (const [fileId, msg] of made) {
        if (!held.has(fileId)) throw new CriuTsError('EUNSUPPORTED', msg, { id: fileId });
      }
    });
    return made;
  });
  if (!loops.has(id)) loops.set(id, message);
}

/**
 * A file in flight (our fd, from a peek at a socket queue): the same open
 * file description as a task's fd or an earlier one in flight gets that
 * entry; otherwise its kind dumps it as if our process held it. We own
 * `localFd` from here on.
 */
export function dumpInFlight(ctx: DumpContext, localFd: number, what: string, holderPid: number): number {
  const me = process.pid;
  const state = ctx.memo(IN_FLIGHT, () => {
    const made = { fds: [] as number[], busy: new Map<bigint, string>() };
    ctx.atExit(() => {
      for (const fd of made.fds.splice(0)) closeQuiet(fd);
    });
    return made;
  });
  state.fds.push(localFd);
  const seen = ctx.memo(SEEN, () => new SeenFiles());
  const fdinfo = parseFdinfo(me, localFd);
  const same = seen.find(me, localFd, fdinfo.ino);
  if (same) {
    if (same.pid === me && state.busy.has(fdinfo.ino)) {
      // Named as met from the task's side (`what` here speaks of our own copy).
      const from = state.busy.get(fdinfo.ino) ?? what;
      noteLoop(ctx, same.id, `${from}: ${readFdLink(me, localFd)} is in flight inside its own queue and no task holds it (a loop of files only in flight cannot be restored)`);
    }
    return same.id;
  }
  const link = readFdLink(me, localFd);
  const probe: FdProbe = { pid: me, fd: localFd, link, fdinfo, stat: fstatSync(localFd), localFd, netNsId: undefined, inFlightFrom: holderPid };
  const kind = fileKindFor(probe);
  if (!kind) throw new CriuTsError('EUNSUPPORTED', `${what}: ${link}${describeUnknown(probe)} in flight: this kind of file is not supported`, { link });
  state.busy.set(fdinfo.ino, what);
  try {
    const id = ctx.addFile((i) => {
      seen.add({ pid: me, fd: localFd, ino: fdinfo.ino, id: i });
      return kind.dump(probe, i, ctx);
    });
    log.debug(`${what}: ${kind.name} id ${id} in flight (${link})`);
    return id;
  } catch (e) {
    // The kind speaks of our own copy ("task <us> fd N"): say whose queue it was in instead.
    if (!isCriuTsError(e)) throw e;
    throw new CriuTsError(e.code, `${what}: ${e.message.replace(/^task \d+ fd \d+: /, '')}`, e.data, e);
  } finally {
    state.busy.delete(fdinfo.ino);
  }
}

function sameFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
  try {
    return kcmp(pid1, pid2, KCMP.FILE, fd1, fd2) === 0;
  } catch {
    return false;
  }
}

const FAMILIES: Readonly<Record<number, string>> = {
  1: 'unix', 2: 'inet', 10: 'inet6', 16: 'netlink', 17: 'packet', 38: 'alg', 40: 'vsock', 44: 'xdp',
};
const SOCK_TYPES: Readonly<Record<number, string>> = { 1: 'stream', 2: 'dgram', 3: 'raw', 4: 'rdm', 5: 'seqpacket', 10: 'packet' };

/** A few words on what an unsupported fd is, for the refusal line (e.g. " (netlink raw socket)"). */
function describeUnknown(p: FdProbe): string {
  if (!p.link.startsWith('socket:')) return '';
  try {
    const fam = getsockoptInt(p.localFd, 1 /* SOL_SOCKET */, 39 /* SO_DOMAIN */);
    const type = getsockoptInt(p.localFd, 1, 3 /* SO_TYPE */);
    return ` (${FAMILIES[fam] ?? `family ${fam}`} ${SOCK_TYPES[type] ?? `type ${type}`} socket)`;
  } catch {
    return '';
  }
}

/**
 * F_GETOWN_EX from our side names the owner in our pid namespace: the
 * image holds it as the tree sees it. An owner the tree cannot name (a
 * process outside its pid namespace) could not be set again from inside.
 */
function ownerAsSeen(fown: FownEntry | undefined, ctx: DumpContext, where: string): FownEntry | undefined {
  if (!fown || fown.pid === 0) return fown;
  const pid = ctx.vpid(fown.pid);
  if (pid === undefined) {
    throw new CriuTsError('EUNSUPPORTED', `${where}: its owner (F_SETOWN) ${fown.pid} is outside the pid namespace of the dumped tree`, { pid: fown.pid });
  }
  return fownUidsAsSeen({ ...fown, pid }, ctx, where);
}

/**
 * Dump of one unix socket fd into a unix_sk_entry, the way CRIU fills it:
 * backlog is the diag write-queue figure (a listener's backlog), peer is the
 * peer's inode, a client still waiting in a listener's accept queue gets
 * the listener as its peer, a bound path is checked against the socket's
 * own inode (a relative name is resolved against the task's cwd and kept
 * with name_dir), and queued bytes go to sk-queues.img.
 */
import { fstatSync, lstatSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import { fdMountId, parseMountinfo, pathSeenBy, processesTracedBy, listFds, readFdLink } from '../../../proc/index.js';
import type { FileEntry, UnixSkEntry, SkShutdown } from '../../../images/messages.js';
import {
  SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, inNetNamespaceOfSocket, O_CLOEXEC, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN,
  closeQuiet, unixSocketFile,
} from '../../../sys/index.js';
import { stateKey, type DumpContext, type FdProbe } from '../../types.js';
import { NO_FOWN } from '../fown.js';
import { nameText, unixDiag, unixListeners, type UnixDiag } from './diag.js';
import { dumpSkOpts } from '../socket-opts/index.js';
import { dumpQueue } from '../socket-opts/queue.js';
import { treeGid, treeUid } from '../../ns/user.js';
import { isHiddenMount, isTreeMount } from '../../ns/mnt/index.js';
import { walk } from '../../ns/mnt/hidden.js';

/** uflags bit: the entry stands for a socket outside the dump (--ext-unix-sk) */
export const USK_EXTERN = 1;
const SHUTDOWN_NAMES: SkShutdown[] = ['NONE', 'READ', 'WRITE', 'BOTH'];

/** Socket inode → a pid holding it, over every task this dump has seized (they are traced by us). */
function socketHolders(): Map<number, number> {
  const holders = new Map<number, number>();
  for (const pid of processesTracedBy(process.pid)) {
    try {
      for (const fd of listFds(pid)) {
        const s = /^socket:\[(\d+)\]$/.exec(readFdLink(pid, fd));
        if (s) holders.set(Number(s[1]), pid);
      }
    } catch {
      // gone meanwhile: not part of the dump
    }
  }
  return holders;
}

/** the tasks are frozen: one scan serves the whole dump */
const HOLDERS = stateKey<Map<number, number>>('unix-socket:holders');
/** entries made for peers outside the dump: inode → file id */
const EXTERNAL = stateKey<Map<number, number>>('unix-socket:external');

const heldByDump = (ctx: DumpContext, ino: number): boolean => ctx.memo(HOLDERS, socketHolders).has(ino);

/**
 * Whether task `pid`'s walk of directory `dir` (as the kernel walks it:
 * the last mount made at each place is crossed into) passes mount `mntId`
 * and leaves it: then, while `mntId` holds the
 * socket's file (its inode still linked), another mount was made over the
 * directory, or a directory above it, after the bind: the name is
 * covered, not gone (zdtm overmount_sock). Returns `mntId`'s mountpoint
 * then, undefined when `mntId` shows the directory or is not on the way.
 */
function coveredBy(pid: number, dir: string, mntId: number): string | undefined {
  const seq = walk(parseMountinfo(pid), dir);
  const i = seq.findIndex((m) => m.mntId === mntId);
  return i >= 0 && i < seq.length - 1 ? seq[i]?.mountpoint : undefined;
}

/** The mount id of an fd of ours (fdinfo's mnt_id). */
function mountIdOf(fd: number): number | undefined {
  return fdMountId(process.pid, fd);
}

/** Fill name_dir, file_perms, deleted and (for a covered name) mnt_id for a socket bound to a path. */
function resolveName(ctx: DumpContext, p: FdProbe, d: UnixDiag, ue: UnixSkEntry): void {
  if (d.name.length === 0 || d.name[0] === 0) return;
  let path = nameText(d.name);
  if (!path.startsWith('/')) {
    const cwd = readlinkSync(`/proc/${p.pid}/cwd`);
    ue.name_dir = cwd;
    path = `${cwd}/${path}`;
  }
  const holder = p.inFlightFrom ?? p.pid;
  let st;
  try {
    // The name is the task's (a file in flight: its holder's): in a mount namespace of its own, reached through its root.
    st = lstatSync(pathSeenBy(holder, path));
  } catch {
    st = undefined;
  }
  if (st && st.isSocket() && st.ino === d.vfs?.ino) {
    ue.file_perms = { mode: st.mode, uid: treeUid(ctx, st.uid), gid: treeGid(ctx, st.gid) };
    return;
  }
  // The path shows nothing, or another file: the socket's own file (SIOCUNIXFILE) tells unlinked from covered.
  const file = unixSocketFile(p.localFd);
  if (file === undefined) {
    ue.deleted = true;
    return;
  }
  try {
    const own = fstatSync(file);
    const mntId = mountIdOf(file);
    const mountpoint = own.nlink === 0 || mntId === undefined ? undefined : coveredBy(holder, dirname(path), mntId);
    if (mntId === undefined || mountpoint === undefined) {
      // Unlinked, or the path now names another file: bind and drop it again at restore.
      ue.deleted = true;
      return;
    }
    const what = `${describeSocket(p)}: its name ${path} is covered by a mount made over it after the bind`;
    if (!isTreeMount(ctx, mntId)) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: it can be bound under that mount again only in a mount namespace of the tree's own`, { pid: p.pid, fd: p.fd, mntId });
    }
    if (isHiddenMount(ctx, mntId)) {
      throw new CriuTsError('EUNSUPPORTED', `${what}, and its own mount ${mntId} is covered too: no path reaches it to bind there again`, { pid: p.pid, fd: p.fd, mntId });
    }
    // The restore binds it from inside a clone of that mount alone (covered.ts): the name must start on it.
    const start = ue.name_dir ?? '/';
    if (start !== mountpoint && !start.startsWith(mountpoint === '/' ? '/' : `${mountpoint}/`)) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: the name starts at ${start}, not on the socket's own mount (${mountpoint}), so it cannot be bound again under the cover`, { pid: p.pid, fd: p.fd, mntId });
    }
    // The restore binds it under that mount, through a clone of mount `mntId` (restore.ts).
    ue.mnt_id = mntId;
    ue.file_perms = { mode: own.mode, uid: treeUid(ctx, own.uid), gid: treeGid(ctx, own.gid) };
  } finally {
    closeQuiet(file);
  }
}

export function describeSocket(p: FdProbe): string {
  return `task ${p.pid} fd ${p.fd}: unix socket ${String(p.stat.ino)}`;
}

/**
 * An entry for a socket outside the dump that one of ours talks to, once
 * per dump: with --ext-unix-sk it must have a name (the restore connects
 * to it again); named by --external unix[INO] (`keyed`) it may have none
 * (the restore is given our socket instead, --inherit-fd).
 */
function externalPeer(d: UnixDiag, ctx: DumpContext, what: string, keyed = false): void {
  if (d.name.length === 0 && !keyed) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: its peer ${d.ino} is outside the dump and has no name to reconnect to`, { peer: d.ino });
  }
  const made = ctx.memo(EXTERNAL, () => new Map<number, number>());
  if (made.has(d.ino)) return;
  made.set(d.ino, ctx.addFile((id) => ({
    type: 'UNIXSK',
    id,
    usk: {
      id, ino: d.ino, type: d.type, state: d.state, flags: 2, uflags: USK_EXTERN, backlog: d.wqueue, peer: 0,
      fown: NO_FOWN, opts: { so_sndbuf: 0, so_rcvbuf: 0, so_snd_tmo_sec: 0n, so_snd_tmo_usec: 0n, so_rcv_tmo_sec: 0n, so_rcv_tmo_usec: 0n },
      name: d.name,
    },
  })));
}

/** `keyed`: our socket, when --external unix[INO] names it. */
function checkOutside(peer: UnixDiag, ctx: DumpContext, what: string, keyed: UnixDiag | undefined): void {
  if (heldByDump(ctx, peer.ino)) return;
  if (keyed) {
    if (keyed.rqueue > 0) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: named by --external unix[${keyed.ino}], but ${keyed.rqueue} byte(s) wait to be read on it, which the socket given back at restore would not hold`, { ino: keyed.ino });
    }
    externalPeer(peer, ctx, what, true);
    return;
  }
  if (!ctx.opts.extUnixSk) {
    throw new CriuTsError('EUNSUPPORTED', `${what} is connected to socket ${peer.ino} outside the dumped tree (--ext-unix-sk allows it)`, { peer: peer.ino });
  }
  externalPeer(peer, ctx, what);
}

export function dumpUnixSocket(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
  const what = describeSocket(p);
  const ino = Number(p.stat.ino);
  // sock_diag lists the sockets of the caller's net namespace: ask from the socket's own.
  const inNs = <T>(fn: () => T): T => inNetNamespaceOfSocket(p.localFd, fn);
  const d = inNs(() => unixDiag(ino));
  if (!d) throw new CriuTsError('EDUMP', `${what}: sock_diag does not know it`, { pid: p.pid, fd: p.fd });
  if (d.type !== SOCK_STREAM && d.type !== SOCK_DGRAM && d.type !== SOCK_SEQPACKET) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: socket type ${d.type} is not supported`, { pid: p.pid, fd: p.fd });
  }
  if (d.state !== TCP_ESTABLISHED && d.state !== TCP_CLOSE && d.state !== TCP_LISTEN) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: state ${d.state} is not supported`, { pid: p.pid, fd: p.fd });
  }
  const ue: UnixSkEntry = {
    id, ino, type: d.type, state: d.state, flags: p.fdinfo.flags & ~O_CLOEXEC, uflags: 0,
    backlog: d.wqueue, peer: d.peer, fown: NO_FOWN, opts: dumpSkOpts(p.localFd), name: d.name,
  };
  // Its own net namespace (an abstract name lives there), which the restore makes it in.
  if (p.netNsId !== undefined) ue.ns_id = p.netNsId;
  resolveName(ctx, p, d, ue);
  // --external unix[INO] (CRIU's key, the inode in decimal): this socket's peer is outside the tree and
  // may have no name; the restore takes the socket itself from the caller (--inherit-fd fd[N]:socket:[INO]).
  const keyed = ctx.opts.externals?.has(`unix[${ino}]`) === true ? d : undefined;
  if (d.shutdown !== 0) ue.shutdown = SHUTDOWN_NAMES[d.shutdown & 3] ?? 'BOTH';
  let pair = false;
  if (d.peer !== 0) {
    const peer = inNs(() => unixDiag(d.peer));
    if (!peer) throw new CriuTsError('EDUMP', `${what}: peer ${d.peer} not found`, { peer: d.peer });
    if (peer.peer !== ino && peer.name.length === 0 && !(keyed !== undefined && !heldByDump(ctx, peer.ino))) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: peer ${d.peer} is connected elsewhere and has no name`, { peer: d.peer });
    }
    pair = d.peer !== ino && peer.peer === ino && heldByDump(ctx, peer.ino);
    checkOutside(peer, ctx, what, keyed);
  } else if (d.state === TCP_ESTABLISHED && d.type !== SOCK_DGRAM) {
    // A client whose connection waits in a listener's accept queue: its peer is that listener.
    const listener = inNs(() => unixListeners()).find((l) => l.icons.includes(ino));
    if (listener) {
      if (d.wqueue !== 0) {
        throw new CriuTsError('EUNSUPPORTED', `${what}: bytes sent on a connection not accepted yet cannot be read back`, { pid: p.pid, fd: p.fd });
      }
      ue.peer = listener.ino;
      checkOutside(listener, ctx, what, keyed);
    } else if (d.shutdown !== 3) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: connected, but its peer is gone and it is not shut down`, { pid: p.pid, fd: p.fd });
    }
  }
  if (d.state === TCP_LISTEN && d.icons.includes(0)) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: a pending connection whose client already closed cannot be dumped`, { pid: p.pid, fd: p.fd });
  }
  if (d.state !== TCP_LISTEN && d.rqueue > 0) {
    // Restore sends the bytes again from the peer of a pair, or to the socket's name.
    // Connected, peer gone (closed: the kernel reports no peer inode): a pair whose other end closes after sending.
    // (A named datagram socket is ESTABLISHED too once another connects to it: it gets its bytes by name.)
    const orphan = d.peer === 0 && d.state === TCP_ESTABLISHED && (d.type !== SOCK_DGRAM || d.name.length === 0);
    if (!pair && !orphan && d.name.length === 0) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: queued bytes on a socket with no name and no peer of its own to send them again`, { pid: p.pid, fd: p.fd });
    }
    dumpQueue(ctx, p.localFd, id, d.type, what, p.pid);
  }
  return { type: 'UNIXSK', id, usk: ue };
}

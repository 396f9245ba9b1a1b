/**
 * Re-creating unix sockets inside a task. Two sockets that are each other's
 * peer come from one socketpair() (both set up at once, the second handed to
 * the core); any other socket is socket() + bind + listen, and connects to
 * its peer's name in `finish`, once every socket of the task exists (or,
 * when that peer belongs to a task restored later, from our side as soon as
 * the peer is bound). Queued
 * bytes are sent again from our side: from our copy of the partner of a
 * pair, or from a socket of ours to the receiver's name.
 */
import { chmodSync, chownSync, closeSync, existsSync, fstatSync, linkSync, lstatSync, mkdirSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import { pathSeenBy } from '../../../proc/index.js';
import type { FileEntry, UnixSkEntry } from '../../../images/messages.js';
import {
  NR, AF_UNIX, SOCK_DGRAM, SOL_SOCKET, closeQuiet, connect, openPathNoFollow, pidfdGetfd, pidfdOpen, setsockoptInt,
  shutdown, socket, AT_FDCWD, O_PATH, O_DIRECTORY, SO_SNDBUFFORCE, ENOENT, TCP_ESTABLISHED, TCP_LISTEN, ECONNREFUSED,
  O_CLOEXEC, RESOLVE, inNetNamespaceOf, openat2, openDir, asMappedIfNeeded, fdOfTask,
} from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { setStatusFlags } from '../pipe.js';
import { nameText } from './diag.js';
import { dumpSkOpts, restoreFilter, restoreSkOpts } from '../socket-opts/index.js';
import { carriesTaskFiles, queueOf, sendQueue, type QueuedMsg } from './queue.js';
import { USK_EXTERN } from './dump.js';
import { hostGid, hostOwner, hostUid } from '../../ns/user.js';

const SHUT = { READ: 0, WRITE: 1, BOTH: 2 } as const;
const QUEUE_SNDBUF_BYTES = 64 << 20;

export function uskOf(e: FileEntry): UnixSkEntry {
  if (!e.usk) throw new CriuTsError('EIMAGE', `file ${e.id}: UNIXSK entry without usk data`, { id: e.id });
  return e.usk;
}

const what = (t: RestoreTaskHandle, u: UnixSkEntry): string => `task ${t.pid}: unix socket ${u.ino}`;

function entryByIno(ino: number, ctx: RestoreContext): FileEntry | undefined {
  return ctx.files.find((f) => f.type === 'UNIXSK' && f.usk?.ino === ino);
}

/** The other socket of a pair both in the dump (each the other's peer), if any. */
export function pairPartner(e: FileEntry, ctx: RestoreContext): FileEntry | undefined {
  const u = uskOf(e);
  // A datagram socket connected to itself is no pair: bound, then connected to its own name in finish.
  if (u.peer === 0 || u.peer === u.ino) return undefined;
  const p = entryByIno(u.peer, ctx);
  if (!p?.usk || (p.usk.uflags & USK_EXTERN) !== 0 || p.usk.peer !== u.ino) return undefined;
  return p;
}

/** Absolute path of a socket bound to a path; undefined for unbound and abstract sockets. */
function pathOf(u: UnixSkEntry): string | undefined {
  if (u.name.length === 0 || u.name[0] === 0) return undefined;
  const n = nameText(u.name);
  return n.startsWith('/') || !u.name_dir ? n : `${u.name_dir}/${n}`;
}

function sockaddr(name: Buffer): Buffer {
  const b = Buffer.alloc(2 + name.length);
  b.writeUInt16LE(AF_UNIX, 0);
  name.copy(b, 2);
  return b;
}

/** The path a task reaches a socket by (a relative name made absolute); undefined for abstract names. */
function reachPath(u: UnixSkEntry, ctx: RestoreContext): string | undefined {
  // A socket whose name was unlinked at dump is reached through its temporary name while the restore runs.
  return ctx.state(NAMES, newNames).reach.get(u.ino) ?? pathOf(u);
}

/** Address for a task of the restore to reach a socket by. */
function reachAddr(u: UnixSkEntry, ctx: RestoreContext): Buffer {
  const path = reachPath(u, ctx);
  return sockaddr(path === undefined ? u.name : Buffer.from(`${path}\0`));
}

/**
 * Run `fn` with an address by which criu-ts reaches socket `u` as task
 * `pid` sees it. A path is the task's (its root, in its mount namespace):
 * it is opened O_PATH inside that root (symlinks resolved as the task's
 * would be) and given as /proc/self/fd/N, which connect() follows to the
 * socket. An abstract name belongs to a net namespace: the socket `fn`
 * uses must be one made in the task's (`socketIn`).
 */
function withReach<T>(pid: number, u: UnixSkEntry, ctx: RestoreContext, fn: (addr: Buffer) => T): T {
  const path = reachPath(u, ctx);
  if (path === undefined) return fn(sockaddr(u.name));
  const root = openDir(`/proc/${pid}/root`);
  let fd: number;
  try {
    fd = openat2(root, path, O_PATH | O_CLOEXEC, 0, RESOLVE.IN_ROOT);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${pid}: unix socket ${u.ino}: ${path}: ${(e as Error).message}`, { path }, e);
  } finally {
    closeSync(root);
  }
  try {
    return fn(sockaddr(Buffer.from(`/proc/self/fd/${fd}\0`)));
  } finally {
    closeSync(fd);
  }
}

/** A unix socket of ours in task `pid`'s net namespace (where abstract names are looked up). */
const socketIn = (pid: number, type: number): number => inNetNamespaceOf(pid, () => socket(AF_UNIX, type));

/**
 * Whether this socket holds its name itself: an accepted connection shows its
 * listener's name and must not bind it again.
 */
function ownsName(e: FileEntry, ctx: RestoreContext): boolean {
  const u = uskOf(e);
  if (u.name.length === 0) return false;
  if (u.state === TCP_LISTEN || u.type === SOCK_DGRAM) return true;
  return !ctx.files.some((f) => f.id !== e.id && f.usk && (f.usk.uflags & USK_EXTERN) === 0 && f.usk.name.equals(u.name));
}

/** option values of new unix sockets, by type */
/**
 * Names of sockets whose own name was unlinked at dump: the path each bound
 * (by inode), the temporary name others reach it by, and what to remove once
 * every file is done (temporary names first, then directories made for them).
 */
interface Names {
  bound: Map<number, string>;
  reach: Map<number, string>;
  temps: string[];
  dirs: string[];
  /** a path as the tasks see it, as criu-ts reaches it (through the root's /proc/PID/root in a mount namespace of its own) */
  view: (path: string) => string;
}
const NAMES = stateKey<Names>('unix-socket:names');
const newNames = (): Names => ({ bound: new Map(), reach: new Map(), temps: [], dirs: [], view: (p) => p });

/** The names state, with its cleanup registered on first use. */
function names(ctx: RestoreContext): Names {
  return ctx.state(NAMES, () => {
    const n = newNames();
    ctx.afterAllFiles(() => {
      for (const p of n.temps) rmSync(p, { force: true });
      for (const d of n.dirs) {
        try {
          rmdirSync(d);
        } catch {
          // gone, or a task put something there meanwhile
        }
      }
    }, { alsoOnFailure: true });
    return n;
  });
}

const FRESH = stateKey<Map<number, ReturnType<typeof dumpSkOpts>>>('unix-socket:fresh-opts');
/** sockets bound so far (inode), and the sockets waiting to connect to each inode */
const BOUND = stateKey<Set<number>>('unix-socket:bound');
const WAITING = stateKey<Map<number, Waiter[]>>('unix-socket:waiting');

function freshOpts(type: number, ctx: RestoreContext): ReturnType<typeof dumpSkOpts> {
  const all = ctx.state(FRESH, () => new Map<number, ReturnType<typeof dumpSkOpts>>());
  let o = all.get(type);
  if (!o) {
    const fd = socket(AF_UNIX, type);
    try {
      o = dumpSkOpts(fd);
    } finally {
      closeQuiet(fd);
    }
    all.set(type, o);
  }
  return o;
}

function bindName(t: RestoreTaskHandle, fd: number, u: UnixSkEntry, ctx: RestoreContext): void {
  const path = pathOf(u);
  // The name is bound by the task, in its view; what we do to the file system around it, we do through that view.
  names(ctx).view = (p) => pathSeenBy(t.pid, p);
  const here = path === undefined ? undefined : pathSeenBy(t.pid, path);
  if (here !== undefined && u.deleted && !existsSync(dirname(here))) {
    // Its directory was removed too: made for the bind, removed again once every file is done.
    const first = mkdirSync(dirname(here), { recursive: true, mode: 0o700 });
    // Owned by the root of the tree's user namespace, if it has one: the task binds in them as that root.
    const uid = hostUid(ctx, 0);
    const gid = hostGid(ctx, 0);
    if (first !== undefined) {
      for (let d = dirname(here); d.length >= first.length; d = dirname(d)) {
        names(ctx).dirs.push(d);
        if (uid !== undefined && gid !== undefined && (uid !== 0 || gid !== 0)) chownSync(d, uid, gid);
      }
    }
  }
  if (path !== undefined && here !== undefined) {
    let st;
    try {
      st = lstatSync(here);
    } catch {
      st = undefined;
    }
    if (st && u.deleted) {
      // The name was unlinked at dump and the path is someone else's now: step it aside while we bind.
      const aside = `${here}.criu-ts-${process.pid}`;
      renameSync(here, aside);
      movedAside.set(u, aside);
    } else if (st?.isSocket()) unlinkSync(here);
    else if (st) throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} exists and is not a socket`, { path });
  }
  const addr = sockaddr(u.name);
  const relative = path !== undefined && !nameText(u.name).startsWith('/') && u.name_dir !== undefined;
  let saved = -1;
  if (relative && u.name_dir !== undefined) {
    // Bind the relative name itself (getsockname shows it) from inside its directory.
    saved = Number(t.syscall('open .', NR.openat, AT_FDCWD, t.putString('.'), O_PATH | O_DIRECTORY, 0));
    t.syscall(`chdir ${u.name_dir}`, NR.chdir, t.putString(u.name_dir));
  }
  try {
    t.syscall(`bind ${JSON.stringify(nameText(u.name))}`, NR.bind, fd, t.putBytes(addr), addr.length);
  } finally {
    if (saved >= 0) {
      t.syscall('fchdir', NR.fchdir, saved);
      t.syscall('close', NR.close, saved);
    }
  }
  if (here !== undefined && u.file_perms) setSocketFilePerms(t, u, here, { mode: u.file_perms.mode, ...hostOwner(ctx, u.file_perms.uid, u.file_perms.gid, `${what(t, u)}: ${here}`) });
  if (path !== undefined) names(ctx).bound.set(u.ino, path);
  // At once: another socket of the dump may have had the same name (bound, unlinked, bound again).
  if (path !== undefined && u.deleted) dropDeletedName(u, ctx);
}

/**
 * Owner and mode of the socket's name, never through a link: the name is in
 * a directory a user may own and may have been swapped since bind, so it is
 * opened O_PATH|O_NOFOLLOW, must be a socket, and is changed through that fd.
 */
function setSocketFilePerms(t: RestoreTaskHandle, u: UnixSkEntry, path: string, p: { mode: number; uid: number; gid: number }): void {
  let fd: number;
  try {
    fd = openPathNoFollow(path);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} is gone after bind: ${(e as Error).message}`, { path }, e);
  }
  try {
    if (!fstatSync(fd).isSocket()) throw new CriuTsError('ERESTORE', `${what(t, u)}: ${path} is no longer a socket after bind`, { path });
    const viaFd = `/proc/self/fd/${fd}`;
    chownSync(viaFd, p.uid, p.gid);
    chmodSync(viaFd, p.mode & 0o7777);
  } finally {
    closeSync(fd);
  }
}

/** shutdown(2) `how` for the dumped state, -1 for none. */
function shutdownHow(u: UnixSkEntry): number {
  const s = u.shutdown;
  return s === 'READ' || s === 1 ? SHUT.READ : s === 'WRITE' || s === 2 ? SHUT.WRITE : s === 'BOTH' || s === 3 ? SHUT.BOTH : -1;
}

function shutdownAsDumped(t: RestoreTaskHandle, fd: number, u: UnixSkEntry): void {
  const how = shutdownHow(u);
  if (how >= 0) t.syscall('shutdown', NR.shutdown, fd, how);
}

/** Everything but connection and data: options, status flags, own name, deleted name. */
function setUp(t: RestoreTaskHandle, fd: number, e: FileEntry, ctx: RestoreContext): void {
  const u = uskOf(e);
  restoreSkOpts(t, fd, u.opts, freshOpts(u.type, ctx));
  setStatusFlags(t, fd, u.flags);
  if (ownsName(e, ctx)) bindName(t, fd, u, ctx);
}

/** Once a named socket can be reached (bound, listening), sockets waiting for it connect. */
function reachable(e: FileEntry, ctx: RestoreContext): void {
  if (uskOf(e).name.length > 0) peerReady(uskOf(e), ctx);
}

/** Files put aside while a socket whose name was unlinked is bound at that path again. */
const movedAside = new WeakMap<UnixSkEntry, string>();

/**
 * The name was unlinked at dump: take it away again. Sockets restored later
 * may still have to connect to this one, so the socket file first gets a
 * temporary name (link fails rather than replace anything there) that stays
 * until every file is done; the socket itself keeps reporting its old name.
 * Only the socket that bound the name drops it (an accepted one only shows
 * its listener's).
 */
function dropDeletedName(u: UnixSkEntry, ctx: RestoreContext): void {
  const n = names(ctx);
  const path = n.bound.get(u.ino);
  if (!u.deleted || path === undefined || n.reach.has(u.ino)) return;
  const temp = join(dirname(path), `.${basename(path)}.cr-usk.${u.ino}`);
  // On a filesystem of the tree's user namespace, linked as the socket file's owner (sys/fs-ids.ts).
  const owner = lstatSync(n.view(path));
  asMappedIfNeeded(owner.uid, owner.gid, () => linkSync(n.view(path), n.view(temp)));
  n.reach.set(u.ino, temp);
  n.temps.push(n.view(temp));
  unlinkSync(n.view(path));
  const aside = movedAside.get(u);
  if (aside !== undefined) {
    renameSync(aside, n.view(path));
    movedAside.delete(u);
  }
}

/**
 * Files in flight are opened in task `t` by the core, and sent from our
 * copy; `self` (the socket being made, whose queue carries it) is that
 * very socket. Once every task's fds exist (`tasksDone`), a file a task
 * holds is a copy of the task's.
 */
function inFlightOpener(t: RestoreTaskHandle, ctx: RestoreContext, self?: { id: number; fd: number }, tasksDone = false): ((id: number) => number) | undefined {
  const open = ctx.openInFlight;
  return open ? (id) => {
    if (self !== undefined && id === self.id) return fdOfTask(t.pid, self.fd);
    return (tasksDone ? ctx.taskFileCopy?.(id) : undefined) ?? open(t, id);
  } : undefined;
}

/**
 * Send `msgs` from the task's socket `fd` (through our copy of it) to its
 * peer: now, or, when they carry files tasks hold, once every task's fds
 * exist (then true: what would refuse the send, a shutdown, waits too).
 */
function sendFromTask(t: RestoreTaskHandle, fd: number, msgs: readonly QueuedMsg[], label: string, ctx: RestoreContext): boolean {
  if (msgs.length === 0) return false;
  const ours = fdOfTask(t.pid, fd);
  if (carriesTaskFiles(msgs, ctx)) {
    onceFilesDone(ctx, ours, () => sendQueue(ours, msgs, label, undefined, inFlightOpener(t, ctx, undefined, true)));
    return true;
  }
  try {
    sendQueue(ours, msgs, label, undefined, inFlightOpener(t, ctx));
  } finally {
    closeQuiet(ours);
  }
  return false;
}

/** shutdownAsDumped, from our side once every task's fds exist (after sends that wait till then). */
function shutdownLater(t: RestoreTaskHandle, fd: number, u: UnixSkEntry, ctx: RestoreContext): void {
  const how = shutdownHow(u);
  if (how < 0) return;
  const ours = fdOfTask(t.pid, fd);
  onceFilesDone(ctx, ours, () => shutdown(ours, how));
}

/** Run `step` once every task's fds exist, then close our fd `ours`; a failed restore only closes it. */
function onceFilesDone(ctx: RestoreContext, ours: number, step: () => void): void {
  let open = true;
  const close = (): void => {
    if (open) closeQuiet(ours);
    open = false;
  };
  ctx.afterAllFiles(() => {
    try {
      step();
    } finally {
      close();
    }
  });
  ctx.afterAllFiles(close, { alsoOnFailure: true });
}

/** A socketpair for `e` and its partner; returns [e's fd, partner's fd]. */
function createPair(t: RestoreTaskHandle, e: FileEntry, partner: FileEntry, ctx: RestoreContext): [number, number] {
  const u = uskOf(e);
  const pu = uskOf(partner);
  const a = t.putBytes(Buffer.alloc(8));
  t.syscall('socketpair', NR.socketpair, AF_UNIX, u.type, 0, a);
  const sv = t.tracee.readMem(a, 8);
  const mine = sv.readInt32LE(0);
  const theirs = sv.readInt32LE(4);
  setUp(t, mine, e, ctx);
  setUp(t, theirs, partner, ctx);
  const later = sendFromTask(t, theirs, queueOf(e.id, ctx), what(t, u), ctx);
  const laterToo = sendFromTask(t, mine, queueOf(partner.id, ctx), what(t, pu), ctx);
  reachable(e, ctx);
  reachable(partner, ctx);
  if (later || laterToo) {
    shutdownLater(t, mine, u, ctx);
    shutdownLater(t, theirs, pu, ctx);
  } else {
    shutdownAsDumped(t, mine, u);
    shutdownAsDumped(t, theirs, pu);
  }
  return [mine, theirs];
}

export function restoreUnixSocket(t: RestoreTaskHandle, e: FileEntry, ctx: RestoreContext): number {
  const u = uskOf(e);
  const partner = pairPartner(e, ctx);
  if (partner) {
    const [mine, theirs] = createPair(t, e, partner, ctx);
    restoreFilter(t, mine, u.opts.so_filter);
    restoreFilter(t, theirs, uskOf(partner).opts.so_filter);
    ctx.provide(partner.id, theirs);
    return mine;
  }
  // Once its queue is back in: the filter let those messages pass already.
  const fd = createSocket(t, e, u, ctx);
  restoreFilter(t, fd, u.opts.so_filter);
  return fd;
}

function createSocket(t: RestoreTaskHandle, e: FileEntry, u: UnixSkEntry, ctx: RestoreContext): number {
  if (u.state === TCP_ESTABLISHED && u.peer === 0 && (u.type !== SOCK_DGRAM || u.name.length === 0)) {
    // Its peer closed: a pair whose other end goes away leaves exactly that state
    // (a datagram socket keeps what its late peer sent, and stays "connected" to nobody).
    const a = t.putBytes(Buffer.alloc(8));
    t.syscall('socketpair', NR.socketpair, AF_UNIX, u.type, 0, a);
    const sv = t.tracee.readMem(a, 8);
    const fd = sv.readInt32LE(0);
    const gone = sv.readInt32LE(4);
    setUp(t, fd, e, ctx);
    // (a send that waits keeps its own copy of `gone`)
    const later = sendFromTask(t, gone, queueOf(e.id, ctx), what(t, u), ctx);
    t.syscall('close', NR.close, gone);
    if (later) shutdownLater(t, fd, u, ctx);
    else shutdownAsDumped(t, fd, u);
    return fd;
  }
  const fd = Number(t.syscall('socket', NR.socket, AF_UNIX, u.type, 0));
  setUp(t, fd, e, ctx);
  const msgs = queueOf(e.id, ctx);
  if (msgs.length > 0) {
    if (u.name.length === 0) throw new CriuTsError('ERESTORE', `${what(t, u)}: queued bytes but no name to send them to`, { id: e.id });
    const from = socketIn(t.pid, u.type);
    try {
      // Sent datagrams count against the sender until read: make ours hold the whole queue.
      setsockoptInt(from, SOL_SOCKET, SO_SNDBUFFORCE, QUEUE_SNDBUF_BYTES);
      withReach(t.pid, u, ctx, (to) => sendQueue(from, msgs, what(t, u), to, inFlightOpener(t, ctx, { id: e.id, fd })));
    } finally {
      closeQuiet(from);
    }
  }
  if (u.state === TCP_LISTEN) t.syscall('listen', NR.listen, fd, u.backlog);
  reachable(e, ctx);
  // Not connected yet: finish connects (its peer may be created after it) and shuts down.
  if (u.peer === 0) shutdownAsDumped(t, fd, u);
  return fd;
}

/** A socket of a task waiting for its peer to be bound: our copy of it, connected once the peer exists. */
interface Waiter {
  ours: number;
  u: UnixSkEntry;
  /** the task that holds it (whose view of names it connects by) */
  pid: number;
}

/** The peer `u` is bound now: connect every socket that was waiting for it (from our side). */
function peerReady(u: UnixSkEntry, ctx: RestoreContext): void {
  ctx.state(BOUND, () => new Set<number>()).add(u.ino);
  const waiting = ctx.state(WAITING, () => new Map<number, Waiter[]>());
  const waiters = waiting.get(u.ino);
  if (!waiters) return;
  waiting.delete(u.ino);
  for (const w of waiters) {
    try {
      withReach(w.pid, u, ctx, (addr) => connect(w.ours, addr));
      const how = shutdownHow(w.u);
      if (how >= 0) shutdown(w.ours, how);
    } finally {
      closeQuiet(w.ours);
    }
  }
}


/** Connect a socket that is not half of a pair to its peer, by the peer's name. */
export function finishUnixSocket(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
  const u = uskOf(e);
  if (u.peer === 0 || pairPartner(e, ctx)) return;
  const peerEntry = entryByIno(u.peer, ctx);
  const peer = peerEntry?.usk;
  if (peer && (peer.uflags & USK_EXTERN) !== 0 && peer.name.length === 0) {
    // Dumped with --external unix[INO]: its peer outside has no name to reach; only the caller can give the socket back.
    throw new CriuTsError('ERESTORE', `${what(t, u)}: its peer was outside the dump and has no name (--external unix[${u.ino}]): give the socket back with --inherit-fd fd[N]:socket:[${u.ino}]`, { ino: u.ino });
  }
  if (!peer || peer.name.length === 0) {
    throw new CriuTsError('EIMAGE', `${what(t, u)}: peer ${u.peer} is not in the image or has no name`, { peer: u.peer });
  }
  const external = (peer.uflags & USK_EXTERN) !== 0;
  if (!external && !ctx.state(BOUND, () => new Set<number>()).has(peer.ino)) {
    // Its peer belongs to a task restored later: connect when that one binds.
    const pidfd = pidfdOpen(t.pid);
    try {
      const w: Waiter = { ours: pidfdGetfd(pidfd, fd, t.pid), u, pid: t.pid };
      const waiting = ctx.state(WAITING, () => new Map<number, Waiter[]>());
      waiting.set(peer.ino, [...(waiting.get(peer.ino) ?? []), w]);
    } finally {
      closeQuiet(pidfd);
    }
    return;
  }
  const addr = reachAddr(peer, ctx);
  try {
    t.syscall(`connect ${JSON.stringify(nameText(peer.name))}`, NR.connect, fd, t.putBytes(addr), addr.length);
  } catch (err) {
    const errno = err instanceof CriuTsError ? err.data['errno'] : undefined;
    if (external && (errno === ECONNREFUSED || errno === ENOENT)) {
      throw new CriuTsError('ERESTORE', `${what(t, u)}: its peer outside the dump (${nameText(peer.name)}) is gone`, { peer: peer.ino }, err);
    }
    throw err;
  }
  shutdownAsDumped(t, fd, u);
}

/**
 * Re-creating unix sockets inside a task. Two sockets that are each other's
 * peer come from one socketpair() (both set up at once, the second handed to
 * the core); any other socket is socket() + bind + listen, and connects to
 * its peer's name in `finish`, once every socket of the task exists (or,
 * when that peer belongs to a task restored later, from our side as soon as
 * the peer is bound). Queued bytes are sent again from our side: from our
 * copy of the partner of a pair, or from a socket of ours to the receiver's
 * name. Binding names (and names unlinked at dump) is names.ts's.
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, UnixSkEntry } from '../../../images/messages.js';
import {
  NR, AF_UNIX, SOCK_DGRAM, SOL_SOCKET, closeQuiet, connect, pidfdGetfd, pidfdOpen, setsockoptInt,
  shutdown, socket, SO_SNDBUFFORCE, ENOENT, TCP_ESTABLISHED, TCP_LISTEN, ECONNREFUSED, inNetNamespaceOf, fdOfTask,
} from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { setStatusFlags } from '../pipe.js';
import { socketpairIn } from '../../install-fd.js';
import { nameText } from './diag.js';
import { dumpSkOpts, restoreFilter, restoreSkOpts } from '../socket-opts/index.js';
import { carriesTaskFiles, queueOf, sendQueue, type QueuedMsg } from '../socket-opts/queue.js';
import { USK_EXTERN } from './dump.js';
import { bindName, coveredFiles, reachAddr, what, withReach } from './names.js';

const SHUT = { READ: 0, WRITE: 1, BOTH: 2 } as const;
const QUEUE_SNDBUF_BYTES = 64 << 20;

export function uskOf(e: FileEntry): UnixSkEntry {
  if (!e.usk) throw new CriuTsError('EIMAGE', `file ${e.id}: UNIXSK entry without usk data`, { id: e.id });
  return e.usk;
}

/**
 * The images' unix socket entries by inode (the first of an inode, as a
 * search in file order finds it) and the ids of the named ones by name
 * (not external), made once per restore: a pass over every file for each
 * socket was quadratic in a 10,000-fd restore (docs/performance.md).
 */
interface UskIndex {
  byIno: Map<number, FileEntry>;
  byName: Map<string, number[]>;
}
const USK_INDEX = stateKey<UskIndex>('unix-socket:index');

function uskIndex(ctx: RestoreContext): UskIndex {
  return ctx.state(USK_INDEX, () => {
    const byIno = new Map<number, FileEntry>();
    const byName = new Map<string, number[]>();
    for (const f of ctx.files) {
      if (f.type === 'UNIXSK' && f.usk !== undefined && !byIno.has(f.usk.ino)) byIno.set(f.usk.ino, f);
      if (f.usk === undefined || (f.usk.uflags & USK_EXTERN) !== 0 || f.usk.name.length === 0) continue;
      const key = f.usk.name.toString('latin1');
      const ids = byName.get(key);
      if (ids) ids.push(f.id);
      else byName.set(key, [f.id]);
    }
    return { byIno, byName };
  });
}

function entryByIno(ino: number, ctx: RestoreContext): FileEntry | undefined {
  return uskIndex(ctx).byIno.get(ino);
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
  return !(uskIndex(ctx).byName.get(u.name.toString('latin1')) ?? []).some((id) => id !== e.id);
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
  const [mine, theirs] = socketpairIn(t, u.type);
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
    const [fd, gone] = socketpairIn(t, u.type);
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
  if (coveredFiles(ctx).has(peer.ino)) {
    // Its peer's name is covered by a mount: connected from our side, through our fd of its file.
    const ours = fdOfTask(t.pid, fd);
    try {
      withReach(t.pid, peer, ctx, (to) => connect(ours, to));
    } finally {
      closeQuiet(ours);
    }
    shutdownAsDumped(t, fd, u);
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

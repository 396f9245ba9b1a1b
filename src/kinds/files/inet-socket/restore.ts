/**
 * Re-creating a TCP or UDP socket inside a task: socket(), options, bind to
 * the dumped address and port (SO_REUSEADDR held on meanwhile so sockets of
 * the dump that share a port, or connections of the old listener lingering
 * in TIME_WAIT, do not stand in the way; IP_FREEBIND when the address is not
 * configured), listen with the dumped backlog, connect for a connected UDP
 * socket. Datagrams that were queued are sent again from a socket of ours
 * before the socket connects (a connected socket would filter them out).
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, InetSkEntry, IpOptsEntry, SkOptsEntry, TcpOptsEntry } from '../../../images/messages.js';
import { AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, NR, SOCK_RAW, SOCK_STREAM, SOL_IP, SOL_IPV6, SOL_SOCKET, closeQuiet, setsockoptInt, socket, SO_REUSEADDR, SO_SNDBUFFORCE, IPV6_V6ONLY, EADDRINUSE, ENOTCONN, TCP_ESTABLISHED, TCP_LISTEN, TCP_CLOSE, inNetNamespaceOf, fdOfTask, SIOCGIFINDEX, EADDRNOTAVAIL, IP_FREEBIND } from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { setStatusFlags } from '../pipe.js';
import { dumpSkOpts, restoreFilter, restoreSkOpts } from '../socket-opts/index.js';
import { holdPortOpts, releasePortOpts } from './ports.js';
import { rawOrPing, restoreRawOpts } from './raw.js';
import { queueOf, sendQueue } from '../socket-opts/queue.js';
import { addrText, toSockaddr } from './addr.js';
import { onlyTimeWaitOn } from './diag.js';
import { holdRepaired, releaseRepaired, restoreTcpStream, settleRepaired, takeRepaired } from './tcp-repair.js';
import { dumpIpOpts, dumpTcpOpts, restoreIpOpts, restoreTcpOpts, setIntOpt } from './opts.js';

const SHUT = { READ: 0, WRITE: 1, BOTH: 2 } as const;
const QUEUE_SNDBUF_BYTES = 64 << 20;

/** option values of new sockets, by "family:type:proto" */
const FRESH = stateKey<Map<string, Fresh>>('inet-socket:fresh-opts');

interface Fresh {
  sk: SkOptsEntry;
  ip: IpOptsEntry;
  tcp: TcpOptsEntry;
}

export function iskOf(e: FileEntry): InetSkEntry {
  if (!e.isk) throw new CriuTsError('EIMAGE', `file ${e.id}: INETSK entry without isk data`, { id: e.id });
  return e.isk;
}

const isTcp = (i: InetSkEntry): boolean => i.type === SOCK_STREAM;
const protoName = (i: InetSkEntry): string =>
  i.type === SOCK_RAW ? `raw protocol ${i.proto}` : isTcp(i) ? 'TCP' : i.proto === IPPROTO_UDP || i.proto === IPPROTO_UDPLITE ? 'UDP' : 'ICMP';
const local = (i: InetSkEntry): string => addrText(i.family, i.src_addr ?? [], i.src_port);
const remote = (i: InetSkEntry): string => addrText(i.family, i.dst_addr ?? [], i.dst_port);

/**
 * Option values of a new socket like this one, from our side: what restore
 * need not set. Where we may not make one (ICMP ping sockets outside
 * net.ipv4.ping_group_range), the task's new socket `fd` tells, unset yet.
 */
function freshOpts(i: InetSkEntry, ctx: RestoreContext, t: RestoreTaskHandle, fd: number): Fresh {
  const all = ctx.state(FRESH, () => new Map<string, Fresh>());
  const key = `${i.family}:${i.type}:${i.proto}`;
  const known = all.get(key);
  if (known) return known;
  const read = (s: number): Fresh => ({ sk: dumpSkOpts(s, false), ip: dumpIpOpts(s, i.family), tcp: dumpTcpOpts(s, isTcp(i)) });
  let ours: number;
  try {
    // The defaults follow the net namespace's sysctls (keepalive, ttl): the task's.
    ours = inNetNamespaceOf(t.pid, () => socket(i.family, i.type, i.proto));
  } catch {
    const copy = copyOf(t, fd);
    try {
      return read(copy);
    } finally {
      closeQuiet(copy);
    }
  }
  try {
    const o = read(ours);
    all.set(key, o);
    return o;
  } finally {
    closeQuiet(ours);
  }
}

const copyOf = (t: RestoreTaskHandle, fd: number): number => fdOfTask(t.pid, fd);

const errnoOf = (e: unknown): unknown => (e instanceof CriuTsError ? e.data['errno'] : undefined);


/** The ifindex of interface `name` in task `t`'s net namespace, asked through its socket `fd`. */
function ifindexIn(t: RestoreTaskHandle, fd: number, name: string, where: string): number {
  const req = Buffer.alloc(40); // struct ifreq: name[16], then ifr_ifindex
  if (Buffer.byteLength(name) > 15) throw new CriuTsError('EIMAGE', `${where}: interface name ${JSON.stringify(name)} is too long`, { name });
  req.write(name, 0, 'latin1');
  const at = t.putBytes(req);
  try {
    t.syscall(`ioctl(SIOCGIFINDEX ${name})`, NR.ioctl, fd, SIOCGIFINDEX, at);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `${where}: bound to a link-local address on ${name}, which is not in the task's net namespace`, { name }, e);
  }
  return t.tracee.readMem(at + 16n, 4).readInt32LE(0);
}

function bindAsDumped(t: RestoreTaskHandle, fd: number, i: InetSkEntry, where: string): void {
  // A link-local address names its interface (CRIU's ifname: the same one as the socket's bound device).
  const scope = i.family === AF_INET6 && i.ifname ? ifindexIn(t, fd, i.ifname, where) : 0;
  const sa = toSockaddr(i.family, i.src_addr ?? [], i.src_port, scope);
  const bind = (): void => {
    t.syscall(`bind ${local(i)}`, NR.bind, fd, t.putBytes(sa), sa.length);
  };
  try {
    bind();
  } catch (e) {
    if (errnoOf(e) === EADDRNOTAVAIL && !i.ip_opts?.freebind) {
      // The address is not (or not yet: IPv6 DAD) configured here: bind anyway, as the kernel allows with IP_FREEBIND.
      setIntOpt(t, fd, SOL_IP, IP_FREEBIND, 1, 'IP_FREEBIND');
      bind();
      setIntOpt(t, fd, SOL_IP, IP_FREEBIND, 0, 'IP_FREEBIND');
      return;
    }
    throw portTaken(e, i, where, t.pid);
  }
}

function portTaken(e: unknown, i: InetSkEntry, where: string, pid: number): unknown {
  if (errnoOf(e) !== EADDRINUSE) return e;
  let why = 'is taken by another socket';
  if (isTcp(i) && inNetNamespaceOf(pid, () => onlyTimeWaitOn(i.family, i.src_port))) {
    // The old socket's connections linger; they block the port unless the old socket had SO_REUSEADDR.
    why = 'is held by connections in TIME_WAIT (the dumped socket had no SO_REUSEADDR); retry in a minute';
  }
  return new CriuTsError('ERESTORE', `${where}: ${protoName(i)} port ${local(i)} ${why} (EADDRINUSE)`, { port: i.src_port }, e);
}

function connectAsDumped(t: RestoreTaskHandle, fd: number, i: InetSkEntry): void {
  const sa = toSockaddr(i.family, i.dst_addr ?? [], i.dst_port);
  t.syscall(`connect ${remote(i)}`, NR.connect, fd, t.putBytes(sa), sa.length);
}

function shutdownHow(i: InetSkEntry): number {
  const s = i.shutdown;
  return s === 'READ' || s === 1 ? SHUT.READ : s === 'WRITE' || s === 2 ? SHUT.WRITE : s === 'BOTH' || s === 3 ? SHUT.BOTH : -1;
}

export function restoreInetSocket(t: RestoreTaskHandle, e: FileEntry, fd0: number, ctx: RestoreContext): number {
  const i = iskOf(e);
  const where = `task ${t.pid} fd ${fd0}`;
  const fd = Number(t.syscall('socket', NR.socket, i.family, i.type, i.proto));
  const fresh = freshOpts(i, ctx, t, fd);
  // A raw socket has its protocol as port from the start: the kernel takes no IPV6_V6ONLY then.
  if (i.family === AF_INET6 && i.v6only && i.type !== SOCK_RAW) setIntOpt(t, fd, SOL_IPV6, IPV6_V6ONLY, 1, 'IPV6_V6ONLY');
  restoreSkOpts(t, fd, i.opts, fresh.sk);
  if (i.ip_opts) restoreIpOpts(t, fd, i.family, i.ip_opts, fresh.ip);
  if (i.type === SOCK_RAW && i.ip_opts?.raw) restoreRawOpts(t, fd, i.family, i.proto, i.ip_opts.raw);
  if (i.tcp_opts) restoreTcpOpts(t, fd, i.tcp_opts, fresh.tcp);
  // TCP meets its filter only on packets to come (repair writes its queues past it).
  if (isTcp(i)) restoreFilter(t, fd, i.opts.so_filter);
  if (isTcp(i) && i.dst_port !== 0 && ctx.opts.tcpClose) {
    // --tcp-close: a socket that was connected and is closed now, as CRIU makes it:
    // never connected, shut down both ways (read gives end of file, poll HUP).
    shutdownQuiet(t, fd);
    setStatusFlags(t, fd, i.flags);
    return fd;
  }
  if (isTcp(i) && i.dst_port !== 0) {
    const what = `${where}: TCP connection ${local(i)} -> ${remote(i)}`;
    const ours = copyOf(t, fd);
    try {
      holdRepaired(ctx, e.id, restoreTcpStream(ctx, ours, i, what));
    } finally {
      closeQuiet(ours);
    }
    setStatusFlags(t, fd, i.flags);
    return fd;
  }
  if (i.type === SOCK_RAW) {
    // Its "port" is its protocol: only an address binds it.
    if ((i.src_addr ?? []).some((w) => w !== 0)) bindAsDumped(t, fd, i, where);
  } else if (i.src_port !== 0) {
    holdPortOpts(t, fd, e, i, ctx);
    bindAsDumped(t, fd, i, where);
  }
  if (i.state === TCP_LISTEN) {
    try {
      t.syscall('listen', NR.listen, fd, i.backlog);
    } catch (err) {
      throw portTaken(err, i, where, t.pid);
    }
  }
  // A never-connected TCP socket that was shut down (one --tcp-close made, too).
  if (isTcp(i) && i.state === TCP_CLOSE && shutdownHow(i) >= 0) shutdownQuiet(t, fd, shutdownHow(i));
  setStatusFlags(t, fd, i.flags);
  // A datagram queue goes in before the filter and the connect (finish); without one, both now.
  if (!isTcp(i) && queueOf(e.id, ctx).length === 0) {
    restoreFilter(t, fd, i.opts.so_filter);
    connectAndShut(t, fd, i);
  }
  return fd;
}

function shutdownQuiet(t: RestoreTaskHandle, fd: number, how: number = SHUT.BOTH): void {
  try {
    t.syscall('shutdown', NR.shutdown, fd, how);
  } catch (e) {
    // An unconnected socket says ENOTCONN, and is shut down all the same.
    if (errnoOf(e) !== ENOTCONN) throw e;
  }
}

function connectAndShut(t: RestoreTaskHandle, fd: number, i: InetSkEntry): void {
  // Raw and ping sockets have no peer port: their state tells they are connected.
  if (i.dst_port !== 0 || (rawOrPing(i.type, i.proto) && i.state === TCP_ESTABLISHED)) connectAsDumped(t, fd, i);
  const how = shutdownHow(i);
  if (how < 0) return;
  try {
    t.syscall('shutdown', NR.shutdown, fd, how);
  } catch (e) {
    // An unconnected datagram socket says ENOTCONN, and is shut down all the same (as CRIU accepts).
    if (i.dst_port !== 0 || errnoOf(e) !== ENOTCONN) throw e;
  }
}

/** Where to send datagrams for this socket: its own address, loopback if it listens on any. */
function queueTarget(i: InetSkEntry): Buffer {
  const words: number[] = [...(i.src_addr ?? [])];
  if (!words.some((w) => w !== 0)) {
    if (i.family === AF_INET6) words.splice(0, 4, 0, 0, 0, 0x01000000);
    else words.splice(0, 1, 0x0100007f);
  }
  return toSockaddr(i.family, words, i.src_port);
}

/** Queued datagrams back into a UDP socket (sent from a socket of ours: the source address is not kept), then connect. */
export function finishInetSocket(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void {
  const i = iskOf(e);
  if (isTcp(i)) {
    if (i.dst_port === 0) releasePortOpts(t.pid, fd, e, i, ctx);
    const p = i.dst_port === 0 ? undefined : takeRepaired(ctx, e.id);
    if (!p) return;
    const pid = t.pid;
    const onCopy = (step: (ours: number) => void) => (): void => {
      const ours = fdOfTask(pid, fd);
      try {
        step(ours);
      } finally {
        closeQuiet(ours);
      }
    };
    // The peer may be a socket of a task restored later: it must exist before this one speaks.
    ctx.afterAllFiles(onCopy((ours) => settleRepaired(p, ours, pid)));
    ctx.beforeResume(onCopy((ours) => {
      releaseRepaired(p, ours);
      // Leaving repair mode clears the socket's SO_REUSEADDR.
      if (i.opts.reuseaddr) setsockoptInt(ours, SOL_SOCKET, SO_REUSEADDR, 1);
    }));
    return;
  }
  releasePortOpts(t.pid, fd, e, i, ctx);
  const msgs = queueOf(e.id, ctx);
  if (msgs.length === 0) return;
  // Sent from the task's net namespace: the target address is one of its own.
  const from = inNetNamespaceOf(t.pid, () => socket(i.family, i.type, i.proto));
  try {
    setsockoptInt(from, SOL_SOCKET, SO_SNDBUFFORCE, QUEUE_SNDBUF_BYTES);
    sendQueue(from, msgs, `task ${t.pid} fd ${fd}: UDP socket ${local(i)}`, queueTarget(i));
  } finally {
    closeQuiet(from);
  }
  restoreFilter(t, fd, i.opts.so_filter);
  connectAndShut(t, fd, i);
}

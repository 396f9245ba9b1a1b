/**
 * Dump of one TCP or UDP socket fd into an inet_sk_entry, filled the way
 * CRIU 4.2 fills it: addresses from the socket itself (so unbound and
 * bound-only sockets need no sock_diag entry), state and a listener's backlog
 * from sock_diag, generic options (sk_opts_entry, without the unix-only
 * passcred/passsec), ip_opts, v6only for IPv6, tcp_opts (empty for UDP).
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, InetSkEntry, SkShutdown } from '../../../images/messages.js';
import { logger } from '../../../log.js';
import { AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, SOL_IPV6, SOL_SOCKET, SOL_TCP, getpeername, getsockname, getsockopt, getsockoptInt, getsockoptTry, inNetNamespaceOfSocket, SO_PROTOCOL, IPV6_V6ONLY, TCP_INFO, O_CLOEXEC, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, SO_TYPE, SO_PEERNAME, IPPROTO_ICMP, IPPROTO_ICMPV6, pollFd, POLLRDHUP } from '../../../sys/index.js';
import type { DumpContext, FdProbe } from '../../types.js';
import { NO_FOWN } from '../fown.js';
import { dumpSkOpts } from '../socket-opts/index.js';
import { addrText, fromSockaddr, needsScopeId } from './addr.js';
import { inetDiag } from './diag.js';
import { REPAIRABLE, stateName } from './tcp-states.js';
import { dumpIpOpts, dumpTcpOpts } from './opts.js';
import { dumpTcpStream } from './tcp-repair.js';
import { dropQueue, dumpRawOpts, procEntry, rawOrPing } from './raw.js';
import { lockConnection } from './net-lock.js';
import { dumpQueue } from '../socket-opts/queue.js';

const log = logger('inet-sk');
const SHUTDOWN_NAMES: SkShutdown[] = ['NONE', 'READ', 'WRITE', 'BOTH'];

/**
 * How a never-connected TCP socket was shut down (shutdown(2) on one says
 * ENOTCONN yet sets its flags: read gives end of file after; a socket
 * restored with --tcp-close is one). sock_diag says it for a bound one
 * it lists; for one it does not list, only the read side shows, as
 * POLLRDHUP (poll reports HUP for any closed socket, and a send fails
 * with EPIPE either way): read, as CRIU finds it.
 */
function tcpUnconnectedShutdown(fd: number, diag: number | undefined): SkShutdown {
  if (diag !== undefined) return SHUTDOWN_NAMES[diag & 3] ?? 'NONE';
  return (pollFd(fd, POLLRDHUP, 0) & POLLRDHUP) !== 0 ? 'READ' : 'NONE';
}
const PROTO_NAMES: Readonly<Record<number, string>> = {
  [IPPROTO_TCP]: 'TCP', [IPPROTO_UDP]: 'UDP', [IPPROTO_UDPLITE]: 'UDP-Lite', [IPPROTO_ICMP]: 'ICMP', [IPPROTO_ICMPV6]: 'ICMPv6',
};

/**
 * The peer's address, also of a connection that is closed or was reset
 * (getpeername says ENOTCONN then; SO_PEERNAME still tells), as CRIU reads it.
 */
function peerOf(fd: number, family: number): Buffer | null {
  // The kernel wants no more room than the address takes.
  const b = Buffer.alloc(family === AF_INET6 ? 28 : 16);
  const n = getsockoptTry(fd, SOL_SOCKET, SO_PEERNAME, b);
  return n > 0 ? b.subarray(0, n) : getpeername(fd);
}

/**
 * What TCP_INFO tells about a socket sock_diag does not list (unbound, or in
 * another network namespace): its state and, as sock_diag would, backlog
 * and pending connections for a listener (tcpi_sacked and tcpi_unacked
 * carry them then); CRIU takes tcpi_backoff for the others.
 */
function tcpInfo(fd: number): { state: number; backlog: number; pending: number } {
  const b = Buffer.alloc(32);
  getsockopt(fd, SOL_TCP, TCP_INFO, b);
  const state = b.readUInt8(0);
  if (state === TCP_LISTEN) return { state, backlog: b.readUInt32LE(28), pending: b.readUInt32LE(24) };
  return { state, backlog: b.readUInt8(4), pending: 0 };
}

export function dumpInetSocket(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
  const family = getsockoptInt(p.localFd, SOL_SOCKET, 39 /* SO_DOMAIN */);
  const type = getsockoptInt(p.localFd, SOL_SOCKET, SO_TYPE);
  const proto = getsockoptInt(p.localFd, SOL_SOCKET, SO_PROTOCOL);
  const ino = Number(p.stat.ino);
  const fam = family === AF_INET6 ? 'IPv6' : 'IPv4';
  const kind = type === SOCK_RAW ? 'raw ' : '';
  const what = `task ${p.pid} fd ${p.fd}: ${fam} ${kind}${PROTO_NAMES[proto] ?? `protocol ${proto}`} socket ${ino}`;
  const refuse = (why: string): never => {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${why}`, { pid: p.pid, fd: p.fd, ino });
  };
  const rawish = rawOrPing(type, proto);
  if (!rawish && !((type === SOCK_STREAM && proto === IPPROTO_TCP) || (type === SOCK_DGRAM && (proto === IPPROTO_UDP || proto === IPPROTO_UDPLITE)))) {
    refuse(`type ${type} protocol ${proto} is not supported (TCP, UDP, UDP-Lite, ICMP ping and raw sockets are)`);
  }
  let src = fromSockaddr(family, getsockname(p.localFd));
  let dst = fromSockaddr(family, rawish ? null : peerOf(p.localFd, family));
  // sock_diag lists the sockets of the caller's net namespace: ask from the task's.
  const d = rawish ? undefined : inNetNamespaceOfSocket(p.localFd, () => inetDiag(ctx, family, proto, ino));
  let state: number;
  let backlog = 0;
  let pending = 0;
  if (rawish) {
    const pe = procEntry(ctx, p.pid, family, type, ino);
    if (pe) {
      src = { words: pe.local, port: pe.localPort };
      dst = { words: pe.remote, port: pe.remotePort };
      state = pe.state;
      dropQueue(pe, what);
    } else if (type !== SOCK_RAW) {
      // A ping socket is listed once bound (by bind, connect or its first echo): this one never was.
      state = TCP_CLOSE;
    } else {
      return refuse(`not listed in /proc/${p.pid}/net (another network namespace?)`);
    }
  } else if (d) {
    state = d.state;
    backlog = d.wqueue;
    pending = d.state === TCP_LISTEN ? d.rqueue : 0;
  } else if (proto === IPPROTO_TCP) {
    // Not in our namespace's tables: unbound, bound-only before 6.7, or in another network namespace.
    ({ state, backlog, pending } = tcpInfo(p.localFd));
  } else {
    state = dst.port !== 0 ? TCP_ESTABLISHED : TCP_CLOSE;
  }
  let repair = false;
  const conn = `${addrText(family, src.words, src.port)} -> ${addrText(family, dst.words, dst.port)}`;
  if (proto === IPPROTO_TCP && !rawish) {
    if (state === TCP_LISTEN && pending > 0 && ctx.opts.skipInFlight) {
      // Left in the old listener's queue: its clients see a reset when the dumped tree dies.
      log.info(`${what}: skipping ${pending} connection(s) not accepted yet (--skip-in-flight)`);
    } else if (state === TCP_LISTEN && pending > 0) {
      refuse(`listening on ${addrText(family, src.words, src.port)} with ${pending} connection(s) not accepted yet (--skip-in-flight leaves them out)`);
    }
    // A closed socket with a peer address was connected: closed both ways, or reset.
    if (state !== TCP_LISTEN && (state !== TCP_CLOSE || dst.port !== 0)) {
      const name = `${stateName(state)} TCP connection ${conn}`;
      if (!(REPAIRABLE & (1 << state))) refuse(`${name}: TCP_REPAIR cannot restore a connection in this state`);
      if (ctx.opts.tcpClose) {
        // Its state stays behind: the tree's death closes it, and restore makes a closed socket.
      } else if (!ctx.opts.tcpEstablished) {
        refuse(`${name}: established connections need --tcp-established (or --tcp-close)`);
      } else {
        repair = true;
      }
    }
  } else {
    if (d && d.wqueue !== 0) refuse(`corked datagram socket with ${d.wqueue} bytes not sent yet`);
  }
  const ie: InetSkEntry = {
    id, ino, family, type, proto, state,
    src_port: src.port, dst_port: dst.port,
    flags: p.fdinfo.flags & ~O_CLOEXEC,
    backlog,
    src_addr: src.words, dst_addr: dst.words,
    fown: NO_FOWN,
    opts: dumpSkOpts(p.localFd, false, what),
  };
  // The same number as the task's net_ns_id in ids-<pid>.img.
  if (p.netNsId !== undefined) ie.ns_id = p.netNsId;
  if (family === AF_INET6) ie.v6only = getsockoptInt(p.localFd, SOL_IPV6, IPV6_V6ONLY) !== 0;
  // A link-local address is bound with its interface (the kernel sets the socket's bound device): CRIU's ifname.
  if (family === AF_INET6 && src.port !== 0 && needsScopeId(src.words)) {
    if (!ie.opts.so_bound_dev) refuse(`bound to link-local ${addrText(family, src.words, src.port)} on no interface`);
    ie.ifname = ie.opts.so_bound_dev;
  }
  ie.ip_opts = dumpIpOpts(p.localFd, family, what);
  if (type === SOCK_RAW) ie.ip_opts.raw = dumpRawOpts(p.localFd, family, proto, what);
  if (proto !== IPPROTO_TCP && d && d.shutdown !== 0) ie.shutdown = SHUTDOWN_NAMES[d.shutdown & 3] ?? 'BOTH';
  if (proto === IPPROTO_TCP && !rawish && state === TCP_CLOSE && dst.port === 0) {
    const shut = tcpUnconnectedShutdown(p.localFd, d?.shutdown);
    if (shut !== 'NONE') ie.shutdown = shut;
  }
  ie.tcp_opts = dumpTcpOpts(p.localFd, proto === IPPROTO_TCP && !rawish);
  // Peeked whether or not sock_diag lists the socket: an empty queue costs one call.
  if (proto !== IPPROTO_TCP && !rawish) dumpQueue(ctx, p.localFd, id, type, what, p.pid);
  // Last: it leaves the socket in repair mode (unless the tree runs on), so the task's death closes it silently.
  if (repair) {
    // Held still (both ways) before we look, until the restored tree resumes. Asked
    // from the socket's namespace: one other than ours has a lock of its own, whole.
    inNetNamespaceOfSocket(p.localFd, () => lockConnection(ctx, family, src.words, src.port, dst.words, dst.port));
    dumpTcpStream(ctx, p.localFd, ino, state, what, { pid: p.pid, fd: p.fd });
  }
  log.debug(`${what}: state ${stateName(state)} ${conn} backlog ${backlog}`);
  return { type: 'INETSK', id, isk: ie };
}

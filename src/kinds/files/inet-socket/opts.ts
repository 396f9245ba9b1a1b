/**
 * IP-level and TCP-level options of an inet socket (CRIU's ip_opts_entry and
 * tcp_opts_entry), read with getsockopt on our copy at dump and set again
 * inside the task at restore. Fields are written the way CRIU 4.2 does:
 * flags only when on, ttl always (where SOL_IP answers), tos and the
 * keepalive figures when set. Raw sockets' own options are in raw.ts.
 * Restore sets only what differs from a fresh socket of the same kind.
 */
import type { IpOptsEntry, TcpOptsEntry } from '../../../images/messages.js';
import { CriuTsError } from '../../../errors.js';
import { AF_INET6, getsockoptTry, NR, SOL_IP, SOL_IPV6, SOL_TCP, IP_TOS, IP_TTL, IP_PKTINFO, IP_TRANSPARENT, IPV6_RECVPKTINFO, IPV6_TRANSPARENT, IPV6_FREEBIND, TCP_NODELAY, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, IP_FREEBIND } from '../../../sys/index.js';
import type { RestoreTaskHandle } from '../../types.js';


/** An int option, or undefined when this socket does not have it. */
function intOpt(fd: number, level: number, name: number): number | undefined {
  const b = Buffer.alloc(4);
  return getsockoptTry(fd, level, name, b) >= 4 ? b.readInt32LE(0) : undefined;
}

/**
 * IPv4: IP_FREEBIND, IP_PKTINFO, IP_TOS, IP_TTL. IPv6, as CRIU: IPV6_FREEBIND
 * and IPV6_RECVPKTINFO (in `freebind` and `pktinfo`), and TOS/TTL for the
 * IPv4 side of a dual-stack socket where SOL_IP answers (raw IPv6 sockets
 * have no IPv4 side). Refused: IP_TRANSPARENT, and IP_PKTINFO on an IPv6
 * socket (no field for either in CRIU's image). `what` names the socket.
 */
export function dumpIpOpts(fd: number, family: number, what = `socket fd ${fd}`): IpOptsEntry {
  const o: IpOptsEntry = {};
  const refuse = (why: string): never => {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${why}, which the image cannot carry`, {});
  };
  if (family === AF_INET6) {
    if (intOpt(fd, SOL_IPV6, IPV6_FREEBIND) ?? intOpt(fd, SOL_IP, IP_FREEBIND)) o.freebind = true;
    if (intOpt(fd, SOL_IPV6, IPV6_RECVPKTINFO)) o.pktinfo = true;
    if (intOpt(fd, SOL_IPV6, IPV6_TRANSPARENT)) refuse('IPV6_TRANSPARENT is on');
    if (intOpt(fd, SOL_IP, IP_PKTINFO)) refuse('IP_PKTINFO is on an IPv6 socket');
  } else {
    if (intOpt(fd, SOL_IP, IP_FREEBIND)) o.freebind = true;
    if (intOpt(fd, SOL_IP, IP_PKTINFO)) o.pktinfo = true;
    if (intOpt(fd, SOL_IP, IP_TRANSPARENT)) refuse('IP_TRANSPARENT is on');
  }
  const tos = intOpt(fd, SOL_IP, IP_TOS);
  if (tos) o.tos = tos;
  const ttl = intOpt(fd, SOL_IP, IP_TTL);
  if (ttl !== undefined) o.ttl = ttl;
  return o;
}

/** TCP sockets: Nagle, cork and keepalive timing; other protocols get the empty message, as in CRIU. */
export function dumpTcpOpts(fd: number, tcp: boolean): TcpOptsEntry {
  const o: TcpOptsEntry = {};
  if (!tcp) return o;
  if (intOpt(fd, SOL_TCP, TCP_NODELAY)) o.nodelay = true;
  if (intOpt(fd, SOL_TCP, TCP_CORK)) o.cork = true;
  const cnt = intOpt(fd, SOL_TCP, TCP_KEEPCNT);
  const idle = intOpt(fd, SOL_TCP, TCP_KEEPIDLE);
  const intvl = intOpt(fd, SOL_TCP, TCP_KEEPINTVL);
  if (cnt) o.keepcnt = cnt;
  if (idle) o.keepidle = idle;
  if (intvl) o.keepintvl = intvl;
  return o;
}

export function setIntOpt(t: RestoreTaskHandle, fd: number, level: number, name: number, v: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  t.syscall(`setsockopt(${what})`, NR.setsockopt, fd, level, name, t.putBytes(b), 4);
}

export function restoreIpOpts(t: RestoreTaskHandle, fd: number, family: number, o: IpOptsEntry, fresh: IpOptsEntry): void {
  const v6 = family === AF_INET6;
  if (o.freebind) setIntOpt(t, fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_FREEBIND : IP_FREEBIND, 1, v6 ? 'IPV6_FREEBIND' : 'IP_FREEBIND');
  if (o.pktinfo) setIntOpt(t, fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVPKTINFO : IP_PKTINFO, 1, v6 ? 'IPV6_RECVPKTINFO' : 'IP_PKTINFO');
  if (o.tos !== undefined && o.tos !== fresh.tos) setIntOpt(t, fd, SOL_IP, IP_TOS, o.tos, 'IP_TOS');
  // A fresh socket reports the sysctl default; setting it would pin it.
  if (o.ttl !== undefined && o.ttl !== fresh.ttl) setIntOpt(t, fd, SOL_IP, IP_TTL, o.ttl, 'IP_TTL');
}

export function restoreTcpOpts(t: RestoreTaskHandle, fd: number, o: TcpOptsEntry, fresh: TcpOptsEntry): void {
  if (o.nodelay) setIntOpt(t, fd, SOL_TCP, TCP_NODELAY, 1, 'TCP_NODELAY');
  if (o.cork) setIntOpt(t, fd, SOL_TCP, TCP_CORK, 1, 'TCP_CORK');
  if (o.keepcnt !== undefined && o.keepcnt !== fresh.keepcnt) setIntOpt(t, fd, SOL_TCP, TCP_KEEPCNT, o.keepcnt, 'TCP_KEEPCNT');
  if (o.keepidle !== undefined && o.keepidle !== fresh.keepidle) setIntOpt(t, fd, SOL_TCP, TCP_KEEPIDLE, o.keepidle, 'TCP_KEEPIDLE');
  if (o.keepintvl !== undefined && o.keepintvl !== fresh.keepintvl) setIntOpt(t, fd, SOL_TCP, TCP_KEEPINTVL, o.keepintvl, 'TCP_KEEPINTVL');
}

/**
 * Raw IPv4/IPv6 sockets (SOCK_RAW, any protocol) and ICMP ping sockets
 * (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6), as CRIU's INETSK entries.
 * Neither is fully visible to sock_diag (no ping diag; raw diag lists
 * nothing on this 6.18 kernel) and getpeername fails on them even when they
 * are connected (their peer port is 0), so addresses, state and queues come
 * from /proc/PID/net/{raw,raw6,icmp,icmp6}. A raw socket's "port" is its
 * protocol, a ping socket's is its echo identifier (kept: restore binds to
 * it, so replies to requests sent before the dump still arrive).
 *
 * Raw options (ip_opts_raw_entry): IP_HDRINCL/IPV6_HDRINCL, IP_NODEFRAG, the
 * ICMP_FILTER/ICMPV6_FILTER type masks.
 *
 * Limits: packets waiting in the receive queue are dropped (logged), as
 * CRIU does: putting them back would mean sending them again through the
 * stack, where other sockets would see them too; a raw IPv6 socket with an
 * IPV6_CHECKSUM offset of its own is refused (the image has no field for
 * it; the kernel's defaults for ICMPv6 and the mobility header come back).
 */
import { CriuTsError } from '../../../errors.js';
import type { IpOptsRawEntry } from '../../../images/messages.js';
import { logger } from '../../../log.js';
import { procNetSockets, type ProcNetSocket } from '../../../proc/index.js';
import { AF_INET6, getsockoptTry, NR, SOCK_DGRAM, SOCK_RAW, SOL_IP, SOL_IPV6, SOL_RAW, SOL_ICMPV6, IP_HDRINCL, IP_NODEFRAG, ICMP_FILTER, IPV6_HDRINCL, IPV6_CHECKSUM, ICMPV6_FILTER, IPPROTO_MH, IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../../../sys/index.js';
import { stateKey, type DumpContext, type RestoreTaskHandle } from '../../types.js';

const log = logger('inet-sk');
/** IPV6_CHECKSUM offsets a new raw IPv6 socket of these protocols has (rawv6_init_sk) */
const KERNEL_CHECKSUM: Readonly<Record<number, number>> = { [IPPROTO_ICMPV6]: 2, [IPPROTO_MH]: 4 };

/** A raw socket, or an ICMP ping socket. */
export function rawOrPing(type: number, proto: number): boolean {
  return type === SOCK_RAW || (type === SOCK_DGRAM && (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6));
}

const TABLES = stateKey<Map<string, Map<number, ProcNetSocket>>>('inet-socket:proc-net');

/** The /proc/PID/net line of socket `ino`, read once per task and table (tasks are frozen). */
export function procEntry(ctx: DumpContext, pid: number, family: number, type: number, ino: number): ProcNetSocket | undefined {
  const v6 = family === AF_INET6;
  const table = type === SOCK_RAW ? (v6 ? 'raw6' : 'raw') : (v6 ? 'icmp6' : 'icmp');
  const all = ctx.memo(TABLES, () => new Map<string, Map<number, ProcNetSocket>>());
  const key = `${pid}:${table}`;
  let t = all.get(key);
  if (!t) {
    t = procNetSockets(pid, table);
    all.set(key, t);
  }
  return t.get(ino);
}

/** Dropped with a line in the log: see the limits above. */
export function dropQueue(pe: ProcNetSocket, what: string): void {
  if (pe.rxQueue > 0) log.warn(`${what}: ${pe.rxQueue} bytes of packets waiting to be read are dropped (not restorable)`);
}

function int(fd: number, level: number, name: number): number | undefined {
  const b = Buffer.alloc(4);
  return getsockoptTry(fd, level, name, b) >= 4 ? b.readInt32LE(0) : undefined;
}

function words(fd: number, level: number, name: number, n: number): number[] | undefined {
  const b = Buffer.alloc(4 * n);
  if (getsockoptTry(fd, level, name, b) < 4 * n) return undefined;
  return Array.from({ length: n }, (_, i) => b.readUInt32LE(4 * i));
}

/** The options of a raw socket, as CRIU writes them (flags only when on; the ICMP filter always). */
export function dumpRawOpts(fd: number, family: number, proto: number, what: string): IpOptsRawEntry {
  const r: IpOptsRawEntry = {};
  if (family === AF_INET6) {
    if (int(fd, SOL_IPV6, IPV6_HDRINCL)) r.hdrincl = true;
    if (proto === IPPROTO_ICMPV6) {
      const f = words(fd, SOL_ICMPV6, ICMPV6_FILTER, 8);
      if (f) r.icmpv_filter = f;
    }
    // The kernel's own offsets (ICMPv6 2, mobility header 4) come back with the protocol.
    const sum = int(fd, SOL_RAW, IPV6_CHECKSUM);
    const dflt = KERNEL_CHECKSUM[proto] ?? -1;
    if (sum !== undefined && sum !== dflt) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: IPV6_CHECKSUM at offset ${sum}, which the image cannot carry`, { offset: sum });
    }
    return r;
  }
  if (int(fd, SOL_IP, IP_HDRINCL)) r.hdrincl = true;
  if (int(fd, SOL_IP, IP_NODEFRAG)) r.nodefrag = true;
  if (proto === IPPROTO_ICMP) {
    const f = words(fd, SOL_RAW, ICMP_FILTER, 1);
    if (f) r.icmpv_filter = f;
  }
  return r;
}

function setWords(t: RestoreTaskHandle, fd: number, level: number, name: number, v: readonly number[], what: string): void {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((w, i) => b.writeUInt32LE(w >>> 0, 4 * i));
  t.syscall(`setsockopt(${what})`, NR.setsockopt, fd, level, name, t.putBytes(b), b.length);
}

export function restoreRawOpts(t: RestoreTaskHandle, fd: number, family: number, proto: number, r: IpOptsRawEntry): void {
  const v6 = family === AF_INET6;
  if (r.icmpv_filter && r.icmpv_filter.length > 0) {
    if (v6 && proto === IPPROTO_ICMPV6) setWords(t, fd, SOL_ICMPV6, ICMPV6_FILTER, r.icmpv_filter, 'ICMPV6_FILTER');
    else if (!v6 && proto === IPPROTO_ICMP) setWords(t, fd, SOL_RAW, ICMP_FILTER, r.icmpv_filter, 'ICMP_FILTER');
  }
  if (r.nodefrag && !v6) setWords(t, fd, SOL_IP, IP_NODEFRAG, [1], 'IP_NODEFRAG');
  if (r.hdrincl) setWords(t, fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_HDRINCL : IP_HDRINCL, [1], v6 ? 'IPV6_HDRINCL' : 'IP_HDRINCL');
}

/**
 * Sockets from our side: creation, options, sends and non-consuming reads
 * (MSG_PEEK) on our copies of a task's sockets, and netlink sock_diag
 * requests (NETLINK_SOCK_DIAG) that describe sockets the kernel knows.
 */
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { closeQuiet } from './process.js';
import { ENOENT } from './errno.js';
import { SIOCUNIXFILE } from './ioctl.js';

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SOL_TCP = 6;
export const SOL_IPV6 = 41;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_UDPLITE = 136;
export const MSG_PEEK = 2;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_CTRUNC = 8;
export const SCM_RIGHTS = 1;
export const SO_REUSEADDR = 2;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const IPV6_V6ONLY = 26;
export const TCP_INFO = 11;
export const TCP_REPAIR_QUEUE = 20;
/** TCP states (net/tcp_states.h), as sock_diag reports them for TCP and unix sockets alike */
export const TCP_ESTABLISHED = 1;
export const TCP_CLOSE = 7;
export const TCP_LISTEN = 10;

export function socket(domain: number, type: number, protocol = 0): number {
  return sys('socket', NR.socket, undefined, domain, type | SOCK_CLOEXEC, protocol);
}

export function setsockopt(fd: number, level: number, name: number, value: Buffer): void {
  sys('setsockopt', NR.setsockopt, undefined, fd, level, name, addr(value), value.length);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  setsockopt(fd, level, name, b);
}

/** send/sendto; `to` is a raw sockaddr (or none for a connected socket). Returns bytes sent. */
export function sendto(fd: number, data: Buffer, flags: number, to?: Buffer): number {
  // An empty datagram is legal: give the kernel a valid pointer all the same.
  const buf = data.length > 0 ? data : Buffer.alloc(1);
  return sys('sendto', NR.sendto, undefined, fd, addr(buf), data.length, flags, to ? addr(to) : 0, to ? to.length : 0);
}

export interface RecvResult {
  bytes: number;
  /** msg_flags the kernel returned (MSG_TRUNC, MSG_CTRUNC) */
  flags: number;
  /** the control bytes received */
  control: Buffer;
}

/** recvmsg into `buf` with a control buffer; -errno comes back as a thrown SyscallError. */
export function recvmsg(fd: number, buf: Buffer, controlLen: number, flags: number): RecvResult {
  const control = Buffer.alloc(controlLen);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addr(buf), 0);
  iov.writeBigUInt64LE(BigInt(buf.length), 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(addr(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (controlLen > 0) msg.writeBigUInt64LE(addr(control), 32);
  msg.writeBigUInt64LE(BigInt(controlLen), 40);
  const n = sys('recvmsg', NR.recvmsg, undefined, fd, addr(msg), flags);
  const clen = Number(msg.readBigUInt64LE(40));
  return { bytes: n, flags: msg.readInt32LE(48), control: control.subarray(0, clen) };
}

/** File descriptors carried by SCM_RIGHTS messages in a control buffer. */
export function scmRightsFds(control: Buffer): number[] {
  const fds: number[] = [];
  let off = 0;
  while (off + 16 <= control.length) {
    const len = Number(control.readBigUInt64LE(off));
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (len < 16) break;
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = off + 16; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    }
    off += (len + 7) & ~7;
  }
  return fds;
}

// ---- netlink sock_diag ----

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;
const RECV_BYTES = 1 << 16;

/**
 * sock_diag's receive buffer, one for the process: a dump asks once or
 * twice per unix socket (itself, its peer), and a fresh 64 KiB each time
 * was 280 MiB of malloc churn in a 10,000-fd dump, freed only as scavenges
 * found the Buffers dead (its malloc heap peaked at 12.5 MiB). Safe to
 * share: `sockDiag` runs no code of its callers while it reads, and copies
 * out what it returns.
 */
let diagRecv: Buffer | undefined;

/**
 * One SOCK_DIAG_BY_FAMILY request (`body` is the family's request struct);
 * returns the payload of every answer message. `dump` asks for every match
 * instead of one exact socket. A kernel error answer throws SyscallError.
 */
export function sockDiag(body: Buffer, dump: boolean): Buffer[] {
  const fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
  try {
    const req = Buffer.alloc(NLMSG_HDRLEN + body.length);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0), 6);
    req.writeUInt32LE(1, 8);
    body.copy(req, NLMSG_HDRLEN);
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(AF_NETLINK, 0);
    sendto(fd, req, 0, kernel);
    const out: Buffer[] = [];
    const buf = (diagRecv ??= Buffer.allocUnsafeSlow(RECV_BYTES));
    for (;;) {
      const n = sys('recvfrom', NR.recvfrom, undefined, fd, addr(buf), buf.length, 0, 0, 0);
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < NLMSG_HDRLEN || off + len > n) break;
        if (type === NLMSG_DONE) return out;
        if (type === NLMSG_ERROR) {
          const err = -buf.readInt32LE(off + NLMSG_HDRLEN);
          if (err === 0) return out;
          throw new SyscallError('sock_diag', err);
        }
        out.push(Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)));
        off += (len + 3) & ~3;
      }
      if (!dump) return out;
    }
  } finally {
    closeQuiet(fd);
  }
}

const NETLINK_ROUTE = 0;
const NLM_F_ACK = 4;

/** One netlink attribute: type, payload. */
export type NlAttr = readonly [number, Buffer];

function nlAttrBytes(attrs: readonly NlAttr[]): Buffer {
  return Buffer.concat(attrs.map(([type, data]) => {
    const a = Buffer.alloc((4 + data.length + 3) & ~3);
    a.writeUInt16LE(4 + data.length, 0);
    a.writeUInt16LE(type, 2);
    data.copy(a, 4);
    return a;
  }));
}

/**
 * One rtnetlink request (`type`, e.g. RTM_NEWLINK, with its fixed header
 * `head` and attributes), made in the caller's net namespace and waited
 * for: the kernel's error answer throws SyscallError named `what`.
 */
export function rtnlRequest(what: string, type: number, head: Buffer, attrs: readonly NlAttr[], onReply?: (type: number, body: Buffer) => void): void {
  nlRequest(NETLINK_ROUTE, what, type, head, attrs, onReply);
}

/** rtnlRequest on a netlink family of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER...). */
export function nlRequest(protocol: number, what: string, type: number, head: Buffer, attrs: readonly NlAttr[], onReply?: (type: number, body: Buffer) => void): void {
  const fd = socket(AF_NETLINK, SOCK_RAW, protocol);
  try {
    const body = Buffer.concat([head, nlAttrBytes(attrs)]);
    const req = Buffer.alloc(NLMSG_HDRLEN + body.length);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(type, 4);
    req.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
    req.writeUInt32LE(1, 8);
    body.copy(req, NLMSG_HDRLEN);
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(AF_NETLINK, 0);
    sendto(fd, req, 0, kernel);
    const buf = Buffer.alloc(RECV_BYTES);
    for (;;) {
      const n = sys('recvfrom', NR.recvfrom, undefined, fd, addr(buf), buf.length, 0, 0, 0);
      for (let off = 0; off + NLMSG_HDRLEN <= n;) {
        const len = buf.readUInt32LE(off);
        if (len < NLMSG_HDRLEN || off + len > n) break;
        const mtype = buf.readUInt16LE(off + 4);
        if (mtype === NLMSG_ERROR) {
          const err = -buf.readInt32LE(off + NLMSG_HDRLEN);
          if (err === 0) return;
          throw new SyscallError(what, err);
        }
        // An answer before the ack (a GET request's): copied, the buffer is reused.
        onReply?.(mtype, Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)));
        off += (len + 3) & ~3;
      }
    }
  } finally {
    closeQuiet(fd);
  }
}

/** rtnetlink: make a link, and the link attributes criu-ts sets (linux/if_link.h) */
export const RTM_NEWLINK = 16;
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, NET_NS_FD: 28, NEW_IFINDEX: 49 } as const;

/** A net device's flags (linux/if.h), by ip's names for them. */
export const IFF = {
  UP: 0x1, BROADCAST: 0x2, DEBUG: 0x4, LOOPBACK: 0x8, POINTOPOINT: 0x10, NOTRAILERS: 0x20, RUNNING: 0x40,
  NOARP: 0x80, PROMISC: 0x100, ALLMULTI: 0x200, MASTER: 0x400, SLAVE: 0x800, MULTICAST: 0x1000,
  PORTSEL: 0x2000, AUTOMEDIA: 0x4000, DYNAMIC: 0x8000, LOWER_UP: 0x10000, DORMANT: 0x20000, ECHO: 0x40000,
} as const;

const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA = { NSID: 1, FD: 3 } as const;
/** struct rtgenmsg, aligned: the family (AF_UNSPEC) and padding. */
const RTGENMSG = (): Buffer => Buffer.alloc(4);

/**
 * The id (netnsid) the caller's net namespace gives the namespace behind
 * our fd `nsFd` (RTM_GETNSID), as `ip -d link` prints a veth peer's
 * link-netnsid; -1 when none is assigned.
 */
export function netnsIdOf(nsFd: number): number {
  const fd = Buffer.alloc(4);
  fd.writeUInt32LE(nsFd, 0);
  let id = -1;
  rtnlRequest('RTM_GETNSID', RTM_GETNSID, RTGENMSG(), [[NETNSA.FD, fd]], (type, body) => {
    const v = type === RTM_NEWNSID ? nlAttrs(body, 4).get(NETNSA.NSID) : undefined;
    if (v !== undefined && v.length >= 4) id = v.readInt32LE(0);
  });
  return id;
}

/** Give the namespace behind our fd `nsFd` the id `nsid` in the caller's net namespace (RTM_NEWNSID, `ip netns set`). */
export function setNetnsId(nsFd: number, nsid: number): void {
  const fd = Buffer.alloc(4);
  fd.writeUInt32LE(nsFd, 0);
  const id = Buffer.alloc(4);
  id.writeInt32LE(nsid, 0);
  rtnlRequest(`RTM_NEWNSID ${nsid}`, RTM_NEWNSID, RTGENMSG(), [[NETNSA.NSID, id], [NETNSA.FD, fd]]);
}

/** Netlink attributes (type → payload) following a fixed header of `skip` bytes. */
export function nlAttrs(msg: Buffer, skip: number): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let off = skip;
  while (off + 4 <= msg.length) {
    const len = msg.readUInt16LE(off);
    const type = msg.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > msg.length) break;
    attrs.set(type, msg.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return attrs;
}

/** -errno of a probe call instead of an exception (sockets we may not own). */
export function getsockoptTry(fd: number, level: number, name: number, out: Buffer): number {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(out.length, 0);
  const r = sysTry(NR.getsockopt, fd, level, name, addr(out), addr(len));
  return r < 0 ? r : len.readUInt32LE(0);
}

/** connect(2) from our side, on our copy of a socket (acts on the shared socket). */
export function connect(fd: number, sockaddr: Buffer): void {
  sys('connect', NR.connect, undefined, fd, addr(sockaddr), sockaddr.length);
}

export function shutdown(fd: number, how: number): void {
  sys('shutdown', NR.shutdown, undefined, fd, how);
}

/** bind(2) from our side, on our copy of a socket (acts on the shared socket). */
export function bindSockaddr(fd: number, sockaddr: Buffer): void {
  sys('bind', NR.bind, undefined, fd, addr(sockaddr), sockaddr.length);
}

/**
 * sendmsg(2) of `data` with `fds` as SCM_RIGHTS (none: a plain send), to
 * `to` when given; returns the bytes sent.
 */
export function sendmsgRights(fd: number, data: Buffer, fds: readonly number[], flags: number, to?: Buffer): number {
  const buf = data.length > 0 ? data : Buffer.alloc(1);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addr(buf), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  if (to) {
    msg.writeBigUInt64LE(addr(to), 0);
    msg.writeUInt32LE(to.length, 8);
  }
  msg.writeBigUInt64LE(addr(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  let control = Buffer.alloc(0);
  if (fds.length > 0) {
    const len = 16 + 4 * fds.length;
    control = Buffer.alloc((len + 7) & ~7);
    control.writeBigUInt64LE(BigInt(len), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control.writeInt32LE(f, 16 + 4 * i));
    msg.writeBigUInt64LE(addr(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  return sys('sendmsg', NR.sendmsg, undefined, fd, addr(msg), flags);
}

/**
 * getsockopt with the length in the option's own unit (SO_GET_FILTER counts
 * filter blocks, not bytes); `out` null asks only for the length. Returns
 * the length the kernel wrote back.
 */
export function getsockoptLen(fd: number, level: number, name: number, out: Buffer | null, len: number): number {
  const l = Buffer.alloc(4);
  l.writeUInt32LE(len, 0);
  sys('getsockopt', NR.getsockopt, undefined, fd, level, name, out ? addr(out) : 0, addr(l));
  return l.readUInt32LE(0);
}

/**
 * The file a unix socket is bound to, as an O_PATH fd of ours
 * (SIOCUNIXFILE): the very inode and mount it was bound on, reached even
 * when its name has been unlinked or another mount covers it. Undefined
 * for a socket with no file (unbound, abstract).
 */
export function unixSocketFile(fd: number): number | undefined {
  const r = sysTry(NR.ioctl, fd, SIOCUNIXFILE, 0);
  if (r === -ENOENT) return undefined;
  if (r < 0) throw new SyscallError('ioctl(SIOCUNIXFILE)', -r);
  return r;
}


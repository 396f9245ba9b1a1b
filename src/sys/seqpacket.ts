/**
 * AF_UNIX SOCK_SEQPACKET for the RPC service (`criu-ts swrk` / `service`):
 * Node's net module has no packet sockets, so these are plain synchronous
 * syscalls. One message per packet; its size is learned with
 * MSG_PEEK|MSG_TRUNC before the real read, so no message is ever cut.
 * File descriptors travel as SCM_RIGHTS control messages.
 */
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_SEQPACKET, SOL_SOCKET, SCM_RIGHTS, MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, scmRightsFds, socket } from './socket.js';

// Not in nr.ts: only this module uses them.
const NR_ACCEPT4 = 288;

export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLRDHUP = 0x2000;
export const POLLNVAL = 0x20;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SO_PEERCRED = 17;
const SUN_PATH_BYTES = 108;
const CMSG_HDR_BYTES = 16;
const MSGHDR_BYTES = 56;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface Packet {
  data: Buffer;
  /** descriptors that came with it (SCM_RIGHTS), already close-on-exec */
  fds: number[];
}

export function seqpacketSocket(): number {
  return socket(AF_UNIX, SOCK_SEQPACKET);
}

/** A connected pair, both ends close-on-exec (tests and in-process clients). */
export function seqpacketPair(): [number, number] {
  const fds = Buffer.alloc(8);
  sys('socketpair', NR.socketpair, undefined, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, addr(fds));
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/** struct sockaddr_un for a filesystem path (no abstract names: the service is a file). */
export function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0 || bytes.length >= SUN_PATH_BYTES) {
    throw new SyscallError('sockaddr_un', 36 /* ENAMETOOLONG */, undefined, path);
  }
  const sa = Buffer.alloc(2 + bytes.length + 1);
  sa.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(sa, 2);
  return sa;
}

export function bindUnix(fd: number, path: string): void {
  const sa = sockaddrUn(path);
  sys('bind', NR.bind, undefined, fd, addr(sa), sa.length);
}

export function connectUnix(fd: number, path: string): void {
  const sa = sockaddrUn(path);
  sys('connect', NR.connect, undefined, fd, addr(sa), sa.length);
}

export function listen(fd: number, backlog: number): void {
  sys('listen', NR.listen, undefined, fd, backlog);
}

/** accept4 with SOCK_CLOEXEC; the peer address is not wanted (SO_PEERCRED says who it is). */
export function accept4(fd: number): number {
  for (;;) {
    const r = sysTry(NR_ACCEPT4, fd, 0, 0, SOCK_CLOEXEC);
    if (r === -4) continue; // EINTR
    if (r < 0) throw new SyscallError('accept4', -r);
    return r;
  }
}

/**
 * poll(2) on one fd: the revents, or 0 when `timeoutMs` passed (an EINTR
 * counts as a timeout; callers loop anyway).
 */
export function pollFd(fd: number, events: number, timeoutMs: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  const r = sysTry(NR.poll, addr(pfd), 1, Math.max(0, Math.floor(timeoutMs)));
  if (r === -4) return 0;
  if (r < 0) throw new SyscallError('poll', -r);
  return r === 0 ? 0 : pfd.readUInt16LE(6);
}

/** SO_PEERCRED: who is at the other end (pid in our pid namespace). */
export function peerCred(fd: number): PeerCred {
  const out = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(out.length, 0);
  sys('getsockopt(SO_PEERCRED)', NR.getsockopt, undefined, fd, SOL_SOCKET, SO_PEERCRED, addr(out), addr(len));
  return { pid: out.readInt32LE(0), uid: out.readUInt32LE(4), gid: out.readUInt32LE(8) };
}

/**
 * Read the next packet without blocking (call after poll said readable).
 * Returns null at end of stream (the peer closed or shut down writing).
 * `maxFds` bounds the descriptors accepted with it; extra ones are dropped
 * by the kernel (MSG_CTRUNC) and reported as an error.
 */
export function recvPacket(fd: number, maxFds = 0): Packet | null {
  // MSG_TRUNC with a zero-length buffer returns the real length of the next packet.
  let size = sysTry(NR.recvfrom, fd, 0, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT, 0, 0);
  if (size === -11) throw new SyscallError('recv', 11); // EAGAIN: nothing queued
  if (size < 0) throw new SyscallError('recv', -size);
  // A zero-size read is end of stream: protobuf requests always carry a type.
  size = Math.max(size, 1);
  const data = Buffer.alloc(size);
  const controlLen = maxFds > 0 ? CMSG_HDR_BYTES + ((4 * maxFds + 7) & ~7) : 0;
  const control = Buffer.alloc(Math.max(controlLen, 1));
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addr(data), 0);
  iov.writeBigUInt64LE(BigInt(size), 8);
  const msg = Buffer.alloc(MSGHDR_BYTES);
  msg.writeBigUInt64LE(addr(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (controlLen > 0) msg.writeBigUInt64LE(addr(control), 32);
  msg.writeBigUInt64LE(BigInt(controlLen), 40);
  const n = sys('recvmsg', NR.recvmsg, undefined, fd, addr(msg), MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  const fds = controlLen > 0 ? scmRightsFds(control.subarray(0, Number(msg.readBigUInt64LE(40)))) : [];
  if ((msg.readInt32LE(48) & 0x8 /* MSG_CTRUNC */) !== 0) {
    for (const f of fds) sysTry(NR.close, f);
    throw new SyscallError('recvmsg', 105 /* ENOBUFS */, undefined, 'more descriptors than expected');
  }
  if (n === 0) return null;
  return { data: data.subarray(0, n), fds };
}

/** Send one packet, with descriptors as SCM_RIGHTS when given. A gone peer is EPIPE, never SIGPIPE. */
export function sendPacket(fd: number, data: Buffer, fds: readonly number[] = []): void {
  const body = data.length > 0 ? data : Buffer.alloc(1);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addr(body), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(MSGHDR_BYTES);
  msg.writeBigUInt64LE(addr(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  let control: Buffer | undefined;
  if (fds.length > 0) {
    const len = CMSG_HDR_BYTES + 4 * fds.length;
    control = Buffer.alloc((len + 7) & ~7);
    control.writeBigUInt64LE(BigInt(len), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control?.writeInt32LE(f, CMSG_HDR_BYTES + 4 * i));
    msg.writeBigUInt64LE(addr(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  const n = sys('sendmsg', NR.sendmsg, undefined, fd, addr(msg), MSG_NOSIGNAL);
  if (n !== data.length) throw new SyscallError('sendmsg', 90 /* EMSGSIZE */, undefined, `sent ${n} of ${data.length} bytes`);
}

const SO_PEERPIDFD = 77;

/**
 * SO_PEERPIDFD (Linux 6.5): a pidfd for the process that connected, taken
 * by the kernel at connect time, so it names that process even if its pid
 * is reused later. Undefined where the kernel lacks it.
 */
export function peerPidfd(fd: number): number | undefined {
  const out = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  const r = sysTry(NR.getsockopt, fd, SOL_SOCKET, SO_PEERPIDFD, addr(out), addr(len));
  return r < 0 ? undefined : out.readInt32LE(0);
}

/**
 * Socket probes for `criu-ts check` (sys/probe.ts): ioctls and socket
 * options the socket kinds need, asked on throwaway sockets of our own.
 */
import { sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { ENOENT } from './errno.js';
import { O_CLOEXEC } from './fcntl.js';
import { AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM } from './socket.js';
import { ioctlTry, closeQuiet } from './process.js';
import { SIOCUNIXFILE } from './ioctl.js';
import { yes, no, errnoReason, type ProbeResult } from './probe-result.js';

/** Run fn on a fresh socket of ours. */
function withSocket(domain: number, type: number, fn: (fd: number) => ProbeResult): ProbeResult {
  const fd = sysTry(NR.socket, domain, type | O_CLOEXEC, 0);
  if (fd < 0) return no(errnoReason(`socket(${domain}, ${type})`, fd));
  try {
    return fn(fd);
  } finally {
    closeQuiet(fd);
  }
}


/** SIOCGSKNS: a socket's network namespace as an fd. */
export function probeSkNs(): ProbeResult {
  return withSocket(AF_UNIX, SOCK_STREAM, (fd) => {
    const r = ioctlTry(fd, 0x894c);
    if (r >= 0) closeQuiet(r);
    return r >= 0 ? yes : no(errnoReason('SIOCGSKNS', r));
  });
}

/** SIOCUNIXFILE: an unbound socket answers ENOENT when the ioctl exists. */
export function probeUnixFile(): ProbeResult {
  return withSocket(AF_UNIX, SOCK_STREAM, (fd) => {
    const r = ioctlTry(fd, SIOCUNIXFILE);
    if (r >= 0) closeQuiet(r);
    return r >= 0 || r === -ENOENT ? yes : no(errnoReason('SIOCUNIXFILE', r));
  });
}

function getsockoptProbe(fd: number, level: number, name: number, size: number, what: string): ProbeResult {
  const v = Buffer.alloc(size);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(size, 0);
  const r = sysTry(NR.getsockopt, fd, level, name, addr(v), addr(len));
  return r === 0 ? yes : no(errnoReason(what, r));
}

function setsockoptInt(fd: number, level: number, name: number, value: number): number {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  return sysTry(NR.setsockopt, fd, level, name, addr(v), 4);
}

/** SO_BUF_LOCK (5.14+). */
export function probeSockoptBufLock(): ProbeResult {
  return withSocket(AF_INET, SOCK_STREAM, (fd) => getsockoptProbe(fd, 1, 72, 4, 'SO_BUF_LOCK'));
}

/** IPV6_FREEBIND (4.15+). */
export function probeIpv6Freebind(): ProbeResult {
  return withSocket(AF_INET6, SOCK_STREAM, (fd) => {
    const r = setsockoptInt(fd, 41, 78, 1);
    return r === 0 ? yes : no(errnoReason('IPV6_FREEBIND', r));
  });
}

/** TCP repair mode and its window state (what half-closed and established connections need). */
export function probeTcpRepairWindow(): ProbeResult {
  return withSocket(AF_INET, SOCK_STREAM, (fd) => {
    const r = setsockoptInt(fd, 6, 19, 1); // TCP_REPAIR
    if (r < 0) return no(errnoReason('TCP_REPAIR', r));
    return getsockoptProbe(fd, 6, 29, 20, 'TCP_REPAIR_WINDOW');
  });
}

/**
 * Generic socket options (CRIU's sk_opts_entry) of any socket kind (unix,
 * inet, packet, netlink), read with getsockopt from our copy at dump and set
 * again with setsockopt injected into the task (the buffer sizes from our
 * side, on our pidfd_getfd copy of its fd: SO_*BUFFORCE takes CAP_NET_ADMIN
 * in the initial user namespace, which a task of a user namespace of its
 * own lacks; CRIU asks its usernsd likewise). Only options that differ
 * from a fresh socket are set at restore. Linger is kept as CRIU keeps it
 * (the timeout, present only when lingering is on), the bound device by
 * name, the classic BPF filter in filter.ts (attached by each kind once the
 * socket's queue is refilled: queued data passed the filter already, and
 * would meet it again with another sender).
 */
import { closeQuiet, getsockopt, getsockoptInt, getsockoptTry, pidfdGetfd, pidfdOpen, setsockoptInt, SOL_SOCKET, IFNAMSIZ } from '../../../sys/index.js';
import { NR } from '../../../sys/index.js';
import type { SkOptsEntry } from '../../../images/messages.js';
import type { RestoreTaskHandle } from '../../types.js';
import { dumpFilter } from './filter.js';

// Not in restoreSkOpts: the filter goes on once queued data is back in (that data passed it already).
export { restoreFilter } from './filter.js';

const SO = {
  REUSEADDR: 2, DONTROUTE: 5, BROADCAST: 6, SNDBUF: 7, RCVBUF: 8, KEEPALIVE: 9, OOBINLINE: 10,
  NO_CHECK: 11, PRIORITY: 12, REUSEPORT: 15, PASSCRED: 16, RCVLOWAT: 18, RCVTIMEO: 20, SNDTIMEO: 21,
  SNDBUFFORCE: 32, RCVBUFFORCE: 33, PASSSEC: 34, MARK: 36, BUF_LOCK: 72, LINGER: 13, BINDTODEVICE: 25,
} as const;

function timeval(fd: number, name: number): { sec: bigint; usec: bigint } {
  const b = Buffer.alloc(16);
  getsockopt(fd, SOL_SOCKET, name, b);
  return { sec: b.readBigInt64LE(0), usec: b.readBigInt64LE(8) };
}

/**
 * `passOpts` false leaves out SO_PASSCRED/SO_PASSSEC: recent kernels answer
 * them for unix and netlink sockets only (EOPNOTSUPP elsewhere), and CRIU
 * writes them for those alone. `what` names the socket in a refusal.
 */
export function dumpSkOpts(fd: number, passOpts = true, what = `socket fd ${fd}`): SkOptsEntry {
  const int = (name: number): number => getsockoptInt(fd, SOL_SOCKET, name);
  const snd = timeval(fd, SO.SNDTIMEO);
  const rcv = timeval(fd, SO.RCVTIMEO);
  const opts: SkOptsEntry = {
    so_sndbuf: int(SO.SNDBUF),
    so_rcvbuf: int(SO.RCVBUF),
    so_snd_tmo_sec: snd.sec,
    so_snd_tmo_usec: snd.usec,
    so_rcv_tmo_sec: rcv.sec,
    so_rcv_tmo_usec: rcv.usec,
    reuseaddr: int(SO.REUSEADDR) !== 0,
    so_priority: int(SO.PRIORITY),
    so_rcvlowat: int(SO.RCVLOWAT),
  };
  const mark = int(SO.MARK);
  if (mark !== 0) opts.so_mark = mark;
  if (passOpts) {
    opts.so_passcred = int(SO.PASSCRED) !== 0;
    opts.so_passsec = int(SO.PASSSEC) !== 0;
  }
  opts.so_dontroute = int(SO.DONTROUTE) !== 0;
  opts.so_no_check = int(SO.NO_CHECK) !== 0;
  opts.so_reuseport = int(SO.REUSEPORT) !== 0;
  opts.so_broadcast = int(SO.BROADCAST) !== 0;
  opts.so_keepalive = int(SO.KEEPALIVE) !== 0;
  opts.so_oobinline = int(SO.OOBINLINE);
  const lock = Buffer.alloc(4);
  opts.so_buf_lock = getsockoptTry(fd, SOL_SOCKET, SO.BUF_LOCK, lock) >= 0 ? lock.readInt32LE(0) : 0;
  const linger = Buffer.alloc(8);
  getsockopt(fd, SOL_SOCKET, SO.LINGER, linger);
  if (linger.readInt32LE(0) !== 0) opts.so_linger = linger.readInt32LE(4);
  const dev = Buffer.alloc(IFNAMSIZ);
  const devLen = getsockopt(fd, SOL_SOCKET, SO.BINDTODEVICE, dev);
  if (devLen > 0) opts.so_bound_dev = dev.subarray(0, devLen).toString('latin1').replace(/\0.*$/s, '');
  const filter = dumpFilter(fd, what);
  if (filter) opts.so_filter = filter;
  return opts;
}

function setInt(t: RestoreTaskHandle, fd: number, name: number, v: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  t.syscall(`setsockopt(${what})`, NR.setsockopt, fd, SOL_SOCKET, name, t.putBytes(b), 4);
}

function setTimeval(t: RestoreTaskHandle, fd: number, name: number, sec: bigint, usec: bigint, what: string): void {
  if (sec === 0n && usec === 0n) return;
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(sec, 0);
  b.writeBigInt64LE(usec, 8);
  t.syscall(`setsockopt(${what})`, NR.setsockopt, fd, SOL_SOCKET, name, t.putBytes(b), 16);
}

/** Our copy of the task's fd `fd` (the same socket). */
function copyOf(t: RestoreTaskHandle, fd: number): number {
  const pidfd = pidfdOpen(t.pid);
  try {
    return pidfdGetfd(pidfd, fd, t.pid);
  } finally {
    closeQuiet(pidfd);
  }
}

/**
 * Set the dumped options on the task's socket `fd`. `fresh` are the values a
 * new socket of the same type has (from our side), to skip what is default.
 */
export function restoreSkOpts(t: RestoreTaskHandle, fd: number, o: SkOptsEntry, fresh: SkOptsEntry): void {
  // The kernel doubles what it is given; FORCE passes over the sysctl limits (we are root).
  if (o.so_sndbuf !== fresh.so_sndbuf || o.so_rcvbuf !== fresh.so_rcvbuf) {
    const ours = copyOf(t, fd);
    try {
      if (o.so_sndbuf !== fresh.so_sndbuf) setsockoptInt(ours, SOL_SOCKET, SO.SNDBUFFORCE, Math.floor(o.so_sndbuf / 2));
      if (o.so_rcvbuf !== fresh.so_rcvbuf) setsockoptInt(ours, SOL_SOCKET, SO.RCVBUFFORCE, Math.floor(o.so_rcvbuf / 2));
    } finally {
      closeQuiet(ours);
    }
  }
  // Setting a buffer locks it; put the lock bits back as they were.
  if ((o.so_buf_lock ?? 0) !== (fresh.so_buf_lock ?? 0) || o.so_sndbuf !== fresh.so_sndbuf || o.so_rcvbuf !== fresh.so_rcvbuf) {
    setInt(t, fd, SO.BUF_LOCK, o.so_buf_lock ?? 0, 'SO_BUF_LOCK');
  }
  setTimeval(t, fd, SO.SNDTIMEO, o.so_snd_tmo_sec, o.so_snd_tmo_usec, 'SO_SNDTIMEO');
  setTimeval(t, fd, SO.RCVTIMEO, o.so_rcv_tmo_sec, o.so_rcv_tmo_usec, 'SO_RCVTIMEO');
  const flags: [boolean | undefined, number, string][] = [
    [o.reuseaddr, SO.REUSEADDR, 'SO_REUSEADDR'], [o.so_passcred, SO.PASSCRED, 'SO_PASSCRED'],
    [o.so_passsec, SO.PASSSEC, 'SO_PASSSEC'], [o.so_dontroute, SO.DONTROUTE, 'SO_DONTROUTE'],
    [o.so_no_check, SO.NO_CHECK, 'SO_NO_CHECK'], [o.so_reuseport, SO.REUSEPORT, 'SO_REUSEPORT'],
    [o.so_broadcast, SO.BROADCAST, 'SO_BROADCAST'], [o.so_keepalive, SO.KEEPALIVE, 'SO_KEEPALIVE'],
  ];
  for (const [on, name, what] of flags) if (on) setInt(t, fd, name, 1, what);
  if ((o.so_oobinline ?? 0) !== 0) setInt(t, fd, SO.OOBINLINE, 1, 'SO_OOBINLINE');
  if (o.so_priority !== undefined && o.so_priority !== fresh.so_priority) setInt(t, fd, SO.PRIORITY, o.so_priority, 'SO_PRIORITY');
  if (o.so_rcvlowat !== undefined && o.so_rcvlowat !== fresh.so_rcvlowat) setInt(t, fd, SO.RCVLOWAT, o.so_rcvlowat, 'SO_RCVLOWAT');
  if (o.so_mark !== undefined && o.so_mark !== 0) setInt(t, fd, SO.MARK, o.so_mark, 'SO_MARK');
  if (o.so_linger !== undefined) {
    const l = Buffer.alloc(8);
    l.writeInt32LE(1, 0);
    l.writeInt32LE(o.so_linger, 4);
    t.syscall('setsockopt(SO_LINGER)', NR.setsockopt, fd, SOL_SOCKET, SO.LINGER, t.putBytes(l), 8);
  }
  // Before any bind: the device decides which addresses and ports are free.
  if (o.so_bound_dev) {
    const name = Buffer.from(o.so_bound_dev, 'latin1');
    t.syscall(`setsockopt(SO_BINDTODEVICE ${o.so_bound_dev})`, NR.setsockopt, fd, SOL_SOCKET, SO.BINDTODEVICE, t.putBytes(name), name.length);
  }
}

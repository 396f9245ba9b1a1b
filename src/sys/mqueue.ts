/**
 * POSIX message queues (the kernel's mqueue filesystem, one instance per
 * ipc namespace) through their raw syscalls. The calls that name a queue
 * (mq_open, mq_unlink) work on the calling thread's ipc namespace: enter a
 * task's with inNamespacesOf first. A queue fd is any file of an mqueue
 * filesystem, however it was opened.
 *
 * No call here blocks: receive and send pass an absolute timeout of zero
 * (the epoch), so an empty (or full) queue answers ETIMEDOUT at once
 * whatever the O_NONBLOCK flag of an open file description we share with
 * a task says, and that flag is never touched.
 */
import { openSync, readSync, readdirSync } from 'node:fs';
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { ETIMEDOUT, EAGAIN } from './errno.js';
import { detachedMount } from './mount-api.js';

/** struct mq_attr: mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs (longs), then 4 reserved longs */
const MQ_ATTR_BYTES = 64;

export interface MqAttr {
  /** O_NONBLOCK or 0: the open file description's flag */
  flags: number;
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
}

export interface MqMessage {
  prio: number;
  data: Buffer;
}

/** What reading a queue's file says (QSIZE, NOTIFY, SIGNO, NOTIFY_PID). */
export interface MqStatus {
  /** bytes of the queued messages */
  qsize: number;
  /** pid a notification is registered for (mq_notify), 0 if none */
  notifyPid: number;
  notify: number;
  signo: number;
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
const EPOCH = Buffer.alloc(16);

/** The queue's name as the syscalls take it: without the leading '/' that glibc strips. */
function bare(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

/** mq_open in the calling thread's ipc namespace; `attr` only with O_CREAT. Returns the fd. */
export function mqOpen(name: string, oflag: number, mode = 0, attr?: { maxmsg: number; msgsize: number }): number {
  const n = cstr(bare(name));
  let a = 0n;
  const ab = Buffer.alloc(MQ_ATTR_BYTES);
  if (attr) {
    ab.writeBigInt64LE(BigInt(attr.maxmsg), 8);
    ab.writeBigInt64LE(BigInt(attr.msgsize), 16);
    a = addr(ab);
  }
  return sys(`mq_open(/${bare(name)})`, NR.mq_open, undefined, addr(n), oflag, mode, a);
}

export function mqUnlink(name: string): void {
  const n = cstr(bare(name));
  sys(`mq_unlink(/${bare(name)})`, NR.mq_unlink, undefined, addr(n));
}

export function mqGetattr(fd: number): MqAttr {
  const b = Buffer.alloc(MQ_ATTR_BYTES);
  sys('mq_getsetattr', NR.mq_getsetattr, undefined, fd, 0, addr(b));
  return {
    flags: Number(b.readBigInt64LE(0)),
    maxmsg: Number(b.readBigInt64LE(8)),
    msgsize: Number(b.readBigInt64LE(16)),
    curmsgs: Number(b.readBigInt64LE(24)),
  };
}

/** The next message (highest priority, oldest first), or undefined when the queue is empty. */
export function mqReceive(fd: number, msgsize: number): MqMessage | undefined {
  const buf = Buffer.alloc(Math.max(1, msgsize));
  const prio = new Uint32Array(1);
  const r = sysTry(NR.mq_timedreceive, fd, addr(buf), buf.length, addr(prio), addr(EPOCH));
  if (r === -ETIMEDOUT || r === -EAGAIN) return undefined;
  if (r < 0) throw new SyscallError('mq_timedreceive', -r);
  return { prio: prio[0] ?? 0, data: Buffer.from(buf.subarray(0, r)) };
}

/** Queue one message; a full queue is an error (ETIMEDOUT), never a wait. */
export function mqSend(fd: number, m: MqMessage): void {
  const data = m.data.length > 0 ? m.data : Buffer.alloc(1);
  sys('mq_timedsend', NR.mq_timedsend, undefined, fd, addr(data), m.data.length, m.prio, addr(EPOCH));
}

/**
 * The text the kernel gives for a read of a queue's file, read at offset 0
 * with pread so that the file offset of a description we share with a task
 * does not move.
 */
export function mqStatus(fd: number): MqStatus {
  const b = Buffer.alloc(256);
  const n = readSync(fd, b, 0, b.length, 0);
  const text = b.subarray(0, n).toString('latin1');
  const num = (key: string): number => {
    const m = new RegExp(`${key}:(-?\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { qsize: num('QSIZE'), notify: num('NOTIFY'), signo: num('SIGNO'), notifyPid: num('NOTIFY_PID') };
}

/**
 * A detached mount of the calling thread's ipc namespace's mqueue
 * filesystem (each namespace has one instance; mounting finds it): its
 * directory lists every queue by name. The caller closes it.
 */
export function mqueueMount(): number {
  return detachedMount('mqueue', {}, []);
}

/** The names of the queues in an mqueue mount (a mqueueMount fd). */
export function mqueueNames(mnt: number): string[] {
  return readdirSync(`/proc/self/fd/${mnt}`).sort();
}

/** Open queue `name` of an mqueue mount with `flags` (a new open file description). */
export function mqOpenIn(mnt: number, name: string, flags: number): number {
  return openSync(`/proc/self/fd/${mnt}/${name}`, flags);
}

/**
 * A new open file description of the queue our fd `fd` is open on, with
 * `flags`: through the fd's /proc link, so an unlinked queue too, and
 * without touching the description `fd` shares with a task.
 */
export function mqReopen(fd: number, flags: number): number {
  return openSync(`/proc/self/fd/${fd}`, flags);
}

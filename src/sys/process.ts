/** Process-level calls: pidfds, signals, kcmp, prctl, and our own identity. */
import { fstatSync } from 'node:fs';
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { CriuTsError } from '../errors.js';
import { TCGETS } from './ioctl.js';

export function pidfdOpen(pid: number, flags = 0): number {
  return sys('pidfd_open', NR.pidfd_open, pid, pid, flags);
}

/** Duplicate another task's fd into our process (needs ptrace access to it). */
export function pidfdGetfd(pidfd: number, targetFd: number, pid?: number): number {
  return sys('pidfd_getfd', NR.pidfd_getfd, pid, pidfd, targetFd, 0);
}

/**
 * process_mrelease(2) (Linux 5.15): free the address space of a task that
 * is dying (SIGKILLed) on the caller's thread, beside the task's own
 * exit_mmap. An answer, never a throw: 0, or -errno (ENOSYS before 5.15,
 * EINVAL where the memory is shared with a live process, ESRCH once gone,
 * EAGAIN where the kernel gave up on a lock). The pidfd is opened and
 * closed here.
 */
export function processMrelease(pid: number): number {
  const pidfd = sysTry(NR.pidfd_open, pid, 0);
  if (pidfd < 0) return pidfd;
  const r = sysTry(NR.process_mrelease, pidfd, 0);
  sysTry(NR.close, pidfd);
  return r;
}

export function pidfdSendSignal(pidfd: number, sig: number, pid?: number): void {
  sys('pidfd_send_signal', NR.pidfd_send_signal, pid, pidfd, sig, 0, 0);
}

/** The kernel's PID_MAX_LIMIT on 64-bit: no task has a pid above it. */
export const PID_MAX_LIMIT = 4 * 1024 * 1024;
/** Capability numbers (linux/capability.h) */
export const CAP_SETPCAP = 8;
export const CAP_SYS_PTRACE = 19;
/** A task's flags (/proc/PID/stat field 9): it has begun to exit. */
export const PF_EXITING = 0x4;

/**
 * kill(2) with 0, a negative number or -1 signals a process group or every
 * process we may signal: a pid that came from an image must never reach it
 * as such. Only a single task's pid passes.
 */
function singleTask(what: string, pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0 || pid > PID_MAX_LIMIT) {
    throw new CriuTsError('EINTERNAL', `${what}: ${pid} is not the pid of a single task`, { pid });
  }
}

export function kill(pid: number, sig: number): void {
  singleTask('kill', pid);
  sys('kill', NR.kill, pid, pid, sig);
}

/** kill(pid, 0): whether the pid exists (EPERM counts as existing); a number that is no single task's pid does not. */
export function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid > PID_MAX_LIMIT) return false;
  const r = sysTry(NR.kill, pid, 0);
  return r === 0 || r === -1;
}

export function tgkill(tgid: number, tid: number, sig: number): void {
  singleTask('tgkill', tgid);
  singleTask('tgkill', tid);
  sys('tgkill', NR.tgkill, tid, tgid, tid, sig);
}

export const KCMP = { FILE: 0, VM: 1, FILES: 2, FS: 3, SIGHAND: 4, IO: 5, SYSVSEM: 6, EPOLL_TFD: 7 } as const;

/** kcmp: 0 equal, 1/2 ordered different (usable for sorting), throws on error. */
export function kcmp(pid1: number, pid2: number, type: number, idx1 = 0, idx2 = 0): number {
  return sys('kcmp', NR.kcmp, pid1, pid1, pid2, type, idx1, idx2);
}

/**
 * Is fd `fd` of task `pid` the file that epoll `epfd` (same task) watches as
 * its `toff`-th target registered under fd number `tfd`? (kcmp KCMP_EPOLL_TFD)
 */
export function kcmpEpollTarget(pid: number, fd: number, epfd: number, tfd: number, toff: number, epPid = pid): boolean {
  const slot = Buffer.alloc(12); // struct kcmp_epoll_slot { efd, tfd, toff }
  slot.writeUInt32LE(epfd, 0);
  slot.writeUInt32LE(tfd, 4);
  slot.writeUInt32LE(toff, 8);
  return sysTry(NR.kcmp, pid, epPid, KCMP.EPOLL_TFD, fd, addr(slot)) === 0;
}

export const PR = {
  SET_PDEATHSIG: 1, GET_PDEATHSIG: 2, GET_DUMPABLE: 3, SET_DUMPABLE: 4, SET_NAME: 15, GET_NAME: 16,
  GET_SECCOMP: 21, GET_SECUREBITS: 27, SET_SECUREBITS: 28, GET_TIMERSLACK: 30, SET_TIMERSLACK: 29,
  SET_CHILD_SUBREAPER: 36, GET_CHILD_SUBREAPER: 37, SET_NO_NEW_PRIVS: 38, GET_NO_NEW_PRIVS: 39,
  GET_TID_ADDRESS: 40, SET_THP_DISABLE: 41, GET_THP_DISABLE: 42, CAP_AMBIENT: 47, SET_MM: 35,
  GET_SPECULATION_CTRL: 52, SET_SPECULATION_CTRL: 53,
} as const;
export const PR_SET_MM = { MAP: 14, MAP_SIZE: 15, EXE_FILE: 13 } as const;

export function prctl(option: number, a2: number | bigint = 0, a3: number | bigint = 0, a4: number | bigint = 0, a5: number | bigint = 0): number {
  return sys('prctl', NR.prctl, undefined, option, a2, a3, a4, a5);
}

export function setChildSubreaper(on: boolean): void {
  prctl(PR.SET_CHILD_SUBREAPER, on ? 1 : 0);
}

/**
 * Our own THP flag (PR_GET_THP_DISABLE), asked once: fork and exec keep it,
 * so a task cloned from a stub we spawned has it. true or false; undefined
 * where it is more than on/off (PR_THP_DISABLE_EXCEPT_ADVISED) or unknown.
 */
let ownThp: boolean | undefined | null = null;
export function ownThpDisabled(): boolean | undefined {
  if (ownThp === null) {
    try {
      const v = prctl(PR.GET_THP_DISABLE);
      ownThp = v === 0 ? false : v === 1 ? true : undefined;
    } catch {
      ownThp = undefined;
    }
  }
  return ownThp;
}

/**
 * The securebits a program we start runs with: ours (PR_GET_SECUREBITS in
 * our own process, asked once) less SECURE_KEEP_CAPS, which exec drops;
 * fork keeps them. undefined where they cannot be asked.
 */
let execSecbits: number | undefined | null = null;
export function execSecurebits(): number | undefined {
  if (execSecbits === null) {
    try {
      execSecbits = prctl(PR.GET_SECUREBITS) & ~(1 << 4);
    } catch {
      execSecbits = undefined;
    }
  }
  return execSecbits;
}

export function getpid(): number {
  return sys('getpid', NR.getpid, undefined);
}
export function gettid(): number {
  return sys('gettid', NR.gettid, undefined);
}

// ---- file descriptors in our own process ----

export function close(fd: number): void {
  sys('close', NR.close, undefined, fd);
}
export function closeQuiet(fd: number): void {
  sysTry(NR.close, fd);
}

/** Our own descriptor of task `pid`'s fd `fd`: the same open file description (pidfd_open, pidfd_getfd). */
export function fdOfTask(pid: number, fd: number): number {
  const pidfd = pidfdOpen(pid);
  try {
    return pidfdGetfd(pidfd, fd, pid);
  } finally {
    closeQuiet(pidfd);
  }
}
/**
 * The device of the kernel's internal shmem mount (shm_mnt): memfds and
 * shared anonymous mappings both live there, so an fd opened through
 * /proc/PID/map_files on a MAP_SHARED|MAP_ANONYMOUS mapping ("/dev/zero
 * (deleted)") is told from an unlinked regular file by this st_dev.
 * Learned once, from a memfd of our own.
 */
let shmemDevice: number | undefined;
export function shmemDev(): number {
  if (shmemDevice === undefined) {
    const name = Buffer.from('criu-ts-shmem-dev\0');
    const fd = sys('memfd_create', NR.memfd_create, undefined, addr(name), 1 /* MFD_CLOEXEC */);
    try {
      shmemDevice = fstatSync(fd).dev;
    } finally {
      closeQuiet(fd);
    }
  }
  return shmemDevice;
}
export function fcntl(fd: number, cmd: number, arg: number | bigint = 0): number {
  return sys('fcntl', NR.fcntl, undefined, fd, cmd, arg);
}
/** F_GETOWN_EX: who gets SIGIO/SIGURG for the open file (type F_OWNER_TID 0, PID 1, PGRP 2). */
export function fcntlGetOwnerEx(fd: number): { type: number; pid: number } {
  const b = Buffer.alloc(8);
  sys('fcntl(F_GETOWN_EX)', NR.fcntl, undefined, fd, 16, addr(b));
  return { type: b.readInt32LE(0), pid: b.readInt32LE(4) };
}
/** F_GETOWNER_UIDS (CONFIG_CHECKPOINT_RESTORE): the uid/euid recorded when the owner was set. */
export function fcntlGetOwnerUids(fd: number): { uid: number; euid: number } {
  const b = Buffer.alloc(8);
  sys('fcntl(F_GETOWNER_UIDS)', NR.fcntl, undefined, fd, 17, addr(b));
  return { uid: b.readUInt32LE(0), euid: b.readUInt32LE(4) };
}
export function ioctl(fd: number, request: number, arg: Buffer | number | bigint = 0): number {
  const a = Buffer.isBuffer(arg) ? addr(arg) : arg;
  return sys('ioctl', NR.ioctl, undefined, fd, request, a);
}
export function ioctlTry(fd: number, request: number, arg: Buffer | number | bigint = 0): number {
  const a = Buffer.isBuffer(arg) ? addr(arg) : arg;
  return sysTry(NR.ioctl, fd, request, a);
}
/**
 * isatty(3) of `fd`, as Node's `isTTY` answers it, without making
 * process.stderr (which loads Node's streams and net; cli/main.ts).
 */
export function isTerminal(fd: number): boolean {
  return ioctlTry(fd, TCGETS, Buffer.alloc(64)) >= 0;
}
/** fallocate(2); PUNCH_HOLE|KEEP_SIZE frees the blocks of a range and keeps the file's size. */
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;
export function fallocate(fd: number, mode: number, offset: bigint, len: bigint): void {
  sys('fallocate', NR.fallocate, undefined, fd, mode, offset, len);
}
export function lseek(fd: number, offset: bigint | number, whence: number): number {
  return sys('lseek', NR.lseek, undefined, fd, offset, whence);
}
export function pipe2(flags = 0): [number, number] {
  const b = Buffer.alloc(8);
  sys('pipe2', NR.pipe2, undefined, addr(b), flags);
  return [b.readInt32LE(0), b.readInt32LE(4)];
}
/** tee(2): duplicate up to len bytes of pipe `from` into pipe `to` without consuming them. */
export function tee(from: number, to: number, len: number, flags = 0): number {
  return sys('tee', NR.tee, undefined, from, to, len, flags);
}
export function splice(fdIn: number, fdOut: number, len: number, flags = 0): number {
  return sys('splice', NR.splice, undefined, fdIn, 0, fdOut, 0, len, flags);
}
export function read(fd: number, buf: Buffer, len = buf.length): number {
  return sys('read', NR.read, undefined, fd, addr(buf), len);
}
export function write(fd: number, buf: Buffer, len = buf.length): number {
  return sys('write', NR.write, undefined, fd, addr(buf), len);
}
export function dup(fd: number): number {
  return sys('dup', NR.dup, undefined, fd);
}

/** getsockopt into a buffer; returns the option length the kernel wrote. */
export function getsockopt(fd: number, level: number, name: number, out: Buffer): number {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(out.length, 0);
  sys('getsockopt', NR.getsockopt, undefined, fd, level, name, addr(out), addr(len));
  return len.readUInt32LE(0);
}
export function getsockoptInt(fd: number, level: number, name: number): number {
  const b = Buffer.alloc(4);
  getsockopt(fd, level, name, b);
  return b.readInt32LE(0);
}
export function getsockname(fd: number): Buffer {
  const b = Buffer.alloc(128);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(128, 0);
  sys('getsockname', NR.getsockname, undefined, fd, addr(b), addr(len));
  return b.subarray(0, len.readUInt32LE(0));
}
export function getpeername(fd: number): Buffer | null {
  const b = Buffer.alloc(128);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(128, 0);
  const r = sysTry(NR.getpeername, fd, addr(b), addr(len));
  if (r < 0) return null;
  return b.subarray(0, len.readUInt32LE(0));
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Synchronous sleep (dump/restore loops are synchronous by design: the target is stopped meanwhile). */
export function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** get_robust_list of another thread (needs ptrace access to it): {head, len}. */
export function getRobustList(tid: number): { head: bigint; len: number } {
  const head = Buffer.alloc(8);
  const len = Buffer.alloc(8);
  sys('get_robust_list', NR.get_robust_list, tid, tid, addr(head), addr(len));
  return { head: head.readBigUInt64LE(0), len: Number(len.readBigUInt64LE(0)) };
}

// ---- scheduling of another thread (root may read and set any thread's) ----

/** SCHED_RESET_ON_FORK, or-ed into the policy sched_getscheduler returns. */
export const SCHED_RESET_ON_FORK = 0x40000000;
export const SCHED_DEADLINE = 6;
const PRIO_PROCESS = 0;

/** Policy of a thread, with SCHED_RESET_ON_FORK or-ed in when set. */
export function schedGetScheduler(tid: number): number {
  return sys('sched_getscheduler', NR.sched_getscheduler, tid, tid);
}
/** Static (real-time) priority of a thread. */
export function schedGetPriority(tid: number): number {
  const p = Buffer.alloc(4);
  sys('sched_getparam', NR.sched_getparam, tid, tid, addr(p));
  return p.readInt32LE(0);
}
export function schedSetScheduler(tid: number, policy: number, priority: number): void {
  const p = Buffer.alloc(4);
  p.writeInt32LE(priority, 0);
  sys('sched_setscheduler', NR.sched_setscheduler, tid, tid, policy, addr(p));
}
/** Nice value of one thread (PRIO_PROCESS with a tid names that thread on Linux). */
export function getNice(tid: number): number {
  // The raw syscall returns 20 - nice, never negative.
  return 20 - sys('getpriority', NR.getpriority, tid, PRIO_PROCESS, tid);
}
export function setNice(tid: number, nice: number): void {
  sys('setpriority', NR.setpriority, tid, PRIO_PROCESS, tid, nice);
}

export const CLOCK = { MONOTONIC: 1, BOOTTIME: 7 } as const;

/** clock_gettime in our own time namespace, in nanoseconds. */
export function clockGettimeNs(clock: number): bigint {
  const ts = Buffer.alloc(16);
  sys('clock_gettime', NR.clock_gettime, undefined, clock, addr(ts));
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

// Used by the kinds (src/kinds), declared here once.
export const MEMBARRIER_CMD_GET_REGISTRATIONS = 1 << 9;
export const ARCH_GET_XCOMP_PERM = 0x1022;
export const ARCH_REQ_XCOMP_PERM = 0x1023;
const ARCH_GET_XCOMP_SUPP = 0x1021;

let xcompSupp: bigint | undefined;

/**
 * The XSAVE features this kernel and CPU support for user space
 * (arch_prctl(ARCH_GET_XCOMP_SUPP) in our own process, asked once); 0n on
 * a kernel without the call (before 5.16, which has no dynamic features
 * either). A task's permitted features are a subset of these.
 */
export function xcompSupported(): bigint {
  if (xcompSupp === undefined) {
    const b = Buffer.alloc(8);
    xcompSupp = sysTry(NR.arch_prctl, ARCH_GET_XCOMP_SUPP, addr(b)) === 0 ? b.readBigUInt64LE(0) : 0n;
  }
  return xcompSupp;
}
export const SECURE_NO_SETUID_FIXUP_BIT = 1 << 2;
export const PR_CAPBSET_DROP = 24;
export const PR_CAP_AMBIENT_RAISE = 2;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;
export const SECCOMP_SET_MODE_STRICT = 0;
export const SECCOMP_SET_MODE_FILTER = 1;
export const SECCOMP_FILTER_FLAG_TSYNC = 1;

/** rseq(2) flags: unregister the thread's area */
export const RSEQ_FLAG_UNREGISTER = 1;
/** struct rseq_cs flags (linux/rseq.h): no abort when the critical section is interrupted by a signal */
export const RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL = 1 << 1;
/**
 * uapi struct rseq (the thread's area): offsets of the fields a dump reads.
 * uapi struct rseq_cs (the critical section it points to): version u32,
 * flags u32, then start_ip, post_commit_offset and abort_ip (u64 each).
 */
export const RSEQ_LAYOUT = { CS_OFFSET: 8, FLAGS_OFFSET: 16, AREA_BYTES: 20, CS_BYTES: 32 } as const;

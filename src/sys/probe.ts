/**
 * Cheap kernel feature probes for `criu-ts check`. Each one asks the kernel
 * directly (a syscall or ioctl that fails differently when the feature is
 * missing) and never changes anything outside our own process except the
 * throwaway child a caller passes to probeTracee.
 * Layout and numbers: include/uapi/linux/{sched,userfaultfd,fs,nsfs,...}.h.
 */
import { openSync, closeSync } from 'node:fs';
import { sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { EINVAL, ENOSYS, EPERM, EFAULT, ENOTTY } from './errno.js';
import { O_CLOEXEC } from './fcntl.js';
import { ioctlTry, pidfdOpen, pidfdGetfd, closeQuiet, kill } from './process.js';
import { ptraceSeize, ptraceInterrupt, ptraceGetRseqConfig, waitPid, __WALL, PTRACE_O } from './ptrace.js';
import { processVmReadTry } from './memory.js';

import { yes, no, errnoReason, type ProbeResult } from './probe-result.js';

export type { ProbeResult } from './probe-result.js';
export * from './probe-memory.js';
export * from './probe-net.js';

// Syscalls newer than the shared NR table (x86_64).
const NR_MOVE_MOUNT = 429;
const NR_OPENAT2 = 437;


/**
 * clone3 with set_tid: point set_tid at an unmapped address. A kernel that
 * knows set_tid copies it and fails with EFAULT before creating anything;
 * an older one rejects the larger struct (E2BIG) or clone3 itself (ENOSYS).
 */
export function probeClone3SetTid(): ProbeResult {
  const args = Buffer.alloc(88); // struct clone_args, CLONE_ARGS_SIZE_VER2
  args.writeBigUInt64LE(8n, 64); // set_tid: an address no process maps (below mmap_min_addr)
  args.writeBigUInt64LE(1n, 72); // set_tid_size
  const r = sysTry(NR.clone3, addr(args), args.length);
  if (r === -EFAULT) return yes;
  if (r >= 0) return no('clone3 unexpectedly succeeded');
  return no(errnoReason('clone3(set_tid)', r));
}

export interface TraceeProbe {
  seize: ProbeResult;
  suspendSeccomp: ProbeResult;
  rseqConfig: ProbeResult;
  pidfdGetfd: ProbeResult;
  processVmReadv: ProbeResult;
}

/**
 * Seize a throwaway child (ours, so no other tracer), stop it, and ask what a
 * dump needs from ptrace, pidfds and process_vm_readv. Kills the child at the
 * end; its parent reaps it.
 */
export function probeTracee(pid: number, readableAddr: bigint): TraceeProbe {
  const res: TraceeProbe = {
    seize: no('not tried'), suspendSeccomp: no('not tried'), rseqConfig: no('not tried'),
    pidfdGetfd: no('not tried'), processVmReadv: no('not tried'),
  };
  try {
    // PTRACE_SEIZE with PTRACE_O_SUSPEND_SECCOMP first: it answers two questions at once.
    const seized = sysTry(NR.ptrace, 0x4206, pid, 0, PTRACE_O.SUSPEND_SECCOMP);
    if (seized === 0) res.suspendSeccomp = yes;
    else {
      res.suspendSeccomp = no(errnoReason('PTRACE_SEIZE(PTRACE_O_SUSPEND_SECCOMP)', seized));
      try {
        ptraceSeize(pid, 0);
      } catch (e) {
        res.seize = no((e as Error).message);
        return res;
      }
    }
    res.seize = yes;
    ptraceInterrupt(pid);
    waitPid(pid, __WALL);
    try {
      ptraceGetRseqConfig(pid);
      res.rseqConfig = yes;
    } catch (e) {
      res.rseqConfig = no((e as Error).message);
    }
    res.pidfdGetfd = tryPidfdGetfd(pid);
    const buf = Buffer.alloc(8);
    const n = processVmReadTry(pid, buf, readableAddr);
    res.processVmReadv = n === 8 ? yes : no(n < 0 ? errnoReason('process_vm_readv', n) : `short read (${n})`);
  } finally {
    try {
      kill(pid, 9);
    } catch {
      // already gone
    }
  }
  return res;
}

function tryPidfdGetfd(pid: number): ProbeResult {
  let pidfd = -1;
  try {
    pidfd = pidfdOpen(pid);
    const fd = pidfdGetfd(pidfd, 0, pid);
    closeQuiet(fd);
    return yes;
  } catch (e) {
    return no((e as Error).message);
  } finally {
    if (pidfd >= 0) closeQuiet(pidfd);
  }
}

/** kcmp(KCMP_EPOLL_TFD): is an eventfd we registered in our own epoll the same file? */
export function probeKcmpEpoll(): ProbeResult {
  const ep = sysTry(NR.epoll_create1, O_CLOEXEC);
  const efd = sysTry(NR.eventfd2, 0, O_CLOEXEC);
  try {
    if (ep < 0 || efd < 0) return no('epoll_create1/eventfd2 failed');
    const ev = Buffer.alloc(12); // struct epoll_event is packed on x86_64
    ev.writeUInt32LE(1, 0); // EPOLLIN
    const added = sysTry(NR.epoll_ctl, ep, 1, efd, addr(ev));
    if (added < 0) return no(errnoReason('epoll_ctl', added));
    const slot = Buffer.alloc(12); // struct kcmp_epoll_slot { efd, tfd, toff }
    slot.writeUInt32LE(ep, 0);
    slot.writeUInt32LE(efd, 4);
    const me = process.pid;
    const r = sysTry(NR.kcmp, me, me, 7, efd, addr(slot));
    return r === 0 ? yes : no(r < 0 ? errnoReason('kcmp(KCMP_EPOLL_TFD)', r) : 'kcmp found different files');
  } finally {
    if (ep >= 0) closeQuiet(ep);
    if (efd >= 0) closeQuiet(efd);
  }
}

/** memfd_create(MFD_HUGETLB). */
export function probeMemfdHugetlb(): ProbeResult {
  const name = Buffer.from('criu-ts-probe\0');
  const r = sysTry(NR.memfd_create, addr(name), 1 | 4); // MFD_CLOEXEC | MFD_HUGETLB
  if (r >= 0) closeQuiet(r);
  return r >= 0 ? yes : no(errnoReason('memfd_create(MFD_HUGETLB)', r));
}

/** openat2 (5.6+). */
export function probeOpenat2(): ProbeResult {
  const path = Buffer.from('/\0');
  const how = Buffer.alloc(24); // struct open_how { flags, mode, resolve }
  how.writeBigUInt64LE(BigInt(O_CLOEXEC), 0);
  const r = sysTry(NR_OPENAT2, -100, addr(path), addr(how), how.length); // AT_FDCWD
  if (r >= 0) closeQuiet(r);
  return r >= 0 ? yes : no(errnoReason('openat2', r));
}

/** move_mount(MOVE_MOUNT_SET_GROUP): an unknown flag is EINVAL; a known one fails later on our empty paths. */
export function probeMoveMountSetGroup(): ProbeResult {
  const empty = Buffer.from('\0');
  const r = sysTry(NR_MOVE_MOUNT, -1, addr(empty), -1, addr(empty), 0x100);
  return r !== -EINVAL && r !== -ENOSYS ? yes : no(errnoReason('move_mount(MOVE_MOUNT_SET_GROUP)', r));
}

/** nsfs ioctls (NS_GET_USERNS 0xb701, NS_GET_PARENT 0xb702): EPERM means "exists, but not yours". */
export function probeNsIoctl(path: string, request: number, what: string): ProbeResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return no(`${path}: ${(e as Error).message}`);
  }
  try {
    const r = ioctlTry(fd, request);
    if (r >= 0) closeQuiet(r);
    return r >= 0 || r === -EPERM ? yes : no(errnoReason(what, r));
  } finally {
    closeSync(fd);
  }
}

/** timerfd with TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE): ticks=0 is EINVAL when the ioctl exists. */
export function probeTimerfd(readFdinfo: (fd: number) => string): ProbeResult {
  const fd = sysTry(NR.timerfd_create, 1, O_CLOEXEC); // CLOCK_MONOTONIC
  if (fd < 0) return no(errnoReason('timerfd_create', fd));
  try {
    if (!readFdinfo(fd).includes('it_value')) return no('fdinfo shows no timer state');
    const ticks = Buffer.alloc(8);
    const r = ioctlTry(fd, 0x40085400, ticks);
    return r === -ENOTTY ? no('TFD_IOC_SET_TICKS missing') : yes;
  } finally {
    closeQuiet(fd);
  }
}

/** flock on a file of ours shows up as a "lock:" line in its fdinfo. */
export function probeFdinfoLock(fd: number, readFdinfo: (fd: number) => string): ProbeResult {
  const r = sysTry(NR.flock, fd, 2 | 4); // LOCK_EX | LOCK_NB
  if (r < 0) return no(errnoReason('flock', r));
  try {
    return readFdinfo(fd).includes('lock:') ? yes : no('fdinfo shows no locks');
  } finally {
    sysTry(NR.flock, fd, 8); // LOCK_UN
  }
}

/** pidfd_open on ourselves. */
export function probePidfdOpen(): ProbeResult {
  const r = sysTry(NR.pidfd_open, process.pid, 0);
  if (r >= 0) closeQuiet(r);
  return r >= 0 ? yes : no(errnoReason('pidfd_open', r));
}

/**
 * prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the one way to set a task's mm
 * fields from inside a user namespace other than the initial one (the
 * single PR_SET_MM fields take CAP_SYS_RESOURCE there); criu-ts's restore
 * uses PR_SET_MM_MAP, as CRIU's check for user namespaces asks.
 */
export function probePrSetMmMapSize(): ProbeResult {
  const size = Buffer.alloc(4);
  const r = sysTry(NR.prctl, 35, 15, addr(size), 0, 0); // PR_SET_MM, PR_SET_MM_MAP_SIZE
  return r >= 0 ? yes : no(errnoReason('prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)', r));
}

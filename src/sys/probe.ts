/**
 * Cheap kernel feature probes for `criu-ts check`. Each one asks the kernel
 * directly (a syscall or ioctl that fails differently when the feature is
 * missing) and never changes anything outside our own process except the
 * throwaway child a caller passes to probeTracee.
 * Layout and numbers: include/uapi/linux/{sched,userfaultfd,fs,nsfs,...}.h.
 */
import { openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { errnoName, EINVAL, ENOSYS, EPERM, ENOENT, EFAULT, ENOTTY } from './errno.js';
import { O_CLOEXEC, O_NONBLOCK } from './fcntl.js';
import { AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM } from './socket.js';
import { ioctlTry, pidfdOpen, pidfdGetfd, closeQuiet, kill } from './process.js';
import { ptraceSeize, ptraceInterrupt, ptraceGetRseqConfig, waitPid, __WALL, PTRACE_O } from './ptrace.js';
import { processVmReadTry, processVmWritev } from './memory.js';
import * as uffd from './uffd.js';

export interface ProbeResult {
  ok: boolean;
  reason?: string;
}

const yes: ProbeResult = { ok: true };
function no(reason: string): ProbeResult {
  return { ok: false, reason };
}
function errnoReason(what: string, negErrno: number): string {
  return `${what}: ${errnoName(-negErrno)}`;
}

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

/** userfaultfd + UFFDIO_API handshake; returns the kernel's feature bits (null when unavailable). */
export function uffdFeatures(): { features: bigint } | { error: string } {
  const fd = sysTry(NR.userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return { error: errnoReason('userfaultfd', fd) };
  try {
    const api = Buffer.alloc(24); // struct uffdio_api { api, features, ioctls }
    api.writeBigUInt64LE(0xaan, 0);
    const r = ioctlTry(fd, 0xc018aa3f, api); // UFFDIO_API
    if (r < 0) return { error: errnoReason('UFFDIO_API', r) };
    return { features: api.readBigUInt64LE(8) };
  } finally {
    closeQuiet(fd);
  }
}

/** PAGEMAP_SCAN (6.7+): a wrong struct size gives EINVAL when the ioctl exists, ENOTTY when not. */
export function probePagemapScan(): ProbeResult {
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const r = ioctlTry(fd, 0xc0606610, Buffer.alloc(96)); // _IOWR('f', 16, struct pm_scan_arg), size field 0
    if (r === -EINVAL) return yes;
    return no(errnoReason('PAGEMAP_SCAN', r));
  } finally {
    closeSync(fd);
  }
}

/** PAGEMAP_SCAN reports guard regions (MADV_GUARD_INSTALL): PAGE_IS_GUARD is a category it knows. */
export function probePagemapScanGuard(): ProbeResult {
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const arg = Buffer.alloc(96);
    arg.writeBigUInt64LE(96n, 0); // size
    arg.writeBigUInt64LE(0x10000n, 16); // start
    arg.writeBigUInt64LE(0x11000n, 24); // end (no vector: only walk_end comes back)
    arg.writeBigUInt64LE(BigInt(uffd.PAGE_IS_GUARD), 88); // return_mask
    const r = ioctlTry(fd, uffd.PAGEMAP_SCAN, arg);
    return r >= 0 ? yes : no(errnoReason('PAGEMAP_SCAN with PAGE_IS_GUARD', r));
  } finally {
    closeSync(fd);
  }
}

/**
 * Dirty tracking without soft-dirty, tried for real on a page of our own:
 * an async write-protect userfaultfd over a fresh mapping, a write, then
 * PAGEMAP_SCAN must report exactly that page as written (and re-protect it).
 */
export function probeUffdWpTracking(): ProbeResult {
  const PAGE = 4096;
  const len = 4 * PAGE;
  const fd = sysTry(NR.userfaultfd, O_CLOEXEC | O_NONBLOCK | uffd.UFFD_USER_MODE_ONLY);
  if (fd < 0) return no(errnoReason('userfaultfd', fd));
  let map = -1n;
  let pm = -1;
  try {
    const api = uffd.uffdioApi(uffd.UFFD_FEATURE_WP_ASYNC);
    let r = ioctlTry(fd, uffd.UFFDIO_API, api);
    if (r < 0) return no(errnoReason('UFFDIO_API(WP_ASYNC)', r));
    const m = sysTry(NR.mmap, 0, len, 3, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
    if (m < 0 && m > -4096) return no(errnoReason('mmap', m));
    map = BigInt(m);
    r = ioctlTry(fd, uffd.UFFDIO_REGISTER, uffd.uffdioRegister(map, BigInt(len), uffd.UFFDIO_REGISTER_MODE_WP));
    if (r < 0) return no(errnoReason('UFFDIO_REGISTER(WP)', r));
    r = ioctlTry(fd, uffd.UFFDIO_WRITEPROTECT, uffd.uffdioWriteprotect(map, BigInt(len), uffd.UFFDIO_WRITEPROTECT_MODE_WP));
    if (r < 0) return no(errnoReason('UFFDIO_WRITEPROTECT', r));
    processVmWritev(process.pid, Buffer.from([7]), 0, [{ addr: map + BigInt(2 * PAGE), len: 1 }]);
    pm = openSync('/proc/self/pagemap', 'r');
    const q = { flags: uffd.PM_SCAN_WP_MATCHING | uffd.PM_SCAN_CHECK_WPASYNC, mask: uffd.PAGE_IS_WRITTEN, anyOf: 0, report: uffd.PAGE_IS_WRITTEN };
    let written;
    try {
      written = uffd.pagemapScan(pm, map, map + BigInt(len), q);
    } catch (e) {
      return no((e as Error).message);
    }
    const again = uffd.pagemapScan(pm, map, map + BigInt(len), q);
    const w = written[0];
    if (written.length !== 1 || !w || w.start !== map + BigInt(2 * PAGE) || w.end !== map + BigInt(3 * PAGE) || again.length !== 0) {
      return no('PAGEMAP_SCAN did not report exactly the written page');
    }
    return yes;
  } finally {
    if (pm >= 0) closeSync(pm);
    if (map >= 0n) sysTry(NR.munmap, map, len);
    closeQuiet(fd);
  }
}

/** Soft-dirty: clear our own soft-dirty bits, write a page, and look for pagemap bit 55 on it. */
export function probeSoftDirty(): ProbeResult {
  try {
    writeFileSync('/proc/self/clear_refs', '4');
  } catch (e) {
    return no(`clear_refs: ${(e as Error).message}`);
  }
  const buf = Buffer.alloc(3 * 4096);
  buf.fill(1);
  const page = (addr(buf) + 4095n) / 4096n;
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const entry = Buffer.alloc(8);
    readSync(fd, entry, 0, 8, Number(page * 8n));
    buf.fill(2); // keep buf alive and written across the read
    if ((entry.readBigUInt64LE(0) >> 55n) & 1n) return yes;
    return no('pagemap has no soft-dirty bit (kernel built without CONFIG_MEM_SOFT_DIRTY)');
  } finally {
    closeSync(fd);
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
    const r = ioctlTry(fd, 0x89e0);
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

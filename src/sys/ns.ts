/**
 * Namespaces from our side: setns(2) on the calling thread. The uts and ipc
 * namespaces belong to a thread, not to the process, so criu-ts's main
 * thread can step into a task's namespace, do synchronous work there
 * (SysV IPC calls, /proc/sys reads and writes, /proc/sysvipc) and step back,
 * while libuv's worker threads never leave ours. Only synchronous calls may
 * run inside: an async one would run on a worker thread, in our namespace.
 */
import { closeSync, fstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import { sys } from './libc.js';
import { ioctlTry } from './process.js';
import { NR } from './nr.js';
import { CriuTsError } from '../errors.js';

export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWTIME = 0x80;
export const CLONE_NEWCGROUP = 0x02000000;

/** ioctl on a namespace fd: an fd of the user namespace that owns it (linux/nsfs.h). */
const NS_GET_USERNS = 0xb701;

/**
 * The namespace types that belong to a thread and can be entered by one
 * (setns without CLONE_FS trouble). A net namespace entered this way also
 * holds the sockets the thread opens there and the processes it spawns
 * (libuv forks from the calling thread).
 */
export type ThreadNsType = 'uts' | 'ipc' | 'net';

export const NSTYPE: Readonly<Record<ThreadNsType, number>> = { uts: CLONE_NEWUTS, ipc: CLONE_NEWIPC, net: CLONE_NEWNET };

/** NS_GET_NSTYPE: the CLONE_NEW* type of the namespace behind a namespace fd. */
const NS_GET_NSTYPE = 0xb703;

/**
 * The namespace type (CLONE_NEW*) of fd `fd`, or undefined when it is not a
 * namespace file (ENOTTY from any other file): a bind-mounted namespace
 * reads as its path in /proc/self/fd, so only the kernel can tell.
 */
export function namespaceTypeOf(fd: number): number | undefined {
  try {
    return sys('ioctl(NS_GET_NSTYPE)', NR.ioctl, undefined, fd, NS_GET_NSTYPE);
  } catch {
    return undefined;
  }
}

export function setns(fd: number, nstype: number): void {
  sys('setns', NR.setns, undefined, fd, nstype);
}

/**
 * Run `fn` on this thread inside task `pid`'s namespaces of the given
 * types, then come back to ours whatever happens. `fn` must be synchronous.
 */
export function inNamespacesOf<T>(pid: number, types: readonly ThreadNsType[], fn: () => T): T {
  return inNamespaceFiles(types.map((type) => ({ type, path: `/proc/${pid}/ns/${type}` })), fn);
}

/**
 * Run `fn` on this thread inside the namespaces named by files (a
 * /proc/PID/ns/TYPE link, a bind-mounted namespace such as
 * /run/netns/NAME, or /proc/self/fd/N of a namespace fd we hold), then
 * come back to ours whatever happens. `fn` must be synchronous.
 */
export function inNamespaceFiles<T>(targets: readonly { type: ThreadNsType; path: string }[], fn: () => T): T {
  const back: { fd: number; type: ThreadNsType }[] = [];
  try {
    for (const { type, path } of targets) {
      const ours = openSync(`/proc/thread-self/ns/${type}`, 'r');
      back.push({ fd: ours, type });
      const theirs = openSync(path, 'r');
      try {
        setns(theirs, NSTYPE[type]);
      } finally {
        closeSync(theirs);
      }
    }
    return fn();
  } finally {
    for (const { fd, type } of back.reverse()) {
      try {
        setns(fd, NSTYPE[type]);
      } catch (e) {
        throw new CriuTsError('EINTERNAL', `cannot return to criu-ts's own ${type} namespace: ${(e as Error).message}`, { type }, e);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/**
 * Run `fn` on this thread inside task `pid`'s net namespace when it is not
 * the one this thread is in (sock_diag answers for the caller's namespace
 * only), else just run it. `fn` must be synchronous.
 */
export function inNetNamespaceOf<T>(pid: number, fn: () => T): T {
  let theirs: string;
  try {
    theirs = readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return fn();
  }
  if (theirs === readlinkSync('/proc/thread-self/ns/net')) return fn();
  return inNamespacesOf(pid, ['net'], fn);
}

/** SIOCGSKNS: the net namespace a socket belongs to, as a namespace fd (linux/sockios.h). */
const SIOCGSKNS = 0x894c;

/** The inode number of the net namespace socket `sockFd` belongs to (SIOCGSKNS). */
export function netNamespaceInoOfSocket(sockFd: number): number {
  const ns = sys('ioctl(SIOCGSKNS)', NR.ioctl, undefined, sockFd, SIOCGSKNS);
  try {
    return fstatSync(ns).ino;
  } finally {
    closeSync(ns);
  }
}

/**
 * Run `fn` on this thread inside the net namespace socket `sockFd` belongs
 * to (SIOCGSKNS), when it is not the one this thread is in; else just run
 * it. The socket knows its namespace whoever holds it: a task of another
 * namespace, or our own copy of a file in flight. `fn` must be synchronous.
 */
export function inNetNamespaceOfSocket<T>(sockFd: number, fn: () => T): T {
  const ns = sys('ioctl(SIOCGSKNS)', NR.ioctl, undefined, sockFd, SIOCGSKNS);
  try {
    if (fstatSync(ns).ino === statSync('/proc/thread-self/ns/net').ino) return fn();
    return inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${ns}` }], fn);
  } finally {
    closeSync(ns);
  }
}

/**
 * The inode number of the user namespace that owns the namespace at `path`
 * (/proc/PID/ns/<type>), asked with NS_GET_USERNS; undefined when the
 * kernel lets us not see it (EPERM: the owner is above our own user
 * namespace, which for criu-ts in the initial one never happens).
 */
export function nsOwnerInode(path: string): number | undefined {
  const fd = openSync(path, 'r');
  try {
    const owner = ioctlTry(fd, NS_GET_USERNS);
    if (owner < 0) return undefined;
    try {
      return fstatSync(owner).ino;
    } finally {
      closeSync(owner);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Run `fn` on this thread with effective uid `euid` (and the fs uid that
 * follows it), then take back our own. Credentials belong to a thread in
 * the kernel (the raw syscall, unlike glibc's, changes only the caller), so
 * libuv's workers keep ours. For what the kernel grants by owner rather than
 * by capability: the sysctls of an ipc namespace are writable by the root
 * of the user namespace that owns it, not by the host's root. Our real and
 * saved uid stay 0, so the capabilities dropped meanwhile come back.
 */
export function asThreadEuid<T>(euid: number, fn: () => T): T {
  const before = sys('geteuid', NR.geteuid, undefined);
  sys('setresuid', NR.setresuid, undefined, -1, euid, -1);
  try {
    return fn();
  } finally {
    try {
      sys('setresuid', NR.setresuid, undefined, -1, before, -1);
    } catch (e) {
      throw new CriuTsError('EINTERNAL', `cannot take back criu-ts's own effective uid ${before}: ${(e as Error).message}`, { euid: before }, e);
    }
  }
}

/**
 * Handing one of criu-ts's fds to a task being restored: the same open
 * file description, whatever the task's namespaces (its mount namespace
 * may not even have the path we opened it by, as for the images).
 */
import { closeSync, openSync } from 'node:fs';
import { NR, AF_UNIX, SOCK_DGRAM, AT_FDCWD, O_CLOEXEC, O_NOFOLLOW, pidfdOpen, pidfdGetfd, closeQuiet, sendmsgRights } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import type { RestoreContext, RestoreTaskHandle, StateKey } from './types.js';

const CMSG_SPACE_ONE_FD = 24;

/** Runs `make(at)`, a call that fills an int[2] at `at` in task `t` (pipe2, socketpair): the two fds it made there. */
export function fdPairIn(t: RestoreTaskHandle, make: (at: bigint) => void): [number, number] {
  const at = t.putBytes(Buffer.alloc(8));
  make(at);
  const ends = t.tracee.readMem(at, 8);
  return [ends.readInt32LE(0), ends.readInt32LE(4)];
}

/** A unix socketpair of `type` made in task `t`: its two fds there. */
export function socketpairIn(t: RestoreTaskHandle, type: number): [number, number] {
  return fdPairIn(t, (at) => t.syscall('socketpair', NR.socketpair, AF_UNIX, type, 0, at));
}

/**
 * Put our fd `ours` into task `t` (the same open file description): through
 * a socketpair made in the task, we send it with SCM_RIGHTS and the task
 * receives it. Returns its number in the task.
 */
export function installFd(t: RestoreTaskHandle, ours: number): number {
  const [a, b] = socketpairIn(t, SOCK_DGRAM);
  try {
    const pidfd = pidfdOpen(t.pid);
    try {
      const mine = pidfdGetfd(pidfd, a, t.pid);
      try {
        sendmsgRights(mine, Buffer.from('f'), [ours], 0);
      } finally {
        closeQuiet(mine);
      }
    } finally {
      closeQuiet(pidfd);
    }
    // msghdr (56) | iovec (16) | 8 data bytes | control: one SCM_RIGHTS fd
    const base = t.putBytes(Buffer.alloc(56 + 16 + 8 + CMSG_SPACE_ONE_FD));
    const m = Buffer.alloc(56 + 16 + 8 + CMSG_SPACE_ONE_FD);
    m.writeBigUInt64LE(base + 56n, 16);
    m.writeBigUInt64LE(1n, 24);
    m.writeBigUInt64LE(base + 80n, 32);
    m.writeBigUInt64LE(BigInt(CMSG_SPACE_ONE_FD), 40);
    m.writeBigUInt64LE(base + 72n, 56);
    m.writeBigUInt64LE(8n, 64);
    t.tracee.writeMem(base, m);
    t.syscall('recvmsg', NR.recvmsg, b, base, 0);
    const cmsg = t.tracee.readMem(base + 80n, CMSG_SPACE_ONE_FD);
    if (cmsg.readInt32LE(12) !== 1 /* SCM_RIGHTS */) throw new CriuTsError('ERESTORE', `task ${t.pid}: no fd came through the transfer socket`, { pid: t.pid });
    return cmsg.readInt32LE(16);
  } finally {
    closePair(t, a, b);
  }
}

/** Close both ends of a pair made in the task (neighbours nearly always: the lowest free numbers). */
function closePair(t: RestoreTaskHandle, a: number, b: number): void {
  closeFdsIn(t, [a, b]);
}

/**
 * Close these fds of task `t`: one close_range per run of consecutive
 * numbers (fds a task was just given are the lowest free ones, so
 * mostly one call), a round trip each.
 */
export function closeFdsIn(t: RestoreTaskHandle, fds: Iterable<number>): void {
  const sorted = [...new Set(fds)].sort((x, y) => x - y);
  for (let i = 0; i < sorted.length;) {
    const lo = sorted[i] as number;
    let j = i + 1;
    while (j < sorted.length && sorted[j] === lo + (j - i)) j++;
    const hi = sorted[j - 1] as number;
    if (hi === lo) t.syscall('close', NR.close, lo);
    else t.syscall('close_range', NR.close_range, lo, hi, 0);
    i = j;
  }
}

/** /proc/PID/fd/N and /proc/PID/map_files/A-B: links the kernel resolves to the file itself. */
const MAGIC_LINK = /^\/proc\/\d+\/(fd|map_files)\/[^/]+$/;

/**
 * Open `path` in criu-ts (a /proc path of ours or of another task: an fd
 * we hold, a map_files entry) and hand the new open file description to
 * the task. A task in a pid or mount namespace of its own has another
 * /proc, or none, where such a path does not lead to the same file.
 */
export function openOursInTask(t: RestoreTaskHandle, path: string, flags: number): number {
  // A file first opened with O_NOFOLLOW (shm_open and sem_open add it) keeps the flag in its
  // f_flags; through a /proc magic link (an fd, a map_files entry) it would fail with ELOOP.
  if (MAGIC_LINK.test(path)) flags &= ~O_NOFOLLOW;
  let ours: number;
  try {
    ours = openSync(path, flags | O_CLOEXEC);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${t.pid}: cannot open ${path}: ${(e as Error).message}`, { pid: t.pid, path }, e);
  }
  try {
    return installFd(t, ours);
  } finally {
    closeSync(ours);
  }
}

/**
 * Open `path` in the task by name, unless it is one of our fds
 * (/proc/<us>/fd/N, a ghost): the task's /proc, its pid namespace's, may
 * not show us, so that one is opened here and handed over.
 */
export function openFileInTask(t: RestoreTaskHandle, path: string, flags: number): number {
  if (path.startsWith(`/proc/${process.pid}/fd/`)) return openOursInTask(t, path, flags | O_CLOEXEC);
  return Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), flags | O_CLOEXEC, 0));
}

/**
 * A map of fds criu-ts keeps open for this restore's files (by whatever key
 * the kind picks), one per state key: every fd in it is closed once every
 * file is restored, or the restore failed.
 */
export function heldFds(ctx: RestoreContext, key: StateKey<Map<number, number>>): Map<number, number> {
  return ctx.state(key, () => {
    const m = new Map<number, number>();
    ctx.afterAllFiles(() => {
      for (const fd of m.values()) closeQuiet(fd);
      m.clear();
    }, { alsoOnFailure: true });
    return m;
  });
}

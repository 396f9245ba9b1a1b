/**
 * The guardian's part for memory trackers (kinds/memory/tracking.ts): the
 * userfaultfds a killed dump or pre-dump made or scanned in a task are
 * closed, as the run's own failure path would have closed them, so that no
 * write protection outlives a run that stored nothing usable. Which ones:
 * those criu-ts named (T: same process, fd and inode), and every
 * userfaultfd that appeared in a task since criu-ts said it was about to
 * make one there (N: an injected call whose registers are set runs even if
 * criu-ts dies before it sees the result).
 */
import { statSync } from 'node:fs';
import { fdsLinkedTo, listThreads, parseStat } from '../proc/index.js';
import { NR } from '../sys/index.js';
import { Tracee } from './tracee.js';

/** A process's start time (with its pid, its identity: a recycled pid has another). */
export function startOf(pid: number): string {
  try {
    return parseStat(pid).starttime.toString();
  } catch {
    return '0';
  }
}

/** The same process as the one criu-ts named (not a new one with a recycled pid). */
export function same(pid: number, start: string): boolean {
  return startOf(pid) === start;
}

/** T pid start fd ino: a tracker criu-ts made or scanned */
export interface TrackerLine { pid: number; start: string; fd: number; ino: bigint }
/** N pid start ino,...: a tracker was about to be made; the task held userfaultfds of these inodes */
export interface MakingLine { start: string; before: Set<bigint> }

/** fd `fd` of `pid` is still the file with inode `ino` (the tracker we made, not a new file at its number). */
function fdIs(pid: number, fd: number, ino: bigint): boolean {
  try {
    return statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino === ino;
  } catch {
    return false;
  }
}

/** The userfaultfds of `pid` as fd → inode. */
function userfaultfds(pid: number): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const fd of fdsLinkedTo(pid, 'anon_inode:[userfaultfd]')) {
    try {
      out.set(fd, statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * The memory trackers the killed run made or scanned in `pid`, as fds:
 * those it named (T), and every userfaultfd that appeared since it started
 * making one (N; its injected call may have run after criu-ts died).
 */
function trackersToClose(pid: number, trackers: readonly TrackerLine[], making: ReadonlyMap<number, MakingLine>): { fd: number; ino: bigint }[] {
  const now = userfaultfds(pid);
  const out = new Map<number, bigint>();
  for (const x of trackers) if (x.pid === pid && same(pid, x.start) && now.get(x.fd) === x.ino) out.set(x.fd, x.ino);
  const mk = making.get(pid);
  if (mk && same(pid, mk.start)) for (const [fd, ino] of now) if (!mk.before.has(ino)) out.set(fd, ino);
  return [...out].map(([fd, ino]) => ({ fd, ino }));
}

/**
 * Close the memory trackers the killed run made or scanned, as its own
 * failure path would have (its record was never written, or the parent's
 * was consumed): their write protection must not outlive it. One thread
 * of the process closes each (the fd table is shared).
 */
export function closeTrackers(pid: number, trackers: readonly TrackerLine[], making: ReadonlyMap<number, MakingLine>): number {
  const mine = trackersToClose(pid, trackers, making);
  if (mine.length === 0) return 0;
  for (const tid of listThreads(pid)) {
    let t: Tracee;
    try {
      t = Tracee.seize(tid);
    } catch {
      continue; // exiting (a leader that is a zombie while its threads run)
    }
    let n = 0;
    try {
      for (const x of mine) if (fdIs(pid, x.fd, x.ino) && t.syscallRaw(NR.close, x.fd) === 0n) n++;
      t.cure();
    } finally {
      t.detachQuiet();
    }
    return n;
  }
  return 0;
}


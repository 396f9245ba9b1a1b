/**
 * The restore's waits on pids and tasks: a pid the dumped task still holds,
 * tasks reaching their stop, orphans going away, a task of ours killed on
 * failure, the restored root's end (restore -d without detach).
 */
import { logger } from '../log.js';
import { waitPid, __WALL, WNOHANG, pidExists, PF_EXITING, SIGKILL } from '../sys/index.js';
import { collectExit } from '../infect/tracee.js';
import { parseStat, parseStatus, type ProcStat, type ProcStatus } from '../proc/index.js';
import type { RestoreNode } from './plan.js';

const log = logger('restore');

/**
 * A pid still held by a zombie (the dumped task, killed, not yet reaped by
 * its parent or init) is given a few seconds to go; a live task keeps it.
 */
export async function pidFreed(pid: number): Promise<boolean> {
  const deadline = Date.now() + 5000;
  let said = false;
  while (pidExists(pid)) {
    let status: ProcStatus;
    let stat: ProcStat;
    try {
      status = parseStatus(pid);
      stat = parseStat(pid);
    } catch {
      // Gone between the two looks (or never a task we can see): look again, within the deadline.
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    if (!goingAway(status, stat) || Date.now() > deadline) return false;
    if (!said) log.info(`pid ${pid} is still held by the dumped task, dying or not yet reaped: waiting`);
    said = true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** A zombie, or a task a dump just killed: SIGKILL pending, or already exiting (PF_EXITING). */
function goingAway(status: ProcStatus, stat: ProcStat): boolean {
  if (status.state === 'Z' || status.state === 'X') return true;
  if ((stat.flags & PF_EXITING) !== 0) return true;
  const sigkill = 1n << BigInt(SIGKILL - 1);
  return ((status.sigPnd | status.shdPnd) & sigkill) !== 0n;
}

export async function untilStopped(pids: readonly number[]): Promise<void> {
  // Generous: on a loaded machine the stop can take a while to land.
  const deadline = Date.now() + 15_000;
  for (const pid of pids) {
    for (;;) {
      let state = '';
      try {
        state = parseStat(pid).state;
      } catch {
        break;
      }
      if (state === 'T' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

/** Wait (up to 5 s) until each pid is gone, reaping those that became our children. */
export async function reapOrphans(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 5000;
  for (const pid of pids) {
    while (pidExists(pid) && Date.now() < deadline) {
      try {
        if (waitPid(pid, __WALL | WNOHANG) !== null) continue;
      } catch {
        // not our child (yet): its parent is still on its way out
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** Kill a task we created and collect it, other threads before the leader. */
export function killQuiet(n: RestoreNode): void {
  if (n.real === 0) return;
  try {
    process.kill(n.real, 'SIGKILL');
  } catch {
    return;
  }
  for (const th of [...n.threads].reverse()) if (th.tid !== n.real) collectExit(th.tid);
  collectExit(n.real);
}

/** Wait for a restored root (our child through the subreaper); returns its status as a shell would. */
export function waitForRoot(pid: number): number {
  for (;;) {
    const st = waitPid(pid, __WALL);
    if (st === null) continue;
    if (st.exited) return st.exitCode;
    if (st.signaled) return 128 + st.termSig;
  }
}

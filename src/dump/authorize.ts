/**
 * May this caller dump these tasks? The kernel's answer for the caller
 * itself: PTRACE_MODE_ATTACH_REALCREDS (kernel/ptrace.c
 * __ptrace_may_access). The caller's real uid must equal the target's
 * real, effective and saved uid, its real gid the target's three gids, and
 * the target must be dumpable; or the caller holds CAP_SYS_PTRACE. criu-ts
 * runs with every capability, so it asks this on the caller's behalf for
 * every thread of every task: once before seizing anything (a refused tree
 * is never touched) and again once the tree is seized (a task may have
 * changed credentials, e.g. by exec of a set-id program, or been forked,
 * in between; seized tasks can no longer change them).
 *
 * Dumpability is read from the owner of /proc/PID/task/TID/status: the kernel
 * gives a task that is not dumpable (set-id exec, PR_SET_DUMPABLE 0) to
 * root (task_dump_owner), so a task owned by the caller in status but by
 * root in /proc is one the caller could not ptrace.
 *
 * Where Yama is there (/proc/sys/kernel/yama/ptrace_scope), its rule for
 * PTRACE_ATTACH is applied too (security/yama/yama_lsm.c): scope 1, the
 * caller may only trace its descendants (by real parent) unless it holds
 * CAP_SYS_PTRACE; scope 2, only with CAP_SYS_PTRACE; scope 3, nobody.
 *
 * Limits: a task's PR_SET_PTRACER exception (scope 1) is not visible in
 * /proc, so a caller that is not an ancestor is refused even if the task
 * named it; other LSM ptrace hooks are not applied; tasks in other user
 * namespaces are refused at dump anyway.
 */
import { statSync } from 'node:fs';
import type { CallerCreds } from '../caller.js';
import { CriuTsError } from '../errors.js';
import { parseStat, parseStatus, nsLinkOf, readNsLink, readSysctlInt, listThreads } from '../proc/index.js';

function refuse(pid: number, tid: number, caller: CallerCreds, why: string): never {
  const who = tid === pid ? `task ${pid}` : `thread ${tid} of task ${pid}`;
  throw new CriuTsError('EPERM', `${who}: uid ${caller.uid} may not dump it: ${why}`, { pid, tid, uid: caller.uid, errno: 1 });
}

function threadsOf(pid: number): number[] {
  try {
    return listThreads(pid);
  } catch {
    return []; // gone: nothing to dump there, the dump itself will say so
  }
}

/**
 * For an unprivileged caller: a task in a namespace other than criu-ts's
 * own is refused. criu-ts reads a namespace with root's rights (every SysV
 * object in it, whatever its mode), and re-creating one needs CAP_SYS_ADMIN.
 */
export function checkOwnNamespaces(pids: readonly number[], caller: CallerCreds | undefined): void {
  if (caller === undefined) return;
  for (const pid of pids) {
    for (const type of ['uts', 'ipc'] as const) {
      const theirs = nsLinkOf(pid, type);
      if (theirs === undefined) continue; // gone
      if (theirs !== readNsLink('self', type)) {
        throw new CriuTsError('EPERM', `task ${pid}: uid ${caller.uid} may not dump it: it is in a ${type} namespace of its own (${theirs})`, { pid, uid: caller.uid, errno: 1 });
      }
    }
  }
}

/** Yama's ptrace_scope, or undefined where Yama is not in the kernel. */
export function readYamaScope(): number | undefined {
  return readSysctlInt('kernel/yama/ptrace_scope');
}

/**
 * Yama's answer to a PTRACE_ATTACH (yama_ptrace_access_check): why it is
 * refused, or undefined. `isDescendant`: the target descends from the
 * caller by real parent.
 */
export function yamaRefusal(scope: number | undefined, capSysPtrace: boolean, isDescendant: boolean): string | undefined {
  if (scope === undefined || scope === 0) return undefined;
  if (scope === 1) return capSysPtrace || isDescendant ? undefined : 'Yama ptrace_scope is 1 and it is not a descendant of the caller';
  if (scope === 2) return capSysPtrace ? undefined : 'Yama ptrace_scope is 2 (only CAP_SYS_PTRACE may attach)';
  return `Yama ptrace_scope is ${scope} (no process may attach)`;
}

/** Whether task `pid` descends from process `ancestor` (real parents, as /proc shows them). */
export function isDescendantOf(pid: number, ancestor: number | undefined): boolean {
  if (ancestor === undefined) return false;
  let cur = pid;
  for (let hops = 0; hops < 4096 && cur > 1; hops++) {
    try {
      cur = parseStat(cur).ppid;
    } catch {
      return false; // gone: the dump will say so
    }
    if (cur === ancestor) return true;
  }
  return false;
}

/** Throws EPERM naming the first task the caller could not ptrace itself. */
export function checkTraceable(pids: readonly number[], caller: CallerCreds | undefined, yamaScope: number | undefined = readYamaScope()): void {
  if (caller === undefined) return;
  for (const pid of pids) {
    const why = yamaRefusal(yamaScope, caller.capSysPtrace, isDescendantOf(pid, caller.pid));
    if (why !== undefined) refuse(pid, pid, caller, why);
  }
  if (caller.capSysPtrace) return;
  for (const pid of pids) {
    for (const tid of threadsOf(pid)) {
      let st;
      let owner;
      try {
        st = parseStatus(pid, tid);
        owner = statSync(`/proc/${pid}/task/${tid}/status`);
      } catch {
        continue; // exited meanwhile
      }
      if (st.state.startsWith('Z')) continue; // a zombie has no credentials left to take
      const [ruid, euid, suid] = st.uid;
      const [rgid, egid, sgid] = st.gid;
      if (ruid !== caller.uid || euid !== caller.uid || suid !== caller.uid) {
        refuse(pid, tid, caller, `its uids are ${ruid}/${euid}/${suid}`);
      }
      if (rgid !== caller.gid || egid !== caller.gid || sgid !== caller.gid) {
        refuse(pid, tid, caller, `its gids are ${rgid}/${egid}/${sgid}`);
      }
      if (owner.uid !== caller.uid) refuse(pid, tid, caller, 'it is not dumpable (set-id program or PR_SET_DUMPABLE 0)');
    }
  }
}

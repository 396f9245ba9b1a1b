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
 * Limits: Yama's ptrace_scope (a caller may only trace its descendants
 * under scope 1) and LSM ptrace hooks are not applied; tasks in other user
 * namespaces are refused at dump anyway.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import type { CallerCreds } from '../caller.js';
import { CriuTsError } from '../errors.js';
import { parseStatus } from '../proc/index.js';

function refuse(pid: number, tid: number, caller: CallerCreds, why: string): never {
  const who = tid === pid ? `task ${pid}` : `thread ${tid} of task ${pid}`;
  throw new CriuTsError('EPERM', `${who}: uid ${caller.uid} may not dump it: ${why}`, { pid, tid, uid: caller.uid, errno: 1 });
}

function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((n) => Number.isInteger(n) && n > 0);
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
      let theirs: string;
      try {
        theirs = readlinkSync(`/proc/${pid}/ns/${type}`);
      } catch {
        continue; // gone
      }
      if (theirs !== readlinkSync(`/proc/self/ns/${type}`)) {
        throw new CriuTsError('EPERM', `task ${pid}: uid ${caller.uid} may not dump it: it is in a ${type} namespace of its own (${theirs})`, { pid, uid: caller.uid, errno: 1 });
      }
    }
  }
}

/** Throws EPERM naming the first task the caller could not ptrace itself. */
export function checkTraceable(pids: readonly number[], caller: CallerCreds | undefined): void {
  if (caller === undefined || caller.capSysPtrace) return;
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

/**
 * Small attributes of a task and its threads that only the kernel keeps:
 * the scheduling policy, real-time priority and nice value of each thread
 * (thread_core_entry sched_policy/sched_prio/sched_nice), the membarrier()
 * registrations of the address space (task_core_entry
 * membarrier_registration_mask) and the audit login uid (task_core_entry
 * loginuid).
 *
 * Scheduling is read and set from criu-ts with the thread's id (root may).
 * membarrier registrations are read inside the task with
 * MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3+); on older kernels each
 * private expedited command is issued once, which succeeds only when the
 * task registered for it (as CRIU does). The login uid can only be written
 * by the task itself (/proc/self/loginuid), so restore opens and writes it
 * with injected calls.
 *
 * The timer slack of each thread has no field in CRIU's image; criu-ts
 * writes it in a field of its own (thread_core_entry 1000, which CRIU skips)
 * when it is not the kernel's default.
 *
 * Permission for dynamic XSAVE features (AMX tile data, asked with
 * arch_prctl(ARCH_REQ_XCOMP_PERM)) also has no CRIU field: task_core_entry
 * 1000 of criu-ts's own carries it.
 *
 * The personality, the OOM score adjustment and the child-subreaper bit
 * complete the process's attributes (task_core_entry personality,
 * oom_score_adj, child_subreaper).
 *
 * Limits: SCHED_DEADLINE (runtime/deadline/period) is refused at dump.
 */
import { NR, PR, schedGetScheduler, schedGetPriority, schedSetScheduler, getNice, setNice, SCHED_DEADLINE, isSyscallError, EINVAL, EPERM, ENOSYS, O_WRONLY, O_CLOEXEC, AT_FDCWD, MEMBARRIER_CMD_GET_REGISTRATIONS, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM, xcompSupported } from '../../sys/index.js';
import type { TaskCoreEntry, ThreadCoreEntry } from '../../images/messages.js';
import { call, callRaw, type StepCall, type Steps } from '../steps.js';
import type { Tracee } from '../../infect/tracee.js';
import { RemoteSyscallError } from '../../infect/tracee.js';
import type { RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { readIdMap, readLoginuid, readOomScoreAdj, readPersonality, readTimerSlack, inOwnNs } from '../../proc/index.js';
import { inside } from '../ns/user-maps.js';
import { logger } from '../../log.js';
import { writeFileSync } from 'node:fs';
import type { TaskStateKind } from './types.js';

const log = logger('task');

/** Private expedited commands (plain, SYNC_CORE, RSEQ): their REGISTER command is the next bit up. */
const MEMBARRIER_PRIVATE_CMD_BITS = [3, 5, 7] as const;
const LOGINUID_UNSET = 0xffffffff;

/** Policy, priority and nice of one thread, for thread_core_entry. */
export function dumpThreadSched(pid: number, tid: number): Pick<ThreadCoreEntry, 'sched_policy' | 'sched_prio' | 'sched_nice'> {
  const policy = schedGetScheduler(tid);
  if ((policy & 0xff) === SCHED_DEADLINE) {
    throw new CriuTsError('EUNSUPPORTED', `task ${pid} thread ${tid}: SCHED_DEADLINE scheduling is not supported`, { pid, tid });
  }
  return { sched_policy: policy >>> 0, sched_prio: schedGetPriority(tid), sched_nice: getNice(tid) };
}

/** A thread's nice value, policy (with its reset-on-fork flag) and priority now. */
export function threadSchedNow(tid: number): { nice: number; policy: number; prio: number } {
  return { nice: getNice(tid), policy: schedGetScheduler(tid) >>> 0, prio: schedGetPriority(tid) };
}

/**
 * Put a thread's nice value, then its policy and priority, back where they
 * differ from what it has (`now`: known already, RestoreThreadView born).
 */
export function restoreThreadSched(tid: number, th: ThreadCoreEntry, now?: { nice: number; policy: number; prio: number }): void {
  if (th.sched_nice !== undefined && (now?.nice ?? getNice(tid)) !== th.sched_nice) setNice(tid, th.sched_nice);
  if (th.sched_policy === undefined) return;
  const prio = th.sched_prio ?? 0;
  if ((now?.policy ?? schedGetScheduler(tid) >>> 0) !== th.sched_policy || (now?.prio ?? schedGetPriority(tid)) !== prio) {
    try {
      schedSetScheduler(tid, th.sched_policy, prio);
    } catch (e) {
      const why = isSyscallError(e) ? e.message : String(e);
      throw new CriuTsError('ERESTORE', `thread ${tid}: cannot set scheduling policy ${th.sched_policy} priority ${prio}: ${why}`, { tid }, e);
    }
  }
}

/** The address space's membarrier() registrations, asked inside the task (a step procedure, kinds/steps.ts). */
export function* membarrierSteps(t: Tracee): Generator<StepCall, number, bigint> {
  const r = yield* callRaw('membarrier(GET_REGISTRATIONS)', NR.membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
  if (r >= 0n) return Number(r);
  if (r !== -BigInt(EINVAL)) throw new RemoteSyscallError('membarrier(GET_REGISTRATIONS)', Number(-r), t.tid);
  // Before Linux 6.3: a private expedited barrier succeeds only for a registered task.
  let mask = 0;
  for (const bit of MEMBARRIER_PRIVATE_CMD_BITS) {
    const e = yield* callRaw(`membarrier(${1 << bit})`, NR.membarrier, 1 << bit, 0, 0);
    if (e === 0n) mask |= 1 << (bit + 1);
    else if (e !== -BigInt(EPERM) && e !== -BigInt(EINVAL) && e !== -BigInt(ENOSYS)) {
      throw new RemoteSyscallError(`membarrier(${1 << bit})`, Number(-e), t.tid);
    }
  }
  return mask;
}

/** Register the restored address space again, one registration command per bit. */
export function restoreMembarrier(t: RestoreTaskHandle, mask: number | undefined): void {
  for (let bit = 0; bit < 32 && mask; bit++) {
    if ((mask >>> bit) & 1) t.syscall(`membarrier(${1 << bit})`, NR.membarrier, 1 << bit, 0, 0);
  }
}

/**
 * The login uid, written by the task itself: the kernel lets no other task
 * write /proc/PID/loginuid. Needs CAP_AUDIT_CONTROL, which the restored task
 * still has at this point (credentials come last).
 */
export function restoreLoginuid(t: RestoreTaskHandle, loginuid: number | undefined): void {
  if (loginuid === undefined || loginuidAsSeen(t) === loginuid) return;
  const fd = Number(t.syscall('open /proc/self/loginuid', NR.openat, AT_FDCWD, t.putString('/proc/self/loginuid'), O_WRONLY | O_CLOEXEC, 0));
  const text = Buffer.from(String(loginuid === LOGINUID_UNSET ? LOGINUID_UNSET : loginuid));
  try {
    const n = t.syscall('write loginuid', NR.write, fd, t.putBytes(text), text.length);
    if (Number(n) !== text.length) throw new CriuTsError('ERESTORE', `task ${t.pid}: short write of loginuid`, { pid: t.pid });
  } finally {
    t.syscall('close', NR.close, fd);
  }
}

/**
 * The task's login uid as the images hold it: as the task sees it. In a
 * user namespace of its own (where the kernel lets no task set it, and the
 * image holds it through the namespace's maps), the one we read is mapped
 * through the task's uid_map (shown relative to our namespace), not read
 * by the task: a chroot'ed task may have no /proc.
 */
function loginuidAsSeen(t: RestoreTaskHandle): number {
  const ours = readLoginuid(t.pid);
  const own = inOwnNs(t.pid, 'user') ?? true; // gone: the write below says so
  if (own || ours === LOGINUID_UNSET) return ours;
  // No mapping: the kernel shows the task -1 too.
  return inside(readIdMap(t.pid, 'uid_map'), ours) ?? LOGINUID_UNSET;
}

/** The kernel's default timer slack of a thread (50 us). */
export const DEFAULT_TIMER_SLACK_NS = 50_000n;

/**
 * Set inside the thread; without the field the thread had the default. A
 * step procedure (kinds/steps.ts). What the thread has now is read from
 * /proc/TID/timerslack_ns, asked inside it only when that cannot be read.
 */
export function* timerSlackSteps(tid: number, ns: bigint | undefined, known?: bigint): Steps {
  const want = ns ?? DEFAULT_TIMER_SLACK_NS;
  const now = known ?? readTimerSlack(tid) ?? BigInt.asUintN(64, yield* call('prctl(GET_TIMERSLACK)', NR.prctl, PR.GET_TIMERSLACK));
  if (now !== want) yield* call('prctl(SET_TIMERSLACK)', NR.prctl, PR.SET_TIMERSLACK, want);
}

/** XSAVE features a process must ask for before use (XFD-controlled): AMX tile data. */
const DYNAMIC_XFEATURES = 1n << 18n;

/**
 * Dynamic XSAVE features (AMX tile data) the process was given permission
 * for, asked inside it; undefined when none. Without the permission after
 * restore, its next AMX instruction would die with SIGILL.
 */
export function* xcompPermSteps(t: Tracee): Generator<StepCall, bigint | undefined, bigint> {
  // Permission is given only for features the kernel supports: where it
  // supports no dynamic one (no AMX: most CPUs), no task has any, and the
  // call (a side-by-side round of a tree's dump) is left out.
  if ((xcompSupported() & DYNAMIC_XFEATURES) === 0n) return undefined;
  const s = t.mapScratch();
  const r = yield* callRaw('arch_prctl(ARCH_GET_XCOMP_PERM)', NR.arch_prctl, ARCH_GET_XCOMP_PERM, s);
  if (r === -BigInt(EINVAL)) return undefined; // kernel without dynamic XSAVE features
  if (r < 0n) throw new RemoteSyscallError('arch_prctl(ARCH_GET_XCOMP_PERM)', Number(-r), t.tid);
  const perm = t.readMem(s, 8).readBigUInt64LE(0) & DYNAMIC_XFEATURES;
  return perm === 0n ? undefined : perm;
}

/** Ask for the same permissions again, one feature at a time (as the kernel takes them). */
export function restoreXcompPerm(t: RestoreTaskHandle, perm: bigint | undefined): void {
  for (let bit = 0n; perm !== undefined && bit < 64n; bit++) {
    if ((perm >> bit) & 1n) t.syscall(`arch_prctl(ARCH_REQ_XCOMP_PERM ${bit})`, NR.arch_prctl, ARCH_REQ_XCOMP_PERM, bit);
  }
}

/** Personality, login uid, OOM score adjustment, membarrier registrations, XSAVE permissions. */
/** The attrs kind's part of the task core: the personality always, the rest where the task has it. */
type AttrsFields = Pick<TaskCoreEntry, 'personality'> & Partial<Pick<TaskCoreEntry, 'loginuid' | 'oom_score_adj' | 'xcomp_perm' | 'membarrier_registration_mask'>>;

function* dumpAttrs(t: Tracee, pid: number): Generator<StepCall, AttrsFields, bigint> {
  const out: AttrsFields = {
    // /proc says what personality(0xffffffff) would answer, with no round trip; asked only when it cannot be read.
    personality: currentPersonality(pid) ?? Number(yield* call('personality', NR.personality, 0xffffffff)),
    loginuid: readLoginuid(pid),
    oom_score_adj: readOomScoreAdj(pid),
  };
  const xcomp = yield* xcompPermSteps(t);
  if (xcomp !== undefined) out.xcomp_perm = xcomp;
  const membarrier = yield* membarrierSteps(t);
  if (membarrier !== 0) out.membarrier_registration_mask = membarrier;
  return out;
}

/** The task's personality now, or undefined when /proc cannot say. */
function currentPersonality(pid: number): number | undefined {
  try {
    return readPersonality(pid);
  } catch {
    return undefined;
  }
}

function restoreAttrs(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  // Most tasks run with the personality they inherit (criu-ts's own): no call then.
  if (currentPersonality(t.pid) !== tc.personality) t.syscall('personality', NR.personality, tc.personality);
  if (tc.oom_score_adj !== undefined) {
    try {
      writeFileSync(`/proc/${t.pid}/oom_score_adj`, String(tc.oom_score_adj));
    } catch (e) {
      log.warn(`task ${t.pid}: oom_score_adj not restored: ${(e as Error).message}`);
    }
  }
  restoreLoginuid(t, tc.loginuid);
  restoreMembarrier(t, tc.membarrier_registration_mask);
  restoreXcompPerm(t, tc.xcomp_perm);
}

export const attrsKind: TaskStateKind<AttrsFields> = {
  name: 'attrs',
  dump: dumpAttrs,
  restore: { 'before-threads': restoreAttrs },
};

function* dumpSubreaper(t: Tracee): Generator<StepCall, Partial<TaskCoreEntry>, bigint> {
  const s = t.mapScratch();
  yield* call('prctl', NR.prctl, PR.GET_CHILD_SUBREAPER, s);
  return { child_subreaper: t.readMem(s, 4).readInt32LE(0) !== 0 };
}

/**
 * The child-subreaper bit, set once the restore's helpers have exited (a
 * subreaper would otherwise take the orphans a session helper leaves, which
 * must go back to their own reaper); the reapers of those orphans get it
 * before the helpers exit.
 */
function restoreChildSubreaper(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  if (tc.child_subreaper) t.syscall('prctl(SET_CHILD_SUBREAPER)', NR.prctl, PR.SET_CHILD_SUBREAPER, 1);
}

export const subreaperKind: TaskStateKind = {
  name: 'child-subreaper',
  dump: dumpSubreaper,
  restore: { 'before-helpers-exit': restoreChildSubreaper, final: restoreChildSubreaper },
};

/**
 * Putting back what dump/task-state.ts collected: signal actions, itimers,
 * rlimits, personality, name, robust list, tid address, rseq, sigaltstack,
 * FPU state, credentials. Each step is an injected syscall in the task.
 */
import { writeFileSync } from 'node:fs';
import {
  NR, PR, xstateLayout, SIGKILL, SIGSTOP, SIGTRAP,
} from '../sys/index.js';
import type { TaskCoreEntry, ThreadCoreEntry, UserX86FpregsEntry, ItimerEntry } from '../images/messages.js';
import type { RestoreTaskHandle } from '../kinds/index.js';
import { logger } from '../log.js';
import { parseLimits } from '../proc/index.js';
import { RemoteSyscallError, type Tracee } from '../infect/tracee.js';
import { cpuidThroughTracee } from '../infect/cpuid.js';
import { readXstate, writeXstate } from '../infect/ptrace-state.js';
import { fpregsToXsave } from '../kinds/xsave.js';
import { restoreLoginuid, restoreMembarrier, restoreThreadSched, timerSlackSteps, restoreXcompPerm } from '../kinds/task-attrs.js';
import { call, type StepHandle, type Steps } from '../kinds/steps.js';
import { CriuTsError } from '../errors.js';

const log = logger('task');

export function restoreSigactions(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const acts = tc.sigactions ?? [];
  let i = 0;
  for (let sig = 1; sig <= 64 && i < acts.length; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    const a = acts[i++];
    if (!a) continue;
    if (a.sigaction === 0n && a.flags === 0n && a.mask === 0n) continue; // SIG_DFL with nothing set: already so
    const b = Buffer.alloc(32);
    b.writeBigUInt64LE(a.sigaction, 0);
    b.writeBigUInt64LE(a.flags, 8);
    b.writeBigUInt64LE(a.restorer, 16);
    b.writeBigUInt64LE(a.mask, 24);
    t.syscall(`rt_sigaction(${sig})`, NR.rt_sigaction, sig, t.putBytes(b), 0, 8);
  }
}

function itimerBuf(e: ItimerEntry): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(e.isec, 0);
  b.writeBigInt64LE(e.iusec, 8);
  b.writeBigInt64LE(e.vsec, 16);
  b.writeBigInt64LE(e.vusec, 24);
  return b;
}

export function restoreItimers(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const timers = tc.timers;
  if (!timers) return;
  const list: [number, ItimerEntry][] = [[0, timers.real], [1, timers.virt], [2, timers.prof]];
  for (const [which, dumped] of list) {
    let e = dumped;
    if (e.vsec === 0n && e.vusec === 0n) {
      if (e.isec === 0n && e.iusec === 0n) continue;
      // A periodic ITIMER_REAL whose SIGALRM is pending (blocked, or the
      // task held by us) is re-armed only when the signal is dequeued, so
      // it reads as value 0 with its interval: setitimer with value 0
      // would disarm it. It is armed to fire at once instead, which gives
      // the same pending SIGALRM and then runs on with its interval.
      e = { ...e, vusec: 1n };
    }
    t.syscall('setitimer', NR.setitimer, which, t.putBytes(itimerBuf(e)), 0);
  }
}

export function restoreRlimits(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const rl = tc.rlimits?.rlimits ?? [];
  // Only the limits that differ from what the task has now (inherited from us) need a call.
  const cur = parseLimits(t.pid);
  rl.forEach((r, res) => {
    const now = cur[res];
    if (now && now.soft === r.cur && now.hard === r.max) return;
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(r.cur, 0);
    b.writeBigUInt64LE(r.max, 8);
    try {
      t.syscall(`prlimit64(${res})`, NR.prlimit64, 0, res, t.putBytes(b), 0);
    } catch (e) {
      // Raising a hard limit needs CAP_SYS_RESOURCE, which this host's root may lack.
      if (e instanceof RemoteSyscallError && e.errno === 1) log.warn(`task ${t.pid}: cannot set rlimit ${res} to ${r.cur}/${r.max}: EPERM`);
      else throw e;
    }
  });
}

/**
 * The child-subreaper bit, set once the helpers have exited (a subreaper
 * would otherwise take the orphans a session helper leaves, which must go
 * back to their own reaper), except in the reapers of those orphans.
 */
export function restoreChildSubreaper(t: RestoreTaskHandle, tc: TaskCoreEntry | undefined): void {
  if (tc?.child_subreaper) t.syscall('prctl(SET_CHILD_SUBREAPER)', NR.prctl, PR.SET_CHILD_SUBREAPER, 1);
}

export function restoreTaskMisc(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  t.syscall('personality', NR.personality, tc.personality);
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

/** Per-thread state that must be set from inside that thread. */
/** A thread's own state (robust list, tid address, name, sigaltstack, rseq, scheduling, timer slack) as a step procedure (kinds/steps.ts). */
export function* threadStateSteps(t: StepHandle, th: ThreadCoreEntry, clearTid: bigint, comm: string | undefined): Steps {
  if (th.futex_rla !== 0n) yield* call('set_robust_list', NR.set_robust_list, th.futex_rla, th.futex_rla_len);
  yield* call('set_tid_address', NR.set_tid_address, clearTid);
  const name = th.comm ?? comm;
  if (name !== undefined) yield* call('prctl(SET_NAME)', NR.prctl, PR.SET_NAME, t.putString(name.slice(0, 15)));
  if (th.sas && (th.sas.ss_flags & 2) === 0 && th.sas.ss_size !== 0n) {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(th.sas.ss_sp, 0);
    b.writeInt32LE(th.sas.ss_flags & ~1, 8); // SS_ONSTACK is a state, not a flag one can set
    b.writeBigUInt64LE(th.sas.ss_size, 16);
    yield* call('sigaltstack', NR.sigaltstack, t.putBytes(b), 0);
  }
  if (th.rseq_entry && th.rseq_entry.rseq_abi_pointer !== 0n) {
    const r = th.rseq_entry;
    yield* call('rseq', NR.rseq, r.rseq_abi_pointer, r.rseq_abi_size, 0, r.signature);
  }
  restoreThreadSched(t.tid, th);
  yield* timerSlackSteps(th.timer_slack_ns);
}

/** FPU/SSE/AVX/AVX-512: the kernel's own XSAVE buffer (this CPU's layout) as a template, filled from the image. */
export function restoreFpu(t: Tracee, fp: UserX86FpregsEntry): void {
  const template = readXstate(t.tid, 16384);
  const layout = xstateLayout(() => cpuidThroughTracee(t));
  writeXstate(t.tid, fpregsToXsave(template, fp, layout, `thread ${t.tid}`));
}

/**
 * Queue the dumped pending signals again, with their siginfo. The caller
 * blocks every signal first, so none is delivered while we still drive the
 * task; the final mask is set just before it runs.
 */
export function restorePendingSignals(t: RestoreTaskHandle, tgid: number, tid: number, shared: Buffer[], priv: Buffer[]): void {
  // Our later single-steps would take a queued SIGTRAP (see HELD_SIGMASK);
  // dumps refuse it, so only a foreign image can hold one.
  if ([...shared, ...priv].some((si) => si.readInt32LE(0) === SIGTRAP)) {
    throw new CriuTsError('EUNSUPPORTED', `task ${tid}: the image holds a pending SIGTRAP, which cannot be restored`, { pid: tid, signal: SIGTRAP });
  }
  for (const si of shared) {
    const sig = si.readInt32LE(0);
    t.syscall(`rt_sigqueueinfo(${sig})`, NR.rt_sigqueueinfo, tgid, sig, t.putBytes(si));
  }
  for (const si of priv) {
    const sig = si.readInt32LE(0);
    t.syscall(`rt_tgsigqueueinfo(${sig})`, NR.rt_tgsigqueueinfo, tgid, tid, sig, t.putBytes(si));
  }
}

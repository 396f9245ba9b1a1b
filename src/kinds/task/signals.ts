/**
 * Pending signals with their siginfo: the process's shared queue
 * (task_core_entry signals_s) and each thread's own (thread_core_entry
 * signals_p), peeked with PTRACE_PEEKSIGINFO at dump and queued again from
 * inside the task with rt_sigqueueinfo / rt_tgsigqueueinfo at restore.
 *
 * They go back last ('final'): helpers and zombies have exited by then, and
 * the SIGCHLDs their deaths queued were taken away again (a dumped SIGCHLD
 * queued earlier would have gone with them).
 *
 * Limits: a pending SIGTRAP is refused (ptrace drives tasks with SIGTRAP:
 * our single-steps would take it; CRIU refuses it as well).
 */
import { NR, SIGRTMIN, SIGTRAP } from '../../sys/index.js';
import { peekSignals } from '../../infect/ptrace-state.js';
import type { Tracee } from '../../infect/tracee.js';
import type { ProcStatus } from '../../proc/index.js';
import type { SiginfoEntry, TaskCoreEntry, ThreadCoreEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import type { RestoreTaskHandle } from '../types.js';
import { call, type StepCall, type StepHandle, type Steps } from '../steps.js';
import type { DumpThreadView, RestoreThreadView, TaskStateKind, ThreadKind } from './types.js';

function siginfos(list: readonly Buffer[]): SiginfoEntry[] {
  return list.map((b) => ({ siginfo: b }));
}

/** A pending SIGTRAP cannot be dumped: it could not be told from ours, nor left queued. */
function refusePendingTrap(tid: number, pend: readonly Buffer[]): void {
  if (pend.some((si) => si.readInt32LE(0) === SIGTRAP)) {
    throw new CriuTsError('EUNSUPPORTED', `task ${tid}: a SIGTRAP is pending; it cannot be dumped (ptrace drives the task with SIGTRAP)`, { pid: tid, signal: SIGTRAP });
  }
}

/** Only a foreign image can hold a SIGTRAP (dumps refuse it); our later single-steps would take it. */
function refuseImageTrap(tid: number, list: readonly Buffer[]): void {
  if (list.some((si) => si.readInt32LE(0) === SIGTRAP)) {
    throw new CriuTsError('EUNSUPPORTED', `task ${tid}: the image holds a pending SIGTRAP, which cannot be restored`, { pid: tid, signal: SIGTRAP });
  }
}

/**
 * Read with ptrace: a step procedure with no injected call. Not peeked
 * when /proc says the queue is empty (ShdPnd, SigPnd: a signal's bit is
 * set as long as one of its siginfos is queued): one ptrace call less per
 * process and per thread.
 */
function* dumpShared(t: Tracee, _pid: number, st: ProcStatus): Generator<StepCall, Partial<TaskCoreEntry>, bigint> {
  const shared = st.shdPnd === 0n ? [] : peekSignals(t.tid, true);
  refusePendingTrap(t.tid, shared);
  return { signals_s: shared.length > 0 ? { signals: siginfos(shared) } : {} };
}

/** The process's shared queue, from its main thread (ids as the task sees them). */
function restoreShared(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const shared = (tc.signals_s?.signals ?? []).map((x) => x.siginfo);
  refuseImageTrap(t.vpid, shared);
  for (const si of shared) {
    const sig = si.readInt32LE(0);
    t.syscall(`rt_sigqueueinfo(${sig})`, NR.rt_sigqueueinfo, t.ownPid, sig, t.putBytes(si));
  }
}

/**
 * A queue holds one instance of a standard signal (below SIGRTMIN) at most:
 * the kernel drops a second one queued while the first waits. Our stops can
 * take two (an itimer's SIGALRM every 50 ms, taken by two injected calls'
 * signal-delivery-stops); both cannot be pending again, and a restore that
 * queued both would end with one. So the first stays, as the kernel would
 * have kept it had the thread been blocked rather than stopped by us.
 */
function oncePerStandardSignal(list: readonly Buffer[]): Buffer[] {
  const seen = new Set<number>();
  return list.filter((si) => {
    const sig = si.readInt32LE(0);
    if (sig >= SIGRTMIN) return true;
    if (seen.has(sig)) return false;
    seen.add(sig);
    return true;
  });
}

/** One thread's own queue (what our stops stashed first), peeked with ptrace. */
function dumpPrivate(th: DumpThreadView): Pick<ThreadCoreEntry, 'signals_p'> {
  const pend = oncePerStandardSignal([...th.tracee.stashedSignals, ...(th.status.sigPnd === 0n ? [] : peekSignals(th.tracee.tid, false))]);
  refusePendingTrap(th.tracee.tid, pend);
  return { signals_p: pend.length > 0 ? { signals: siginfos(pend) } : {} };
}

/** One thread's own queue, queued from inside that thread (a thread may queue only to itself with a siginfo of its choosing). */
function* restorePrivate(sh: StepHandle, th: RestoreThreadView): Steps {
  const priv = (th.core.thread_core?.signals_p?.signals ?? []).map((x) => x.siginfo);
  refuseImageTrap(th.vtid, priv);
  for (const si of priv) {
    const sig = si.readInt32LE(0);
    yield* call(`rt_tgsigqueueinfo(${sig})`, NR.rt_tgsigqueueinfo, th.vpid, th.vtid, sig, sh.putBytes(si));
  }
}

/** The shared queue per task, each thread's own per thread: one kind with two scopes. */
export const signalsKind: TaskStateKind = {
  name: 'pending-signals',
  dump: dumpShared,
  restore: { final: restoreShared },
};

export const threadSignalsKind: ThreadKind<Pick<ThreadCoreEntry, 'signals_p'>> = {
  name: 'pending-signals',
  dump: dumpPrivate,
  // One siginfo (128 bytes) per call.
  restore: { final: { steps: restorePrivate, putBytes: () => 128 } },
};

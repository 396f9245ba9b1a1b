/**
 * Per-process and per-thread state that only the task itself can tell:
 * collected with syscalls injected through the Tracee (sigactions, itimers,
 * POSIX timers, sigaltstack, robust list, tid address, securebits...) and
 * from /proc. Produces CRIU's task_core_entry / thread_core_entry parts.
 */
import {
  NR, PR, getRobustList, SIGKILL, SIGSTOP, SIGCHLD, SIGTRAP, SIG_MAX,
} from '../sys/index.js';
import { parseStat, parseLimits, parseTimers, readComm, readLoginuid, readOomScoreAdj, readTimerSlack } from '../proc/index.js';
import type { ProcStatus } from '../proc/index.js';
import { RemoteSyscallError, type Tracee } from '../infect/tracee.js';
import { syscallEach } from '../infect/side-by-side.js';
import { peekSignals, rseqConfig } from '../infect/ptrace-state.js';
import { dumpCreds } from '../kinds/creds.js';
import { DEFAULT_TIMER_SLACK_NS, membarrierSteps, dumpThreadSched, xcompPermSteps } from '../kinds/task-attrs.js';
import { call, runOn, type StepCall } from '../kinds/steps.js';
import { CriuTsError } from '../errors.js';
import type {
  SaEntry, TaskTimersEntry, ItimerEntry, PosixTimerEntry, ThreadCoreEntry, TaskCoreEntry, SiginfoEntry,
} from '../images/messages.js';


/** Scratch layout for injected calls: one output area, reused. */
const OUT = 0;

/**
 * Signal actions. Only signals the task catches or ignores (SigCgt/SigIgn
 * in /proc) and SIGCHLD (whose flags matter even at SIG_DFL) are asked for
 * with injected calls; every other one is SIG_DFL with nothing set.
 */
function* sigactionSteps(t: Tracee, st: ProcStatus): Generator<StepCall, SaEntry[], bigint> {
  const interesting = st.sigCgt | st.sigIgn | (1n << BigInt(SIGCHLD - 1));
  // Every answer goes to its own slot in scratch; one read collects them all.
  const s = t.mapScratch();
  const slot = (sig: number): number => OUT + sig * 32;
  const asked = (sig: number): boolean => ((interesting >> BigInt(sig - 1)) & 1n) === 1n;
  for (let sig = 1; sig <= SIG_MAX; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP || !asked(sig)) continue;
    yield* call('rt_sigaction', NR.rt_sigaction, sig, 0, s + BigInt(slot(sig)), 8);
  }
  const all = t.readMem(s, slot(SIG_MAX + 1));
  const out: SaEntry[] = [];
  for (let sig = 1; sig <= SIG_MAX; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    if (!asked(sig)) {
      out.push({ sigaction: 0n, flags: 0n, restorer: 0n, mask: 0n, compat_sigaction: false });
      continue;
    }
    const o = slot(sig);
    out.push({
      sigaction: all.readBigUInt64LE(o),
      flags: all.readBigUInt64LE(o + 8),
      restorer: all.readBigUInt64LE(o + 16),
      mask: all.readBigUInt64LE(o + 24),
      compat_sigaction: false,
    });
  }
  return out;
}

function* itimer(t: Tracee, which: number): Generator<StepCall, ItimerEntry, bigint> {
  const s = t.mapScratch();
  yield* call('getitimer', NR.getitimer, which, s);
  const b = t.readMem(s, 32);
  return { isec: b.readBigInt64LE(0), iusec: b.readBigInt64LE(8), vsec: b.readBigInt64LE(16), vusec: b.readBigInt64LE(24) };
}

const SIGEV_NAME_TO_NUM: Readonly<Record<string, number>> = { signal: 0, none: 1, thread: 2 };

function* timerSteps(t: Tracee, pid: number): Generator<StepCall, TaskTimersEntry, bigint> {
  const timers: TaskTimersEntry = { real: yield* itimer(t, 0), virt: yield* itimer(t, 1), prof: yield* itimer(t, 2) };
  const posix: PosixTimerEntry[] = [];
  const s = t.mapScratch();
  for (const pt of parseTimers(pid)) {
    yield* call('timer_gettime', NR.timer_gettime, pt.id, s);
    const b = t.readMem(s, 32);
    const overrun = Number(yield* call('timer_getoverrun', NR.timer_getoverrun, pt.id));
    const notify = (SIGEV_NAME_TO_NUM[pt.notifyHow] ?? 0) | (pt.notifyThreadId ? 4 : 0);
    const e: PosixTimerEntry = {
      it_id: pt.id,
      clock_id: pt.clockId,
      si_signo: pt.signal,
      it_sigev_notify: notify,
      sival_ptr: pt.sigevValue,
      overrun,
      isec: b.readBigInt64LE(0),
      insec: b.readBigInt64LE(8),
      vsec: b.readBigInt64LE(16),
      vnsec: b.readBigInt64LE(24),
    };
    if (pt.notifyThreadId) e.notify_thread_id = pt.notifyTid;
    posix.push(e);
  }
  if (posix.length > 0) timers.posix = posix;
  return timers;
}

function siginfos(list: Buffer[]): SiginfoEntry[] {
  return list.map((b) => ({ siginfo: b }));
}

/** What each thread is asked with injected calls (askThreads). */
export interface ThreadAnswers {
  tidAddress: bigint;
  sas: { ss_sp: bigint; ss_size: bigint; ss_flags: number };
  pdeathSig: number;
  secbits: number;
  /** undefined when it is the kernel's default */
  timerSlack: bigint | undefined;
}

/** Answer bytes per thread in the scratch argument area: tid address 0-7, stack_t 8-31, pdeath signal 32-35. */
const ANSWER_SLOT = 64;

/**
 * The questions only a thread can answer (tid address, sigaltstack,
 * parent-death signal, securebits, timer slack), asked of the threads of
 * one process side by side; see askAllThreads.
 */
export function askThreads(threads: readonly Tracee[], scratch: bigint, argsBytes: number): ThreadAnswers[] {
  const m = askAllThreads([{ threads, scratch, argsBytes }]);
  return threads.map((t) => m.get(t) as ThreadAnswers);
}

/**
 * askThreads for every thread of several processes at once (each with its
 * own scratch area), side by side (infect/side-by-side.ts): four round
 * trips per thread still (the timer slack comes from /proc), but
 * overlapping instead of one after another.
 * Answers written to memory go to the thread's own slot in its process's
 * scratch argument area.
 */
export function askAllThreads(procs: readonly { threads: readonly Tracee[]; scratch: bigint; argsBytes: number }[]): Map<Tracee, ThreadAnswers> {
  const out = new Map<Tracee, ThreadAnswers>();
  const rounds = Math.max(0, ...procs.map((p) => Math.ceil(p.threads.length / Math.floor(p.argsBytes / ANSWER_SLOT))));
  for (let k = 0; k < rounds; k++) {
    // Round k: the k-th slice of each process's threads, one slot each.
    const batch: { t: Tracee; slot: bigint }[] = [];
    for (const p of procs) {
      const per = Math.floor(p.argsBytes / ANSWER_SLOT);
      p.threads.slice(k * per, (k + 1) * per).forEach((t, j) => batch.push({ t, slot: p.scratch + BigInt(j * ANSWER_SLOT) }));
    }
    const ask = (of: typeof batch, name: string, nr: number, args: (slot: bigint) => (number | bigint)[]): bigint[] => {
      const r = syscallEach(of.map((b) => ({ t: b.t, nr, args: args(b.slot) })));
      r.forEach((v, i) => {
        if (v < 0n && v > -4096n) throw new RemoteSyscallError(name, Number(-v), (of[i] as { t: Tracee }).t.tid);
      });
      return r;
    };
    ask(batch, 'prctl(GET_TID_ADDRESS)', NR.prctl, (slot) => [PR.GET_TID_ADDRESS, slot]);
    ask(batch, 'sigaltstack', NR.sigaltstack, (slot) => [0, slot + 8n]);
    ask(batch, 'prctl(GET_PDEATHSIG)', NR.prctl, (slot) => [PR.GET_PDEATHSIG, slot + 32n]);
    const secbits = ask(batch, 'prctl(GET_SECUREBITS)', NR.prctl, () => [PR.GET_SECUREBITS]);
    // The timer slack is in /proc; only a thread whose file cannot be read is asked.
    const slack = batch.map((b) => readTimerSlack(b.t.tid));
    const unread = batch.filter((_, i) => slack[i] === undefined);
    const asked = unread.length > 0 ? ask(unread, 'prctl(GET_TIMERSLACK)', NR.prctl, () => [PR.GET_TIMERSLACK]) : [];
    let u = 0;
    batch.forEach((b, i) => {
      const mem = b.t.readMem(b.slot, 36);
      const ns = slack[i] ?? BigInt.asUintN(64, asked[u++] as bigint);
      out.set(b.t, {
        tidAddress: mem.readBigUInt64LE(0),
        sas: { ss_sp: mem.readBigUInt64LE(8), ss_size: mem.readBigUInt64LE(24), ss_flags: mem.readInt32LE(16) },
        pdeathSig: mem.readInt32LE(32),
        secbits: Number(secbits[i]),
        timerSlack: ns === DEFAULT_TIMER_SLACK_NS ? undefined : ns,
      });
    });
  }
  return out;
}

/** thread_core_entry for one thread (main thread included); `asked`: its askThreads answers. */
export function dumpThreadCore(t: Tracee, pid: number, status: ProcStatus, asked: ThreadAnswers): ThreadCoreEntry {
  const tid = t.tid;
  const rl = getRobustList(tid);
  const tc: ThreadCoreEntry = {
    futex_rla: rl.head,
    futex_rla_len: rl.len,
    ...dumpThreadSched(pid, tid),
    blk_sigset: t.origSigmask,
    sas: asked.sas,
    signals_p: {},
    creds: dumpCreds(status, asked.secbits),
    comm: readComm(pid, tid),
  };
  if (asked.pdeathSig !== 0) tc.pdeath_sig = asked.pdeathSig;
  if (asked.timerSlack !== undefined) tc.timer_slack_ns = asked.timerSlack;
  const pend = [...t.stashedSignals, ...peekSignals(tid, false)];
  refusePendingTrap(tid, pend);
  if (pend.length > 0) tc.signals_p = { signals: siginfos(pend) };
  try {
    const rs = rseqConfig(tid);
    if (rs.rseqAbiPointer !== 0n) {
      tc.rseq_entry = { rseq_abi_pointer: rs.rseqAbiPointer, rseq_abi_size: rs.rseqAbiSize, signature: rs.signature };
    }
  } catch {
    // Kernels without PTRACE_GET_RSEQ_CONFIGURATION: nothing registered that we can see.
  }
  return tc;
}

/**
 * A pending SIGTRAP cannot be dumped: our single-steps would take it (ptrace
 * drives tasks with SIGTRAP), so it cannot be told from ours or left
 * queued. CRIU refuses such a task as well.
 */
function refusePendingTrap(tid: number, pend: Buffer[]): void {
  if (pend.some((si) => si.readInt32LE(0) === SIGTRAP)) {
    throw new CriuTsError('EUNSUPPORTED', `task ${tid}: a SIGTRAP is pending; it cannot be dumped (ptrace drives the task with SIGTRAP)`, { pid: tid, signal: SIGTRAP });
  }
}

export function dumpTaskCore(t: Tracee, pid: number, status: ProcStatus): TaskCoreEntry {
  return runOn(t, taskCoreSteps(t, pid, status));
}

/** dumpTaskCore as a step procedure (kinds/steps.ts): the dump asks every process of the tree side by side. */
export function* taskCoreSteps(t: Tracee, pid: number, status: ProcStatus): Generator<StepCall, TaskCoreEntry, bigint> {
  const stat = parseStat(pid);
  const s = t.mapScratch();
  const personality = Number(yield* call('personality', NR.personality, 0xffffffff));
  yield* call('prctl', NR.prctl, PR.GET_CHILD_SUBREAPER, s);
  const subreaper = t.readMem(s, 4).readInt32LE(0) !== 0;
  const shared = peekSignals(t.tid, true);
  refusePendingTrap(t.tid, shared);
  const rl = parseLimits(pid);
  const tc: TaskCoreEntry = {
    task_state: 1, // alive
    exit_code: 0,
    personality,
    flags: stat.flags,
    blk_sigset: t.origSigmask,
    comm: readComm(pid),
    timers: yield* timerSteps(t, pid),
    rlimits: { rlimits: rl.map((r) => ({ cur: r.soft, max: r.hard })) },
    signals_s: shared.length > 0 ? { signals: siginfos(shared) } : {},
    loginuid: readLoginuid(pid),
    oom_score_adj: readOomScoreAdj(pid),
    sigactions: yield* sigactionSteps(t, status),
    child_subreaper: subreaper,
  };
  const xcomp = yield* xcompPermSteps(t);
  if (xcomp !== undefined) tc.xcomp_perm = xcomp;
  const membarrier = yield* membarrierSteps(t);
  if (membarrier !== 0) tc.membarrier_registration_mask = membarrier;
  return tc;
}

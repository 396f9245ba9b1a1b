/**
 * A thread's own state (thread_core_entry): robust list, tid address,
 * sigaltstack, parent-death signal, securebits and credentials, timer
 * slack, scheduling, name, rseq, pending signals and the FPU/SSE/AVX state.
 * What only the thread can tell is asked with calls injected in it, the
 * threads of every process side by side (infect/side-by-side.ts); the rest
 * comes from /proc and ptrace. Restore sets it from inside each thread.
 *
 * Credentials and seccomp filters are kept in creds.ts and seccomp.ts: the
 * core sets them last, after every other kind.
 *
 * Limits: a pending SIGTRAP is refused (signals.ts); SCHED_DEADLINE is
 * refused (attrs.ts).
 */
import { NR, PR, getRobustList, xstateLayout, RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL } from '../../sys/index.js';
import { readComm, readTimerSlack } from '../../proc/index.js';
import type { ProcStatus } from '../../proc/index.js';
import { RemoteSyscallError, type Tracee } from '../../infect/tracee.js';
import { syscallEach } from '../../infect/side-by-side.js';
import { peekSignals, rseqConfig, readXstateView, writeXstate } from '../../infect/ptrace-state.js';
import { cpuidThroughTracee } from '../../infect/cpuid.js';
import type { ThreadCoreEntry, UserX86FpregsEntry } from '../../images/messages.js';
import { fpregsToXsave } from '../xsave.js';
import { call, type StepHandle, type Steps } from '../steps.js';
import { dumpCreds } from './creds.js';
import { DEFAULT_TIMER_SLACK_NS, dumpThreadSched, restoreThreadSched, timerSlackSteps } from './attrs.js';
import { refusePendingTrap, siginfos } from './signals.js';

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
      // A section that is not restarted keeps its rseq_cs, which our calls in
      // the restored thread clear: kept to be written back last (as CRIU does).
      const at = t.rseqAtStop;
      if (at && at.cs !== 0n && (at.flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) !== 0) tc.rseq_entry.rseq_cs_pointer = at.cs;
    }
  } catch {
    // Kernels without PTRACE_GET_RSEQ_CONFIGURATION: nothing registered that we can see.
  }
  return tc;
}

/**
 * A thread's own state (robust list, tid address, name, sigaltstack, rseq,
 * scheduling, timer slack) as a step procedure (kinds/steps.ts). `named`:
 * the name the thread has already (inherited from its process's main thread).
 */
export function* threadStateSteps(t: StepHandle, th: ThreadCoreEntry, clearTid: bigint, comm: string | undefined, named?: string): Steps {
  if (th.futex_rla !== 0n) yield* call('set_robust_list', NR.set_robust_list, th.futex_rla, th.futex_rla_len);
  yield* call('set_tid_address', NR.set_tid_address, clearTid);
  const name = (th.comm ?? comm)?.slice(0, 15);
  if (name !== undefined && name !== named) yield* call('prctl(SET_NAME)', NR.prctl, PR.SET_NAME, t.putString(name));
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
  // The layout first: finding it may read registers itself. The template
  // is used at once (fpregsToXsave copies it): no copy of our own per thread.
  const layout = xstateLayout(() => cpuidThroughTracee(t));
  const template = readXstateView(t.tid, 16384);
  writeXstate(t.tid, fpregsToXsave(template, fp, layout, `thread ${t.tid}`));
}


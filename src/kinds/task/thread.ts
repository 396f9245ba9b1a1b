/**
 * A thread's own state (thread_core_entry): robust list, tid address,
 * sigaltstack, timer slack, scheduling, name and rseq. What only the thread
 * can tell is asked with calls injected in it, the threads of every process
 * side by side (infect/side-by-side.ts): the questions every thread kind
 * reads (ThreadAnswers) are asked here. The rest comes from /proc and
 * ptrace. Restore sets it from inside each thread, the threads of a
 * process side by side, once they all exist.
 *
 * A thread's pending signals (signals.ts), seccomp filters (seccomp.ts),
 * credentials (creds.ts) and parent-death signal (pdeath.ts) are thread
 * kinds of their own, restored at the thread's final point; its registers
 * (general and FPU) are the core's.
 *
 * Limits: SCHED_DEADLINE is refused (attrs.ts).
 */
import { NR, PR, getRobustList, RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL } from '../../sys/index.js';
import { readComm, readTimerSlack } from '../../proc/index.js';
import { RemoteSyscallError, type Tracee } from '../../infect/tracee.js';
import { syscallEach } from '../../infect/side-by-side.js';
import { rseqConfig } from '../../infect/ptrace-state.js';
import type { ThreadCoreEntry } from '../../images/messages.js';
import { call, type StepHandle, type Steps } from '../steps.js';
import { DEFAULT_TIMER_SLACK_NS, dumpThreadSched, restoreThreadSched, threadSchedNow, timerSlackSteps } from './attrs.js';
import type { DumpThreadView, RestoreThreadView, ThreadAnswers, ThreadKind, ThreadsToAsk } from './types.js';

/** Answer bytes per thread in the scratch argument area: tid address 0-7, stack_t 8-31, pdeath signal 32-35. */
const ANSWER_SLOT = 64;

/**
 * The questions only a thread can answer (tid address, sigaltstack,
 * parent-death signal, securebits, timer slack), for every thread of
 * several processes at once (each with its own scratch area), side by side (infect/side-by-side.ts): four round
 * trips per thread still (the timer slack comes from /proc), but
 * overlapping instead of one after another.
 * Answers written to memory go to the thread's own slot in its process's
 * scratch argument area.
 */
function askAllThreads(procs: readonly ThreadsToAsk[]): Map<Tracee, ThreadAnswers> {
  const out = new Map<Tracee, ThreadAnswers>();
  const rounds = Math.max(0, ...procs.map((p) => Math.ceil(p.threads.length / Math.floor(p.argsBytes / ANSWER_SLOT))));
  for (let k = 0; k < rounds; k++) {
    // Round k: the k-th slice of each process's threads, one slot each.
    const batch: { t: Tracee; slot: bigint; area: { bytes?: Buffer; at: bigint; len: number }; off: number }[] = [];
    for (const p of procs) {
      const per = Math.floor(p.argsBytes / ANSWER_SLOT);
      const of = p.threads.slice(k * per, (k + 1) * per);
      // The process's answer slots, side by side in its scratch area: read back at once (below).
      const area = { at: p.scratch, len: of.length * ANSWER_SLOT };
      of.forEach((t, j) => batch.push({ t, slot: p.scratch + BigInt(j * ANSWER_SLOT), area, off: j * ANSWER_SLOT }));
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
      // One read of each process's slots (its threads share the address space), not one per thread.
      b.area.bytes ??= b.t.readMem(b.area.at, b.area.len);
      const mem = b.area.bytes.subarray(b.off, b.off + 36);
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

type ThreadStateFields = Pick<ThreadCoreEntry, 'futex_rla' | 'futex_rla_len' | 'blk_sigset' | 'sas' | 'comm' | 'timer_slack_ns' | 'rseq_entry'
  | 'sched_nice' | 'sched_policy' | 'sched_prio'>;

/** The thread's own fields of its core (main thread included). */
function dumpThreadState(th: DumpThreadView): ThreadStateFields {
  const tid = th.tracee.tid;
  const rl = getRobustList(tid);
  const tc: ThreadStateFields = {
    futex_rla: rl.head,
    futex_rla_len: rl.len,
    ...dumpThreadSched(th.pid, tid),
    blk_sigset: th.tracee.origSigmask,
    sas: th.answers.sas,
    // From the status already read when it holds the comm unescaped: one /proc read less per thread.
    comm: th.status.comm ?? readComm(th.pid, tid),
  };
  if (th.answers.timerSlack !== undefined) tc.timer_slack_ns = th.answers.timerSlack;
  try {
    // Read once at the seize where the thread has an area (only the thread itself changes it).
    const rs = th.tracee.rseqAtStop?.config ?? rseqConfig(tid);
    if (rs.rseqAbiPointer !== 0n) {
      tc.rseq_entry = { rseq_abi_pointer: rs.rseqAbiPointer, rseq_abi_size: rs.rseqAbiSize, signature: rs.signature };
      // A section that is not restarted keeps its rseq_cs, which our calls in
      // the restored thread clear: kept to be written back last (as CRIU does).
      const at = th.tracee.rseqAtStop;
      if (at && at.cs !== 0n && (at.flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) !== 0) tc.rseq_entry.rseq_cs_pointer = at.cs;
    }
  } catch {
    // Kernels without PTRACE_GET_RSEQ_CONFIGURATION: nothing registered that we can see.
  }
  return tc;
}

/**
 * A thread's own state (robust list, tid address, name, sigaltstack, rseq,
 * scheduling, timer slack) as a step procedure (kinds/steps.ts). A thread
 * already named (it inherited its main thread's name) needs no call for it.
 */
function* restoreThreadState(t: StepHandle, v: RestoreThreadView): Steps {
  const th = v.core.thread_core;
  if (!th) return;
  if (th.futex_rla !== 0n) yield* call('set_robust_list', NR.set_robust_list, th.futex_rla, th.futex_rla_len);
  // Every other thread got its clear_child_tid address at its clone3
  // (restore/threads.ts, CLONE_CHILD_CLEARTID), and so did a main thread
  // cloned from its parent (restore/create.ts); one made by exec
  // (--restore-sibling) has none, which may be right.
  const clearTid = v.core.thread_info?.clear_tid_addr ?? 0n;
  if (v.main && v.tidAddressAtBirth !== true && clearTid !== 0n) yield* call('set_tid_address', NR.set_tid_address, clearTid);
  const name = (th.comm ?? v.tc.comm)?.slice(0, 15);
  if (name !== undefined && name !== v.named) yield* call('prctl(SET_NAME)', NR.prctl, PR.SET_NAME, t.putString(name));
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
  restoreThreadSched(t.tid, th, v.born?.sched);
  yield* timerSlackSteps(t.tid, th.timer_slack_ns, v.born?.timerSlack);
}

export const threadStateKind: ThreadKind<ThreadStateFields> = {
  name: 'thread-state',
  ask: askAllThreads,
  dump: dumpThreadState,
  // The name (16 bytes) and a stack_t (24): 32 bytes at most at once.
  restore: { state: { steps: restoreThreadState, putBytes: () => 32 } },
  // A clone copies its maker's scheduling and timer slack (a reset-on-fork policy is reset in every child alike).
  born: { state: (_pid, tid) => ({ sched: threadSchedNow(tid), timerSlack: readTimerSlack(tid) }) },
};

/**
 * `restore --verify` (beyond CRIU): once every task is rebuilt and still
 * held, read it back with the dump's own collectors and compare what we
 * read with the images, field by field. A difference names the task, the
 * field and both values; by default the restore then fails (every task is
 * killed) instead of letting a damaged tree run.
 *
 * What is compared: the task core (signal actions, itimers and POSIX
 * timers, rlimits, personality, name, pending shared signals, loginuid,
 * oom_score_adj, subreaper, AMX permission, membarrier), every thread's
 * core (credentials, sigaltstack, robust list, scheduling, pending
 * signals, pdeath signal, timer slack, rseq), the XSAVE area, the general
 * registers and the signal mask as the thread will resume with them, the
 * VMA list (ranges, protections, shared/private, file or anonymous,
 * madvise bits), the content of every private page the dump saved, the
 * fd table (numbers, close-on-exec, the kind of file, the path of regular
 * files), cwd, root and umask.
 *
 * Known allowances, each for a reason: itimer and POSIX timer values count
 * down (restored at most the dumped value, never 0 where it was armed);
 * the rseq area's cpu fields are the kernel's to rewrite; a thread that
 * was dumped inside a restartable syscall resumes through the kernel's
 * restart logic, so its registers are not compared; fields a dump written
 * by another tool (CRIU) has and our collectors do not read are skipped.
 */
import { decodeGpRegs, GP_REG_NAMES, SIGALRM } from '../../sys/index.js';
import { parseStatus } from '../../proc/index.js';
import { sigmaskNow } from '../../infect/ptrace-state.js';
import { dumpTaskCore } from '../../dump/task-state.js';
import { askThreads, dumpThreadCore, type StateKey, type ThreadAnswers } from '../../kinds/index.js';
import { dumpFpRegs } from '../../dump/regs.js';
import type { DumpImages } from '../images.js';
import type { RestoreNode } from '../plan.js';
import { RESOURCE_KINDS } from '../../kinds/index.js';
import { Collector, diffValue, type VerifyDifference } from './diff.js';
import { itimerSignals, verifySignals, verifyTimers } from './signals.js';
import { verifyFds, verifyFs } from './files.js';
import { verifyPages, verifyVmas } from './memory.js';

export { describeDifference, judge, type VerifyDifference } from './diff.js';

const SECCOMP_MODES: readonly string[] = ['disabled', 'strict', 'filter'];

/** Task-core fields that legitimately differ, or are compared on their own terms. */
const TASK_SKIP: ReadonlySet<string> = new Set([
  'task_state', 'exit_code', 'stop_signo', 'flags', 'blk_sigset', 'timers', 'cg_set', 'seccomp_mode', 'seccomp_filter', 'signals_s',
]);
/** Thread-core fields: the mask is held by us until the release (checked there); seccomp is checked from /proc. */
const THREAD_SKIP: ReadonlySet<string> = new Set(['blk_sigset', 'seccomp_mode', 'seccomp_filter', 'cg_set', 'signals_p']);

/** Everything but registers and masks: runs while the task's scratch area is still there (injected calls read it back). */
export function verifyTaskState(n: RestoreNode, img: DumpImages): VerifyDifference[] {
  const task = n.images;
  const main = n.tracee;
  if (!task || !main) return [];
  const c = new Collector(n.pid);
  // Read through /proc and ptrace by the task's pid here (its image pid
  // differs in a new pid namespace); a timer's thread is then named as the task sees it.
  const pid = n.real;
  const st = parseStatus(pid);
  const tc = dumpTaskCore(main, pid, st);
  const vtid = new Map(n.threads.map((th, i) => [th.tid, task.pstree.threads?.[i] ?? n.pid]));
  for (const pt of tc.timers?.posix ?? []) {
    if (pt.notify_thread_id !== undefined) pt.notify_thread_id = vtid.get(pt.notify_thread_id) ?? pt.notify_thread_id;
  }
  for (const k of RESOURCE_KINDS) k.verifyView?.(pid, { tc, threadCores: [] });
  const dumpedTc = task.cores[0]?.tc;
  if (dumpedTc) {
    diffValue(dumpedTc, tc, '', TASK_SKIP, (f, a, b) => c.add(f, a, b));
    verifySignals(dumpedTc.signals_s?.signals ?? [], tc.signals_s?.signals ?? [], 'pending shared signals', c, undefined, itimerSignals(dumpedTc));
  }
  verifyTimers(task, tc, c, () => (parseStatus(pid).shdPnd & (1n << BigInt(SIGALRM - 1))) !== 0n);
  if (!main.scratchRange) main.mapScratch();
  const scratch = main.scratchRange as { addr: bigint; size: number };
  const answers = askThreads([{ threads: n.threads, scratch: scratch.addr, argsBytes: scratch.size }]);
  // What a thread kind keeps for the length of a dump (seccomp's filters), kept here for this read-back only.
  const kept = new Map<StateKey<unknown>, unknown>();
  const memo = <T>(key: StateKey<T>, make: () => T): T => {
    if (!kept.has(key)) kept.set(key, make());
    return kept.get(key) as T;
  };
  n.threads.forEach((th, i) => {
    const core = task.cores[i];
    if (!core) return;
    const tst = parseStatus(pid, th.tid);
    const thc = dumpThreadCore({ pid, tracee: th, status: tst, answers: answers.get(th) as ThreadAnswers, memo });
    for (const k of RESOURCE_KINDS) k.verifyView?.(pid, { tc: undefined, threadCores: [thc] });
    if (core.thread_core) {
      // Pending signals went in at the start of finalize; ours are a tracer's view, not stashed.
      diffValue(core.thread_core, thc, '', THREAD_SKIP, (f, a, b) => c.add(f, a, b, th.tid));
      verifySignals(core.thread_core.signals_p?.signals ?? [], thc.signals_p?.signals ?? [], 'pending signals', c, th.tid);
      const mode = core.thread_core.seccomp_mode;
      const modeNum = typeof mode === 'string' ? SECCOMP_MODES.indexOf(mode) : mode;
      if (modeNum !== undefined && modeNum !== tst.seccomp) c.add('seccomp mode', mode, SECCOMP_MODES[tst.seccomp] ?? tst.seccomp, th.tid);
    }
    const fp = core.thread_info?.fpregs;
    if (fp) diffValue(fp, dumpFpRegs(th), 'fpregs', new Set(), (f, a, b) => c.add(f, a, b, th.tid));
  });
  verifyFs(pid, task, img, st.umask, c);
  verifyFds(pid, task, img, c);
  verifyVmas(pid, task, main, c);
  verifyPages(pid, task, img, main, c);
  return c.diffs;
}

/** Registers and signal masks, once finalize wrote them (no injected call may follow). */
export function verifyRegisters(n: RestoreNode, interrupted: ReadonlySet<number>): VerifyDifference[] {
  const task = n.images;
  if (!task) return [];
  const c = new Collector(n.pid);
  n.threads.forEach((th, i) => {
    const core = task.cores[i];
    const g = core?.thread_info?.gpregs;
    if (!core || !g) return;
    const mask = core.thread_core?.blk_sigset ?? core.tc?.blk_sigset ?? task.cores[0]?.tc?.blk_sigset ?? 0n;
    const now = sigmaskNow(th.tid);
    if (now !== mask) c.add('blocked signals', mask, now, th.tid);
    if (interrupted.has(th.tid)) return;
    const regs = decodeGpRegs(th.currentRegs());
    for (const r of GP_REG_NAMES) {
      if (r === 'orig_ax') continue;
      const want = (g as unknown as Record<string, bigint>)[r];
      if (want !== undefined && BigInt.asUintN(64, want) !== BigInt.asUintN(64, regs[r])) c.add(`register ${r}`, want, regs[r], th.tid);
    }
  });
  return c.diffs;
}


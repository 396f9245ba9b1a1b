/**
 * Restoring one live task once the tree exists: address space, files,
 * fs, signals and timers, threads, credentials. Registers and the signal
 * mask are set last, in finalizeTasks, once every task is ready.
 */
import {
  NR, PR, PTRACE_O, SIGTRAP, encodeGpRegs, GP_REG_NAMES, O_PATH, O_DIRECTORY, xstateLayout, type GpRegs, RSEQ_LAYOUT,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { parseStatus, inOurUserNs } from '../proc/index.js';
import { imageFile } from '../images/index.js';
import type { CoreEntry, PstreeEntry, TaskCoreEntry, UserX86FpregsEntry } from '../images/messages.js';
import type { BornThread, RestoreContext, RestoreSpaceTask, RestoreTaskHandle, RestoreThreadView, SpaceImages, ThreadRestorePoint } from '../kinds/index.js';
import { openOursInTask } from '../kinds/install-fd.js';
import type { Tracee } from '../infect/tracee.js';
import { HELD_SIGMASK } from '../infect/tracee.js';
import { holdSigmask, rseqConfig, writeGpRegs, readXstateView, writeXstate } from '../infect/ptrace-state.js';
import { cpuidThroughTracee } from '../infect/cpuid.js';
import { fillXsave } from '../infect/xsave.js';
import { restoreFds } from './files.js';
import { asInterruptedSyscall } from './restart.js';
import { call, runStepsAcross, type SideSteps, type Steps } from '../kinds/steps.js';
import { syscallEach } from '../infect/side-by-side.js';
import { TRACE_OPTIONS, setTidOf } from './stub.js';
import { createThreads } from './threads.js';
import { enterChildrenPidNs } from './children-ns.js';
import { addressSpace, bornThreadState, restoreTaskState, threadRestoreSteps } from '../kinds/index.js';
import { handleFor } from './handle.js';
import { verifyTaskState, verifyRegisters, judge } from './verify/index.js';
import type { DumpImages } from './images.js';
import { ownPid, type RestoreNode, type RestorePlan } from './plan.js';
import { logger } from '../log.js';
import { mark } from '../timeline.js';

const log = logger('task');

function coreRegs(core: CoreEntry): GpRegs {
  const g = core.thread_info?.gpregs;
  if (!g) throw new CriuTsError('EIMAGE', 'core image without x86_64 registers', {});
  const out = {} as GpRegs;
  for (const n of GP_REG_NAMES) out[n] = (g as unknown as Record<string, bigint>)[n] ?? 0n;
  return out;
}

/**
 * The task's frame: its address space, made by the registry's
 * address-space kind (kinds/space.ts) once per task, either as soon as the
 * task is created (create.ts) or first thing of its body. A task forked
 * from its restored parent is shown the parent's images: it holds a copy.
 */
export function restoreAddressSpace(n: RestoreNode, filesCtx: RestoreContext): void {
  const images = n.images;
  const tracee = n.tracee;
  if (!images || !tracee || n.memory) return;
  n.memory = addressSpace().makeFrame(spaceTask(n, images, tracee), filesCtx);
}

function spaceTask(n: RestoreNode, images: SpaceImages, tracee: Tracee): RestoreSpaceTask {
  return {
    real: n.real, tracee, handle: handleFor(n.real, tracee, n.pid, ownPid(n)), images,
    exitKill: (TRACE_OPTIONS & PTRACE_O.EXITKILL) !== 0, parent: n.forkedFromRestored?.images,
    // restoreTaskBody's restoreFds, or restoreInheritedFdsEach (for a frame made at the task's birth), comes after the frame.
    fdsSweptLater: !n.sharesFiles,
  };
}

/**
 * A removed cwd is a ghost directory reached through our fd on it
 * (/proc/<us>/fd/N), which the task's /proc (its pid namespace's) may not
 * show: handed over and entered with fchdir.
 */
function chdirInTask(h: RestoreTaskHandle, cwd: string): void {
  if (!cwd.startsWith(`/proc/${process.pid}/fd/`)) {
    h.syscall(`chdir ${cwd}`, NR.chdir, h.putString(cwd));
    return;
  }
  const fd = openOursInTask(h, cwd, O_PATH | O_DIRECTORY);
  try {
    h.syscall(`fchdir (ghost ${cwd})`, NR.fchdir, fd);
  } finally {
    h.syscall('close', NR.close, fd);
  }
}

/** Returns the number of pages filled. */
export function restoreTaskBody(n: RestoreNode, plan: RestorePlan, img: DumpImages, filesCtx: RestoreContext, fdsDone = false): number {
  const task = n.images;
  const tracee = n.tracee;
  if (!task || !tracee) return 0;
  const pid = n.pid;
  const h = handleFor(n.real, tracee, pid, ownPid(n));
  const main = task.cores[0];
  const tc = main?.tc;
  if (!main || !tc) throw new CriuTsError('EIMAGE', `${imageFile('CORE', pid)} has no task core`, { pid });
  log.info(`restoring task ${pid}`);
  restoreAddressSpace(n, filesCtx);
  mark(`task ${pid}: memory (lazy: uffd handed over)`);
  const pages = n.memory?.pages ?? 0;
  // A task sharing its parent's fd table (CLONE_FILES) has its fds from the parent's restore.
  if (!n.sharesFiles && !fdsDone) restoreFds(h, task.fds, filesCtx, n.inherited, plan.inheritBase);
  addressSpace().afterFds(spaceTask(n, task, tracee), filesCtx);
  mark(`task ${pid}: fds`);
  const cwd = img.files.get(task.fs.cwd_id)?.reg?.name;
  const root = img.files.get(task.fs.root_id)?.reg?.name;
  // Both paths are as seen from our root: cwd first, while that path still
  // resolves, then chroot (which leaves the cwd alone, as in a task that
  // chdir'ed and then chroot'ed, or whose cwd is outside its root).
  if (cwd) chdirInTask(h, cwd);
  if (root && root !== '/') h.syscall(`chroot ${root}`, NR.chroot, h.putString(root));
  // The umask it inherited (criu-ts's) is most often the dumped one already: no call then.
  if (task.fs.umask !== undefined && parseStatus(n.real).umask !== task.fs.umask) h.syscall('umask', NR.umask, task.fs.umask);
  restoreTaskState(h, tc, 'before-threads');
  mark(`task ${pid}: fs, state`);
  // Every signal but SIGTRAP stays blocked while we drive the task (see
  // HELD_SIGMASK); the dumped mask comes last.
  holdSigmask(n.real, HELD_SIGMASK);
  // Threads share the address space: create them now, in rounds (threads.ts).
  const tids = threadTids(n, task.pstree);
  n.threads = [tracee];
  scratchOf(tracee);
  // The main thread's name before its threads are cloned: they inherit it,
  // and those of the same name need no call of their own. A process of one
  // thread is named by its thread state procedure, side by side with the
  // other processes' (restoreThreadStates).
  const mainName = (main.thread_core?.comm ?? tc.comm)?.slice(0, 15);
  if (mainName !== undefined && tids.length > 1) h.syscall('prctl(SET_NAME)', NR.prctl, PR.SET_NAME, h.putString(mainName));
  const clearTids = task.cores.map((c) => c.thread_info?.clear_tid_addr ?? 0n);
  // The securebits every thread made below starts with (a copy of the
  // main thread's credentials): asked once here instead of in each thread
  // before its credentials are set (kinds/task/creds.ts).
  if (tids.length > 1) n.threadsSecbits = Number(h.syscall('prctl(GET_SECUREBITS)', NR.prctl, PR.GET_SECUREBITS));
  // Each new thread is born with its maker's signal mask, HELD_SIGMASK (the main thread's, just set above).
  createThreads(tracee, tids.slice(1).map((t) => setTidOf(t.vtid, t.levels)), clearTids.slice(1), !n.inNewPidNs, n.threads);
  enterChildrenPidNs(n, plan, h);
  restoreTaskState(h, tc, 'after-threads');
  mark(`task ${pid}: threads`);
  holdSigmask(tracee.tid, HELD_SIGMASK);
  return pages;
}

/**
 * Every thread's own state once every task's body is done, the threads of
 * all processes side by side (kinds/steps.ts runStepsAcross: a tree's
 * round trips overlap instead of adding up), then their FPU state.
 */
export function restoreThreadStates(nodes: readonly RestoreNode[], ctx: RestoreContext): void {
  const live = nodes.filter((n) => n.images && n.tracee && n.threads.length > 0);
  // None of these calls blocks and no signal of the task's is queued yet
  // (a posix timer armed after-threads could send one: SIGTRAP's keeps
  // its process out): each call is single-stepped, one stop instead of two
  // (infect/held-task.ts stepCalls), where SIGTRAP is at its default: the
  // action the images give it, which the task has now (before-threads).
  const stepped = live.filter((n) => sigtrapDefault(n.images?.cores[0]?.tc))
    .flatMap((n) => n.threads.filter((th) => th.stepCalls(true, true, true)));
  try {
    runStepsAcross(live.map((n) => {
      const main = n.images?.cores[0];
      // The name its threads inherited from the main thread, named before they were made (restoreTaskBody).
      const named = n.threads.length > 1 ? (main?.thread_core?.comm ?? main?.tc?.comm)?.slice(0, 15) : undefined;
      return { items: threadSteps(n, 'state', ctx, named, bornOf(n, 'state')), scratch: scratchOf(n.tracee as Tracee) };
    }));
  } finally {
    for (const th of stepped) th.stepCalls(false);
  }
  for (const n of live) {
    n.images?.cores.forEach((core, i) => {
      const fp = core.thread_info?.fpregs;
      if (fp) restoreFpu(n.threads[i] as Tracee, fp);
    });
  }
}

/** SIGTRAP at SIG_DFL in the task's dumped actions (kinds/task/sigactions.ts: SIGKILL and SIGSTOP have no entry), and no posix timer sends it. */
function sigtrapDefault(tc: TaskCoreEntry | undefined): boolean {
  if (!tc || (tc.timers?.posix ?? []).some((p) => p.si_signo === SIGTRAP)) return false;
  const a = tc.sigactions?.[SIGTRAP - 1];
  return a === undefined || a.sigaction === 0n;
}

/**
 * The thread kinds' work at `at` in each thread of `n` (kinds/index.ts
 * threadRestoreSteps), one step procedure per thread; `named`: the name
 * the threads have already (inherited from the main thread).
 */
function threadSteps(n: RestoreNode, at: ThreadRestorePoint, ctx: RestoreContext, named: string | undefined, born?: BornThread): SideSteps[] {
  const task = n.images;
  const tc = task?.cores[0]?.tc;
  if (!task || !tc) return [];
  const threadCores = task.cores.map((c) => c.thread_core);
  const tids = threadTids(n, task.pstree);
  return n.threads.flatMap((th, i) => {
    const core = task.cores[i];
    if (!core) return [];
    // Its ids as the task sees them (in its own pid namespace): calls injected into it name them so.
    const t = tids[i] ?? { vtid: n.pid, levels: n.levels };
    const vtid = t.levels.at(-1) ?? t.vtid;
    const view: RestoreThreadView = {
      core, tc, threadCores, main: i === 0, tidAddressAtBirth: i === 0 && n.tidAddressAtBirth === true,
      named, vtid, vpid: ownPid(n), traceOptions: TRACE_OPTIONS, ctx, born: i === 0 ? undefined : born,
    };
    const s = threadRestoreSteps(at, view);
    return s ? [{ tracee: th, pid: n.real, make: s.make, putBytes: s.putBytes, handle: handleFor(th.tid, th, t.vtid, vtid) }] : [];
  });
}

/**
 * What the threads `n`'s main thread made (restore/threads.ts) hold before
 * their own steps at `at` (RestoreThreadView born), read from one of them
 * before the steps start (the thread kinds' parts: kinds/index.ts
 * bornThreadState): siblings made from the one main thread hold the same.
 * At the final point, the securebits they were made with too.
 */
function bornOf(n: RestoreNode, at: ThreadRestorePoint): BornThread | undefined {
  const first = n.threads[1];
  const secbits = n.threadsSecbits;
  if (first === undefined || secbits === undefined) return undefined;
  const born = bornThreadState(at, n.real, first.tid);
  return at === 'final' ? { ...born, secbits } : born;
}

/** FPU/SSE/AVX/AVX-512 registers: the kernel's own XSAVE buffer (this CPU's layout) as a template, filled from the image. */
function restoreFpu(t: Tracee, fp: UserX86FpregsEntry): void {
  // The layout first: finding it may read registers itself. The area is
  // the regset read buffer, filled in place and written back before any
  // other regset read: no copy of our own per thread.
  const layout = xstateLayout(() => cpuidThroughTracee(t));
  const area = readXstateView(t.tid, 16384);
  writeXstate(t.tid, fillXsave(area, fp, layout, `thread ${t.tid}`));
}

function scratchOf(t: Tracee): { addr: bigint; size: number } {
  if (!t.scratchRange) t.mapScratch();
  return t.scratchRange as { addr: bigint; size: number };
}

/**
 * The last of every task, the tasks side by side where calls are injected
 * (a tree's round trips overlap): the process's final state, then the
 * thread kinds' final work (credentials last) and the mm's dumpable flag,
 * the scratch area dropped (the last injected call), then each thread's
 * registers and mask.
 */
export function finalizeTasks(nodes: readonly RestoreNode[], img: DumpImages, ctx: RestoreContext, verify?: 'refuse' | 'warn'): void {
  const live = nodes.filter((n) => n.images && n.tracee);
  // The process's last state (pending signals, the subreaper bit: kinds/task).
  for (const n of live) {
    const main = n.tracee as Tracee;
    const tc = n.images?.cores[0]?.tc;
    if (tc) restoreTaskState(handleFor(main.tid, main, n.pid, ownPid(n)), tc, 'final');
  }
  // Then each thread's (its own signals, seccomp, credentials: the
  // registry's order): the other threads of every process side by side,
  // then every main thread, so that a chain every thread of a process
  // shares goes in from its main thread, with TSYNC, once the others are done.
  const finals = live.map((n) => ({ n, main: n.tracee as Tracee, steps: threadSteps(n, 'final', ctx, undefined, bornOf(n, 'final')) }));
  runStepsAcross(finals.map(({ main, steps }) => ({ items: steps.filter((f) => f.tracee !== main), scratch: scratchOf(main) })));
  runStepsAcross(finals.map(({ n, main, steps }) => {
    const last = steps.find((f) => f.tracee === main);
    const dumpable = n.images?.mm.dumpable;
    const item: SideSteps = {
      tracee: main, pid: n.real, putBytes: last?.putBytes ?? 0,
      make: (sh) => lastOfMain(last?.make(sh), dumpable, knownDumpable(n)),
      handle: last?.handle ?? handleFor(main.tid, main, n.pid, ownPid(n)),
    };
    return { items: [item], scratch: scratchOf(main) };
  }));
  // --verify reads each task back while injected calls still can (the scratch area is there).
  const diffs = verify ? live.map((n) => verifyTaskState(n, img)) : [];
  const drops = finals.flatMap(({ main }) => {
    const c = main.scratchUnmapRequest();
    return c ? [{ t: main, nr: c.nr, args: c.args }] : [];
  });
  syscallEach(drops);
  live.forEach((n, k) => {
    const interrupted = finalRegisters(n);
    if (verify) judge([...(diffs[k] ?? []), ...verifyRegisters(n, interrupted)], verify);
  });
}

/**
 * The main thread's final procedure, then the mm's dumpable flag, set here
 * only: a change of ids or capabilities resets it (to fs.suid_dumpable),
 * and the task most often has the dumped one (criu-ts's, inherited).
 */
function* lastOfMain(steps: Steps | undefined, dumpable: number | undefined, known: number | undefined): Steps {
  if (steps) yield* steps;
  if (dumpable === undefined) return;
  const now = known ?? Number(yield* call('prctl(GET_DUMPABLE)', NR.prctl, PR.GET_DUMPABLE));
  if (now !== dumpable) yield* call('prctl(SET_DUMPABLE)', NR.prctl, PR.SET_DUMPABLE, dumpable);
}

/**
 * The mm's dumpable flag once its threads have their credentials, where
 * it is known unasked: the stub's exec made it 1 (SUID_DUMP_USER: our real
 * and effective ids were the same) and fork copies it; only a change of an
 * effective or fs id of any of its threads (the flag is the mm's), or the
 * entry into another user namespace, resets it (a capset only lowers
 * capabilities, which keeps it). Undefined: asked.
 */
function knownDumpable(n: RestoreNode): number | undefined {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  // As root (the stub's program readable whatever its mode), real and effective ids the same.
  if (uid !== 0 || gid === undefined || process.getuid?.() !== 0 || gid !== process.getgid?.()) return undefined;
  const same = (n.images?.cores ?? []).every((c) => {
    const cr = c.thread_core?.creds;
    return cr !== undefined && cr.euid === uid && cr.fsuid === uid && cr.egid === gid && cr.fsgid === gid;
  });
  return same && inOurUserNs(n.real) ? 1 : undefined;
}

/** Every thread's registers and signal mask, after the last injected call; returns the tids left in an interrupted syscall. */
function finalRegisters(n: RestoreNode): Set<number> {
  const task = n.images as NonNullable<RestoreNode['images']>;
  const main = n.tracee as Tracee;
  const interruptedTids = new Set<number>();
  // The threads share one address space, and most wait in the same few calls (a 1000-thread process: one pause()): each address read once.
  const code = new Map<bigint, Buffer>();
  const codeAt = (ip: bigint): Buffer => {
    let b = code.get(ip);
    if (b === undefined) code.set(ip, (b = main.readMem(ip, 2)));
    return b;
  };
  const regsOf = n.threads.map((th, i) => {
    const dumped = coreRegs(task.cores[i] as CoreEntry);
    const interrupted = asInterruptedSyscall(dumped, codeAt);
    if (interrupted) {
      interruptedTids.add(th.tid);
      // Every such thread is sent toward its stop before the first is waited for.
      th.beginSignalDeliveryStop();
      return interrupted;
    }
    // Not in a syscall: no restart logic may touch these registers.
    return { ...dumped, orig_ax: BigInt.asUintN(64, -1n) };
  });
  n.threads.forEach((th, i) => {
    const core = task.cores[i] as CoreEntry;
    if (interruptedTids.has(th.tid)) th.endSignalDeliveryStop();
    writeGpRegs(th.tid, encodeGpRegs(regsOf[i] as GpRegs));
    // The critical section of a thread whose section is not restarted (infect/rseq.ts), after our last call.
    const rs = core.thread_core?.rseq_entry;
    if (rs?.rseq_cs_pointer) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(rs.rseq_cs_pointer);
      main.writeMem(rs.rseq_abi_pointer + BigInt(RSEQ_LAYOUT.CS_OFFSET), b);
    }
    const mask = core.thread_core?.blk_sigset ?? core.tc?.blk_sigset ?? task.cores[0]?.tc?.blk_sigset ?? 0n;
    holdSigmask(th.tid, mask);
  });
  return interruptedTids;
}

/**
 * Every thread's tid in the tree's pid namespace and its numbers in the
 * namespaces nested below it (pstree.img ns_threads, thread after thread),
 * main thread first.
 */
function threadTids(n: RestoreNode, e: PstreeEntry): { vtid: number; levels: readonly number[] }[] {
  const d = n.levels.length;
  const per = e.ns_threads ?? [];
  return (e.threads ?? [n.pid]).map((vtid, i) => ({ vtid, levels: d === 0 ? [] : per.slice(i * d, (i + 1) * d) }));
}

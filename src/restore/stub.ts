/**
 * Where restored tasks come from. We start one small helper process (the
 * stub: any tiny program, here `sleep`), seize it, and inject clone3 with
 * set_tid so the kernel creates a child with exactly the dumped pid. The
 * child is traced from birth (PTRACE_O_TRACEFORK) and stopped; the stub is
 * then let go and killed, and the child, orphaned, is re-parented to us
 * (we are a child subreaper) so that we can wait for it like CRIU does.
 */
import { Tracee } from '../infect/tracee.js';
import { releaseQuiet } from '../infect/ptrace-state.js';
import { spawnTethered, execDone, sleepProgram, type OwnSleep } from '../infect/helper-task.js';
import { readlinkSync } from 'node:fs';
import {
  NR, PTRACE_O, PTRACE_EVENT, waitPid, __WALL, setChildSubreaper, xstateLayout, SIGCHLD,
  cloneParentExec, type BeforeExec, isSyscallError, EEXIST, CLONE_ARGS_SIZE, CLONE_CHILD_CLEARTID, CLONE_VM,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { parseStatus, readComm } from '../proc/index.js';
import { cpuidThroughTracee } from '../infect/cpuid.js';
import { logger } from '../log.js';

const log = logger('stub');

// TRACESYSGOOD: injected syscalls run to syscall stops (infect/tracee.ts).
export const TRACE_OPTIONS = PTRACE_O.TRACEFORK | PTRACE_O.TRACECLONE | PTRACE_O.TRACEVFORK | PTRACE_O.EXITKILL | PTRACE_O.TRACESYSGOOD;

export interface Stub {
  own: OwnSleep;
  tracee: Tracee;
}

/**
 * The stub's process, spawned ahead (spawnStub) while the restore reads
 * and checks its images: taken by startStub, or discarded.
 */
export interface PendingStub {
  /** the spawned helper, or why it could not be spawned */
  readonly spawned: Promise<(OwnSleep & { prog: string }) | Error>;
  taken: boolean;
}

/**
 * Spawn the stub now, on another thread (infect/helper-task.ts
 * spawnTethered: it exits by itself if we die before it is seized, and
 * dies with us after, EXITKILL), and seize it as soon as it runs `cat`:
 * its stop, a time slice or more away under load, comes while the restore
 * reads its images, not after (startStub only collects it).
 */
export function spawnStub(): PendingStub {
  setChildSubreaper(true);
  const spawned = spawnTethered('restore stub', 'ERESTORE').then((own) => {
    execDone(own, own.prog, 'restore stub', 'ERESTORE');
    try {
      Tracee.seizeNoWait(own.pid, TRACE_OPTIONS);
    } catch (e) {
      own.kill();
      throw e;
    }
    return own;
  }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  return { spawned, taken: false };
}

/** Kill a stub spawned ahead that startStub did not take (a restore that failed before). */
export async function discardStub(p: PendingStub): Promise<void> {
  if (p.taken) return;
  p.taken = true;
  const own = await p.spawned;
  if (!(own instanceof Error)) own.kill();
}

/** Take the stub spawned ahead and hold it stopped. */
export async function startStub(p: PendingStub): Promise<Stub> {
  if (p.taken) throw new CriuTsError('EINTERNAL', 'the restore stub was taken twice', {});
  p.taken = true;
  const own = await p.spawned;
  if (own instanceof Error) throw own;
  let tracee: Tracee;
  try {
    tracee = Tracee.seizeWait(own.pid, 10_000);
  } catch (e) {
    own.kill();
    throw e;
  }
  const pid = own.pid;
  log.debug(`stub ${pid} seized`);
  // Without the cpuid driver, the XSAVE layout comes from a cpuid run in the stub (its loader has one).
  xstateLayout(() => cpuidThroughTracee(tracee));
  return { own, tracee };
}

/**
 * clone3's set_tid for a task, innermost level first (the kernel's order):
 * its pids in the pid namespaces nested below the tree's (`levels`,
 * outermost first in the images), then `pid`, its pid in the tree's
 * namespace (0: any free one, and so at every level above). The levels
 * above the tree's stay the kernel's pick.
 */
export function setTidOf(pid: number, levels: readonly number[] = []): number[] {
  const inner = [...levels].reverse();
  return pid === 0 ? inner : [...inner, pid];
}

/**
 * Inject clone3 into `parent` creating a child with pids `tids` (set_tid,
 * innermost first: setTidOf; plain fork semantics; `flags` adds CLONE_*
 * bits). The last of `tids` is the pid in our namespace when `ourNs`
 * (default), else the child lives in a new pid namespace (CLONE_NEWPID
 * makes one, its innermost pid is then 1) and gets any free pid in ours; no
 * `tids` take any free pid (a short-lived helper's). Returns the new task,
 * stopped and traced; its tid is its pid in our namespace. `keepScratch`:
 * the child takes its copy of the parent's scratch area as its own (the
 * parent is the stub, which injects nothing more: the two never use it at
 * once). `clearTid`: its clear_child_tid address (cloneArgs).
 */
export function cloneWithPid(
  parent: Tracee, tids: readonly number[],
  o: { flags?: bigint; exitSignal?: number; ourNs?: boolean; keepScratch?: boolean; clearTid?: bigint } = {},
): Tracee {
  const { flags = 0n, exitSignal = SIGCHLD, ourNs = true, keepScratch = false, clearTid = 0n } = o;
  const scratch = parent.mapScratch();
  parent.writeMem(scratch, cloneArgs(scratch, flags, exitSignal, tids, clearTid));
  parent.events.length = 0;
  const child = adoptClone(parent, parent.syscallRaw(NR.clone3, scratch, CLONE_ARGS_SIZE), tids, ourNs);
  const range = parent.scratchRange;
  if (keepScratch && range && (flags & CLONE_VM) === 0n) child.shareScratch(range, true);
  return child;
}

/** Bytes of clone3's arguments and a set_tid of `levels` pids (pid_t: 4 bytes each) after them, 8-aligned, for a task's scratch memory. */
export function cloneSlotBytes(levels: number): number {
  return CLONE_ARGS_SIZE + 8 * Math.ceil(Math.max(1, levels) / 2);
}

/**
 * clone3's arguments (`struct clone_args`, then pid_t set_tid[tids.length]) to
 * be written at `at` in the parent's memory. A non-zero `clearTid` is the
 * new task's clear_child_tid address (CLONE_CHILD_CLEARTID), set at birth
 * instead of by an injected set_tid_address later.
 */
export function cloneArgs(at: bigint, flags: bigint, exitSignal: number, tids: readonly number[], clearTid = 0n): Buffer {
  const args = Buffer.alloc(cloneSlotBytes(tids.length));
  args.writeBigUInt64LE(clearTid === 0n ? flags : flags | CLONE_CHILD_CLEARTID, 0);
  if (clearTid !== 0n) args.writeBigUInt64LE(clearTid, 16); // child_tid
  args.writeBigUInt64LE(BigInt(exitSignal), 32);
  if (tids.length > 0) {
    args.writeBigUInt64LE(at + BigInt(CLONE_ARGS_SIZE), 64); // set_tid
    args.writeBigUInt64LE(BigInt(tids.length), 72); // set_tid_size
  }
  tids.forEach((tid, i) => args.writeInt32LE(tid, CLONE_ARGS_SIZE + 4 * i));
  return args;
}

/**
 * The task an injected clone3 in `parent` made (`r`: its raw result; the
 * parent's events cleared before the call), once it is in its first ptrace
 * stop, checked to have pids `tids` (set_tid's, innermost first).
 * `bornHeld`: the parent's signal mask was HELD_SIGMASK (Tracee.adopt).
 */
export function adoptClone(parent: Tracee, r: bigint, tids: readonly number[], ourNs: boolean, bornHeld = false): Tracee {
  const pid = tids.at(-1) ?? 0;
  if (r < 0n) {
    const errno = Number(-r);
    if (errno === 17) throw pidTaken(pid);
    throw new CriuTsError('ERESTORE', `clone3 for pid ${pid}${tids.length > 1 ? ` (${tids.join(', ')}, innermost first)` : ''} failed: errno ${errno}`, { pid, errno });
  }
  const ev = parent.events.find((e) => e.event === PTRACE_EVENT.FORK || e.event === PTRACE_EVENT.CLONE || e.event === PTRACE_EVENT.VFORK);
  const child = Number(ev ? ev.msg : r);
  if (ourNs && pid !== 0 && child !== pid) throw new CriuTsError('ERESTORE', `clone3 made pid ${child}, wanted ${pid}`, { pid, child });
  // The new task starts in a ptrace stop; collect that stop before using it.
  for (;;) {
    const st = waitPid(child, __WALL);
    if (st === null) continue;
    if (st.exited || st.signaled) throw new CriuTsError('ERESTORE', `new task ${child} died at birth`, { pid: child });
    if (st.stopped) break;
  }
  if (!ourNs || tids.length > 1) {
    // NSpid ends with the innermost level: its tail, read backwards, is set_tid.
    const nsPid = parseStatus(child).nsPid;
    const got = nsPid.slice(-tids.length).reverse();
    if (got.some((v, i) => v !== tids[i])) {
      throw new CriuTsError('ERESTORE', `clone3 made pids ${got.join(', ')} in its namespaces (innermost first), wanted ${tids.join(', ')}`, { pid, child });
    }
  }
  const t = Tracee.adopt(child, bornHeld);
  t.setGadget(parent.gadgetAddr);
  log.debug(`created task ${child}`);
  return t;
}

/**
 * --restore-sibling: the tree's top task is born our caller's child, with
 * pid `pid` (1 in a new pid namespace: `ourNs` false) and namespace flags
 * `flags`, as CRIU clones it with CLONE_PARENT from itself. It comes from
 * our own process (sys/clone-parent.ts), runs our `sleep` at once, and is
 * seized like any task; the fds it got from us (those without close-on-exec)
 * are closed, as a stub's child has none of ours. `beforeExec` runs between
 * its clone and its exec (sys/clone-parent.ts: a new user namespace's maps).
 * If the restore fails, it dies a zombie of the caller's, as CRIU's root does.
 */
export function cloneSiblingTop(pid: number, flags: bigint, ourNs: boolean, beforeExec?: BeforeExec): Tracee {
  const prog = sleepProgram('restore --restore-sibling', 'ERESTORE');
  let child: number;
  try {
    child = cloneParentExec(flags, pid, prog, [prog, '1000000'], beforeExec);
  } catch (e) {
    if (isSyscallError(e, EEXIST)) throw pidTaken(pid);
    throw new CriuTsError('ERESTORE', `--restore-sibling: clone3 for pid ${pid} from criu-ts failed: ${(e as Error).message}`, { pid }, e);
  }
  let exe = '';
  try {
    exe = readlinkSync(`/proc/${child}/exe`);
  } catch {
    // it died: exec failed
  }
  if (exe !== prog) throw new CriuTsError('ERESTORE', `--restore-sibling: task ${child} could not run ${prog}`, { pid: child });
  if (ourNs && child !== pid) throw new CriuTsError('ERESTORE', `clone3 made pid ${child}, wanted ${pid}`, { pid, child });
  const t = Tracee.seize(child, { options: TRACE_OPTIONS });
  if (!ourNs) {
    const inner = parseStatus(child).nsPid.at(-1);
    if (inner !== pid) throw new CriuTsError('ERESTORE', `clone3 made pid ${inner} in its namespace, wanted ${pid}`, { pid, child });
  }
  t.syscall('close_range(3, ~0)', NR.close_range, 3, 0xffffffff, 0);
  log.debug(`created task ${child} as our caller's child`);
  return t;
}

/**
 * Kill the stub; its children are re-parented to us (the subreaper). It is
 * killed in its ptrace stop, so none of its code runs again: nothing of
 * ours in it (registers, scratch area) needs putting back first. Collected
 * once it has exited (sys/spawn.ts reapWhenGone: we are its tracer too,
 * and wait4 by its pid takes its exit).
 */
export function disposeStub(stub: Stub): void {
  stub.own.kill();
}

/**
 * Pid `pid` is taken in our pid namespace: say by what (most often the
 * dumped task itself, still running after a dump with --leave-running).
 */
export function pidTaken(pid: number): CriuTsError {
  let by = '';
  try {
    by = ` by ${readComm(pid)}`;
  } catch {
    // gone meanwhile, or not ours to see
  }
  return new CriuTsError('EBUSY', `pid ${pid} is already in use${by} (a task restores at the pid it had; is the dumped task still running?)`, { pid });
}

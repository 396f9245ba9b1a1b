/**
 * The contract of the per-task and per-thread kinds. A task-state kind: a piece of a process's state that
 * lives in CRIU's task_core_entry and that only the task can tell or set
 * (signal actions, timers, limits, ...). Each kind keeps its dump and its
 * restore side by side; it is the `task` facet of a registry entry
 * (kinds/index.ts KINDS): the core runs every such kind and learns none
 * of them by name.
 */
import type { CoreEntry, TaskCoreEntry, ThreadCoreEntry } from '../../images/messages.js';
import type { ProcStatus } from '../../proc/index.js';
import type { Tracee } from '../../infect/tracee.js';
import type { RestoreContext, RestoreTaskHandle, StateKey } from '../types.js';
import type { StepCall, StepHandle, Steps } from '../steps.js';

/**
 * The points of one task's restore where task-state kinds run, in order:
 * - before-threads: memory, files and fs are back; the task has one thread and every signal but SIGTRAP held
 * - after-threads: every thread exists (a timer may name one)
 * - before-helpers-exit: only in the tasks the orphans of an exiting session helper must go back
 *   to (the restore plan's early reapers), every task's files ready, right before the helpers exit
 * - final: every task of the tree is ready and the restore's helpers are gone; credentials come after
 */
export type TaskRestorePoint = 'before-threads' | 'after-threads' | 'before-helpers-exit' | 'final';

export const TASK_RESTORE_POINTS: readonly TaskRestorePoint[] = ['before-threads', 'after-threads', 'before-helpers-exit', 'final'];

/**
 * A kind `F` names the fields of the task core it fills: the registry's
 * merged fields (kinds/index.ts TaskStateFields) type the core's
 * task core, so a field a kind always fills needs no placeholder there.
 */
export interface TaskStateKind<F extends Partial<TaskCoreEntry> = Partial<TaskCoreEntry>> {
  readonly name: string;
  /**
   * Its fields of the task core, asked in the process's main thread as a
   * step procedure (kinds/steps.ts: the dump asks every process side by
   * side). `status` is the main thread's /proc status.
   */
  dump(t: Tracee, pid: number, status: ProcStatus): Generator<StepCall, F, bigint>;
  /** Puts its fields back, with calls injected in the main thread, at the points it names. */
  readonly restore: Readonly<Partial<Record<TaskRestorePoint, (h: RestoreTaskHandle, tc: TaskCoreEntry) => void>>>;
}

/**
 * What every thread is asked side by side before any process is dumped
 * (injected calls only the thread can answer): the thread kinds' `dump`
 * and the core (the tid address goes into thread_info) read them.
 */
export interface ThreadAnswers {
  tidAddress: bigint;
  sas: { ss_sp: bigint; ss_size: bigint; ss_flags: number };
  pdeathSig: number;
  secbits: number;
  /** undefined when it is the kernel's default */
  timerSlack: bigint | undefined;
}

/** The threads of one process to ask, with the process's scratch argument area (argsBytes long from `scratch`). */
export interface ThreadsToAsk {
  threads: readonly Tracee[];
  scratch: bigint;
  argsBytes: number;
}

/** One thread of a held task, as the core hands it to a thread kind's dump. */
export interface DumpThreadView {
  /** its process (our pid) */
  readonly pid: number;
  readonly tracee: Tracee;
  /** its /proc status, read once */
  readonly status: ProcStatus;
  readonly answers: ThreadAnswers;
  /**
   * State the kind keeps for the length of the dump, under its own key:
   * the dump context's memo, or a store of its own when restore --verify
   * reads a restored thread back with the same collectors.
   */
  memo<T>(key: StateKey<T>, make: () => T): T;
}

/**
 * The points of one thread's restore where thread kinds run, in order:
 * - state: every thread of the process exists; after the task-state kinds' after-threads
 * - final: after the task-state kinds' final point; the other threads side by side, then the
 *   main thread. Ids and capabilities may drop here: a kind that needs privilege comes earlier in the registry.
 */
export type ThreadRestorePoint = 'state' | 'final';

export const THREAD_RESTORE_POINTS: readonly ThreadRestorePoint[] = ['state', 'final'];

/** One thread being restored, as the core hands it to a thread kind. */
export interface RestoreThreadView {
  /** its core (thread_info and thread_core) as dumped */
  readonly core: CoreEntry;
  /** the task core of its process */
  readonly tc: TaskCoreEntry;
  /** every thread core of its process, the main thread's first */
  readonly threadCores: readonly (ThreadCoreEntry | undefined)[];
  /** whether it is the process's main thread */
  readonly main: boolean;
  /** a main thread whose clear_child_tid address its clone3 set (restore/create.ts): no set_tid_address */
  readonly tidAddressAtBirth?: boolean;
  /** its name now (inherited from the main thread, which was named before it was cloned) */
  readonly named: string | undefined;
  /** its tid and its process's pid as the task sees them, in its own pid namespace (for calls injected into it) */
  readonly vtid: number;
  readonly vpid: number;
  /** the ptrace options it is traced with (a kind that changes them keeps these) */
  readonly traceOptions: number;
  readonly ctx: RestoreContext;
  /**
   * A thread other than the main one, made by the restore from its main
   * thread (restore/threads.ts): what it holds until its own steps change
   * it, known without asking it. A clone copies its maker's credentials,
   * scheduling and timer slack, and the threads are made before any
   * thread's own state is set: so every such thread holds what one of them
   * holds (read once for the process before the steps that change it), and
   * the securebits the main thread had when they were made (asked there).
   */
  readonly born?: BornThread;
}

/** What a thread made by the restore holds before its own state is set (RestoreThreadView born); a field left out is read from the thread itself. */
export interface BornThread {
  /** its /proc status (credentials) */
  readonly status?: ProcStatus;
  readonly secbits?: number;
  readonly sched?: { readonly nice: number; readonly policy: number; readonly prio: number };
  readonly timerSlack?: bigint;
}

/** A thread kind's work at one restore point: a step procedure, with the most argument bytes it puts in scratch memory over its whole run. */
export interface ThreadRestoreStep {
  steps(sh: StepHandle, th: RestoreThreadView): Steps;
  putBytes(th: RestoreThreadView): number;
}

/**
 * A thread kind `F` (its fields of the thread core): a piece of a
 * thread's own state (thread_core_entry), with its dump and restore side
 * by side; the `thread` facet of a registry entry.
 */
export interface ThreadKind<F extends Partial<ThreadCoreEntry> = Partial<ThreadCoreEntry>> {
  readonly name: string;
  /**
   * Dump, before any process is dumped: ask every thread of the tree
   * (every process's threads, side by side) the questions only it can
   * answer. At most one kind asks (the answers are one contract type).
   */
  ask?(procs: readonly ThreadsToAsk[]): Map<Tracee, ThreadAnswers>;
  /** Dump, per thread: its fields of the thread core. */
  dump?(th: DumpThreadView): F;
  /** Restore, per thread, at the points it names. */
  readonly restore: Readonly<Partial<Record<ThreadRestorePoint, ThreadRestoreStep>>>;
  /** Restore: its part of what the threads made by the restore hold before its steps at a point (RestoreThreadView born), read from thread `tid` of `pid`, one of them. */
  readonly born?: Readonly<Partial<Record<ThreadRestorePoint, (pid: number, tid: number) => BornThread>>>;
}

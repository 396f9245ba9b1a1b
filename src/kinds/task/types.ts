/**
 * The contract of a task-state kind: a piece of a process's state that
 * lives in CRIU's task_core_entry and that only the task can tell or set
 * (signal actions, timers, limits, ...). Each kind keeps its dump and its
 * restore side by side; it is the `task` facet of a registry entry
 * (kinds/index.ts KINDS): the core runs every such kind and learns none
 * of them by name.
 */
import type { TaskCoreEntry } from '../../images/messages.js';
import type { ProcStatus } from '../../proc/index.js';
import type { Tracee } from '../../infect/tracee.js';
import type { RestoreTaskHandle } from '../types.js';
import type { StepCall } from '../steps.js';

/**
 * The points of one task's restore where task-state kinds run, in order:
 * - before-threads: memory, files and fs are back; the task has one thread and every signal but SIGTRAP held
 * - after-threads: every thread exists (a timer may name one)
 * - final: every task of the tree is ready and the restore's helpers are gone; credentials come after
 */
export type TaskRestorePoint = 'before-threads' | 'after-threads' | 'final';

export const TASK_RESTORE_POINTS: readonly TaskRestorePoint[] = ['before-threads', 'after-threads', 'final'];

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

/**
 * The task-state kinds, in the order they run at each restore point
 * (types.ts), and the two loops the core calls: one that asks every kind
 * for its part of a task core, one that puts the parts back.
 */
import type { TaskCoreEntry } from '../../images/messages.js';
import type { ProcStatus } from '../../proc/index.js';
import type { Tracee } from '../../infect/tracee.js';
import type { RestoreTaskHandle } from '../types.js';
import type { StepCall } from '../steps.js';
import type { TaskRestorePoint, TaskStateKind } from './types.js';
import { sigactionsKind } from './sigactions.js';
import { timersKind } from './timers.js';
import { limitsKind } from './limits.js';
import { attrsKind, subreaperKind } from './attrs.js';
import { signalsKind } from './signals.js';

const KINDS = [sigactionsKind, timersKind, limitsKind, attrsKind, signalsKind, subreaperKind] as const;
export const TASK_STATE_KINDS: readonly TaskStateKind[] = KINDS;

type FieldsOf<K> = K extends TaskStateKind<infer F> ? F : never;
type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** The fields of the task core the kinds fill together: each kind's own (those it always fills are required). */
export type TaskStateFields = Intersection<FieldsOf<(typeof KINDS)[number]>>;

/** Every kind's fields of the task core, asked in the main thread (a step procedure). */
export function* taskStateSteps(t: Tracee, pid: number, status: ProcStatus): Generator<StepCall, TaskStateFields, bigint> {
  let out: Partial<TaskCoreEntry> = {};
  for (const k of KINDS) out = { ...out, ...(yield* k.dump(t, pid, status)) };
  // Each kind of KINDS gave its fields (its dump's type), merged here: their intersection.
  return out as TaskStateFields;
}

/** Put back what the kinds restore at `at`, in the registry's order. */
export function restoreTaskState(h: RestoreTaskHandle, tc: TaskCoreEntry, at: TaskRestorePoint): void {
  for (const k of TASK_STATE_KINDS) k.restore[at]?.(h, tc);
}

export type { TaskRestorePoint, TaskStateKind } from './types.js';
export { askAllThreads, askThreads, dumpThreadCore, threadStateSteps, restoreFpu, type ThreadAnswers } from './thread.js';
export { restoreThreadSignals } from './signals.js';
export { restoreChildSubreaper } from './attrs.js';
export { dumpCreds, credsPutBytes, credsSteps } from './creds.js';
export { SeccompCollector, restoreThreadSeccomp, seccompSharedByThreads } from './seccomp.js';

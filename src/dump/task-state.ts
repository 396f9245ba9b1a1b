/**
 * The task core of one process: what identifies the task itself (state,
 * flags, name, signal mask) here, every other part from the task-state
 * kinds (kinds/task), asked in its main thread with injected calls.
 */
import { parseStat, readComm } from '../proc/index.js';
import type { ProcStatus } from '../proc/index.js';
import type { Tracee } from '../infect/tracee.js';
import { runOn, type StepCall } from '../kinds/steps.js';
import { taskStateSteps } from '../kinds/index.js';
import type { TaskCoreEntry } from '../images/messages.js';

export function dumpTaskCore(t: Tracee, pid: number, status: ProcStatus): TaskCoreEntry {
  return runOn(t, taskCoreSteps(t, pid, status));
}

/** dumpTaskCore as a step procedure (kinds/steps.ts): the dump asks every process of the tree side by side. */
export function* taskCoreSteps(t: Tracee, pid: number, status: ProcStatus): Generator<StepCall, TaskCoreEntry, bigint> {
  const stat = parseStat(pid);
  const kinds = yield* taskStateSteps(t, pid, status);
  return {
    task_state: 1, // alive
    exit_code: 0,
    flags: stat.flags,
    blk_sigset: t.origSigmask,
    comm: status.comm ?? readComm(pid),
    ...kinds,
  };
}

/**
 * Resource limits (task_core_entry rlimits): read from /proc/PID/limits,
 * set with prlimit64 injected in the task, only where they differ from what
 * the restored task inherited from us.
 *
 * Limits: raising a hard limit needs CAP_SYS_RESOURCE; where this host's
 * root lacks it the limit is left as inherited and a warning names it.
 */
import { NR, EPERM } from '../../sys/index.js';
import { parseLimits } from '../../proc/index.js';
import type { TaskCoreEntry } from '../../images/messages.js';
import { RemoteSyscallError } from '../../infect/tracee.js';
import { logger } from '../../log.js';
import type { RestoreTaskHandle } from '../types.js';
import type { StepCall } from '../steps.js';
import type { TaskStateKind } from './types.js';

const log = logger('task');

/** Read from /proc: a step procedure with no injected call. */
function* dumpLimits(_t: unknown, pid: number): Generator<StepCall, Partial<TaskCoreEntry>, bigint> {
  return { rlimits: { rlimits: parseLimits(pid).map((r) => ({ cur: r.soft, max: r.hard })) } };
}

function restoreLimits(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const rl = tc.rlimits?.rlimits ?? [];
  const cur = parseLimits(t.pid);
  rl.forEach((r, res) => {
    const now = cur[res];
    if (now && now.soft === r.cur && now.hard === r.max) return;
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(r.cur, 0);
    b.writeBigUInt64LE(r.max, 8);
    try {
      t.syscall(`prlimit64(${res})`, NR.prlimit64, 0, res, t.putBytes(b), 0);
    } catch (e) {
      if (e instanceof RemoteSyscallError && e.errno === EPERM) log.warn(`task ${t.pid}: cannot set rlimit ${res} to ${r.cur}/${r.max}: EPERM`);
      else throw e;
    }
  });
}

export const limitsKind: TaskStateKind = {
  name: 'rlimits',
  dump: dumpLimits,
  restore: { 'before-threads': restoreLimits },
};

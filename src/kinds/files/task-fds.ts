/**
 * A restored task's final fd table as the dump recorded it, for kinds whose
 * `finish` must know which fd numbers are final: epoll targets and file
 * locks refer to fds by number, and a file created for several tasks at
 * once (a group) is finished on a parked, not yet final, fd.
 */
import type { FdinfoEntry } from '../../images/messages.js';
import type { RestoreContext } from '../types.js';
import { CriuTsError } from '../../errors.js';

export function taskFdinfo(ctx: RestoreContext, pid: number): readonly FdinfoEntry[] {
  const fds = ctx.taskFds(pid);
  if (!fds) throw new CriuTsError('EIMAGE', `task ${pid} is not in the dump`, { pid });
  return fds;
}

/** Is `fd` the final number of file `fileId` in task `pid` (not a parked copy)? */
export function isFinalFd(ctx: RestoreContext, pid: number, fd: number, fileId: number): boolean {
  return taskFdinfo(ctx, pid).some((f) => f.fd === fd && f.id === fileId);
}

/** The file id task `pid` had at fd number `fd`, if any (undefined for a task not in this dump). */
export function fileIdAt(ctx: RestoreContext, pid: number, fd: number): number | undefined {
  return ctx.taskFds(pid)?.find((f) => f.fd === fd)?.id;
}

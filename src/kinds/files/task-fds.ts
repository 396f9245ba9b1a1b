/**
 * A restored task's final fd table as the dump recorded it (ids-<pid>.img
 * names its fdinfo-<files_id>.img), for kinds whose `finish` must know
 * which fd numbers are final: epoll targets and file locks refer to fds by
 * number, and a file created for several tasks at once (a group) is
 * finished on a parked, not yet final, fd.
 */
import { join } from 'node:path';
import { readImage } from '../../images/index.js';
import type { FdinfoEntry, TaskKobjIdsEntry } from '../../images/messages.js';
import type { RestoreFilesContext } from '../types.js';
import { CriuTsError } from '../../errors.js';

export function taskFdinfo(ctx: RestoreFilesContext, pid: number): FdinfoEntry[] {
  const key = `fdinfo-of:${pid}`;
  let fds = ctx.shared.get(key) as FdinfoEntry[] | undefined;
  if (!fds) {
    const ids = readImage(join(ctx.imagesDir, `ids-${pid}.img`)).entries[0] as unknown as TaskKobjIdsEntry | undefined;
    if (!ids) throw new CriuTsError('EIMAGE', `ids-${pid}.img is empty`, { pid });
    fds = readImage(join(ctx.imagesDir, `fdinfo-${ids.files_id}.img`)).entries as unknown as FdinfoEntry[];
    ctx.shared.set(key, fds);
  }
  return fds;
}

/** Is `fd` the final number of file `fileId` in task `pid` (not a parked copy)? */
export function isFinalFd(ctx: RestoreFilesContext, pid: number, fd: number, fileId: number): boolean {
  return taskFdinfo(ctx, pid).some((f) => f.fd === fd && f.id === fileId);
}

/** The file id task `pid` had at fd number `fd`, if any. */
export function fileIdAt(ctx: RestoreFilesContext, pid: number, fd: number): number | undefined {
  try {
    return taskFdinfo(ctx, pid).find((f) => f.fd === fd)?.id;
  } catch {
    return undefined; // not a task of this dump
  }
}

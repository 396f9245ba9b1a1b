/**
 * Open files of a restored task: every fdinfo entry is re-created by its
 * kind inside the task, parked at or above `base` — higher than any fd
 * number the dump uses — so creating one file can never land on another's
 * final number, then moved to its number with dup3 (FD_CLOEXEC as dumped).
 * Entries sharing a file id share one open file description. Files used by
 * several tasks were opened earlier by their common ancestor (openGroupFiles)
 * and are inherited, already parked, through fork.
 */
import { NR } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { fileKindByType, type RestoreTaskHandle, type RestoreFilesContext, type FileKind } from '../kinds/index.js';
import type { FdinfoEntry, FileEntry } from '../images/messages.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;
const F_DUPFD = 0;
const CLOSE_RANGE_ALL = 0xffffffff;

function kindOf(e: FileEntry | undefined, id: number, pid: number): { e: FileEntry; kind: FileKind } {
  if (!e) throw new CriuTsError('EIMAGE', `task ${pid} refers to file id ${id}, not in files.img`, { id, pid });
  const kind = fileKindByType(e.type);
  if (!kind) throw new CriuTsError('EUNSUPPORTED', `task ${pid}: files of type ${String(e.type)} (id ${id}) cannot be restored yet`, { id, type: e.type });
  return { e, kind };
}

function parker(t: RestoreTaskHandle, base: number): (fd: number) => number {
  return (fd) => {
    if (fd >= base) return fd;
    const high = Number(t.syscall('fcntl(F_DUPFD)', NR.fcntl, fd, F_DUPFD, base));
    t.syscall('close', NR.close, fd);
    return high;
  };
}

/**
 * Open the files a task holds for its descendants (file groups shared by
 * several tasks), parked at or above `base`. Adds them to `held`, and the
 * ids created here to `toFinish`: their `finish` runs later
 * (finishGroupFiles), once every task's fd table is final.
 */
export function openGroupFiles(
  t: RestoreTaskHandle, ids: readonly number[], fdinfoOf: (id: number) => FdinfoEntry,
  ctx: RestoreFilesContext, held: Map<number, number>, base: number, toFinish: number[],
): void {
  const park = parker(t, base);
  const taskCtx: RestoreFilesContext = { ...ctx, provide: (id, fd) => held.set(id, park(fd)) };
  for (const id of ids) {
    if (held.has(id)) continue;
    const { e, kind } = kindOf(ctx.fileById(id), id, t.pid);
    const fd = park(kind.restore(t, e, fdinfoOf(id), taskCtx));
    held.set(id, fd);
    toFinish.push(id);
  }
}

/**
 * `finish` of files created for several tasks, run when every task's fds
 * are at their final numbers and no parked copy is left: in the first task
 * (in dump order, the one whose fd numbers the dump recorded) that uses the
 * file, through its own fd.
 */
export function finishGroupFiles(
  ids: readonly number[], users: readonly { pid: number; handle: () => RestoreTaskHandle; fds: readonly FdinfoEntry[] }[],
  ctx: RestoreFilesContext,
): void {
  for (const id of ids) {
    const { e, kind } = kindOf(ctx.fileById(id), id, 0);
    if (!kind.finish) continue;
    const user = users.find((u) => u.fds.some((f) => f.id === id));
    const fdi = user?.fds.find((f) => f.id === id);
    if (!user || !fdi) continue; // created only to be inherited on the way (e.g. the other end of a pipe nobody kept)
    kind.finish(user.handle(), e, fdi.fd, { ...ctx, provide: () => {} });
  }
}

export function restoreFds(
  t: RestoreTaskHandle, fds: FdinfoEntry[], ctx: RestoreFilesContext, inherited: ReadonlyMap<number, number>, base: number,
): void {
  // The stub's own fds go first; nothing of it may leak into the restored task.
  if (base > 0) t.syscall('close_range', NR.close_range, 0, base - 1, 0);
  const park = parker(t, base);
  const opened = new Map<number, number>(inherited); // file id → parked fd in the task
  const created: { kind: FileKind; id: number }[] = [];
  const taskCtx: RestoreFilesContext = { ...ctx, provide: (id, fd) => opened.set(id, park(fd)) };
  for (const fdi of fds) {
    if (opened.has(fdi.id)) continue;
    const { e, kind } = kindOf(ctx.fileById(fdi.id), fdi.id, t.pid);
    opened.set(fdi.id, park(kind.restore(t, e, fdi, taskCtx)));
    created.push({ kind, id: fdi.id });
  }
  for (const fdi of fds) {
    const src = opened.get(fdi.id) as number;
    t.syscall(`dup3(${src}, ${fdi.fd})`, NR.dup3, src, fdi.fd, fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0);
  }
  // Data that goes in once per object (queued bytes), now that every fd exists.
  for (const c of created) {
    const e = ctx.fileById(c.id);
    const fd = fds.find((f) => f.id === c.id)?.fd;
    if (e && fd !== undefined && c.kind.finish) c.kind.finish(t, e, fd, taskCtx);
  }
  t.syscall('close_range', NR.close_range, base, CLOSE_RANGE_ALL, 0);
}

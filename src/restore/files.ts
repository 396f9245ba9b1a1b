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
import { fileKindByType, type RestoreTaskHandle, type RestoreContext, type FileKind } from '../kinds/index.js';
import type { FdinfoEntry, FileEntry } from '../images/messages.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;
const F_DUPFD = 0;
const F_SETFD = 2;
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
  ctx: RestoreContext, held: Map<number, number>, base: number, toFinish: number[],
): void {
  const park = parker(t, base);
  const taskCtx: RestoreContext = { ...ctx, provide: (id, fd) => held.set(id, park(fd)) };
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
  ctx: RestoreContext,
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

/**
 * Put a task's fds at their numbers. The stub's own fds are closed first;
 * then the fds are installed in increasing order, so the fd a kind's open
 * returns (the lowest free one) is never above the number being installed
 * and never one a later entry needs: it is moved there with one dup3, or is
 * already right. Only files handed over from elsewhere (inherited from an
 * ancestor, or provided as the other end of a pair) wait parked at `base`
 * and above, so a task with many fds needs no room for a second copy of
 * its table under RLIMIT_NOFILE.
 */
export function restoreFds(
  t: RestoreTaskHandle, fds: FdinfoEntry[], ctx: RestoreContext, inherited: ReadonlyMap<number, number>, base: number,
): void {
  // The stub's own fds go first; nothing of it may leak into the restored task.
  if (base > 0) t.syscall('close_range', NR.close_range, 0, base - 1, 0);
  const park = parker(t, base);
  const opened = new Map<number, number>(inherited); // file id → an fd in the task holding it
  const created: { kind: FileKind; e: FileEntry; fd: number }[] = [];
  const taskCtx: RestoreContext = { ...ctx, provide: (id, fd) => opened.set(id, park(fd)) };
  const cloexec = (fdi: FdinfoEntry): number => (fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0);
  for (const fdi of [...fds].sort((a, b) => a.fd - b.fd)) {
    const held = opened.get(fdi.id);
    if (held !== undefined) {
      t.syscall(`dup3(${held}, ${fdi.fd})`, NR.dup3, held, fdi.fd, cloexec(fdi));
      continue;
    }
    const { e, kind } = kindOf(ctx.fileById(fdi.id), fdi.id, t.pid);
    const got = kind.restore(t, e, fdi, taskCtx);
    if (got === fdi.fd) {
      t.syscall(`fcntl(${got}, F_SETFD)`, NR.fcntl, got, F_SETFD, fdi.flags & FD_CLOEXEC ? FD_CLOEXEC : 0);
    } else {
      t.syscall(`dup3(${got}, ${fdi.fd})`, NR.dup3, got, fdi.fd, cloexec(fdi));
      t.syscall('close', NR.close, got);
    }
    opened.set(fdi.id, fdi.fd);
    created.push({ kind, e, fd: fdi.fd });
  }
  // Data that goes in once per object (queued bytes), now that every fd exists.
  for (const c of created) c.kind.finish?.(t, c.e, c.fd, taskCtx);
  t.syscall('close_range', NR.close_range, base, CLOSE_RANGE_ALL, 0);
}

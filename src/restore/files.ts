/**
 * Open files of a restored task: every fdinfo entry is re-created by its
 * kind inside the task, parked above the highest fd number the task needs
 * (so creating one file can never land on another's final number), then
 * moved to its number with dup3 (FD_CLOEXEC as dumped). Entries sharing a
 * file id share one open file description, as they did at dump time.
 */
import { NR } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { fileKindByType, type RestoreTaskHandle, type RestoreFilesContext, type FileKind } from '../kinds/index.js';
import type { FdinfoEntry } from '../images/messages.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;
const F_DUPFD = 0;
const CLOSE_RANGE_ALL = 0xffffffff;

export function restoreFds(t: RestoreTaskHandle, fds: FdinfoEntry[], ctx: RestoreFilesContext): void {
  // The stub's own fds go first; nothing of it may leak into the restored task.
  t.syscall('close_range', NR.close_range, 0, CLOSE_RANGE_ALL, 0);
  const parkBase = fds.reduce((m, f) => Math.max(m, f.fd), -1) + 1;
  const park = (fd: number): number => {
    if (fd >= parkBase) return fd;
    const high = Number(t.syscall('fcntl(F_DUPFD)', NR.fcntl, fd, F_DUPFD, parkBase));
    t.syscall('close', NR.close, fd);
    return high;
  };
  const opened = new Map<number, number>(); // file id → parked fd in the task
  const created: { kind: FileKind; id: number }[] = [];
  const taskCtx: RestoreFilesContext = { ...ctx, provide: (id, fd) => opened.set(id, park(fd)) };
  for (const fdi of fds) {
    if (opened.has(fdi.id)) continue;
    const e = ctx.fileById(fdi.id);
    if (!e) throw new CriuTsError('EIMAGE', `fd ${fdi.fd} of task ${t.pid} refers to file id ${fdi.id}, not in files.img`, { fd: fdi.fd, id: fdi.id });
    const kind = fileKindByType(e.type);
    if (!kind) throw new CriuTsError('EUNSUPPORTED', `fd ${fdi.fd} of task ${t.pid}: files of type ${String(e.type)} cannot be restored yet`, { fd: fdi.fd, type: e.type });
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
  t.syscall('close_range', NR.close_range, parkBase, CLOSE_RANGE_ALL, 0);
}

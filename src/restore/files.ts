/**
 * Open files of a restored task: every fdinfo entry is re-created by its
 * kind inside the task, then moved to its number with dup3 (FD_CLOEXEC as
 * dumped). Entries sharing a file id share one open file description, as
 * they did at dump time.
 */
import { NR } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { fileKindByType, type RestoreTaskHandle, type RestoreFilesContext } from '../kinds/index.js';
import type { FdinfoEntry } from '../images/messages.js';

const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;
const CLOSE_RANGE_ALL = 0xffffffff;

export function restoreFds(t: RestoreTaskHandle, fds: FdinfoEntry[], ctx: RestoreFilesContext): void {
  // The stub's own fds go first; nothing of it may leak into the restored task.
  t.syscall('close_range', NR.close_range, 0, CLOSE_RANGE_ALL, 0);
  const targets = new Set(fds.map((f) => f.fd));
  const opened = new Map<number, number>(); // file id → fd in the task holding it
  const created: { kind: NonNullable<ReturnType<typeof fileKindByType>>; id: number }[] = [];
  const taskCtx: RestoreFilesContext = { ...ctx, provide: (id, fd) => opened.set(id, fd) };
  for (const fdi of fds) {
    let src = opened.get(fdi.id);
    if (src === undefined) {
      const e = ctx.fileById(fdi.id);
      if (!e) throw new CriuTsError('EIMAGE', `fd ${fdi.fd} of task ${t.pid} refers to file id ${fdi.id}, not in files.img`, { fd: fdi.fd, id: fdi.id });
      const kind = fileKindByType(e.type);
      if (!kind) throw new CriuTsError('EUNSUPPORTED', `fd ${fdi.fd} of task ${t.pid}: files of type ${String(e.type)} cannot be restored yet`, { fd: fdi.fd, type: e.type });
      src = kind.restore(t, e, fdi, taskCtx);
      opened.set(fdi.id, src);
      created.push({ kind, id: fdi.id });
    }
    const cloexec = fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0;
    if (src !== fdi.fd) {
      t.syscall(`dup3(${src}, ${fdi.fd})`, NR.dup3, src, fdi.fd, cloexec);
    } else if (cloexec) {
      t.syscall('fcntl(F_SETFD)', NR.fcntl, fdi.fd, 2 /* F_SETFD */, FD_CLOEXEC);
    }
  }
  // Data that goes in once per object (queued bytes), now that every fd exists.
  for (const c of created) {
    const e = ctx.fileById(c.id);
    const fd = fds.find((f) => f.id === c.id)?.fd;
    if (e && fd !== undefined && c.kind.finish) c.kind.finish(t, e, fd, taskCtx);
  }
  // Close temporaries that are not some entry's final number.
  for (const fd of new Set(opened.values())) {
    if (!targets.has(fd)) t.syscall('close', NR.close, fd);
  }
}

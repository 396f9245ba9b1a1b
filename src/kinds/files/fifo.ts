/**
 * Named pipes (FIFOs) opened by path: CRIU's FIFO file_entry {id, pipe_id =
 * the FIFO inode, regf_id} plus a REG entry holding the path and open
 * flags; bytes in flight in fifo-data.img (see pipe-data.ts).
 *
 * Restore reopens the path inside the task. Opening a FIFO read-only or
 * write-only waits for the other side, so our process holds it open
 * read-write meanwhile: the task's open returns at once, the dumped bytes go
 * in through our fd, then ours is closed.
 *
 * An unlinked FIFO travels as a ghost FIFO (ghost/): made again next to
 * its old path for the restore, so every open of it shares one pipe again.
 *
 * Known limits: file owner (fown) is not restored.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { pathSeenBy } from '../../proc/index.js';
import { openOursInTask } from '../install-fd.js';
import { NR, AT_FDCWD, O_CLOEXEC, O_CREAT, O_TRUNC } from '../../sys/index.js';
import type { FileEntry, RegFileEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle, RestoreContext, DumpContext } from '../types.js';
import { dumpPipeData, restorePipeData } from './pipe-data.js';
import { NO_FOWN } from './fown.js';
import { dumpUnlinked, DELETED_SUFFIX } from './ghost/index.js';


function fifoParts(e: FileEntry, ctx: RestoreContext): { pipeId: number; reg: RegFileEntry } {
  const reg = e.fifo?.regf_id === undefined ? undefined : ctx.fileById(e.fifo.regf_id)?.reg;
  if (!e.fifo || !reg) throw new CriuTsError('EIMAGE', `file ${e.id}: FIFO entry without its REG path entry`, { id: e.id });
  return { pipeId: e.fifo.pipe_id, reg };
}

export const fifoKind: FileKind = {
  name: 'fifo',
  type: 'FIFO',
  detect(p: FdProbe): boolean {
    return p.link.startsWith('/') && p.stat.isFIFO();
  },
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    const unlinked = p.link.endsWith(DELETED_SUFFIX) && p.stat.nlink === 0;
    const name = unlinked ? p.link.slice(0, -DELETED_SUFFIX.length) : p.link;
    const flags = p.fdinfo.flags & ~O_CLOEXEC;
    const pipeId = Number(p.stat.ino);
    dumpPipeData(ctx, 'FIFO_DATA', pipeId, p.localFd, flags);
    const regfId = ctx.addFile((rid) => ({
      type: 'REG',
      id: rid,
      reg: { id: rid, flags, pos: 0n, fown: NO_FOWN, name, mode: p.stat.mode },
    }));
    // An unlinked FIFO comes back as a ghost FIFO (one per inode), which the REG entry is remapped to.
    if (unlinked) {
      dumpUnlinked(ctx, regfId, name, `/proc/${p.pid}/fd/${p.fd}`, `task ${p.pid} fd ${p.fd}`);
    }
    return { type: 'FIFO', id, fifo: { id, pipe_id: pipeId, regf_id: regfId } };
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const { pipeId, reg } = fifoParts(e, ctx);
    let ours: number;
    try {
      // Our own fd keeps the FIFO open both ways (no open blocks); the task's view of the path (its mount namespace), or a ghost through our fd.
      ours = openSync(reg.name.startsWith(`/proc/${process.pid}/fd/`) ? reg.name : pathSeenBy(t.pid, reg.name), constants.O_RDWR);
    } catch (err) {
      throw new CriuTsError('ERESTORE', `FIFO ${reg.name}: ${(err as Error).message}`, { path: reg.name }, err);
    }
    try {
      const flags = reg.flags & ~(O_CREAT | O_TRUNC | O_CLOEXEC);
      const fd = reg.name.startsWith(`/proc/${process.pid}/fd/`)
        ? openOursInTask(t, reg.name, flags)
        : Number(t.syscall(`open ${reg.name}`, NR.openat, AT_FDCWD, t.putString(reg.name), flags, 0));
      restorePipeData('FIFO_DATA', pipeId, ours, ctx);
      return fd;
    } finally {
      closeSync(ours);
    }
  },
};

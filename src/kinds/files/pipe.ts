/**
 * Pipes (pipe(2) ends): CRIU's PIPE file_entry {id, pipe_id = the pipe
 * inode, flags, fown}, data in pipes-data.img (see pipe-data.ts).
 *
 * Restore creates both ends with one pipe2 inside the first task that needs
 * either end, hands the opposite end to the core (`provide`) and closes it
 * when no entry uses it. Our process keeps a read-write fd on the new pipe
 * until every entry of the pipe is open: the dumped bytes are written
 * through it, and a further open file description of the same pipe (one task reopened its end
 * through /proc) is opened inside the task through /proc/<us>/fd/<that fd>.
 *
 * Known limits: packet mode (O_DIRECT) pipes are refused; file owner (fown)
 * is not restored.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { NR, O_ACCMODE, O_WRONLY, F_SETFL, AT_FDCWD, O_CLOEXEC, O_DIRECT } from '../../sys/index.js';
import type { FileEntry, PipeEntry } from '../../images/messages.js';
import { fdPairIn, openOursInTask } from '../install-fd.js';
import { stateKey, type DumpContext, type FileKind, type FdProbe, type RestoreTaskHandle, type RestoreContext } from '../types.js';
import { dumpPipeData, restorePipeData } from './pipe-data.js';
import { NO_FOWN } from './fown.js';


/** pipes created so far in this restore, by pipe_id */
const PIPES = stateKey<Map<number, CreatedPipe>>('pipe:created');
/**
 * The images' pipe entries by pipe id, made once per restore: looked up
 * by a pass over every file for each pipe, a 10,000-fd restore spent more
 * on those passes than on anything else of its own (docs/performance.md).
 */
const PIPE_FILES = stateKey<Map<number, FileEntry[]>>('pipe:files-by-id');

function pipeFiles(ctx: RestoreContext, pipeId: number): FileEntry[] {
  const byId = ctx.state(PIPE_FILES, () => {
    const m = new Map<number, FileEntry[]>();
    for (const f of ctx.files) {
      if (f.type !== 'PIPE' || f.pipe === undefined) continue;
      const list = m.get(f.pipe.pipe_id);
      if (list) list.push(f);
      else m.set(f.pipe.pipe_id, [f]);
    }
    return m;
  });
  return byId.get(pipeId) ?? [];
}

interface CreatedPipe {
  /** our read-write fd on the pipe, closed once every entry of it is open */
  ours: number;
  /** file ids of this pipe not opened yet */
  pending: Set<number>;
}

/** One more entry of the pipe is open somewhere: drop our fd after the last. */
function opened(made: CreatedPipe, id: number): void {
  made.pending.delete(id);
  if (made.pending.size === 0 && made.ours >= 0) {
    closeSync(made.ours);
    made.ours = -1;
  }
}

function pipeOf(e: FileEntry): PipeEntry {
  if (!e.pipe) throw new CriuTsError('EIMAGE', `file ${e.id}: PIPE entry without pipe data`, { id: e.id });
  return e.pipe;
}

const isWriteEnd = (flags: number): boolean => (flags & O_ACCMODE) === O_WRONLY;

/** Status flags (O_NONBLOCK, ...) that F_SETFL takes; the access mode came with the fd. */
export function setStatusFlags(t: RestoreTaskHandle, fd: number, flags: number): void {
  const fl = flags & ~(O_ACCMODE | O_CLOEXEC);
  if (fl !== 0) t.syscall('fcntl(F_SETFL)', NR.fcntl, fd, F_SETFL, fl);
}

/** Another open file description of a pipe we hold an fd on, for the task (opened by us: the task's /proc may not show ours). */
export function reopenInTask(t: RestoreTaskHandle, ours: number, flags: number): number {
  return openOursInTask(t, `/proc/self/fd/${ours}`, flags & ~O_CLOEXEC);
}

export const pipeKind: FileKind = {
  name: 'pipe',
  type: 'PIPE',
  inheritKey: (e) => (e.pipe ? `pipe:[${e.pipe.pipe_id}]` : undefined),
  detect(p: FdProbe): boolean {
    return p.link.startsWith('pipe:[') && p.stat.isFIFO();
  },
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    const flags = p.fdinfo.flags & ~O_CLOEXEC;
    if (flags & O_DIRECT) {
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: ${p.link}: packet-mode (O_DIRECT) pipes are not supported`, { pid: p.pid, fd: p.fd });
    }
    const pipeId = Number(p.stat.ino);
    dumpPipeData(ctx, 'PIPES_DATA', pipeId, p.localFd, flags);
    return { type: 'PIPE', id, pipe: { id, pipe_id: pipeId, flags, fown: NO_FOWN } };
  },
  group(e: FileEntry): string | undefined {
    return e.pipe ? `pipe:${e.pipe.pipe_id}` : undefined;
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const pe = pipeOf(e);
    const pipes = ctx.state(PIPES, () => new Map<number, CreatedPipe>());
    const made = pipes.get(pe.pipe_id);
    if (made) {
      const fd = reopenInTask(t, made.ours, pe.flags);
      opened(made, e.id);
      return fd;
    }
    const [rfd, wfd] = fdPairIn(t, (at) => t.syscall('pipe2', NR.pipe2, at, 0));
    const ours = openSync(`/proc/${t.pid}/fd/${rfd}`, constants.O_RDWR);
    const same = pipeFiles(ctx, pe.pipe_id);
    const made1: CreatedPipe = { ours, pending: new Set(same.map((f) => f.id)) };
    pipes.set(pe.pipe_id, made1);
    restorePipeData('PIPES_DATA', pe.pipe_id, ours, ctx);
    const mine = isWriteEnd(pe.flags) ? wfd : rfd;
    const other = mine === wfd ? rfd : wfd;
    setStatusFlags(t, mine, pe.flags);
    const partner = same.find((f) => f.pipe && isWriteEnd(f.pipe.flags) !== isWriteEnd(pe.flags));
    if (partner?.pipe) {
      setStatusFlags(t, other, partner.pipe.flags);
      ctx.provide(partner.id, other);
      made1.pending.delete(partner.id);
    } else {
      t.syscall('close', NR.close, other);
    }
    opened(made1, e.id);
    return mine;
  },
};

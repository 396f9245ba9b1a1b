/**
 * The address-space kind's dump (kinds/space.ts): a task's mm, its VMAs
 * and pages (dump.ts), written as mm-ID, pagemap-ID, pages-N and
 * pagemap-shmem-SHMID images, or sent to the page server; with the
 * dirty-page trackers an incremental dump reads and leaves
 * (incremental.ts). Limits are those of dump.ts and tracking.ts.
 */
import type { MmEntry } from '../../images/messages.js';
import { parseStat, readAuxv, readExe } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import type { Tracee } from '../../infect/tracee.js';
import { stateKey, type DumpContext } from '../types.js';
import type { DumpSpaceTask, SpaceAnswers, SpaceDumpMode, SpaceDumped, SpacePreDumped } from '../space.js';
import { call, type StepCall } from '../steps.js';
import { NR, PR } from '../../sys/index.js';
import { dumpMemory, type MemoryDump } from './dump.js';
import { IncrementalMemory } from './incremental.js';
import { shmemPagesSaved } from '../files/memfd-pages.js';
import { memfdFileForMapping } from '../files/memfd.js';
import { PE_PRESENT } from '../../images/flags.js';

interface SpaceDumpState {
  mode: SpaceDumpMode;
  inc: IncrementalMemory;
}

const DUMP = stateKey<SpaceDumpState>('memory:dump');

function state(ctx: DumpContext): SpaceDumpState {
  return ctx.memo(DUMP, () => {
    throw new CriuTsError('EINTERNAL', 'the address space is dumped before its dump began', {});
  });
}

export function beginDump(mode: SpaceDumpMode, ctx: DumpContext): void {
  // The parent link and record are checked here, before anything is stopped.
  ctx.memo(DUMP, () => ({ mode, inc: new IncrementalMemory({ dir: ctx.dir, prevDir: mode.prevDir, keepTracking: mode.keepTracking, killAfter: mode.killAfter, remote: ctx.pageServer !== undefined }) }));
}

/** dumpMemory over one task, with what every task of the dump shares. */
function dumpOf(task: DumpSpaceTask, ctx: DumpContext, st: SpaceDumpState): MemoryDump {
  const { pid, mm } = task;
  const track = st.inc.begin(pid, task.main, task.treePids, task.imageId);
  const mem = dumpMemory({
    pid, imageId: task.imageId, dir: ctx.dir,
    // A pre-dump (no mm) names no file: ids only name mappings in mm-<pid>.img, which it does not write.
    ...(mm
      ? {
        fileId: (path: string, flags: number) => mm.fileId(path, flags),
        ghostFileId: (path: string, flags: number, openPath: string, inode: bigint) => mm.ghostFileId(path, flags, openPath, inode),
        memfdFileId: (start: bigint, end: bigint, path: string) => memfdFileForMapping(ctx, pid, start, end, path),
        socketFileId: (start: bigint, end: bigint, path: string) => mm.socketFileId(start, end, path),
      }
      : { fileId: () => 0, ghostFileId: () => 0, memfdFileId: () => 0, deferReads: true }),
    // Shared with the memfd kind: an object met as an fd too is saved once.
    shmemDone: shmemPagesSaved(ctx), nextPagesId: () => ctx.nextPagesId(), exclude: [...task.exclude],
    // Its SysV segments go with its ipc namespace (the ipc kind) only when that namespace is not ours.
    sysvShm: task.ownIpcNs,
    ...(task.onBytes ? { onBytes: task.onBytes } : {}),
    ...(task.smaps ? { smaps: task.smaps } : {}),
    ...(ctx.pageServer ? { pageServer: ctx.pageServer } : {}),
    ...(track ? { track } : {}),
    ...(st.inc.wantsRanges ? { wantRanges: true } : {}),
    ...(st.mode.lazy ? { lazy: true } : {}),
  });
  // Closes the tracker (final dump), or protects what is new (pre-dump, --track-mem -R).
  st.inc.end(pid, mem);
  return mem;
}

export function dumpTask(task: DumpSpaceTask, ctx: DumpContext): SpaceDumped {
  const { pid, imageId } = task;
  const asked = task.mm?.asked;
  const mmFiles = task.mm;
  if (!asked || !mmFiles) throw new CriuTsError('EINTERNAL', `task ${pid}: its mm fields were not asked`, { pid });
  const mem = dumpOf(task, ctx, state(ctx));
  const stat = parseStat(pid);
  const mm: MmEntry = {
    mm_start_code: stat.startCode,
    mm_end_code: stat.endCode,
    mm_start_data: stat.startData,
    mm_end_data: stat.endData,
    mm_start_stack: stat.startStack,
    mm_start_brk: stat.startBrk,
    mm_brk: asked.brk,
    mm_arg_start: stat.argStart,
    mm_arg_end: stat.argEnd,
    mm_env_start: stat.envStart,
    mm_env_end: stat.envEnd,
    exe_file_id: mmFiles.fileId(readExe(pid), 0),
    mm_saved_auxv: readAuxv(pid).flatMap(([k, v]) => [k, v]),
    vmas: mem.vmas,
    ...(mem.aios.length > 0 ? { aios: mem.aios } : {}),
    dumpable: asked.dumpable,
    thp_disabled: asked.thpDisabled,
  };
  ctx.saveImage('MM', imageId, [mm]);
  // With a page server, it writes the pagemaps and pages on its side.
  if (!ctx.pageServer) ctx.saveImage('PAGEMAP', imageId, [{ pages_id: mem.pagesId }, ...mem.pagemap]);
  for (const sh of mem.shmem) {
    if (!ctx.pageServer) ctx.saveImage('SHMEM_PAGEMAP', sh.shmid, [{ pages_id: sh.pagesId }, ...sh.entries]);
    for (const e of sh.entries) ctx.countSharedPages(Number(e.nr_pages ?? 0n));
  }
  return mem;
}

/** The mm fields only the task can tell. Injected before its maps are read: the scratch areas exist already and are left out. */
export function* ask(): Generator<StepCall, SpaceAnswers, bigint> {
  const brk = yield* call('brk', NR.brk, 0);
  const dumpable = Number(yield* call('prctl', NR.prctl, PR.GET_DUMPABLE));
  const thpDisabled = Number(yield* call('prctl', NR.prctl, PR.GET_THP_DISABLE)) !== 0;
  return { brk, dumpable, thpDisabled };
}

export function preDumpTask(task: DumpSpaceTask, ctx: DumpContext): SpacePreDumped {
  if (task.mm) throw new CriuTsError('EINTERNAL', `task ${task.pid}: a pre-dump writes no mm image`, { pid: task.pid });
  const mem = dumpOf(task, ctx, state(ctx));
  let sharedPages = 0;
  for (const sh of mem.shmem) {
    if (!ctx.pageServer) ctx.saveImage('SHMEM_PAGEMAP', sh.shmid, [{ pages_id: sh.pagesId }, ...sh.entries]);
    // Shared memory's pages: CRIU's shpages_* (zdtm adds them to pages_written to check the pages files).
    for (const e of sh.entries) if (((e.flags ?? 0) & PE_PRESENT) !== 0) sharedPages += Number(e.nr_pages ?? 0n);
  }
  const copy = mem.copy;
  return {
    pagesScanned: mem.pagesScanned,
    sharedPages,
    copy: copy && (() => {
      const got = copy();
      if (!ctx.pageServer) ctx.saveImage('PAGEMAP', task.imageId, [{ pages_id: got.pagesId }, ...got.entries]);
      return got;
    }),
  };
}

export function ownFd(pid: number, ctx: DumpContext): number | undefined {
  return state(ctx).inc.keptTrackerFd(pid);
}

export function finishDump(ctx: DumpContext): void {
  state(ctx).inc.finish();
}

export function abortDump(ctx: DumpContext, again?: ReadonlyMap<number, Tracee>): void {
  state(ctx).inc.abort(again);
}

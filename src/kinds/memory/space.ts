/**
 * The address-space kind (kinds/space.ts): a task's memory, the frame the
 * rest of it is restored into. The kernel object is the task's mm: its
 * VMAs, their pages, the mm fields and /proc/PID/exe, and the mappings
 * made from its fds. Its dump is in space-dump.ts, its restore here. Limits are those of restore.ts, cow.ts and
 * shmem-restore.ts.
 *
 * A task forked from its parent after the parent's frame was made keeps
 * what it inherited where that matches its own VMAs, so pages both hold
 * the same stay shared (cow.ts).
 */
import { mark } from '../../timeline.js';
import type { VmaEntry } from '../../images/messages.js';
import { rseqConfig } from '../../infect/ptrace-state.js';
import type { RestoreContext } from '../types.js';
import type { AddressSpaceKind, FrameMade, RestoreSpaceTask, SpaceImages } from '../space.js';
import { prepareAddressSpace, restoreMemory, restoreMmFields, dropStubVdso, restoreSocketMappings, findHole, SCRATCH_BYTES } from './restore.js';
import { inheritedVmas, inheritedRanges } from './cow.js';
import { planSharedAnon } from './shmem-restore.js';
import { VMA } from './vma.js';
import { lazyFileRanges } from './lazy.js';
import { parentReads } from './parent-reads.js';
import { imageFile } from '../../images/index.js';
import { abortDump, ask, beginDump, dumpTask, finishDump, ownFd, preDumpTask } from './space-dump.js';
import { logger } from '../../log.js';

const log = logger('mem');

function makeFrame(task: RestoreSpaceTask, ctx: RestoreContext): FrameMade {
  const { images, parent, handle: h, tracee } = task;
  let rseq: { ptr: bigint; len: number; sig: number } | undefined;
  try {
    const r = rseqConfig(task.real);
    rseq = { ptr: r.rseqAbiPointer, len: r.rseqAbiSize, sig: r.signature };
  } catch {
    rseq = undefined;
  }
  const inherited = parent ? inheritedVmas(parent.mm, images.mm) : new Map<VmaEntry, VmaEntry[]>();
  // One stop per injected call while the memory is built (an mmap per VMA):
  // the task is ours, and dies with us (infect/held-task.ts stepCalls).
  tracee.stepCalls(true, task.exitKill);
  let r: ReturnType<typeof restoreMemory>;
  try {
    prepareAddressSpace(h, images.mm, rseq, inheritedRanges(inherited));
    mark(`task ${h.vpid}: stub's memory gone`);
    // /proc/PID/exe can only change while the old executable is not mapped:
    // now, between emptying the stub's address space and mapping the task's.
    // A child of a restored parent running the same program has it already.
    const exeFd = restoreMmFields(h, images.mm, ctx, parent !== undefined && parent.mm.exe_file_id === images.mm.exe_file_id, parent?.mm.thp_disabled);
    const from = parent && inherited.size > 0 ? { inherited, parent: { mm: parent.mm, pagemap: parent.pagemap } } : undefined;
    mark(`task ${h.vpid}: mm fields`);
    r = restoreMemory(h, images.mm, images.pagemap, images.pagesId, ctx, from, images.cores, exeFd, task.fdsSweptLater === true);
    dropStubVdso(h, images.mm);
  } finally {
    tracee.stepCalls(false);
  }
  if (r.cow) log.debug(`task ${h.vpid}: ${r.cow.compared} inherited pages compared, ${r.cow.skipped} left shared, ${r.cow.dropped} dropped`);
  return { pages: r.pages, compared: r.cow?.compared ?? 0, skippedCow: r.cow?.skipped ?? 0 };
}

export const memorySpaceKind: AddressSpaceKind = {
  name: 'memory',
  ask, beginDump, dumpTask, preDumpTask, ownFd, finishDump, abortDump,
  lazyReads: (task) => ({ file: imageFile('PAGES', task.pagesId), ranges: lazyFileRanges(task.pagemap, task.mm.vmas ?? [], task.cores) }),
  parentReads: (dir, tasks, lazy) => parentReads(dir, tasks.map((t) => ({ pid: t.pid, mm: t.images.mm, pagemap: t.images.pagemap })), lazy),
  // Shared anonymous objects are made whole by their first task: as big as every task's windows need.
  planRestore: (tasks, ctx) => planSharedAnon(ctx, tasks.map((t) => t.mm)),
  /**
   * A task's children are forked from it with its memory in place, except
   * when it had no vDSO: injected syscalls then run from its own code, and
   * a child needs the vDSO it inherits to start from (its memory comes
   * later, in the task's body). A lazy restore makes every frame in the
   * body, where each task's userfaultfd is handed over.
   */
  frameAtBirth: (task: SpaceImages, hasChildren, ctx) =>
    ctx.lazy === undefined && (!hasChildren || (task.mm.vmas ?? []).some((v) => (v.status & VMA.AREA_VDSO) !== 0)),
  stubScratch: (tasks) => ({ at: findHole(tasks.flatMap((t) => t.mm.vmas ?? []), [], SCRATCH_BYTES), size: SCRATCH_BYTES }),
  makeFrame,
  afterFds: (task) => restoreSocketMappings(task.handle, task.images.mm, task.images.fds),
};

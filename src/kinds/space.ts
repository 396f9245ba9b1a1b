/**
 * The contract of the address-space kind: the `space` facet of a registry
 * entry (kinds/index.ts KINDS). Every live task has exactly one address
 * space, so exactly one kind has this facet; the core reaches it through
 * the registry (kinds/index.ts addressSpace()) at the points below and
 * learns nothing of what is in it (VMAs, pages, shared objects, rings).
 *
 * Its restore is the frame the rest of a task is restored into, so it has
 * points of its own in the order of a restore:
 * 1. planRestore: once, before any task exists (shared objects sized from
 *    every task's windows on them);
 * 2. makeFrame: in each new task, as soon as it is created, before it
 *    forks its children, when frameAtBirth says so (they then inherit it:
 *    copy-on-write comes back), else first thing of the task's body;
 * 3. afterFds: once the task's fds are at their numbers (what is mapped
 *    from an fd, such as a packet socket's ring).
 */
import type { CoreEntry, FdinfoEntry, MmEntry, PagemapEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';
import type { RestoreContext, RestoreTaskHandle } from './types.js';

/** What the restore core loaded of one task that its address space is made from. */
export interface SpaceImages {
  readonly mm: MmEntry;
  readonly pagemap: PagemapEntry[];
  /** the pages-N.img its pagemap points into */
  readonly pagesId: number;
  /** every thread's core, main thread first */
  readonly cores: readonly CoreEntry[];
  /** its fd table as dumped */
  readonly fds: readonly FdinfoEntry[];
}

/** One task whose frame is made. */
export interface RestoreSpaceTask {
  /** its pid in criu-ts's pid namespace */
  readonly real: number;
  readonly tracee: Tracee;
  /** the task dies with criu-ts (PTRACE_O_EXITKILL): a frame's calls may single-step (infect/held-task.ts stepCalls) */
  readonly exitKill: boolean;
  /** drives the task (calls named with its own ids) */
  readonly handle: RestoreTaskHandle;
  readonly images: SpaceImages;
  /** the parent it was forked from once the parent's frame was made: the child holds a copy of it */
  readonly parent: SpaceImages | undefined;
}

/** What making a frame did, for the restore's stats. */
export interface FrameMade {
  /** pages filled */
  readonly pages: number;
  /** pages inherited from the parent compared with the images */
  readonly compared: number;
  /** of them, left shared with the parent (equal) */
  readonly skippedCow: number;
}

export interface AddressSpaceKind {
  readonly name: string;
  /** Restore, once the resource kinds prepared and before any task exists: every task's images. */
  planRestore(tasks: readonly SpaceImages[], ctx: RestoreContext): void;
  /**
   * Restore: whether the task's frame is made as soon as it is created,
   * before it forks its children (`hasChildren`: they then inherit it), or
   * later, first thing of the task's body.
   */
  frameAtBirth(task: SpaceImages, hasChildren: boolean, ctx: RestoreContext): boolean;
  /** Restore: make the task's address space, in the task (its only thread). */
  makeFrame(task: RestoreSpaceTask, ctx: RestoreContext): FrameMade;
  /** Restore, once the task's fds are final: what is mapped from them. */
  afterFds(task: RestoreSpaceTask, ctx: RestoreContext): void;
}

/**
 * The contract of the address-space kind: the `space` facet of a registry
 * entry (kinds/index.ts KINDS). Every live task has exactly one address
 * space, so exactly one kind has this facet; the core reaches it through
 * the registry (kinds/index.ts addressSpace()) at the points below and
 * learns nothing of what is in it (VMAs, pages, shared objects, rings).
 *
 * Its dump runs per live task once the task's cores are written and before
 * its fds (a tracker kept in the task is hidden from the fd dump), between
 * beginDump, before the tree is seized (a parent record that does not fit
 * fails the dump with nothing stopped), and finishDump or abortDump. A
 * pre-dump runs preDumpTask instead: planned while the tree is stopped,
 * copied once it runs again.
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
import type { DumpContext, LazyRange, RestoreContext, RestoreTaskHandle } from './types.js';
import type { StepCall } from './steps.js';

/** What only the task can tell of its mm (injected calls), asked with the other kinds' questions before any task is dumped. */
export interface SpaceAnswers {
  readonly brk: bigint;
  readonly dumpable: number;
  readonly thpDisabled: boolean;
}

/** How a dump uses the address space, resolved by the core from its options. */
export interface SpaceDumpMode {
  /** --prev-images-dir, resolved: the parent images unchanged pages point into; undefined: none */
  readonly prevDir: string | undefined;
  /** the dirty-page trackers stay in the tasks for the next dump (pre-dump; dump --track-mem -R) */
  readonly keepTracking: boolean;
  /** dump --lazy-pages: the pages of lazy VMAs stay in the frozen tasks, served later from there */
  readonly lazy: boolean;
  /**
   * the dump kills the tree once its images are complete: a tracker it
   * reads need not be closed (the kill ends it; a failed dump closes it
   * as ever), only hidden from the dump of the task's fds
   */
  readonly killAfter: boolean;
}

/** One live task whose address space is dumped (its cores are written, its fds not yet). */
export interface DumpSpaceTask {
  readonly pid: number;
  /** the id its images are named by: its pid as the tree sees it */
  readonly imageId: number;
  /** the main thread, stopped, armed for injected calls */
  readonly main: Tracee;
  /** every task of the held tree */
  readonly treePids: readonly number[];
  /** criu-ts's own areas in the task (its scratch), left out */
  readonly exclude: readonly { addr: bigint; size: number }[];
  /** the task has an ipc namespace of its own, dumped with it: its SysV segments go there */
  readonly ownIpcNs: boolean;
  /**
   * What only a dump (not a pre-dump, which writes no mm image and names no
   * file) is handed: what the core asked the task with injected calls
   * (dump/ask.ts), and the file entries its mappings name.
   */
  readonly mm?: {
    /** what ask() answered */
    readonly asked: SpaceAnswers;
    /** the file entry of a path (REG, as the tree's root sees it), made on first use */
    fileId(path: string, flags: number): number;
    /** the same for an unlinked file, reachable at openPath, saved with it as a ghost */
    ghostFileId(path: string, flags: number, openPath: string, inode: bigint): number;
    /** the file entry of the socket a mapping shows (`socket:[ino]`), dumped through the task's fd on it */
    socketFileId(start: bigint, end: bigint, path: string): number;
  };
  /** bytes of pages written, as they are */
  readonly onBytes?: (n: number) => void;
  /** its smaps, read while the tree was asked its questions (dump/smaps-ahead.ts): used only if the task's maps still match it */
  readonly smaps?: Buffer;
}

/** The page counts of one task's dump (stats-dump). */
export interface SpaceDumped {
  readonly pagesScanned: number;
  readonly pagesWritten: number;
  readonly pagesLazy: number;
  readonly pagesSkippedParent: number;
  /** the task's pagemap as written (its PE_LAZY entries are what dump --lazy-pages serves) */
  readonly pagemap: PagemapEntry[];
}

/** A pre-dump's plan for one task, made while the tree is stopped. */
export interface SpacePreDumped {
  readonly pagesScanned: number;
  /** pages of shared memory saved (shpages) */
  readonly sharedPages: number;
  /** copy the task's own pages once the tree runs again; undefined: nothing to copy later */
  readonly copy: (() => { pagesWritten: number; pagesSkippedParent: number }) | undefined;
}

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
  /**
   * its fd table is its own and its fds are restored after its frame, by
   * calls that close every fd they do not restore (restore/files.ts
   * restoreFds: close_range below the dumped numbers first, above them
   * after): fds the frame opens may be left to them
   */
  readonly fdsSweptLater?: boolean;
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
  /**
   * Dump, every task held and armed, before any is dumped: what only the
   * task can tell of its mm, as a step procedure in its main thread
   * (kinds/steps.ts: every process is asked side by side).
   */
  ask(main: Tracee, pid: number): Generator<StepCall, SpaceAnswers, bigint>;
  /** Dump, before the tree is seized: checks what it builds on (the parent images' record) and keeps its state in ctx. */
  beginDump(mode: SpaceDumpMode, ctx: DumpContext): void;
  /** Dump, per live task: its address space's images (mm, pagemap, pages). */
  dumpTask(task: DumpSpaceTask, ctx: DumpContext): SpaceDumped;
  /** Pre-dump, per live task, the tree stopped: shared memory saved now, the task's own pages planned. */
  preDumpTask(task: DumpSpaceTask, ctx: DumpContext): SpacePreDumped;
  /** Dump: an fd of criu-ts's own that the dump keeps in task `pid` (a tracker for the next dump): left out of its fds. */
  ownFd(pid: number, ctx: DumpContext): number | undefined;
  /** Dump, once every image but the checksums is written: what goes on to the next dump is recorded. */
  finishDump(ctx: DumpContext): void;
  /**
   * Dump, after a failure: nothing the run scanned or protected in the
   * tasks stays. `again`: the tree was let go and seized once more (a
   * pre-dump's copy failed): the main thread of each task by pid.
   */
  abortDump(ctx: DumpContext, again?: ReadonlyMap<number, Tracee>): void;
  /**
   * Restore, before anything is made (the images' checksums are checked):
   * the byte ranges of the task's pages file that a lazy restore leaves to
   * the lazy-pages daemon, which checks them as it serves them.
   */
  lazyReads(task: SpaceImages): { file: string; ranges: LazyRange[] };
  /**
   * Restore, before anything is made: the byte ranges of parent images'
   * pages files (pre-dump chains) the restore of `dir` reads for these
   * tasks (`pid`: as in the images), by path; `lazy`: those a lazy restore
   * leaves to the daemon left out. EIMAGE when a parent lacks a page.
   */
  parentReads(dir: string, tasks: readonly { pid: number; images: SpaceImages }[], lazy: boolean): ReadonlyMap<string, readonly LazyRange[]>;
  /** Restore, once the resource kinds prepared and before any task exists: every task's images. */
  planRestore(tasks: readonly SpaceImages[], ctx: RestoreContext): void;
  /**
   * Restore: whether the task's frame is made as soon as it is created,
   * before it forks its children (`hasChildren`: they then inherit it), or
   * later, first thing of the task's body.
   */
  frameAtBirth(task: SpaceImages, hasChildren: boolean, ctx: RestoreContext): boolean;
  /**
   * Restore, before the first task is cloned: where the stub maps its
   * scratch area (free in every task's dumped layout, as big as a frame's),
   * so that a task cloned from it keeps that area for its frame.
   */
  stubScratch(tasks: readonly SpaceImages[]): { at: bigint; size: number };
  /** Restore: make the task's address space, in the task (its only thread). */
  makeFrame(task: RestoreSpaceTask, ctx: RestoreContext): FrameMade;
  /** Restore, once the task's fds are final: what is mapped from them. */
  afterFds(task: RestoreSpaceTask, ctx: RestoreContext): void;
}

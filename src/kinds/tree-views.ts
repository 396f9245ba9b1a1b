/**
 * What a resource kind that is not an open file (namespaces, mounts,
 * cgroups, SysV IPC, ...) is shown of the tree at each hook of
 * ResourceKind (types.ts; docs/architecture.md, "Resource kinds").
 */
import type { CoreEntry, InventoryEntry, TaskKobjIdsEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';

/** One task of the held tree, as a resource kind sees it at dump. */
export interface DumpTreeTask {
  /** the task's pid in criu-ts's pid namespace */
  readonly pid: number;
  readonly ppid: number;
  /** its pids in every pid namespace from criu-ts's (first) down to its own (last): /proc/PID/status NSpid */
  readonly nsPid: readonly number[];
  /** every thread, main thread first (empty for a zombie) */
  readonly tids: readonly number[];
  readonly zombie: boolean;
}

/** The held tree, handed to ResourceKind.dumpTree once every task is seized. */
export interface DumpTreeView {
  readonly rootPid: number;
  /** parents before children */
  readonly tasks: readonly DumpTreeTask[];
  /** the dumper's own ids (inventory.img's root_ids); a task whose ns ids differ lives in namespaces of its own */
  readonly rootIds: TaskKobjIdsEntry;
}

/** One live task while it is dumped: its cores are filled and not yet written. */
export interface DumpTaskView {
  readonly pid: number;
  /** the main thread, stopped: for what only the task can tell (an injected syscall) */
  readonly main: Tracee;
  /** every thread's core, main thread first; a kind adds its fields (tc.cg_set, thread_core.cg_set, ...) */
  readonly cores: readonly { tid: number; core: CoreEntry }[];
  /** the task's object and namespace ids as written to ids-PID.img */
  readonly ids: TaskKobjIdsEntry;
}

/** One task of the dump as a resource kind sees it at restore. */
export interface RestoreTreeTask {
  /** the pid in the images: as the task sees itself */
  readonly pid: number;
  readonly ppid: number;
  /** the main thread's core (undefined for a zombie or a helper we add) */
  readonly core: CoreEntry | undefined;
  /** every thread's core, main thread first (empty for a zombie or a helper) */
  readonly threadCores: readonly { tid: number; core: CoreEntry }[];
  /** ids-PID.img (undefined for a zombie or a helper) */
  readonly ids: TaskKobjIdsEntry | undefined;
  /** a helper criu-ts adds to lead a process group or session whose leader is gone */
  readonly helper: boolean;
  /**
   * its pids in the pid namespaces nested below the tree's, outermost
   * first (pstree.img's ns_pid; the last is 1 for a nested namespace's
   * init); empty in the tree's namespace
   */
  readonly levels: readonly number[];
}

/** The tree about to be restored, handed to ResourceKind.prepareRestore before any task exists. */
export interface RestoreTreeView {
  readonly rootPid: number;
  /** parents before children */
  readonly tasks: readonly RestoreTreeTask[];
  /** inventory.img's root_ids: the dumper's own ids */
  readonly rootIds: TaskKobjIdsEntry | undefined;
  /** inventory.img as dumped (root_cg_set, ...) */
  readonly inventory: InventoryEntry;
}

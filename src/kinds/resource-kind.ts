/**
 * The contract of the kinds that run per tree and per created task
 * (namespaces, cgroups, mounts; a tree-wide image or lock): the `tree`
 * facet of a registry entry (kind.ts).
 */
import type { NsKind } from '../images/index.js';
import type { InventoryEntry, TaskCoreEntry, TaskKobjIdsEntry, ThreadCoreEntry } from '../images/messages.js';
import type { DumpContext, DumpKindOptions, RestoreContext, RestoreTaskHandle } from './types.js';
import type { DumpTaskView, DumpTreeView, RestoreTreeTask, RestoreTreeView } from './tree-views.js';

/**
 * A resource that is not an open file: a namespace, the cgroups, SysV IPC
 * objects... Each kind keeps its dump and its restore side by side and
 * says, by the hooks it has, when it runs: once per tree, once per task,
 * right after a task is created. It is the `tree` facet of a registry
 * entry (kind.ts, kinds/index.ts KINDS): the core calls every kind with
 * one at each point, in list order, and learns nothing about a kind by
 * name. Per-tree state lives in the context
 * (ctx.memo at dump, ctx.state at restore) under the kind's own keys.
 */
export interface ResourceKind {
  /** short name for logs */
  readonly name: string;
  /**
   * Namespace types this kind saves and re-creates. A task in a namespace
   * of its own of any other type is refused at dump (one line naming the
   * task and the namespace), and such images are refused at restore.
   */
  readonly namespaces?: readonly NsKind[];

  /** Namespace types --join-ns may name for this kind: the tree goes into that existing namespace instead of a new one. */
  readonly joins?: readonly NsKind[];
  /**
   * `check --feature NAME` probes of what this kind needs of the host (CRIU's
   * feature names): whether it works here, and why not.
   */
  readonly probes?: Readonly<Record<string, () => { ok: boolean; why?: string }>>;

  /** Dump options this kind defaults from the host (the network lock's method), for those the caller left out. */
  dumpDefaults?(): Partial<DumpKindOptions>;
  /**
   * Dump, before the tree is looked at: remove what dumps whose criu-ts
   * died left outside their tasks (a network lock's table and marker).
   */
  clearStale?(): void;
  /**
   * Dump, once the whole tree is held and before any task is dumped:
   * refuse what cannot be saved (one CriuTsError naming the task and the
   * object) and write the kind's per-tree images (ctx.writeImage, or
   * ctx.atEnd for images that need every task seen first).
   */
  dumpTree?(tree: DumpTreeView, ctx: DumpContext): void;
  /** Dump, per live task, after its cores are filled and before they are written. */
  dumpTask?(task: DumpTaskView, ctx: DumpContext): void;

  /**
   * Restore, with the images' own consistency checks, before anything is
   * made: refuse what of inventory.img this kind will act on and cannot
   * take (the run id a lock's table is named by, spliced into a command).
   */
  checkInventory?(inventory: InventoryEntry): void;
  /**
   * Restore, once the images are loaded and checked, before any task
   * exists: refuse what this host cannot take and prepare what tasks will
   * join (a cgroup directory, ...). Nothing made here may outlive a failed
   * restore: undo it in finishRestore(ctx, true).
   */
  prepareRestore?(tree: RestoreTreeView, ctx: RestoreContext): void;
  /**
   * Restore, as the tree is planned: pids the tree's files name that no
   * task of it has (a dead process's /proc entry a cwd or fd is in). Each
   * is held by a helper task, a child of the root, while the tree is made;
   * it exits with the other helpers, leaving the pid free again.
   */
  heldPids?(ctx: RestoreContext): readonly number[];
  /**
   * Restore, in each new task right after it is cloned and before its
   * children are: for what children must inherit (namespaces made with an
   * injected unshare, cgroup membership). `t` drives the new task.
   */
  restoreCreated?(t: RestoreTaskHandle, task: RestoreTreeTask, ctx: RestoreContext): void;
  /**
   * Restore, before any task exists: the CLONE_NEW* flags of the clone3
   * that creates `task`, for a namespace that must exist from the task's
   * birth (a pid namespace: the task is its init, pid 1). `parentIds` are
   * the ids of the nearest ancestor with ids, or inventory.img's root_ids
   * for the root. The core ORs every kind's answer; a task born in a new
   * pid namespace and its descendants get their image pids inside it
   * (clone3 set_tid at the innermost level) and any free pid in ours.
   */
  cloneFlags?(task: RestoreTreeTask, parentIds: TaskKobjIdsEntry | undefined, ctx: RestoreContext): bigint;
  /**
   * Restore, in the parent (`parent`: the restore stub for the root) right
   * before the clone3 that creates `task`: for a namespace that must be
   * set up before its first task enters it (a time namespace's clock
   * offsets: an injected unshare(CLONE_NEWTIME), then the offsets, and the
   * child is born inside). With `opts.restoreSibling` the tree's top task
   * is born from criu-ts's own process (CLONE_PARENT), not from `parent`:
   * for it a kind does that work in restoreCreated instead, or refuses in
   * prepareRestore.
   */
  beforeClone?(parent: RestoreTaskHandle, task: RestoreTreeTask, ctx: RestoreContext): void;
  /**
   * Restore, --restore-sibling: between the clone of the top task from criu-ts and its first exec, with its pid
   * here (a new user namespace's maps). True: it takes uid/gid 0 inside before the exec, keeping its capabilities.
   */
  siblingBeforeExec?(pid: number, task: RestoreTreeTask, ctx: RestoreContext): boolean;
  /**
   * restore --verify: state re-read from restored task `pid` (criu-ts's
   * pid) the way the dump reads it is brought to the view the images hold,
   * as dumpTask changed it (ids seen through the tree's user namespace).
   */
  verifyView?(pid: number, view: { tc: TaskCoreEntry | undefined; threadCores: readonly ThreadCoreEntry[] }): void;
  /**
   * Restore, once every task is ready and before any runs (`failed` false),
   * or after a failure, once every task created is gone (`failed` true):
   * remove what prepareRestore made and nobody uses.
   */
  finishRestore?(ctx: RestoreContext, failed: boolean): void;
  /**
   * Restore, where the network lock of the dump is lifted, after every
   * kind's finishRestore: on success after the post-restore point, before
   * network-unlock and before any task runs; after a failure (`failed`)
   * once every task is gone. For the lock the dump took (network-lock), or
   * one it left inside a namespace the tree lives in again (a joined net
   * namespace).
   */
  unlockNetwork?(ctx: RestoreContext, failed: boolean): void;
  /**
   * Restore, before any task opens or maps a file: make on disk what the
   * tree's files need there (ghost files, link remaps). In a tree with a
   * mount namespace of its own this runs once its root task has built it,
   * with `root` driving that task (names are made in that namespace);
   * otherwise before any task exists, without. Returns the paths made that
   * the guardian removes if criu-ts dies (none for names it cannot reach).
   * A failure removes what it made itself.
   */
  makeFiles?(ctx: RestoreContext, root: RestoreTaskHandle | undefined): readonly string[];
  /**
   * Restore, once every task is final and holds its files, before any
   * runs: remove the names only the restore needed (ghost files' names).
   * Returns the paths removed (the guardian forgets them).
   */
  unnameFiles?(ctx: RestoreContext): readonly string[];
  /**
   * Restore, at its very end, whether it succeeded (`ok`) or not, once the
   * tasks hold what they need or are gone: remove what makeFiles made and
   * unnameFiles did not.
   * Runs for every kind, even one whose makeFiles never ran.
   */
  restoreEnded?(ctx: RestoreContext, ok: boolean): void;
  /**
   * Restore, once every task is released and runs: work the tasks need not
   * wait for (a lock table that holds nothing of theirs). A failure here
   * cannot fail the restore any more: say it as a warning.
   */
  resumed?(ctx: RestoreContext): void;
}

/**
 * One entry of the registry (kinds/index.ts KINDS): a resource that is
 * dumped and restored, with its dump and restore side by side, and the
 * scopes it runs at, each a facet of the entry:
 *
 * - `tree`: per tree, and per task as the tree is created (ResourceKind,
 *   types.ts: namespaces, cgroups, mounts; a tree-wide image or lock);
 * - `task`: per task, its fields of the task core (TaskStateKind,
 *   task/types.ts: signal actions, timers, limits, ...);
 * - `thread`: per thread, its fields of the thread core (ThreadKind,
 *   task/types.ts: a thread's own state, pending signals, seccomp,
 *   credentials);
 * - `fd`: per open fd (FileKind, types.ts: every kind of open file);
 * - `space`: per task, its address space (AddressSpaceKind, space.ts):
 *   one kind has it, the frame the rest of a task is restored into.
 *
 * A kind with work at several scopes has several facets in its one entry.
 * The core walks KINDS (through the views kinds/index.ts derives from it)
 * at each point of a dump and a restore, and learns no kind by name.
 */
import type { TaskCoreEntry, ThreadCoreEntry } from '../images/messages.js';
import type { FileKind } from './types.js';
import type { ResourceKind } from './resource-kind.js';
import type { TaskStateKind, ThreadKind } from './task/types.js';
import type { AddressSpaceKind } from './space.js';

export interface Kind<F extends Partial<TaskCoreEntry> = Partial<TaskCoreEntry>, G extends Partial<ThreadCoreEntry> = Partial<ThreadCoreEntry>> {
  /** short name for logs, unique in the registry */
  readonly name: string;
  readonly tree?: ResourceKind;
  readonly task?: TaskStateKind<F>;
  readonly thread?: ThreadKind<G>;
  readonly fd?: FileKind;
  readonly space?: AddressSpaceKind;
}

/** A registry entry for a kind that runs per tree and per created task. */
export function treeKind(tree: ResourceKind): Kind & { readonly tree: ResourceKind } {
  return { name: tree.name, tree };
}

/** A registry entry for a kind of the task core; `F` (its fields) travels with it, so the registry types the merged task core. */
export function taskKind<F extends Partial<TaskCoreEntry>>(task: TaskStateKind<F>): Kind<F> & { readonly task: TaskStateKind<F> } {
  return { name: task.name, task };
}

/** A registry entry for a kind of the thread core; `G` (its fields) travels with it, as a task kind's. */
export function threadKind<G extends Partial<ThreadCoreEntry>>(thread: ThreadKind<G>): Kind<Partial<TaskCoreEntry>, G> & { readonly thread: ThreadKind<G> } {
  return { name: thread.name, thread };
}

/** A registry entry for a kind of open file. */
export function fdKind(fd: FileKind): Kind & { readonly fd: FileKind } {
  return { name: fd.name, fd };
}

/**
 * What the namespace kinds share: where the tree's root lives, and the
 * refusal of nested namespaces. criu-ts re-creates a namespace of the
 * tree's root (the whole tree shares it); a task inside the tree in yet
 * another namespace of that type is refused, at dump and at restore.
 */
import { CriuTsError } from '../../errors.js';
import { NS_ID_FIELD, type NsKind } from '../../images/index.js';
import { readComm, readNsLink } from '../../proc/index.js';
import { stateKey, type DumpContext } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import type { DumpTaskView, DumpTreeView, RestoreTreeView, RestoreTreeTask } from '../tree-views.js';

export function commOf(pid: number): string {
  try {
    return ` (${readComm(pid)})`;
  } catch {
    return '';
  }
}

/**
 * At dump: whether the tree's root lives in a `type` namespace other than
 * criu-ts's own. Every live task must share the root's; one that does not
 * is refused with one line naming it.
 */
export function rootHasOwnNamespace(tree: DumpTreeView, type: NsKind): boolean {
  const root = readNsLink(tree.rootPid, type);
  for (const t of tree.tasks) {
    if (t.zombie || t.pid === tree.rootPid) continue;
    const theirs = readNsLink(t.pid, type);
    if (theirs !== root) {
      throw new CriuTsError(
        'EUNSUPPORTED',
        `task ${t.pid}${commOf(t.pid)} is in a ${type} namespace of its own (${theirs}) inside the tree's (${root}): nested ${type} namespaces are not supported`,
        { pid: t.pid, namespace: type, task: theirs, root },
      );
    }
  }
  return root !== readNsLink(process.pid, type);
}

/**
 * The dump side of a kind that saves the `type` namespace the tree's root
 * has of its own, once (uts, ipc): `dumpTree` refuses a nested one and
 * notes whether the root has its own; `dumpTask` then calls
 * `save(task, id, ctx)` for the root alone, with its namespace's id.
 */
export function rootNamespaceDump(type: NsKind, save: (task: DumpTaskView, id: number, ctx: DumpContext) => void): Required<Pick<ResourceKind, 'dumpTree' | 'dumpTask'>> {
  const key = stateKey<{ rootPid: number; own: boolean }>(`${type}:dump`);
  return {
    dumpTree(tree, ctx) {
      const own = rootHasOwnNamespace(tree, type);
      ctx.memo(key, () => ({ rootPid: tree.rootPid, own }));
    },
    dumpTask(task, ctx) {
      const st = ctx.memo(key, () => ({ rootPid: 0, own: false }));
      if (!st.own || task.pid !== st.rootPid) return;
      const id = task.ids[NS_ID_FIELD[type]] as number | undefined;
      if (id === undefined) throw new CriuTsError('EDUMP', `task ${task.pid}: no ${type} namespace id`, { pid: task.pid });
      save(task, id, ctx);
    },
  };
}

/**
 * At restore: the ns id (ids-PID.img) of the root's `type` namespace when it
 * was not the dumper's own, else undefined. Every task with ids must share
 * the root's (helpers and zombies inherit it).
 */
export function rootNamespaceToCreate(tree: RestoreTreeView, type: NsKind): number | undefined {
  const field = NS_ID_FIELD[type];
  const root = tree.tasks.find((t) => t.pid === tree.rootPid);
  const want = root?.ids?.[field] as number | undefined;
  for (const t of tree.tasks) {
    const got = t.ids?.[field] as number | undefined;
    if (got === undefined || got === want) continue;
    throw new CriuTsError(
      'EUNSUPPORTED',
      `task ${t.pid} was dumped in a ${type} namespace of its own (ns id ${got}) inside the tree's (ns id ${String(want)}): nested ${type} namespaces are not supported`,
      { pid: t.pid, namespace: type, nsId: got, rootNsId: want },
    );
  }
  const ours = tree.rootIds?.[field] as number | undefined;
  if (want === undefined || ours === undefined || want === ours) return undefined;
  return want;
}

/** Is `task` the tree's root (the one task that creates the namespaces)? */
export function isRoot(task: RestoreTreeTask, rootPid: number | undefined): boolean {
  return rootPid !== undefined && task.pid === rootPid;
}

/**
 * Which mount namespaces of a tree are dumped and re-created: the root's
 * (when not criu-ts's own) and every nested one, a namespace a task of the
 * tree made for itself and its descendants (unshare(CLONE_NEWNS)). Each
 * nested namespace has one entry task, whose parent is outside it: it
 * dumps the namespace, and at restore it is cloned with CLONE_NEWNS from
 * that parent and builds it from its copy of the parent's. A task in the
 * tree root's namespace whose parent left it (it was forked before its
 * parent unshared) joins the root's at restore (setns). A task that
 * joined a nested namespace from outside it and a nested namespace under
 * criu-ts's own are refused, with one line.
 */
import { unmountsToReach } from './hidden.js';
import { CriuTsError } from '../../../errors.js';
import type { DumpTreeView, RestoreTreeView } from '../../types.js';
import { parseMountinfo, readNsLink } from '../../../proc/index.js';
import { commOf } from '../common.js';

export interface DumpedNamespaces {
  rootPid: number;
  /** the root's namespace is not criu-ts's: its mounts are dumped */
  own: boolean;
  /** entry task of a nested namespace -> its parent, and the task that dumps the parent's namespace */
  entries: Map<number, { parentPid: number; outerPid: number }>;
  /** peer group -> the tasks dumping a namespace with a member in it */
  groups: Map<number, Set<number>>;
  /** a tmpfs's s_dev (major:minor) -> the task whose namespace saves its files */
  tarred: Map<string, number>;
  /** dumping task -> its namespace's id */
  ids: Map<number, number>;
  /** every mount of every dumped namespace -> the task dumping its namespace (empty when the root's is criu-ts's own) */
  mountIds: Map<number, number>;
  /** mounts no path reaches (overmounted): a file opened through one cannot be reopened */
  hidden: Set<number>;
}

export function dumpNamespaces(tree: DumpTreeView): DumpedNamespaces {
  const link = new Map<number, string>();
  for (const t of tree.tasks) if (!t.zombie) link.set(t.pid, readNsLink(t.pid, 'mnt'));
  const rootLink = link.get(tree.rootPid) ?? readNsLink(tree.rootPid, 'mnt');
  const own = rootLink !== readNsLink(process.pid, 'mnt');
  const dumper = new Map<string, number>([[rootLink, tree.rootPid]]);
  const entries = new Map<number, { parentPid: number; outerPid: number }>();
  for (const t of tree.tasks) {
    const mine = link.get(t.pid);
    if (mine === undefined || t.pid === tree.rootPid) continue;
    const above = link.get(t.ppid) ?? rootLink;
    if (mine === above) continue;
    if (!own) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}${commOf(t.pid)} is in a mnt namespace of its own (${mine}) inside the tree's (${rootLink}), which is criu-ts's own: nested mnt namespaces are supported only in a tree with a mount namespace of its own`, { pid: t.pid, namespace: 'mnt', task: mine, root: rootLink });
    }
    // Back in the tree's root namespace (forked before its parent unshared): it joins it at restore.
    if (mine === rootLink) continue;
    const first = dumper.get(mine);
    if (first !== undefined) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}${commOf(t.pid)} entered the mnt namespace ${mine} of task ${first} from outside it (its parent ${t.ppid} is not in it): not supported`, { pid: t.pid, namespace: 'mnt', task: mine });
    }
    dumper.set(mine, t.pid);
    entries.set(t.pid, { parentPid: t.ppid, outerPid: dumper.get(above) ?? tree.rootPid });
  }
  // Peer groups of every dumped namespace, read while the tree is held.
  const groups = new Map<number, Set<number>>();
  const mountIds = new Map<number, number>();
  const hidden = new Set<number>();
  if (own) {
    for (const pid of dumper.values()) {
      const mounts = parseMountinfo(pid);
      for (const m of mounts) {
        mountIds.set(m.mntId, pid);
        if (unmountsToReach(mounts, m)?.length !== 0) hidden.add(m.mntId);
        if (m.shared === 0) continue;
        const set = groups.get(m.shared) ?? new Set<number>();
        set.add(pid);
        groups.set(m.shared, set);
      }
    }
  }
  return { rootPid: tree.rootPid, own, entries, groups, tarred: new Map(), ids: new Map(), mountIds, hidden };
}

export interface RestoredNamespaces {
  /** the root's namespace id when it is to be made (not the dumper's own) */
  root: number | undefined;
  /** entry task of a nested namespace -> that namespace's id and its parent's */
  nested: Map<number, { nsId: number; outerNsId: number }>;
  /** tasks in the root's namespace whose parent is not: they join it (setns) */
  joins: Set<number>;
}

export function restoreNamespaces(tree: RestoreTreeView): RestoredNamespaces {
  const byPid = new Map(tree.tasks.map((t) => [t.pid, t]));
  const nsOf = (pid: number, depth = 0): number | undefined => {
    const t = byPid.get(pid);
    if (t === undefined || depth > tree.tasks.length) return undefined;
    // Helpers and zombies have no ids: they are in their parent's.
    return t.ids?.mnt_ns_id ?? (t.pid === tree.rootPid ? undefined : nsOf(t.ppid, depth + 1));
  };
  const want = nsOf(tree.rootPid);
  const ours = tree.rootIds?.mnt_ns_id;
  const own = want !== undefined && ours !== undefined && want !== ours;
  const nested = new Map<number, { nsId: number; outerNsId: number }>();
  const entered = new Map<number, number>();
  const joins = new Set<number>();
  for (const t of tree.tasks) {
    if (t.pid === tree.rootPid || t.ids?.mnt_ns_id === undefined) continue;
    const mine = t.ids.mnt_ns_id;
    const above = nsOf(t.ppid) ?? want;
    if (above === undefined || mine === above) continue;
    if (!own) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} was dumped in a mnt namespace of its own (ns id ${mine}) inside the tree's (ns id ${String(want)}), which was the dumper's own: nested mnt namespaces are supported only in a tree with a mount namespace of its own`, { pid: t.pid, namespace: 'mnt', nsId: mine, rootNsId: want });
    }
    if (mine === want) {
      joins.add(t.pid);
      continue;
    }
    const first = entered.get(mine);
    if (first !== undefined) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} entered the mnt namespace (ns id ${mine}) of task ${first} from outside it: not supported`, { pid: t.pid, namespace: 'mnt', nsId: mine });
    }
    entered.set(mine, t.pid);
    nested.set(t.pid, { nsId: mine, outerNsId: above });
  }
  return { root: own ? want : undefined, nested, joins };
}

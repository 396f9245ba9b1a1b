/**
 * The pid namespace (CLONE_NEWPID). A tree whose root is the init (pid 1)
 * of a pid namespace other than criu-ts's is dumped with every pid as the
 * tree sees it (the core translates through /proc/PID/status NSpid,
 * dump/pids.ts) and restored in a new pid namespace: the root is cloned
 * with CLONE_NEWPID and set_tid [1] (it is pid 1 inside, any free pid in
 * ours), every other task and thread with set_tid at the innermost level
 * only, so it gets its image pid inside and any free pid outside, as CRIU
 * does. Images: CRIU's, unchanged (a pid namespace has no image of its
 * own; ids-PID.img pid_ns_id differs from inventory.img's root_ids).
 *
 * Nested pid namespaces (a task deeper than the root's: `unshare -fp` in
 * the tree, a container runtime inside a sandbox), which CRIU 4.2 cannot
 * dump (its pstree_entry holds one pid per task): each task's and thread's
 * pids below the tree's level go to pstree.img's own fields (1000+:
 * images/schema/pstree.ts); at restore a nested init is cloned with
 * CLONE_NEWPID and every task and thread with set_tid at every level from
 * the tree's down (restore/stub.ts setTidOf).
 *
 * Limits (refused with one line): a tree in a pid namespace of its own
 * whose root is not that namespace's init; a task put in a nested
 * namespace by setns() (not its parent's, not its init); nested
 * namespaces in images without their pids (CRIU's, an older criu-ts's);
 * a task whose next children would be born in another pid
 * namespace (unshare(CLONE_NEWPID) without a fork yet: refused by the
 * core, dump/namespaces.ts); at restore for an unprivileged RPC caller (a
 * pid namespace takes CAP_SYS_ADMIN to make). The tree keeps
 * criu-ts's mount namespace: its /proc is ours (mounting a /proc of its
 * own is the mount namespace's business, not done yet).
 */
import { CriuTsError } from '../../errors.js';
import { CLONE_NEWPID } from '../../sys/index.js';
import { nsLinkOf, readComm } from '../../proc/index.js';
import type { TaskKobjIdsEntry } from '../../images/messages.js';
import { imageFile } from '../../images/index.js';
import type { DumpTreeView, RestoreContext, RestoreTreeView } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';

const INIT_PID = 1;

function commOf(pid: number): string {
  try {
    return ` (${readComm(pid)})`;
  } catch {
    return '';
  }
}

function refuse(pid: number, what: string): never {
  throw new CriuTsError('EUNSUPPORTED', `task ${pid}${commOf(pid)} ${what}`, { pid, namespace: 'pid' });
}

function dumpTree(tree: DumpTreeView): void {
  const root = tree.tasks.find((t) => t.pid === tree.rootPid);
  if (!root) return;
  const depth = root.nsPid.length;
  const own = nsLinkOf(tree.rootPid, 'pid') !== nsLinkOf(process.pid, 'pid');
  if (own && root.nsPid.at(-1) !== INIT_PID) {
    refuse(root.pid, `is pid ${String(root.nsPid.at(-1))} of its own pid namespace, not its init: a pid namespace is dumped from its init (pid 1)`);
  }
  // setns() only enters the caller's pid namespace or one below it: a
  // descendant of the root is in the root's namespace or deeper, and the
  // length of NSpid tells which. A deeper one is dumped with its pids at
  // every level (dump/pids.ts, pstree.img's own fields); restoring it forks
  // it from its parent, so a task must be in its parent's namespace or be
  // the init of one just below it (born there with CLONE_NEWPID). A task
  // put there by setns() from outside (nsenter) is neither.
  const byPid = new Map(tree.tasks.map((t) => [t.pid, t]));
  for (const t of tree.tasks) {
    const parent = t.pid === tree.rootPid ? undefined : byPid.get(t.ppid);
    if (!parent || t.nsPid.length <= depth) continue;
    const inner = t.nsPid.at(-1);
    if (t.nsPid.length === parent.nsPid.length + 1 && inner === INIT_PID) continue;
    if (t.nsPid.length === parent.nsPid.length && nsLinkOf(t.pid, 'pid') === nsLinkOf(parent.pid, 'pid')) continue;
    refuse(t.pid, `is pid ${String(inner)} of a pid namespace nested in the tree's but neither in its parent's (task ${parent.pid}) nor that namespace's init (it entered it with setns): it cannot be forked back there`);
  }
  // A task whose next children would be born in another pid namespace
  // (pid_for_children) is refused by the core for every handled type
  // (dump/namespaces.ts), before anything is seized.
}

/** The pid_ns_id of a task, if its images say. */
function pidNsOf(ids: TaskKobjIdsEntry | undefined): number | undefined {
  return ids?.pid_ns_id;
}

function prepareRestore(tree: RestoreTreeView, ctx: RestoreContext): void {
  const byPid = new Map(tree.tasks.map((t) => [t.pid, t]));
  const parentNs = (ppid: number): number | undefined => {
    for (let p = byPid.get(ppid); p; p = byPid.get(p.ppid)) {
      if (p.ids) return pidNsOf(p.ids);
      if (p.ppid === 0) break;
    }
    return pidNsOf(tree.rootIds);
  };
  for (const t of tree.tasks) {
    const ns = pidNsOf(t.ids);
    if (ns === undefined) continue;
    const above = t.pid === tree.rootPid ? pidNsOf(tree.rootIds) : parentNs(t.ppid);
    if (above === undefined || ns === above) continue;
    // Making a pid namespace takes CAP_SYS_ADMIN: nothing a caller without it could do itself (docs/security.md).
    if (ctx.opts.unprivileged) {
      throw new CriuTsError('EPERM', `not restored for an unprivileged caller: task ${t.pid} would be in a pid namespace of its own`, { pid: t.pid, errno: 1 });
    }
    if (t.pid !== tree.rootPid) {
      // The init of a nested namespace has its pids there (pstree.img's own
      // fields, the last 1); a dump without them (an older criu-ts's, or
      // CRIU's own) cannot say which pid each task had below the tree's level.
      if (t.levels.at(-1) === INIT_PID) continue;
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} was dumped in a pid namespace nested in the tree's (ns id ${ns}) without its pids there (${imageFile('PSTREE')} ns_pid): the images were not made by a criu-ts that dumps nested pid namespaces`, { pid: t.pid, nsId: ns });
    }
    if (t.pid !== INIT_PID) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} was dumped in a pid namespace of its own without being its init (pid 1): it cannot start one`, { pid: t.pid, nsId: ns });
    }
  }
}

export const pidNsKind: ResourceKind = {
  name: 'pid-ns',
  namespaces: ['pid'],
  dumpTree,
  prepareRestore,
  cloneFlags(task, parentIds): bigint {
    // A nested namespace's init (its last pid 1 there): a zombie has no ids to compare.
    if (task.levels.length > 0 && task.levels.at(-1) === INIT_PID && !task.helper) return BigInt(CLONE_NEWPID);
    const ns = pidNsOf(task.ids);
    const above = pidNsOf(parentIds);
    return ns !== undefined && above !== undefined && ns !== above ? BigInt(CLONE_NEWPID) : 0n;
  },
};

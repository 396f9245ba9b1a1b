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
 * Limits (refused with one line): a tree in a pid namespace of its own
 * whose root is not that namespace's init; nested pid namespaces (a task
 * deeper than the root's namespace; CRIU 4.2's pstree has one pid per
 * task); a task whose next children would be born in another pid
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
  // length of NSpid tells which.
  for (const t of tree.tasks) {
    if (t.nsPid.length > depth) {
      refuse(t.pid, `is in a pid namespace nested in the tree's (pid ${String(t.nsPid.at(-1))} there): nested pid namespaces are not supported`);
    }
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
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} was dumped in a pid namespace nested in the tree's (ns id ${ns}): nested pid namespaces are not supported`, { pid: t.pid, nsId: ns });
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
    const ns = pidNsOf(task.ids);
    const above = pidNsOf(parentIds);
    return ns !== undefined && above !== undefined && ns !== above ? BigInt(CLONE_NEWPID) : 0n;
  },
};

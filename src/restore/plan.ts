/**
 * The restore plan: the dumped tree as nodes with children, which file
 * groups each task opens for its descendants to inherit, and the helper
 * tasks needed for process groups whose leader is gone.
 */
import { CriuTsError } from '../errors.js';
import { CLONE_NEWPID } from '../sys/index.js';
import { imageFile, TASK_ALIVE, TASK_DEAD, TASK_STOPPED } from '../images/index.js';
import type { DumpImages, TaskImages } from './images.js';
import type { Tracee } from '../infect/tracee.js';
import { fileKindByType, RESOURCE_KINDS, type RestoreContext, type RestoreTreeTask, type RestoreTreeView } from '../kinds/index.js';
import type { PstreeEntry, TaskKobjIdsEntry } from '../images/messages.js';



export interface RestoreNode {
  /** the pid in the images: as the task sees itself */
  pid: number;
  /** its pid in our pid namespace once created (the same as `pid` unless it lives in a new pid namespace); 0 before */
  real: number;
  /** CLONE_NEW* flags of the clone3 that creates it (the resource kinds' cloneFlags) */
  cloneFlags: bigint;
  /** it or an ancestor starts a new pid namespace: its image pid is taken there, not in ours */
  inNewPidNs: boolean;
  ppid: number;
  pgid: number;
  sid: number;
  /**
   * In a pid namespace nested below the tree's: its pids (and its group's
   * and session's, 0 where the leader is not visible) in each namespace
   * from the one below the tree's down to its own, outermost first
   * (pstree.img's ns_pid, ns_pgid, ns_sid); empty in the tree's namespace
   */
  levels: number[];
  nsPgid: number[];
  nsSid: number[];
  state: number;
  images: TaskImages | undefined; // undefined for zombies and helpers
  exitCode: number;
  children: RestoreNode[];
  parent: RestoreNode | undefined;
  /** a helper we add to lead a process group whose leader is gone, or to bring a task into its session; exits before the tree runs */
  helper: boolean;
  /** a session helper (helper, pid 0 in the plan): any free pid, known once it is created */
  anyPid?: boolean;
  /** file ids this task opens before creating children, so that they inherit them */
  groupFiles: number[];
  /** the task shares its parent's fd table (CLONE_FILES): cloned with it, its fds are the parent's */
  sharesFiles?: boolean;
  /** set while restoring */
  tracee?: Tracee;
  threads: Tracee[];
  /** the main thread's securebits when its other threads were made from it (restore/threads.ts): theirs until their credentials are set */
  threadsSecbits?: number;
  /** file id → fd inherited from an ancestor (in the parked range) */
  inherited: Map<number, number>;
  /** set once its address space is restored (before its children fork, where it can be) */
  memory?: { pages: number; compared: number; skippedCow: number };
  /** the parent, when it was forked from it after the parent's memory was restored (it inherits that memory) */
  forkedFromRestored?: RestoreNode;
  /** its main thread's clear_child_tid address was set at its clone3 (CLONE_CHILD_CLEARTID): no set_tid_address later */
  tidAddressAtBirth?: boolean;
}

export interface RestorePlan {
  /** tasks that must be child subreapers before the helpers exit (an orphan goes back to them) */
  earlyReapers: RestoreNode[];
  /** the dumped root */
  root: RestoreNode;
  /** where creation starts: the root, or the helper that leads its vanished session */
  top: RestoreNode;
  nodes: RestoreNode[];
  /** lowest fd number above every task's fds: inherited group fds start here */
  inheritBase: number;
  /** ids of shared files created during tree creation whose `finish` is still to run */
  groupFinish: number[];
}

/** A task's numbers below the tree's pid namespace (pstree.img's own fields), checked for shape. */
function nestedOf(e: PstreeEntry): Pick<RestoreNode, 'levels' | 'nsPgid' | 'nsSid'> {
  const levels = e.ns_pid ?? [];
  const nsPgid = e.ns_pgid ?? levels.map(() => 0);
  const nsSid = e.ns_sid ?? levels.map(() => 0);
  const threads = e.threads ?? [];
  const perThread = e.ns_threads ?? [];
  const dead = threads.length === 1 && threads[0] === 0;
  if (nsPgid.length !== levels.length || nsSid.length !== levels.length || levels.some((v) => v <= 0)
    || (levels.length > 0 && !dead && perThread.length !== threads.length * levels.length)) {
    throw new CriuTsError('EIMAGE', `${imageFile('PSTREE')}: task ${e.pid}: its pids in nested pid namespaces do not match its levels or threads`, { pid: e.pid });
  }
  return { levels: [...levels], nsPgid: [...nsPgid], nsSid: [...nsSid] };
}

/**
 * A group or session helper standing in for a leader that is gone: the
 * leader's numbers below the tree's namespace are what its members see,
 * down to the leader's own namespace (the first 0 is a level that cannot
 * see it); its group and session are itself.
 */
function leaderLevels(ids: readonly number[], sid?: readonly number[]): Pick<RestoreNode, 'levels' | 'nsPgid' | 'nsSid'> {
  const end = ids.indexOf(0);
  const levels = ids.slice(0, end < 0 ? ids.length : end);
  return { levels, nsPgid: [...levels], nsSid: sid ? sid.slice(0, levels.length) : [...levels] };
}

/** The pid a task sees itself with (getpid() in its own pid namespace): for calls injected into it. */
export function ownPid(n: RestoreNode): number {
  return n.levels.at(-1) ?? n.pid;
}

export function planTree(img: DumpImages, shellJob: boolean, ctx?: RestoreContext): RestorePlan {
  const nodes: RestoreNode[] = [];
  const byPid = new Map<number, RestoreNode>();
  for (const e of img.pstree) {
    const t = img.tasks.find((x) => x.pstree.pid === e.pid);
    const tc = img.zombies.get(e.pid)?.tc ?? t?.cores[0]?.tc;
    const n: RestoreNode = {
      pid: e.pid, real: 0, cloneFlags: 0n, inNewPidNs: false, ppid: e.ppid, pgid: e.pgid, sid: e.sid, ...nestedOf(e),
      state: tc?.task_state ?? TASK_ALIVE,
      images: t,
      exitCode: tc?.exit_code ?? 0,
      children: [], parent: undefined, helper: false, groupFiles: [], threads: [], inherited: new Map(),
    };
    nodes.push(n);
    byPid.set(n.pid, n);
  }
  const root = nodes[0];
  if (!root) throw new CriuTsError('EIMAGE', `${imageFile('PSTREE')} has no tasks`, {});
  for (const n of nodes.slice(1)) {
    const p = byPid.get(n.ppid);
    if (!p) throw new CriuTsError('EIMAGE', `task ${n.pid}: parent ${n.ppid} is not in the dump`, { pid: n.pid });
    n.parent = p;
    p.children.push(n);
  }
  // Sessions whose leader is gone (a daemon's double fork): a helper with
  // the leader's pid makes the session, forks the members in its place,
  // and exits once everything is restored, leaving them to the reaper they
  // had (their parent in the dump, a subreaper, or us for the root). With
  // --shell-job the root's session is ours and simply inherited.
  let top = root;
  // Reapers the helpers' orphans must go back to: child subreapers, set before the helpers exit.
  const earlyReapers: RestoreNode[] = [];
  for (const n of [...nodes]) {
    if (n.sid === n.pid || n.sid === 0 || (shellJob && n.sid === root.sid)) continue;
    const leader = byPid.get(n.sid);
    if (leader && !leader.helper) continue;
    if (leader) {
      if (leader.parent !== n.parent) {
        throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}: session ${n.sid} (leader gone) spans tasks of different parents`, { pid: n.pid, sid: n.sid });
      }
      moveUnder(n, leader);
      continue;
    }
    const h: RestoreNode = {
      pid: n.sid, real: 0, cloneFlags: 0n, inNewPidNs: false, ppid: n.ppid, pgid: n.sid, sid: n.sid, ...leaderLevels(n.nsSid), state: TASK_DEAD, images: undefined, exitCode: 0,
      children: [], parent: n.parent, helper: true, groupFiles: [], threads: [], inherited: new Map(),
    };
    nodes.push(h);
    byPid.set(h.pid, h);
    if (n.parent?.images?.cores[0]?.tc?.child_subreaper && !earlyReapers.includes(n.parent)) earlyReapers.push(n.parent);
    if (n.parent) n.parent.children.splice(n.parent.children.indexOf(n), 1, h);
    else top = h;
    n.parent = h;
    h.children.push(n);
  }
  placeSessionMembers(nodes, byPid, top, root, shellJob, earlyReapers);
  // Process groups whose leader is gone: a helper with that pid leads the group, then exits.
  // A group 0 lives outside the tree's pid namespace: the tasks keep the one they are born in.
  for (const n of [...nodes]) {
    if (n.pgid === n.pid || n.pgid === 0 || byPid.has(n.pgid) || (shellJob && n.pgid === root.pgid)) continue;
    const h: RestoreNode = {
      pid: n.pgid, real: 0, cloneFlags: 0n, inNewPidNs: false, ppid: n.pid, pgid: n.pgid, sid: n.sid, ...leaderLevels(n.nsPgid, n.nsSid), state: TASK_DEAD, images: undefined, exitCode: 0,
      children: [], parent: n, helper: true, groupFiles: [], threads: [], inherited: new Map(),
    };
    nodes.push(h);
    byPid.set(h.pid, h);
    n.children.unshift(h);
  }
  // Pids the tree's files name that no task has (the /proc entry of a
  // process that had exited, a cwd or fd there): a helper with that pid, a
  // child of the root, lives while the files are opened and exits with the
  // other helpers, leaving the pid free again.
  const held = ctx ? RESOURCE_KINDS.flatMap((k) => (k.heldPids?.(ctx) ?? []).map((pid) => ({ pid, kind: k.name }))) : [];
  for (const { pid, kind } of held) {
    const had = byPid.get(pid);
    if (had?.helper) continue;
    if (had) throw new CriuTsError('EIMAGE', `pid ${pid} is a task of the tree and, for the ${kind} kind, a pid no task has (a dead process's)`, { pid });
    const h: RestoreNode = {
      pid, real: 0, cloneFlags: 0n, inNewPidNs: false, ppid: root.pid, pgid: root.pgid, sid: root.sid, levels: [], nsPgid: [], nsSid: [], state: TASK_DEAD, images: undefined, exitCode: 0,
      children: [], parent: root, helper: true, groupFiles: [], threads: [], inherited: new Map(),
    };
    nodes.push(h);
    byPid.set(pid, h);
    root.children.push(h);
  }
  // Files used by several tasks are opened once, in their lowest common ancestor.
  // A file some task needs while it is created, without an fd of it (a pty
  // master for the session leader that takes its slave as controlling
  // terminal), is opened as a group file too, even for one task.
  const users = new Map<string, { ids: Set<number>; tasks: RestoreNode[]; early: boolean }>();
  let maxFd = 2;
  for (const n of nodes) {
    for (const fdi of n.images?.fds ?? []) {
      maxFd = Math.max(maxFd, fdi.fd);
      const e = img.files.get(fdi.id);
      const kind = e && fileKindByType(e.type);
      const key = (e && kind?.group?.(e)) ?? `id:${fdi.id}`;
      let u = users.get(key);
      if (!u) users.set(key, (u = { ids: new Set(), tasks: [], early: false }));
      u.ids.add(fdi.id);
      if (!u.tasks.includes(n)) u.tasks.push(n);
      for (const pid of (e && ctx && kind?.neededBy?.(e, ctx)) ?? []) {
        const m = byPid.get(pid);
        if (!m || m.helper) continue;
        u.early = true;
        if (!u.tasks.includes(m)) u.tasks.push(m);
      }
    }
  }
  for (const u of users.values()) {
    if (u.tasks.length < 2 && !u.early) continue;
    const lca = lowestCommonAncestor(u.tasks);
    lca.groupFiles.push(...u.ids);
  }
  markSharedFdTables(nodes);
  return { root, top, nodes, earlyReapers, inheritBase: maxFd + 1, groupFinish: [] };
}

/**
 * A task inherits its session from the task that forks it. One whose
 * session is not the one it would be born in (it was reparented: its parent
 * died, or it was forked by a task that then left) is forked, as CRIU does,
 * by a helper child of its session leader (made after the leader's setsid);
 * the helper exits before the tree runs and the task goes to its reaper,
 * which must be its dumped parent: the pid namespace's init, or a child
 * subreaper (set before the helpers exit, added to `early`; every other
 * subreaper is set after, so it captures no one). Anything else is refused.
 * The walk follows createTree's order: children still in the parent's old
 * session are forked before the parent's setsid.
 */
function placeSessionMembers(
  nodes: RestoreNode[], byPid: Map<number, RestoreNode>, top: RestoreNode, root: RestoreNode, shellJob: boolean, early: RestoreNode[],
): void {
  const helpers = new Map<string, RestoreNode>();
  const misplaced = (): RestoreNode | undefined => {
    let found: RestoreNode | undefined;
    const walk = (n: RestoreNode, born: number): void => {
      if (found) return;
      if (n.sid !== n.pid && n.sid !== 0 && n.sid !== born && !(shellJob && n.sid === root.sid)) {
        found = n;
        return;
      }
      const first = n.children.filter((c) => forkedBeforeSetsid(n, c));
      for (const c of first) walk(c, born);
      for (const c of n.children) if (!first.includes(c)) walk(c, n.sid === n.pid ? n.pid : born);
    };
    walk(top, -1); // the top is born in our session, which no task of the tree has
    return found;
  };
  for (let n = misplaced(), guard = 0; n; n = misplaced(), guard++) {
    const leader = byPid.get(n.sid);
    const parent = n.parent;
    if (!leader || leader.helper || !parent || guard > nodes.length) {
      throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}: cannot be brought into its session ${n.sid}`, { pid: n.pid, sid: n.sid });
    }
    // Who takes the orphan when the helper exits (kernel/exit.c find_new_reaper).
    let reaper: RestoreNode | undefined;
    for (let a: RestoreNode | undefined = leader; a && !reaper; a = a.parent) {
      if (a === parent && parent.images?.cores[0]?.tc?.child_subreaper) reaper = a;
      else if (early.includes(a) || (a === root && root.pid === 1)) reaper = a;
    }
    if (reaper !== parent) {
      throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}: its session ${n.sid} is led by task ${leader.pid}, not an ancestor it inherits it from, and its parent ${parent.pid} is not the reaper it would go back to (criu-ts brings it in through a helper child of the leader)`, { pid: n.pid, sid: n.sid, ppid: parent.pid });
    }
    if (reaper !== root && !early.includes(reaper)) early.push(reaper);
    const key = `${parent.pid}:${n.sid}`;
    let h = helpers.get(key);
    if (!h) {
      h = {
        pid: 0, anyPid: true, real: 0, cloneFlags: 0n, inNewPidNs: false, ppid: leader.pid, pgid: leader.pid, sid: leader.pid,
        levels: leader.levels.map(() => 0), nsPgid: [...leader.levels], nsSid: [...leader.levels], state: TASK_DEAD, images: undefined, exitCode: 0,
        children: [], parent: leader, helper: true, groupFiles: [], threads: [], inherited: new Map(),
      };
      helpers.set(key, h);
      nodes.push(h);
      leader.children.push(h);
    }
    moveUnder(n, h);
  }
}

/**
 * Children forked before their parent's setsid, in the session it was born
 * in: those still in that session, and session leaders with children of
 * their own still in it (they were forked before both setsids).
 */
export function forkedBeforeSetsid(n: RestoreNode, c: RestoreNode): boolean {
  if (c.sid === n.sid) return false;
  if (c.sid !== c.pid) return true;
  return c.children.some((d) => d.sid !== c.sid && d.sid !== d.pid && d.sid !== n.sid);
}

function moveUnder(n: RestoreNode, p: RestoreNode): void {
  if (n.parent) n.parent.children.splice(n.parent.children.indexOf(n), 1);
  n.parent = p;
  p.children.push(n);
}

function ancestors(n: RestoreNode): RestoreNode[] {
  const out: RestoreNode[] = [];
  for (let c: RestoreNode | undefined = n; c; c = c.parent) out.unshift(c);
  return out;
}

function lowestCommonAncestor(ns: RestoreNode[]): RestoreNode {
  const chains = ns.map(ancestors);
  let lca = chains[0]?.[0] as RestoreNode;
  for (let i = 0; ; i++) {
    const c = chains[0]?.[i];
    if (!c || !chains.every((ch) => ch[i] === c)) return lca;
    lca = c;
  }
}

/** A task of the plan as the resource kinds see it (kinds/types.ts). */
export function treeTaskOf(n: RestoreNode): RestoreTreeTask {
  const t = n.images;
  const tids = t?.pstree.threads ?? [];
  return {
    pid: n.pid,
    ppid: n.ppid,
    core: t?.cores[0],
    threadCores: t ? t.cores.map((core, i) => ({ tid: tids[i] ?? n.pid, core })) : [],
    ids: t?.ids,
    helper: n.helper,
    levels: n.levels,
  };
}

/**
 * Ask the resource kinds which namespaces each task is born in (cloneFlags),
 * top down, and mark the tasks whose image pids live in a new pid
 * namespace (there, not in ours, is where those pids must be free).
 */
export function planCloneFlags(plan: RestorePlan, rootIds: TaskKobjIdsEntry | undefined, ctx: RestoreContext): void {
  const walk = (n: RestoreNode, parentIds: TaskKobjIdsEntry | undefined, parentInNew: boolean): void => {
    let flags = 0n;
    if (!n.helper) {
      const view = treeTaskOf(n);
      for (const k of RESOURCE_KINDS) flags |= k.cloneFlags?.(view, parentIds, ctx) ?? 0n;
    }
    n.cloneFlags = flags;
    const newPid = (flags & BigInt(CLONE_NEWPID)) !== 0n;
    // The tree's own namespace (its root's) holds the image pids; one nested below it holds the levels.
    n.inNewPidNs = parentInNew || (newPid && n.levels.length === 0);
    const above = n === plan.top ? 0 : (n.parent?.levels.length ?? 0);
    const depth = n.levels.length;
    if (n !== plan.top && !(depth === above && !(newPid && depth > 0)) && !(newPid && depth === above + 1 && n.levels.at(-1) === 1)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}${n.helper ? ' (a helper of the restore)' : ''}: it is ${depth} pid namespaces below the tree's${depth > 0 ? ` (pid ${String(n.levels.at(-1))} there)` : ''} and would be forked by task ${n.parent?.pid ?? 0}, ${above} below: criu-ts forks a task in its parent's pid namespace, or as the init (pid 1) of one just below it`, { pid: n.pid });
    }
    for (const c of n.children) walk(c, n.images?.ids ?? parentIds, n.inNewPidNs);
  };
  walk(plan.top, rootIds, false);
}

export function treeViewOf(plan: RestorePlan, img: DumpImages): RestoreTreeView {
  return { rootPid: plan.root.pid, tasks: plan.nodes.map(treeTaskOf), rootIds: img.inventory.root_ids, inventory: img.inventory };
}

/**
 * Tasks sharing one fd table (CLONE_FILES without CLONE_VM: ids-PID.img's
 * files_id is the same) come back sharing it: each is cloned with
 * CLONE_FILES from its parent, which must share it too, and only the
 * topmost restores the fds. A table shared with a task that is not the
 * parent (the parent left it, or a helper stands between) cannot be made
 * by cloning and is refused.
 */
function markSharedFdTables(nodes: readonly RestoreNode[]): void {
  const tops = new Map<number, number>();
  for (const n of nodes) {
    const id = n.images?.ids.files_id;
    if (id === undefined) continue;
    if (n.parent?.images?.ids.files_id === id) {
      n.sharesFiles = true;
      continue;
    }
    const other = tops.get(id);
    if (other !== undefined) {
      throw new CriuTsError('EUNSUPPORTED', `tasks ${other} and ${n.pid} share an fd table but neither is the other's ancestor through tasks sharing it: criu-ts cannot restore that`, { pid: n.pid, other });
    }
    tops.set(id, n.pid);
  }
}

/**
 * The pids of the dumped tree as the tree itself sees them. CRIU's images
 * hold every pid (pstree, file names, fown, locks, ttys, timers) in the pid
 * namespace of the tree's root, its "virtual" pid; criu-ts sees the tasks
 * by their pids in its own namespace. When the root shares our pid
 * namespace both are the same number; when the root is the init of a pid
 * namespace of its own, each task's pid at the root's level of NSpid
 * (/proc/PID/status lists the pid in every namespace from the reader's
 * down to the task's own) is the one written.
 *
 * Process groups and sessions are translated through NSpgid/NSsid, where
 * the kernel writes 0 for a group or session whose leader lives outside
 * the namespace (the tasks see 0 as well).
 *
 * A task in a pid namespace nested below the tree's has more numbers:
 * those below the tree's level (`below`) go to pstree.img's own fields
 * (ns_pid, ns_threads, ns_pgid, ns_sid: images/schema/pstree.ts).
 */
import { parseStatus } from '../proc/index.js';
import { CriuTsError } from '../errors.js';
import type { PstreeEntry } from '../images/messages.js';
import type { SeizedTree, TaskNode } from './tree.js';

export interface TaskPids {
  /** the task's pids from our namespace down to its own (NSpid) */
  readonly nsPid: readonly number[];
  readonly vpid: number;
  /** 0 when the group or session lives outside the tree's pid namespace */
  readonly vpgid: number;
  readonly vsid: number;
  /** every thread's tid as the tree sees it, main thread first */
  readonly vtids: readonly number[];
  /**
   * For a task in a pid namespace nested below the tree's: its pids, its
   * threads' (one list per thread, as vtids), its group's and session's
   * in each namespace from the one below the tree's down to its own
   * (outermost first); all empty in the tree's namespace.
   */
  readonly below: { pid: readonly number[]; tids: readonly (readonly number[])[]; pgid: readonly number[]; sid: readonly number[] };
}

export class TreePids {
  /** index in NSpid of the tree's pid namespace (0: criu-ts's own) */
  readonly level: number;
  private readonly byReal = new Map<number, number>();
  private readonly tasks = new Map<number, TaskPids>();

  private constructor(level: number) {
    this.level = level;
  }

  /** Read every task's and thread's pids once the tree is held (zombies keep theirs until reaped). */
  static read(tree: SeizedTree): TreePids {
    const rootNs = parseStatus(tree.root.pid).nsPid;
    const pids = new TreePids(Math.max(0, rootNs.length - 1));
    for (const node of tree.tasks) pids.add(node);
    return pids;
  }

  /** Whether the tree lives in a pid namespace other than ours. */
  get ownNamespace(): boolean {
    return this.level > 0;
  }

  private at(list: readonly number[], what: string, pid: number): number {
    if (this.level === 0) return list[0] ?? 0;
    // A shorter list: the task is in an ancestor namespace of the tree's (refused by the pid kind).
    const v = list[this.level];
    if (v === undefined) throw new CriuTsError('EUNSUPPORTED', `task ${pid}: its ${what} has no number in the pid namespace of the dumped tree`, { pid });
    return v;
  }

  private add(node: TaskNode): void {
    const st = parseStatus(node.pid);
    const nsPid = st.nsPid.length > 0 ? st.nsPid : [node.pid];
    const vpid = this.level === 0 ? node.pid : this.at(nsPid, 'pid', node.pid);
    const vpgid = this.level === 0 ? node.pgid : (st.nsPgid[this.level] ?? 0);
    const vsid = this.level === 0 ? node.sid : (st.nsSid[this.level] ?? 0);
    this.byReal.set(node.pid, vpid);
    if (node.pgid > 0 && vpgid > 0) this.byReal.set(node.pgid, vpgid);
    if (node.sid > 0 && vsid > 0) this.byReal.set(node.sid, vsid);
    const deeper = (list: readonly number[]): number[] => list.slice(this.level + 1, nsPid.length);
    const pid = deeper(nsPid);
    const tids: number[][] = [];
    const vtids = node.threads.map((t) => {
      if (t.tid === node.pid) {
        tids.push(pid);
        return vpid;
      }
      // Threads share their process's pid namespace: in ours (one level) a
      // thread's NSpid is its tid alone, with no status read per thread.
      const list = nsPid.length === 1 ? [t.tid] : parseStatus(node.pid, t.tid).nsPid;
      tids.push(deeper(list));
      const v = this.level === 0 ? t.tid : this.at(list, 'thread id', t.tid);
      this.byReal.set(t.tid, v);
      return v;
    });
    const below = { pid, tids: tids.length > 0 ? tids : [pid], pgid: deeper(st.nsPgid), sid: deeper(st.nsSid) };
    this.tasks.set(node.pid, { nsPid, vpid, vpgid, vsid, vtids: vtids.length > 0 ? vtids : [vpid], below });
  }

  /** A task of the tree by its pid in our namespace. */
  of(pid: number): TaskPids {
    const t = this.tasks.get(pid);
    if (!t) throw new CriuTsError('EINTERNAL', `task ${pid} is not in the dumped tree`, { pid });
    return t;
  }

  /**
   * A pid (or tid, pgid, sid) as the tree sees it: the same number when the
   * tree shares our pid namespace; undefined for a process of another
   * namespace the tree's tasks cannot name.
   */
  vpid(pid: number): number | undefined {
    if (this.level === 0) return pid;
    return this.byReal.get(pid);
  }
}

/**
 * pstree.img's own fields for a task in a pid namespace nested below the
 * tree's (images/schema/pstree.ts); nothing for any other task, whose
 * entry stays CRIU's byte for byte. A zombie has no thread list.
 */
export function nestedPids(p: TaskPids, zombie = false): Pick<PstreeEntry, 'ns_pid' | 'ns_threads' | 'ns_pgid' | 'ns_sid'> {
  const b = p.below;
  if (b.pid.length === 0) return {};
  return {
    ns_pid: [...b.pid],
    ...(zombie ? {} : { ns_threads: b.tids.flat() }),
    ns_pgid: [...b.pgid],
    ns_sid: [...b.sid],
  };
}

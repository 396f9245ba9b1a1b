/**
 * The end of a dump without --leave-running: every task of the tree is
 * killed, and a dump that returns has none of them left (runc asks whether
 * the container's init is still there as soon as we answer, and destroys
 * the container only when it is not; CRIU waits too), nor a zombie waiting
 * for a slow init, so the pids are free for a restore at once.
 *
 * Most of that time is the kernel freeing each address space, and each
 * killed child's reaping by its parent. So the tree is killed a level at a
 * time, deepest first, every task of a level at once (their deaths overlap)
 * while their parents are still held; and once a level is killed, the
 * parents of its tasks are made to ignore SIGCHLD (one injected
 * rt_sigaction in all of them side by side): a traced child whose real
 * parent ignores SIGCHLD is released outright when we, its tracer, collect
 * its death (wait_task_zombie, do_notify_parent), so no parent needs a
 * wait4 per child. The parents are killed next, so nobody ever sees the
 * changed disposition. Every task is told to the guardian first: criu-ts
 * killed half-way through, it kills the rest. A zombie child (never seized) is still reaped by an
 * injected wait4 in its parent, as is any child of a parent that could not
 * take the rt_sigaction.
 */
import { __WALL, WNOHANG, NR, SIGCHLD, processMrelease } from '../sys/index.js';
import { collectExit, type Tracee } from '../infect/tracee.js';
import { syscallEachSettled } from '../infect/side-by-side.js';
import { logger } from '../log.js';
import { guardian } from '../infect/guardian.js';

/** What the kill needs of a seized task (dump/tree.ts TaskNode). */
interface TaskNode {
  pid: number;
  ppid: number;
  zombie: boolean;
  /** main thread first */
  threads: Tracee[];
}

const log = logger('tree');

/** struct kernel_sigaction with sa_handler = SIG_IGN (1), no flags, no restorer, an empty mask */
const SIG_IGN_ACTION = (() => {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(1n, 0);
  return b;
})();

/** Parents (held, with a scratch area) set to ignore SIGCHLD; those that could not be are left out. */
function ignoreSigchld(parents: readonly TaskNode[]): Set<TaskNode> {
  const asked: TaskNode[] = [];
  for (const p of parents) {
    const t = p.threads[0];
    const scratch = t?.scratchRange;
    if (!t || !scratch) continue;
    try {
      t.writeMem(scratch.addr, SIG_IGN_ACTION);
      asked.push(p);
    } catch (e) {
      log.debug(`task ${p.pid}: SIGCHLD not ignored (${(e as Error).message}): its children are reaped one by one`);
    }
  }
  const results = syscallEachSettled(asked.map((p) => {
    const t = p.threads[0] as Tracee;
    return { t, nr: NR.rt_sigaction, args: [SIGCHLD, (t.scratchRange as { addr: bigint }).addr, 0, 8] };
  }));
  return new Set(asked.filter((_, i) => {
    const r = results[i];
    return r !== undefined && r.ok && r.value === 0n;
  }));
}

/**
 * `bigMemory`: the tasks whose address spaces our thread frees too
 * (process_mrelease) once they are killed. Measured (docs/performance.md,
 * "The big dumps' kill, session 15"): a 1 GiB task's kill-to-reap 67 -> 46
 * ms, a 256 MiB one's no shorter, and the freeing's CPU is then counted
 * to us: hence only the big ones.
 */
export function killTree(tasks: readonly TaskNode[], bigMemory?: ReadonlySet<number>): void {
  // From the first kill on, the tree cannot be put back as it was: if we die
  // half-way, the guardian finishes the kill (infect/guardian.ts).
  const guard = guardian();
  const doom = (): void => {
    for (const n of tasks) if (!n.zombie) guard?.doomed(n.pid);
  };
  if (guard) guard.batch(doom);
  else doom();
  const byPid = new Map(tasks.map((n) => [n.pid, n]));
  const depthOf = new Map<TaskNode, number>();
  for (const n of tasks) {
    let d = 0;
    for (let p = byPid.get(n.ppid); p !== undefined && d <= tasks.length; p = byPid.get(p.ppid)) d++;
    depthOf.set(n, d);
  }
  const levels = [...new Set(depthOf.values())].sort((a, b) => b - a);
  for (const level of levels) {
    const nodes = tasks.filter((n) => depthOf.get(n) === level);
    for (const n of nodes) {
      try {
        if (!n.zombie) process.kill(n.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Their memory is freed on our thread too (process_mrelease), beside
    // each one's own exit_mmap: the reap below waits for the whole address
    // space to go, and a killed task must first be scheduled to begin its
    // teardown, where this call begins at once. Past the point of no
    // return, so nothing it answers matters (an old kernel's ENOSYS, a
    // memory shared with a live process, a task already gone): ignored.
    for (const n of nodes) {
      if (n.zombie || bigMemory?.has(n.pid) !== true) continue;
      const r = processMrelease(n.pid);
      if (r !== 0) log.debug(`task ${n.pid}: process_mrelease: ${-r}`);
    }
    // Only now, with some of its children already dying (past the point
    // where the tree could be put back as it was: the guardian would finish
    // the kill), is a parent's SIGCHLD changed.
    const parents = new Set<TaskNode>();
    for (const n of nodes) {
      const p = byPid.get(n.ppid);
      if (p !== undefined && !n.zombie && !p.zombie) parents.add(p);
    }
    const ignoring = ignoreSigchld([...parents]);
    for (const n of nodes) {
      // We trace the threads: their deaths are reported to us first, and the
      // leader's only after every other thread's: collect it last.
      for (const t of [...n.threads].reverse()) collectExit(t.tid);
      const parent = byPid.get(n.ppid);
      // Released by that collection when the parent ignores SIGCHLD; otherwise
      // the (still held) parent reaps it. The root's own parent (a shell,
      // runc, an init) reaps the root.
      if (parent !== undefined && (n.zombie || !ignoring.has(parent))) {
        try {
          parent.threads[0]?.syscallRaw(NR.wait4, n.pid, 0, __WALL | WNOHANG, 0);
        } catch {
          // the parent is going away too
        }
      }
    }
  }
}

/**
 * Stopping a process tree: PTRACE_SEIZE + INTERRUPT every thread of every
 * process, walking /proc/PID/task/TID/children, and scanning again until a
 * pass finds no new thread or child (a task may fork or clone while we are
 * stopping its relatives). Zombies cannot be seized and are recorded as such.
 */
import { listThreads, listChildren, parseStat, parseStatus, readComm } from '../proc/index.js';
import { Tracee, collectExit } from '../infect/tracee.js';
import { seizeWaitEach } from '../infect/seize.js';
import { isSyscallError, ESRCH, EPERM, __WALL, WNOHANG, NR, sleepMs, waitPid } from '../sys/index.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { killTree } from './kill-tree.js';
import { Guardian, guardian } from '../infect/guardian.js';
import type { DumpStats } from './options.js';

const log = logger('tree');

export interface TaskNode {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  zombie: boolean;
  exitCode: number;
  /** main thread first */
  threads: Tracee[];
  children: TaskNode[];
}

export interface SeizedTree {
  root: TaskNode;
  /** all tasks, parents before children */
  tasks: TaskNode[];
}

const MAX_PASSES = 16;

/**
 * After PTRACE_SEIZE of `tid` said EPERM: whether that is because it exited
 * meanwhile. The leader of a process with no other thread left, now a
 * zombie, makes the node a zombie (with its exit code).
 */
function exitedMeanwhile(node: TaskNode, tid: number): boolean {
  let st;
  try {
    st = parseStat(tid);
  } catch {
    return true; // gone altogether
  }
  if (st.state !== 'Z' && st.state !== 'X') return false;
  if (tid !== node.pid) return true;
  if (node.threads.length > 0 || listThreads(node.pid).some((t) => t !== node.pid)) return false;
  node.zombie = true;
  node.exitCode = st.exitCode;
  log.debug(`task ${node.pid} exited while the tree was being seized: dumped as a zombie`);
  return true;
}

/**
 * The pid a dump or pre-dump was asked for names a live task that is not
 * criu-ts: a zombie is said to be one (it has exited and waits for its
 * parent; nothing of it is left to save), not left to fail later on a
 * namespace or a seize.
 */
export function checkTarget(pid: number, verb: 'dump' | 'pre-dump'): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new CriuTsError('EUSAGE', `bad pid ${pid}`, { pid });
  if (!existsSync(`/proc/${pid}`)) throw new CriuTsError('ENOTASK', `no process with pid ${pid}`, { pid });
  if (pid === process.pid) throw new CriuTsError('EUSAGE', `cannot ${verb} criu-ts itself`, { pid });
  let st: ReturnType<typeof parseStatus>;
  try {
    st = parseStatus(pid);
  } catch {
    throw new CriuTsError('ENOTASK', `no process with pid ${pid}`, { pid });
  }
  if (st.state === 'Z' || st.state === 'X') {
    throw new CriuTsError('ENOTASK', `task ${pid} (${readCommQuiet(pid)}) is a zombie: it has exited and waits for its parent (pid ${st.ppid}) to reap it; nothing of it is left to ${verb}`, { pid, ppid: st.ppid });
  }
}

function readCommQuiet(pid: number): string {
  try {
    return readComm(pid);
  } catch {
    return '?';
  }
}

/**
 * EPERM from PTRACE_SEIZE of a live thread: most often another tracer (a
 * debugger, strace) holds it; a task has one tracer at a time, and CRIU
 * refuses such a task too. Say who, rather than a bare errno.
 */
function refuseTraced(node: TaskNode, tid: number, cause: unknown): void {
  let tracer = 0;
  try {
    tracer = parseStatus(node.pid, tid).tracerPid;
  } catch {
    return; // gone: the caller's error stands
  }
  if (tracer === 0) return;
  let who = '';
  try {
    who = ` (${readComm(tracer)})`;
  } catch {
    // the tracer's name is a courtesy
  }
  const what = tid === node.pid ? `task ${node.pid}` : `task ${node.pid} thread ${tid}`;
  throw new CriuTsError('EDUMP', `${what} is traced by ${tracer}${who}: a task being traced cannot be dumped; detach the tracer first`, { pid: node.pid, tid, tracer }, cause);
}

export function seizeTree(rootPid: number, timeoutMs: number, freezeCgroup?: string): SeizedTree {
  const byPid = new Map<number, TaskNode>();
  const tasks: TaskNode[] = [];
  const seizeOne = (pid: number, ppid: number): TaskNode => {
    const st = parseStat(pid);
    const node: TaskNode = { pid, ppid, pgid: st.pgrp, sid: st.session, zombie: st.state === 'Z', exitCode: st.exitCode, threads: [], children: [] };
    byPid.set(pid, node);
    tasks.push(node);
    return node;
  };
  try {
    const root = seizeOne(rootPid, 0);
    if (freezeCgroup !== undefined) seizeFrozen(freezeCgroup, root, seizeOne, timeoutMs);
    for (let pass = 0; ; pass++) {
      if (pass >= MAX_PASSES) throw new CriuTsError('EDUMP', `tree of ${rootPid} keeps changing; try --freeze-cgroup`, { pid: rootPid });
      let changed = false;
      for (let i = 0; i < tasks.length; i++) {
        const node = tasks[i] as TaskNode;
        if (node.zombie) continue;
        // Interrupt every new thread first, then collect the stops: the
        // stops happen in parallel instead of one after another.
        const tids = listThreads(node.pid);
        const known = new Set(node.threads.map((t) => t.tid));
        const fresh = tids.filter((tid) => !known.has(tid));
        const asked: number[] = [];
        for (const tid of fresh) {
          try {
            Tracee.seizeNoWait(tid);
            asked.push(tid);
          } catch (e) {
            // A thread that exited between listing and seizing is simply gone.
            if (isSyscallError(e, ESRCH)) continue;
            // EPERM: it is exiting (the kernel refuses to attach to a task with an exit state).
            // A process that died between listing and seizing is a zombie now (its parent,
            // seized, cannot reap it): dumped as one. A dying thread other than the leader is gone.
            if (isSyscallError(e, EPERM) && exitedMeanwhile(node, tid)) continue;
            if (isSyscallError(e, EPERM)) refuseTraced(node, tid, e);
            throw e;
          }
        }
        // Every thread taken is kept before an error is thrown: releaseTree lets it go.
        let failed: { error: unknown } | undefined;
        for (const t of seizeWaitEach(asked, timeoutMs, true)) {
          if (!(t instanceof Tracee)) {
            const e = t.error;
            if (!(e instanceof CriuTsError && e.code === 'ENOTASK')) failed ??= t;
            continue;
          }
          if (t.tid === node.pid) node.threads.unshift(t);
          else node.threads.push(t);
          changed = true;
        }
        if (failed !== undefined) throw failed.error;
        // The threads listed above: a thread can appear after that listing
        // only while one of them ran unseized, and seizing it made this pass
        // change, so the next pass lists the newcomer and reads its children.
        for (const child of listChildren(node.pid, tids)) {
          if (byPid.has(child)) continue;
          const c = seizeOne(child, node.pid);
          node.children.push(c);
          changed = true;
        }
      }
      if (!changed) break;
    }
    log.info(`seized ${tasks.length} task(s), ${tasks.reduce((n, t) => n + t.threads.length, 0)} thread(s)`);
    return { root, tasks };
  } catch (e) {
    releaseTree(tasks, 'resume');
    throw e;
  }
}

/**
 * Let the tree go: 'resume' cures and detaches (the tasks carry on as
 * before), 'stop' leaves them stopped, 'kill' sends SIGKILL (`bigMemory`:
 * the pids whose memory our thread helps free, kill-tree.ts).
 */
export function releaseTree(tasks: TaskNode[], how: 'resume' | 'stop' | 'kill', bigMemory?: ReadonlySet<number>): void {
  if (how === 'kill') {
    killTree(tasks, bigMemory);
    return;
  }
  // Once the first task is released stopped, the tree can no longer end
  // running as it was: if we die half-way through the release, the guardian
  // stops the rest (infect/guardian.ts), and the whole tree ends as asked.
  if (how === 'stop') for (const n of tasks) if (!n.zombie) guardian()?.stopping(n.pid);
  for (const node of [...tasks].reverse()) {
    // The main thread last: its cure unmaps the scratch area that holds the
    // other threads' self-cure frames.
    for (const t of [...node.threads].reverse()) {
      try {
        t.cure();
      } catch (e) {
        log.warn(`thread ${t.tid}: could not restore its state: ${(e as Error).message}`);
      }
    }
    for (const t of node.threads) {
      if (how === 'stop' && t === node.threads[0]) {
        try { process.kill(node.pid, 'SIGSTOP'); } catch { /* gone */ }
      }
      t.detachQuiet();
    }
  }
}

/**
 * --freeze-cgroup: freeze the cgroup so the tree cannot fork or clone while
 * we walk it, seize every thread while frozen (their stops are reported
 * only after the thaw), thaw, and collect the stops.
 */
function seizeFrozen(path: string, root: TaskNode, seizeOne: (pid: number, ppid: number) => TaskNode, timeoutMs: number): void {
  const fr = openFreezer(path);
  fr.freeze(timeoutMs);
  const pending: { node: TaskNode; tid: number }[] = [];
  try {
    const queue = [root];
    while (queue.length > 0) {
      const node = queue.shift() as TaskNode;
      if (node.zombie) continue;
      for (const tid of listThreads(node.pid)) {
        Tracee.seizeNoWait(tid);
        pending.push({ node, tid });
      }
      for (const child of listChildren(node.pid)) {
        const c = seizeOne(child, node.pid);
        node.children.push(c);
        queue.push(c);
      }
    }
  } finally {
    fr.thaw();
  }
  for (const { node, tid } of pending) {
    const t = Tracee.seizeWait(tid, timeoutMs, true);
    if (tid === node.pid) node.threads.unshift(t);
    else node.threads.push(t);
  }
}

interface Freezer {
  freeze(timeoutMs: number): void;
  thaw(): void;
}

function openFreezer(path: string): Freezer {
  const v1 = join(path, 'freezer.state');
  const v2 = join(path, 'cgroup.freeze');
  if (existsSync(v1)) {
    return {
      freeze(timeoutMs) {
        writeFileSync(v1, 'FROZEN');
        waitUntil(() => readFileSync(v1, 'latin1').trim() === 'FROZEN', timeoutMs, path);
      },
      thaw() {
        writeFileSync(v1, 'THAWED');
      },
    };
  }
  if (existsSync(v2)) {
    const events = join(path, 'cgroup.events');
    return {
      freeze(timeoutMs) {
        writeFileSync(v2, '1');
        waitUntil(() => /^frozen 1$/m.test(readFileSync(events, 'latin1')), timeoutMs, path);
      },
      thaw() {
        writeFileSync(v2, '0');
      },
    };
  }
  throw new CriuTsError('EUSAGE', `--freeze-cgroup ${path}: not a freezer cgroup (no freezer.state or cgroup.freeze)`, { path });
}

function waitUntil(cond: () => boolean, timeoutMs: number, path: string): void {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new CriuTsError('ETIMEOUT', `cgroup ${path} did not freeze within ${timeoutMs} ms`, { path });
    sleepMs(1);
  }
}

/**
 * The start both a dump and a pre-dump share: a guardian started before any
 * task is touched (what puts the tasks back if criu-ts dies while it holds
 * them), then the tree seized. If the seize fails, the guardian and the
 * page server connection `abort` closes are let go. The stats start with
 * the freezing time since `t0`.
 */
export function seizeGuarded(pid: number, opts: { timeoutMs: number; freezeCgroup?: string | undefined }, abort: () => void): { tree: SeizedTree; guard: Guardian | undefined; stats: DumpStats; t0: bigint } {
  const guard = Guardian.start();
  // The freeze starts here, with the first seize: the checks and the
  // guardian's start before it ran beside a tree that was still running.
  const t0 = process.hrtime.bigint();
  let tree: SeizedTree;
  try {
    tree = seizeTree(pid, opts.timeoutMs, opts.freezeCgroup);
  } catch (e) {
    guard?.done();
    abort();
    throw e;
  }
  const stats: DumpStats = {
    freezingTimeUs: usToNow(t0), frozenTimeUs: 0, memdumpTimeUs: 0, memwriteTimeUs: 0,
    pagesScanned: 0, pagesSkippedParent: 0, pagesWritten: 0, pagesLazy: 0, pagesZero: 0,
  };
  return { tree, guard, stats, t0 };
}

/** Microseconds since `t0` (process.hrtime.bigint()). */
export function usToNow(t0: bigint): number {
  return Number((process.hrtime.bigint() - t0) / 1000n);
}

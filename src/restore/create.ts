/**
 * Creating the tree (before any task gets its memory): each task is cloned
 * with its exact pid from its parent, enters its session and process group,
 * and opens the files its descendants share, so that they inherit them
 * through fork as they did originally.
 */
import { NR, __WALL, CLONE_FILES } from '../sys/index.js';
import { parseStatus } from '../proc/index.js';
import { collectExit, type Tracee } from '../infect/tracee.js';
import { FILE_KINDS, RESOURCE_KINDS, addressSpace, type RestoreContext } from '../kinds/index.js';
import type { FdinfoEntry } from '../images/messages.js';
import { CriuTsError } from '../errors.js';
import { cloneWithPid, cloneSiblingTop, setTidOf } from './stub.js';
import { handleFor } from './handle.js';
import { restoreAddressSpace } from './task.js';
import { openGroupFiles } from './files.js';
import { forkedBeforeSetsid, ownPid, treeTaskOf, type RestoreNode, type RestorePlan } from './plan.js';
import { logger } from '../log.js';

const log = logger('create');

/**
 * `rootReady`, if given, is called once the tree's root task exists and
 * the resource kinds set it up (its namespaces, its mount tree), before it
 * opens or maps any file: what its files need made inside those
 * namespaces (ghosts) is made then.
 */
export function createTree(plan: RestorePlan, stub: Tracee, ctx: RestoreContext, created: RestoreNode[], rootReady?: (root: RestoreNode) => void): void {
  const fdinfoOf = (id: number): FdinfoEntry => {
    for (const n of plan.nodes) {
      const f = n.images?.fds.find((x) => x.id === id);
      if (f) return f;
    }
    throw new CriuTsError('EIMAGE', `file id ${id} is used by no task`, { id });
  };
  const create = (n: RestoreNode, parent: Tracee, inherited: ReadonlyMap<number, number>, from: RestoreNode | undefined): void => {
    // What must exist before the task is born into it (a time namespace's offsets), set up in its parent.
    if (RESOURCE_KINDS.some((k) => k.beforeClone)) {
      const view = treeTaskOf(n);
      const ph = handleFor(parent.tid, parent, n.parent?.pid ?? parent.tid, n.parent ? ownPid(n.parent) : parent.tid);
      for (const k of RESOURCE_KINDS) k.beforeClone?.(ph, view, ctx);
    }
    // A session helper takes any free pid: in a new pid namespace one no task
    // of the plan has (every pid there is the tree's), in ours the kernel's
    // pick; in nested ones too, one no task has at any level.
    if (n.anyPid && (n.inNewPidNs || n.levels.length > 0)) {
      const free = unusedPid(plan);
      if (n.inNewPidNs) n.pid = free;
      n.levels = n.levels.map(() => free);
    }
    // --restore-sibling: the top is born our caller's child, from our own process, not the stub's.
    const sibling = n === plan.top && ctx.opts.restoreSibling;
    const t = sibling
      ? cloneSiblingTop(n.pid, n.cloneFlags, !n.inNewPidNs, (pid) => {
        const view = treeTaskOf(n);
        return RESOURCE_KINDS.reduce((root, k) => (k.siblingBeforeExec?.(pid, view, ctx) ?? false) || root, false);
      })
      : cloneWithPid(parent, setTidOf(n.pid, n.levels), {
        flags: n.cloneFlags | (n.sharesFiles ? CLONE_FILES : 0n), ourNs: !n.inNewPidNs, keepScratch: parent === stub, clearTid: clearTidOf(n),
      });
    n.tidAddressAtBirth = !sibling && clearTidOf(n) !== 0n;
    n.tracee = t;
    n.real = t.tid;
    if (n.pid === 0) n.pid = t.tid;
    n.inherited = new Map(inherited);
    created.push(n);
    log.debug(`task ${n.pid} created (parent ${n.ppid}${n.real !== n.pid ? `, pid ${n.real} here` : ''}${n.levels.length > 0 ? `, ${n.levels.join('/')} in nested pid namespaces` : ''})`);
    const h = handleFor(n.real, t, n.pid, ownPid(n));
    // What its children must inherit (namespaces, cgroups) is put in place before any is forked.
    if (RESOURCE_KINDS.length > 0) {
      const view = treeTaskOf(n);
      for (const k of RESOURCE_KINDS) k.restoreCreated?.(h, view, ctx);
    }
    if (n === plan.root) rootReady?.(n);
    // Its frame (its memory) now where the address-space kind can make it
    // (in its namespaces: SysV shm attaches there), before its children
    // fork: they inherit it, and pages they still share with it stay shared.
    if (from?.memory) n.forkedFromRestored = from;
    if (n.images && addressSpace().frameAtBirth(n.images, n.children.length > 0, ctx)) restoreAddressSpace(n, ctx);
    const self = n.memory ? n : undefined;
    // Children still in the parent's old session are forked before it makes
    // its own; its group files are opened before them then (they may use
    // them), else after its setsid (a terminal's slave becomes its
    // controlling terminal only once it leads its session).
    const early = n.children.filter((c) => forkedBeforeSetsid(n, c));
    const groupFiles = (): void => {
      if (n.groupFiles.length > 0) openGroupFiles(h, n.groupFiles, fdinfoOf, ctx, n.inherited, plan.inheritBase, plan.groupFinish);
    };
    if (early.length > 0) groupFiles();
    for (const c of early) create(c, t, n.inherited, self);
    if (n.sid === n.pid) h.syscall('setsid', NR.setsid);
    else if (n.pgid === n.pid) h.syscall('setpgid', NR.setpgid, 0, 0);
    if (early.length === 0) groupFiles();
    // Session state the members inherit (the controlling terminal) is set before they are forked.
    // A helper leader exits before the tree runs: a terminal it held would hang up its session.
    if (n.sid === n.pid && !n.helper) for (const k of FILE_KINDS) k.sessionMade?.(h, ctx);
    for (const c of n.children) if (!early.includes(c)) create(c, t, n.inherited, self);
  };
  if (!ctx.opts.restoreSibling) mapStubScratch(plan, stub);
  create(plan.top, stub, new Map(), undefined);
  joinGroups(plan);
}

/**
 * The stub's scratch area (the top's clone3 arguments) where the tree's
 * top task can keep it for its frame: no mmap of its own (1 injected call
 * less). Where that hole is taken in the stub (a layout not foreseen), any
 * address does, and the top maps its own as before.
 */
function mapStubScratch(plan: RestorePlan, stub: Tracee): void {
  // Its two calls (this mmap, the top's clone3) neither block nor meet a
  // signal: each is single-stepped, one stop instead of two (infect/held-task.ts stepCalls).
  stub.stepCalls(true, true);
  const tasks = plan.nodes.flatMap((x) => (x.images ? [x.images] : []));
  if (tasks.length === 0) return;
  const { at, size } = addressSpace().stubScratch(tasks);
  try {
    stub.mapScratch(size, at);
  } catch (e) {
    log.debug(`stub scratch at 0x${at.toString(16)} refused (${(e as Error).message}): anywhere`);
  }
}

/** The main thread's clear_child_tid address as dumped (0: none), set at its clone3. */
function clearTidOf(n: RestoreNode): bigint {
  return n.images?.cores[0]?.thread_info?.clear_tid_addr ?? 0n;
}

function unusedPid(plan: RestorePlan): number {
  const used = new Set(plan.nodes.flatMap((x) => [x.pid, ...x.levels, ...(x.images?.pstree.threads ?? []), ...(x.images?.pstree.ns_threads ?? [])]));
  let pid = 2;
  while (used.has(pid)) pid++;
  return pid;
}

/** Members join their process groups once every leader (or helper) exists. */
function joinGroups(plan: RestorePlan): void {
  for (const n of plan.nodes) {
    if (n.pgid === n.pid || n.sid === n.pid || n.pgid === 0 || !n.tracee) continue;
    if (!plan.nodes.some((x) => x.pid === n.pgid)) continue; // --shell-job: the caller's group, inherited
    // Its group as it sees it (NSpgid's last field, its own pid namespace's number): no injected getpgid.
    const cur = parseStatus(n.real).nsPgid.at(-1);
    const want = n.nsPgid.at(-1) ?? n.pgid;
    if (cur === want) continue;
    // A leader its namespace cannot see: the group is only ever inherited.
    if (want === 0) throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}: its process group ${n.pgid} is led from outside its pid namespace, and it was not born in it`, { pid: n.pid, pgid: n.pgid });
    n.tracee.syscall(`setpgid(${want})`, NR.setpgid, 0, want);
  }
}

/** Helpers have done their job (leading a group): let them exit and be reaped by their parent. */
export function retireHelpers(plan: RestorePlan, consumeSigchld: (t: Tracee) => void): void {
  for (const n of plan.nodes) {
    if (!n.helper || !n.tracee) continue;
    try {
      n.tracee.syscallRaw(NR.exit_group, 0);
    } catch {
      // it exited, as wanted
    }
    // As tracer we see the exit first; where we are its parent too (its
    // parent was the stub), that also reaps it. Its parent waits for it by
    // the pid it sees.
    collectExit(n.real);
    const parent = n.parent?.tracee;
    if (parent) {
      parent.syscall('wait4(helper)', NR.wait4, ownPid(n), 0, __WALL, 0);
      consumeSigchld(parent);
    }
    n.tracee = undefined;
  }
}

/**
 * Dump side of the cgroup kind: every thread's cgroups as sets (CRIU's
 * cg_set_entry, criu-ts's own set first with id 1 and left out of the
 * image, as CRIU does), and for each set that is not ours the directories
 * below each of its cgroups with their properties and permissions
 * (cg_controller_entry). A cgroup equal to criu-ts's own is saved without
 * its subtree (CRIU walks the whole subtree there, which for "/" is the
 * whole machine's hierarchy).
 */
import { readdirSync } from 'node:fs';
import type { CgControllerEntry, CgroupDirEntry, CgroupEntry, CgroupPropEntry, CgroupPerms } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import { logger } from '../../log.js';
import { NR } from '../../sys/index.js';
import { readNsLink } from '../../proc/index.js';
import type { DumpContext, DumpTaskView, DumpTreeView } from '../types.js';
import { stateKey } from '../types.js';
import { Hierarchies } from './hierarchies.js';
import { type CgMember, cnamesOf, hierarchyMatches, isSubpath, parseCgroupText, readThreadCgroupText, readThreadCgroups, sameMembers } from './model.js';
import { dirPerms, propNames, readProp } from './props.js';
import { LISTS_FROM_THREADS, threadsInAll } from './threads.js';

interface DirNode {
  path: string;
  perms: CgroupPerms;
  props: CgroupPropEntry[];
  children: DirNode[];
}

interface Controller {
  cnames: string[];
  heads: DirNode[];
  threaded: boolean;
}

interface DumpState {
  sets: { id: number; members: CgMember[] }[];
  controllers: Controller[];
  hier: Hierarchies;
  /** the root task's cgroup namespace prefix per hierarchy name (empty when it shares ours) */
  cgnsPrefix: Map<string, number>;
  rootPid: number;
}

const log = logger('cgroup');
const STATE = stateKey<DumpState>('cgroup:dump');
export const CRIU_SET_ID = 1;

export function dumpCgroupTree(tree: DumpTreeView, ctx: DumpContext): void {
  // One cgroup namespace for the whole tree (ours or the root's own): a
  // task in another one would need nesting, which is not done.
  const rootNs = readNsLink(tree.rootPid, 'cgroup');
  for (const t of tree.tasks) {
    if (t.zombie) continue;
    const ns = readNsLink(t.pid, 'cgroup');
    if (ns !== rootNs) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} is in cgroup namespace ${ns}, the tree's root ${tree.rootPid} in ${rootNs}: only one cgroup namespace per tree is supported`, { pid: t.pid });
    }
  }
  const hier = new Hierarchies(ctx.opts.cgroupYard);
  ctx.atExit(() => hier.close());
  // Ours is set 1: the real controllers we see, in /proc order; named hierarchies join as the tasks' sets show them.
  const own = dumped(ctx, readThreadCgroups(process.pid, process.pid));
  const controllers: Controller[] = [];
  for (const m of own.map((x) => x.name)) {
    if (m.startsWith('name=')) continue;
    controllers.push({ cnames: cnamesOf(m), heads: [], threaded: false });
  }
  const st: DumpState = { sets: [{ id: CRIU_SET_ID, members: own }], controllers, hier, cgnsPrefix: new Map(), rootPid: tree.rootPid };
  ctx.memo(STATE, () => st);
  ctx.setInventory({ root_cg_set: CRIU_SET_ID });
  ctx.atEnd(() => writeCgroupImage(st, ctx));
}

/** The hierarchies --cgroup-dump-controller keeps (all without it), as CRIU picks them: by the name /proc gives. */
function dumped(ctx: DumpContext, members: CgMember[]): CgMember[] {
  const only = ctx.opts.cgroupDumpControllers;
  return only.length === 0 ? members : members.filter((m) => only.includes(m.name));
}

/** The root task's cgroups as it sees them itself (read inside it): paths from its namespace's roots. */
function innerView(task: DumpTaskView, tid: number): CgMember[] {
  const t = task.main;
  const path = t.putScratch(Buffer.from(`/proc/self/task/${tid}/cgroup\0`), 0);
  const AT_FDCWD = -100;
  const fd = Number(t.syscall('openat(cgroup)', NR.openat, AT_FDCWD, path, 0));
  try {
    const bufAt = t.scratchAddr + 4096n;
    const n = Number(t.syscall('read(cgroup)', NR.read, fd, bufAt, 32768));
    return parseCgroupText(t.readMem(bufAt, n).toString('utf8'), `/proc/${task.pid}/task/${tid}/cgroup inside the task`);
  } finally {
    t.syscall('close', NR.close, fd);
  }
}

export function dumpCgroupTask(task: DumpTaskView, ctx: DumpContext): void {
  const st = ctx.memo(STATE, () => {
    throw new CriuTsError('EINTERNAL', 'cgroup kind: dumpTask before dumpTree', {});
  });
  const inOwnNs = task.ids.cgroup_ns_id !== undefined && readNsLink(task.pid, 'cgroup') !== readNsLink(process.pid, 'cgroup');
  // Threads of a process are most often all in its cgroups: a thread whose
  // file reads as the one before it is in that one's set (same text, same
  // members), without parsing it and comparing it with every set.
  let last: { text: string; set: number } | undefined;
  // Many threads: those in all of the main thread's cgroups are found from
  // those cgroups' thread lists (threads.ts), the others' files read.
  let inMain: { tids: Set<number>; set: number } | undefined;
  const many = !inOwnNs && task.cores.length >= LISTS_FROM_THREADS;
  for (const { tid, core } of task.cores) {
    if (!core.thread_core) throw new CriuTsError('EINTERNAL', `task ${task.pid}: thread ${tid} has no thread core`, { pid: task.pid });
    if (inMain?.tids.has(tid) === true) {
      core.thread_core.cg_set = inMain.set;
      continue;
    }
    const text = readThreadCgroupText(task.pid, tid);
    if (!inOwnNs && last !== undefined && text === last.text) {
      core.thread_core.cg_set = last.set;
      if (tid === task.pid && core.tc) core.tc.cg_set = last.set;
      continue;
    }
    const members = dumped(ctx, parseCgroupText(text, `/proc/${task.pid}/task/${tid}/cgroup`));
    if (inOwnNs) {
      if (task.pid === st.rootPid && tid === task.pid) {
        // As CRIU: the part of the path above what the task sees is its namespace's root.
        for (const m of dumped(ctx, innerView(task, tid))) {
          const ext = members.find((x) => x.name === m.name);
          if (!ext || ext.path === m.path) continue;
          const tail = m.path === '/' ? '' : m.path;
          if (!ext.path.endsWith(tail)) throw new CriuTsError('EDUMP', `task ${task.pid}: cgroup ${m.name}:${m.path} inside is not the end of ${ext.path}`, { pid: task.pid });
          st.cgnsPrefix.set(m.name, ext.path.length - tail.length);
        }
      }
      for (const m of members) {
        const p = st.cgnsPrefix.get(m.name);
        if (p === undefined) continue;
        if (m.path.length < p) throw new CriuTsError('EUNSUPPORTED', `task ${task.pid} (thread ${tid}): cgroup ${m.name}:${m.path} is above its cgroup namespace's root`, { pid: task.pid });
        m.cgnsPrefix = p;
      }
    }
    core.thread_core.cg_set = setIdOf(st, members, ctx);
    // Older readers (CRIU before 3.18, crit 3.17) know the main thread's set only in the task core.
    if (tid === task.pid && core.tc) core.tc.cg_set = core.thread_core.cg_set;
    last = { text, set: core.thread_core.cg_set };
    if (many && tid === task.pid) {
      const tids = threadsInAll(parseCgroupText(text, `/proc/${task.pid}/cgroup`), task.cores.map((c) => c.tid));
      if (tids !== undefined) inMain = { tids, set: last.set };
    }
  }
}

function setIdOf(st: DumpState, members: CgMember[], ctx: DumpContext): number {
  const known = st.sets.find((s) => sameMembers(s.members, members));
  if (known) return known.id;
  const id = st.sets.length + 1;
  st.sets.push({ id, members });
  log.debug(`cgroup: set ${id}: ${members.map((m) => `${m.name}:${m.path}`).join(' ')}`);
  collect(st, members, ctx);
  return id;
}

/** Save the directories of a new set's cgroups (unless --manage-cgroups=ignore). */
function collect(st: DumpState, members: readonly CgMember[], ctx: DumpContext): void {
  const own = st.sets[0]?.members ?? [];
  for (const m of members) {
    let ctrl = st.controllers.find((c) => hierarchyMatches(c.cnames, m.name));
    if (!ctrl) {
      if (!m.name.startsWith('name=')) throw new CriuTsError('EDUMP', `cgroup hierarchy ${m.name} of a task is not one of ours`, { name: m.name });
      ctrl = { cnames: [m.name], heads: [], threaded: false };
      st.controllers.push(ctrl);
    }
    if (ctx.opts.manageCgroups === 'ignore') continue;
    const override = ctx.opts.cgroupRoots.find((r) => r.controller !== undefined && hierarchyMatches(cnamesOf(r.controller), m.name))
      ?? ctx.opts.cgroupRoots.find((r) => r.controller === undefined);
    const ours = own.find((o) => o.name === m.name);
    if (override) walk(st, ctrl, override.root, true);
    else walk(st, ctrl, m.path, ours === undefined || ours.path !== m.path);
  }
}

function walk(st: DumpState, ctrl: Controller, path: string, deep: boolean): void {
  addDir(st, ctrl, path);
  if (!deep) return;
  const dir = st.hier.dir(ctrl.cnames, path);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(st, ctrl, path === '/' ? `/${e.name}` : `${path}/${e.name}`, true);
  }
}

function addDir(st: DumpState, ctrl: Controller, path: string): void {
  let list = ctrl.heads;
  let parent: DirNode | undefined;
  for (;;) {
    const exact = list.find((d) => d.path === path);
    if (exact) return;
    const above = list.find((d) => isSubpath(path, d.path));
    if (!above) break;
    parent = above;
    list = above.children;
  }
  const dir = st.hier.dir(ctrl.cnames, path);
  const props: CgroupPropEntry[] = [];
  for (const name of propNames(ctrl.cnames)) {
    const p = readProp(dir, name);
    if (!p) continue;
    if (name === 'tasks' || (name === 'cgroup.type' && p.value === 'threaded')) ctrl.threaded = true;
    props.push(p);
  }
  const node: DirNode = { path, perms: dirPerms(dir), props, children: [] };
  // Heads saved earlier below this one become its children.
  if (!parent) {
    node.children = ctrl.heads.filter((d) => isSubpath(d.path, path));
    ctrl.heads = ctrl.heads.filter((d) => !isSubpath(d.path, path));
    ctrl.heads.push(node);
  } else {
    list.push(node);
  }
}

function dirEntry(d: DirNode, parentPath: string | undefined): CgroupDirEntry {
  // Heads carry their whole path without the leading "/", children their name below the parent.
  const name = parentPath === undefined ? d.path.slice(1) : d.path.slice(parentPath === '/' ? 1 : parentPath.length + 1);
  return {
    dir_name: name,
    children: d.children.map((c) => dirEntry(c, d.path)),
    properties: d.props,
    dir_perms: d.perms,
  };
}

function writeCgroupImage(st: DumpState, ctx: DumpContext): void {
  try {
    // As CRIU: every task in our own cgroups: nothing to save.
    if (st.sets.length === 1) return;
    const entry: CgroupEntry = {
      sets: st.sets.slice(1).map((s) => ({
        id: s.id,
        ctls: s.members.map((m) => ({ name: m.name, path: m.path, ...(m.cgnsPrefix ? { cgns_prefix: m.cgnsPrefix } : {}) })),
      })),
      controllers: st.controllers.map((c): CgControllerEntry => ({
        cnames: c.cnames,
        dirs: c.heads.map((d) => dirEntry(d, undefined)),
        is_threaded: c.threaded,
      })),
    };
    ctx.saveImage('CGROUP', undefined, [entry]);
  } finally {
    st.hier.close();
  }
}

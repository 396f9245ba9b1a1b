/**
 * Restore side of the cgroup kind. Before any task exists: the directories
 * of cgroup.img are made or checked as --manage-cgroups says, with the
 * properties that must be set on an empty cgroup (cpuset.cpus, ...); then
 * each task is moved into its set right after its clone, before its
 * children (who inherit it); the root first makes its cgroup namespace
 * (moved to the namespace's root, an injected unshare(CLONE_NEWCGROUP),
 * then moved on). Once every task exists: threads whose cgroups differ
 * from their process's are moved one by one, and the other properties set.
 * A failed restore removes the directories it made.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { listThreads, parseStatus } from '../../proc/index.js';
import type { CgControllerEntry, CgroupDirEntry, CgroupEntry, CgSetEntry, CgMemberEntry, CgroupPropEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { logger } from '../../log.js';
import { NR, CLONE_NEWCGROUP } from '../../sys/index.js';
import type { CgroupMode, RestoreContext, RestoreTaskHandle, RestoreTreeTask, RestoreTreeView } from '../types.js';
import { stateKey } from '../types.js';
import { Hierarchies } from './hierarchies.js';
import { hierarchyMatches, parseCgroupText } from './model.js';
import { SPECIAL_PROPS, restoreProp } from './props.js';

const log = logger('cgroup');

interface RestoreState {
  sets: Map<number, CgSetEntry>;
  controllers: CgControllerEntry[];
  hier: Hierarchies;
  /** the dumper's own set: tasks in it stay in ours */
  criuSet: number | undefined;
  /** directories made here, parents first */
  made: string[];
  /** properties to set once every task exists */
  later: { dir: string; prop: CgroupPropEntry }[];
  tree: RestoreTreeView;
  /** the set each restored pid is in now */
  current: Map<number, number | undefined>;
  /** image pid -> the task's pid here (they differ in a new pid namespace): cgroup files take ours */
  host: Map<number, number>;
  /** the root was in a cgroup namespace of its own */
  newNs: boolean;
  /** --manage-cgroups as it applies (ignore for an unprivileged caller) */
  mode: CgroupMode;
}

const STATE = stateKey<RestoreState | undefined>('cgroup:restore');

/** A task's set: the main thread's thread_core (CRIU 4.x) or its task core (older images). */
function setOf(task: RestoreTreeTask): number | undefined {
  return task.core?.thread_core?.cg_set ?? task.core?.tc?.cg_set;
}

function controllerOf(st: RestoreState, name: string): CgControllerEntry {
  const c = st.controllers.find((x) => hierarchyMatches(x.cnames ?? [], name));
  if (!c) throw new CriuTsError('EIMAGE', `${imageFile('CGROUP')}: no controller entry for ${name}`, { name });
  return c;
}

export function prepareCgroups(tree: RestoreTreeView, ctx: RestoreContext): void {
  // For an unprivileged caller nothing is done as root to cgroups: its tasks
  // stay in ours, as CRIU's --unprivileged leaves them (making directories,
  // setting properties or moving tasks would be root's, not the caller's).
  const mode = ctx.opts.unprivileged ? 'ignore' : ctx.opts.manageCgroups;
  const img = mode === 'ignore' ? undefined : ctx.image('CGROUP');
  const entry: CgroupEntry = img?.entries[0] ?? {};
  const rootTask = tree.tasks.find((t) => t.pid === tree.rootPid);
  const rootNs = rootTask?.ids?.cgroup_ns_id;
  const ownNs = rootNs !== undefined && tree.rootIds?.cgroup_ns_id !== undefined && rootNs !== tree.rootIds.cgroup_ns_id;
  if (ownNs && ctx.opts.unprivileged) {
    throw new CriuTsError('EPERM', `not restored for an unprivileged caller: task ${tree.rootPid} would be in a cgroup namespace of its own`, { pid: tree.rootPid, errno: 1 });
  }
  for (const t of tree.tasks) {
    if (t.ids && rootNs !== undefined && t.ids.cgroup_ns_id !== rootNs) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} is in another cgroup namespace than the tree's root: only one cgroup namespace per tree is supported`, { pid: t.pid });
    }
  }
  rewriteRoots(entry, ctx.opts.cgroupRoots);
  const st: RestoreState = {
    sets: new Map((entry.sets ?? []).map((s) => [s.id, s])),
    controllers: entry.controllers ?? [],
    hier: new Hierarchies(ctx.opts.cgroupYard),
    criuSet: tree.inventory.root_cg_set,
    made: [],
    later: [],
    tree,
    current: new Map(),
    host: new Map(),
    newNs: ownNs,
    mode,
  };
  ctx.state(STATE, () => st);
  // --manage-cgroups=ignore: every task stays in ours (the cgroup namespace is still made).
  if (mode === 'ignore') return;
  for (const t of tree.tasks) {
    const id = setOf(t);
    for (const s of [id, ...t.threadCores.map((c) => c.core.thread_core?.cg_set)]) {
      if (s !== undefined && s !== st.criuSet && !st.sets.has(s)) throw new CriuTsError('EIMAGE', `task ${t.pid}: cgroup set ${s} is not in ${imageFile('CGROUP')}`, { pid: t.pid });
    }
  }
  for (const c of st.controllers) {
    if (!c.cnames || c.cnames.length === 0) throw new CriuTsError('EIMAGE', `${imageFile('CGROUP')}: a controller entry without names`, {});
    // Only the hierarchies some set uses are opened (a named one may not exist here otherwise).
    const used = [...st.sets.values()].some((s) => (s.ctls ?? []).some((m) => hierarchyMatches(c.cnames ?? [], m.name)));
    if (!used) continue;
    prepareDirs(st, c.cnames, '/', c.dirs ?? [], mode, true);
  }
}

function prepareDirs(st: RestoreState, cnames: readonly string[], parent: string, dirs: readonly CgroupDirEntry[], mode: string, head: boolean): void {
  for (const e of dirs) {
    const path = head ? `/${e.dir_name.replace(/^\/+/, '')}` : parent === '/' ? `/${e.dir_name}` : `${parent}/${e.dir_name}`;
    const dir = st.hier.dir(cnames, path);
    let props = e.properties ?? [];
    if (path === '/') {
      // A hierarchy's root is never changed.
      props = [];
    } else if (!existsSync(dir)) {
      if (mode === 'none' || mode === 'props') throw new CriuTsError('ERESTORE', `cgroup ${cnames.join(',')}:${path} does not exist (--manage-cgroups=${mode} does not make it)`, { path });
      mkdirSync(dir, { recursive: true });
      // Recorded parents first: a failed restore removes them children first.
      st.made.push(dir);
      log.info(`made cgroup ${cnames.join(',')}:${path}`);
      if (e.dir_perms) setPerms(dir, e.dir_perms);
      for (const p of props) if (SPECIAL_PROPS.has(p.name)) restoreProp(dir, p);
    } else {
      if (mode === 'strict') throw new CriuTsError('ERESTORE', `cgroup ${cnames.join(',')}:${path} exists already (--manage-cgroups=strict)`, { path });
      // soft and none leave an existing cgroup's properties alone.
      if (mode === 'soft' || mode === 'none') props = [];
      // As CRIU: the properties that need an empty cgroup are only set on one made here.
      if (mode !== 'none' && e.dir_perms) setPerms(dir, e.dir_perms);
    }
    for (const p of props) if (!SPECIAL_PROPS.has(p.name) && p.name !== 'freezer.state') st.later.push({ dir, prop: p });
    prepareDirs(st, cnames, path, e.children ?? [], mode, false);
  }
}

function setPerms(dir: string, p: { mode: number; uid: number; gid: number }): void {
  chownSync(dir, p.uid, p.gid);
  chmodSync(dir, p.mode & 0o7777);
}

/**
 * --cgroup-root at restore: the saved cgroups of a hierarchy (each saved
 * subtree head) go below the new root instead, and the sets' paths with them.
 */
function rewriteRoots(entry: CgroupEntry, roots: readonly { controller: string | undefined; root: string }[]): void {
  if (roots.length === 0) return;
  for (const c of entry.controllers ?? []) {
    const cnames = c.cnames ?? [];
    const own = roots.filter((r) => r.controller !== undefined && cnames.some((n) => hierarchyMatches([n], r.controller as string)));
    const distinct = new Set(own.map((r) => r.root));
    if (distinct.size > 1) throw new CriuTsError('EUSAGE', `--cgroup-root: different roots for ${cnames.join(',')}: ${[...distinct].join(', ')}`, {});
    const newRoot = own[0]?.root ?? roots.find((r) => r.controller === undefined)?.root;
    if (newRoot === undefined) continue;
    for (const d of c.dirs ?? []) {
      const old = `/${d.dir_name.replace(/^\/+/, '')}`.replace(/\/$/, '') || '/';
      for (const s of entry.sets ?? []) {
        for (const m of s.ctls ?? []) {
          if (!hierarchyMatches(cnames, m.name) || !(old === '/' || m.path === old || m.path.startsWith(`${old}/`))) continue;
          rewriteMember(m, old, newRoot);
        }
      }
      d.dir_name = newRoot.replace(/^\/+/, '');
    }
  }
}

function rewriteMember(m: CgMemberEntry, old: string, newRoot: string): void {
  const tail = old === '/' ? m.path : m.path.slice(old.length);
  const joined = (newRoot.replace(/\/$/, '') + (tail.startsWith('/') || tail === '' ? tail : `/${tail}`)) || '/';
  if (m.cgns_prefix) {
    // The namespace's root moves with the subtree: it keeps its place below the new root.
    const prefixTail = m.path.slice(0, m.cgns_prefix).slice(old === '/' ? 0 : old.length);
    m.cgns_prefix = (newRoot.replace(/\/$/, '') + prefixTail).length;
  }
  m.path = joined;
}

function moveInto(st: RestoreState, pid: number, members: readonly CgMemberEntry[], cut: boolean): void {
  for (const m of members) {
    if (cut && !m.cgns_prefix) continue;
    const c = controllerOf(st, m.name);
    const path = cut ? m.path.slice(0, m.cgns_prefix) || '/' : m.path;
    const file = `${st.hier.dir(c.cnames ?? [], path)}/cgroup.procs`;
    try {
      writeFileSync(file, String(pid));
    } catch (e) {
      throw new CriuTsError('ERESTORE', `task ${pid}: cannot move it into cgroup ${m.name}:${path}: ${(e as Error).message}`, { pid, path }, e);
    }
  }
}

/** The cgroups criu-ts itself is in now: where a task dumped in the dumper's cgroups goes. */
function ownMembers(): CgMemberEntry[] {
  return parseCgroupText(readFileSync('/proc/self/cgroup', 'utf8'), '/proc/self/cgroup');
}

export function restoreTaskCgroups(t: RestoreTaskHandle, task: RestoreTreeTask, ctx: RestoreContext): void {
  const st = ctx.state(STATE, () => undefined);
  if (!st) return;
  const want = setOf(task);
  const inherited = st.current.get(task.ppid) ?? st.criuSet;
  st.current.set(task.pid, want ?? inherited);
  // cgroup.procs reads pids in the writer's pid namespace: ours, never the image's (in a new pid
  // namespace the image's pid 1 would name our init).
  st.host.set(task.pid, t.pid);
  const set = want === undefined ? undefined : st.sets.get(want);
  if (task.pid === st.tree.rootPid && st.newNs) {
    // The namespace's root is where the task is when it unshares.
    if (set) moveInto(st, t.pid, set.ctls ?? [], true);
    t.syscall('unshare(CLONE_NEWCGROUP)', NR.unshare, CLONE_NEWCGROUP);
    log.debug(`task ${task.pid}: cgroup namespace made`);
  }
  if (want === undefined || want === inherited || st.mode === 'ignore') return;
  moveInto(st, t.pid, set ? set.ctls ?? [] : ownMembers(), false);
}

/**
 * The tid here of thread `vtid` (as the tree's pid namespace sees it) of
 * the task that is `host` here: the thread whose NSpid has `vtid` where the
 * task's has `vpid` (the tree's level, `below` levels above its own).
 */
function hostTid(host: number, vpid: number, vtid: number, below: number): number | undefined {
  if (host === vpid) return vtid;
  const level = parseStatus(host).nsPid.length - 1 - below;
  return listThreads(host).find((tid) => parseStatus(host, tid).nsPid[level] === vtid);
}

export function finishCgroups(ctx: RestoreContext, failed: boolean): void {
  const st = ctx.state(STATE, () => undefined);
  if (!st) return;
  try {
    if (failed) {
      for (const dir of [...st.made].reverse()) {
        try {
          rmdirSync(dir);
        } catch (e) {
          log.warn(`cannot remove cgroup ${dir}: ${(e as Error).message}`);
        }
      }
      return;
    }
    if (st.mode === 'ignore') return;
    // Threads in cgroups of their own (a v1 hierarchy, or a threaded v2 one): one by one.
    for (const task of st.tree.tasks) {
      const main = setOf(task);
      const host = st.host.get(task.pid);
      for (const { tid: vtid, core } of task.threadCores) {
        const s = core.thread_core?.cg_set;
        if (vtid === task.pid || s === undefined || s === main) continue;
        const tid = host === undefined ? undefined : hostTid(host, task.pid, vtid, task.levels.length);
        if (tid === undefined) throw new CriuTsError('ERESTORE', `task ${task.pid}: thread ${vtid} not found to move into its cgroups`, { pid: task.pid, tid: vtid });
        const set = st.sets.get(s);
        for (const m of set ? set.ctls ?? [] : ownMembers()) {
          const c = controllerOf(st, m.name);
          if (set && !c.is_threaded) continue;
          const v2 = (c.cnames ?? [])[0] === '';
          if (!set && v2) continue;
          writeFileSync(`${st.hier.dir(c.cnames ?? [], m.path)}/${v2 ? 'cgroup.threads' : 'tasks'}`, String(tid));
        }
      }
    }
    for (const { dir, prop } of st.later) restoreProp(dir, prop);
  } finally {
    st.hier.close();
  }
}

/**
 * The mount namespace (kernel: struct mnt_namespace): the tree of mounts
 * the dumped tree sees. CRIU images mountpoints-<ns id>.img (mnt_entry per
 * mount) and tmpfs-dev-<s_dev>.tar.gz.img (a tmpfs's files, gzip'd tar).
 *
 * Dump (dump.ts): when the tree's root is in a mount namespace other than
 * criu-ts's, its mountinfo is saved; what the restore could not make again
 * is refused with one line (see dump.ts for what is handled). Restore: the
 * root task is cloned with CLONE_NEWNS and, once every other namespace of
 * it exists (mqueue, sysfs, proc and cgroup mounts take the task's), the
 * tree is built inside it under --root and pivoted into (build.ts), before
 * its memory and files. Without --root such images are refused, as by
 * CRIU. A tree in criu-ts's own mount namespace restored with --root
 * ignores it, as CRIU does.
 *
 * Nested mount namespaces (a task of the tree that unshared its own, with
 * its descendants) are dumped each from its first task, with the
 * namespace it was made from (mountpoints-<its ns id>.img, as CRIU); at
 * restore that task is cloned with CLONE_NEWNS from its parent, whose
 * tree is built, and builds its own from that copy (build.ts).
 *
 * Limits: a task that entered a nested namespace from outside it (setns)
 * and a nested namespace under criu-ts's own are refused; mounts shared with or slave to mounts
 * outside the namespace, overmounted tmpfs, filesystems outside every
 * dumped mount unless given with --external, and mount options we do not
 * know are refused at dump. A task chroot'ed inside its namespace is read
 * through the root task's /proc/PID/root.
 */
import { closeSync, openSync, realpathSync, statSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import type { MntEntry } from '../../../images/messages.js';
import { stateKey, type DumpContext, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import type { ResourceKind } from '../../resource-kind.js';
import { isRoot } from '../common.js';
import { dumpMountNamespace } from './dump.js';
import { crossGroups, planMounts, type MountStep } from './plan.js';
import { dumpNamespaces, restoreNamespaces, type DumpedNamespaces } from './nested.js';
import { buildMountTree } from './build.js';
import { walk } from './hidden.js';
import { ptyForBindMount } from '../../files/tty/ptmx.js';
import { logger } from '../../../log.js';
import { parseMountinfo } from '../../../proc/index.js';
import { AT_FDCWD, EINVAL, EPERM, NR, O_CLOEXEC, fdOfTask, CLONE_NEWNS, OPEN_TREE_CLONE } from '../../../sys/index.js';
import { asNamespaceRoot } from '../user.js';

const log = logger('mnt');


const DUMP = stateKey<DumpedNamespaces>('mnt:dump');
interface Nested { steps: MountStep[]; cross: Map<number, string> }
interface RestoreState {
  rootPid: number;
  steps: MountStep[] | undefined;
  root: string;
  nested: Map<number, Nested>;
  joins: ReadonlySet<number>;
  rootReal: number | undefined;
  /** mount id -> the id of the dumped namespace holding it */
  mountNs: Map<number, number>;
  /** mount id -> its dumped entry */
  mounts: Map<number, MntEntry>;
  /** task (pid in the images) -> its mount namespace id */
  taskNs: Map<number, number>;
  /** namespace id -> a restored task in it (its pid here), once made */
  nsTask: Map<number, number>;
}
const RESTORE = stateKey<RestoreState>('mnt:restore');
const ROOT_NS = stateKey<{ id: number | undefined }>('mnt:root-ns');

/** The mount namespace id of the tree's root, from its images (cloneFlags runs before prepareRestore). */
function rootNsId(ctx: RestoreContext): number | undefined {
  return ctx.state(ROOT_NS, () => {
    const top = ctx.image('PSTREE')?.entries[0];
    return { id: top === undefined ? undefined : ctx.image('IDS', top.pid)?.entries[0]?.mnt_ns_id };
  }).id;
}

export const mntKind: ResourceKind = {
  name: 'mnt',
  namespaces: ['mnt'],

  dumpTree(tree, ctx) {
    const ns = dumpNamespaces(tree);
    const own = ns.own;
    ctx.memo(DUMP, () => ns);
    if (!own && ctx.opts.extMounts.size > 0) {
      throw new CriuTsError('EUSAGE', `--external mnt[...]: task ${tree.rootPid} is in criu-ts's own mount namespace, whose mounts are not dumped`, { pid: tree.rootPid });
    }
  },

  dumpTask(task, ctx) {
    const st = ctx.memo(DUMP, (): DumpedNamespaces => ({ rootPid: 0, own: false, entries: new Map(), groups: new Map(), tarred: new Map(), ids: new Map(), mountIds: new Map(), hidden: new Set() }));
    const entry = st.entries.get(task.pid);
    if (!st.own || (task.pid !== st.rootPid && entry === undefined)) return;
    const id = task.ids.mnt_ns_id;
    if (id === undefined) throw new CriuTsError('EDUMP', `task ${task.pid}: no mount namespace id`, { pid: task.pid });
    st.ids.set(task.pid, id);
    let outer: { mounts: ReturnType<typeof parseMountinfo>; nsId: number; pid: number } | undefined;
    if (entry !== undefined) {
      // Its parent's namespace was dumped before it (parents first).
      const nsId = st.ids.get(entry.outerPid);
      if (nsId === undefined) throw new CriuTsError('EINTERNAL', `task ${task.pid}: the mount namespace of task ${entry.outerPid} was not dumped before it`, { pid: task.pid });
      outer = { mounts: parseMountinfo(entry.parentPid), nsId, pid: entry.outerPid };
    }
    const cloneMount = (mountpoint: string): number | undefined => {
      const t = task.main;
      const path = t.putScratch(Buffer.from(`${mountpoint}\0`), 0);
      // A task without CAP_SYS_ADMIN (a container's process) may not clone a mount (EPERM), nor may anyone
      // clone an unbindable one (EINVAL): the caller reads the path instead.
      const r = t.syscallRaw(NR.open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | O_CLOEXEC);
      if (r === -BigInt(EPERM) || r === -BigInt(EINVAL)) return undefined;
      if (r < 0n) throw new CriuTsError('EDUMP', `task ${task.pid}: open_tree(${mountpoint}) in the task failed: errno ${String(-r)}`, { pid: task.pid, mountpoint });
      const fd = Number(r);
      try {
        return fdOfTask(task.pid, fd);
      } finally {
        t.syscall('close', NR.close, fd);
      }
    };
    const auto = ctx.opts.autoExtMounts ? { sharing: ctx.opts.extSharing, masters: ctx.opts.extMasters } : undefined;
    dumpMountNamespace(task.pid, id, { extMounts: ctx.opts.extMounts, auto, outer, groups: st.groups, tarred: st.tarred, cloneMount }, ctx);
  },

  prepareRestore(tree, ctx) {
    const { root: id, nested: entered, joins } = restoreNamespaces(tree);
    const nested = new Map<number, Nested>();
    const mountNs = new Map<number, number>();
    const mounts = new Map<number, MntEntry>();
    const taskNs = new Map<number, number>();
    for (const t of tree.tasks) if (t.ids?.mnt_ns_id !== undefined) taskNs.set(t.pid, t.ids.mnt_ns_id);
    const mountsOf = (nsId: number): readonly MntEntry[] => {
      const file = imageFile('MNTS', nsId);
      const entries = ctx.image('MNTS', nsId)?.entries;
      if (entries === undefined || entries.length === 0) throw new CriuTsError('EIMAGE', `${file} is missing or empty: the mount namespace cannot be re-created`, { file });
      for (const e of entries) {
        mountNs.set(e.mnt_id, nsId);
        mounts.set(e.mnt_id, e);
      }
      return entries;
    };
    let steps: MountStep[] | undefined;
    let root = '/';
    if (id !== undefined) {
      const file = imageFile('MNTS', id);
      const entries = ctx.image('MNTS', id)?.entries;
      if (entries === undefined || entries.length === 0) throw new CriuTsError('EIMAGE', `${file} is missing or empty: the tree's mount namespace cannot be re-created`, { file });
      // Making a mount namespace takes CAP_SYS_ADMIN: nothing a caller without it could do itself (docs/security.md).
      if (ctx.opts.unprivileged) {
        throw new CriuTsError('EPERM', `not restored for an unprivileged caller: the tree was dumped in a mount namespace of its own`, { errno: 1 });
      }
      if (ctx.opts.root === undefined) {
        throw new CriuTsError('EUSAGE', 'the tree was dumped in a mount namespace of its own: --root DIR is needed to restore it', {});
      }
      try {
        root = realpathSync(ctx.opts.root);
        if (!statSync(root).isDirectory()) throw new Error('not a directory');
      } catch (e) {
        throw new CriuTsError('EUSAGE', `--root ${ctx.opts.root}: ${(e as Error).message}`, { path: ctx.opts.root }, e);
      }
      for (const e of entries) {
        mountNs.set(e.mnt_id, id);
        mounts.set(e.mnt_id, e);
      }
      steps = planMounts(entries, file, { keys: ctx.opts.extMounts, auto: ctx.opts.autoExtMounts }, (name) => ctx.rawImage(name) !== undefined);
      for (const [pid, ns] of entered) {
        const own = mountsOf(ns.nsId);
        const outer = mountsOf(ns.outerNsId);
        nested.set(pid, { steps: planMounts(own, imageFile('MNTS', ns.nsId), { keys: new Map(), auto: false }, (name) => ctx.rawImage(name) !== undefined, outer), cross: crossGroups(own, outer) });
      }
    } else if (ctx.opts.root !== undefined) {
      log.info(`--root ${ctx.opts.root} is not used: the tree shares criu-ts's mount namespace (as with CRIU)`);
    }
    ctx.state(RESTORE, (): RestoreState => ({ rootPid: tree.rootPid, steps, root, nested, joins, rootReal: undefined, mountNs, mounts, taskNs, nsTask: new Map() }));
  },

  // Asked before prepareRestore: from the ids alone. A task in another
  // mount namespace than its parent's is born in a copy of its parent's
  // (the entry of a nested namespace); prepareRestore refuses the cases it
  // cannot build before any task is created.
  cloneFlags(task, parentIds, ctx) {
    const ns = task.ids?.mnt_ns_id;
    const above = parentIds?.mnt_ns_id;
    if (ns === undefined || above === undefined || ns === above) return 0n;
    // Back in the root's namespace (joined after the clone), unless this is the root itself.
    const root = rootNsId(ctx);
    return ns === root && task.ids !== undefined && above !== root && !isTreeRoot(task, ctx) ? 0n : BigInt(CLONE_NEWNS);
  },

  restoreCreated(t, task, ctx) {
    const st = restoreState(ctx);
    if (st.joins.has(task.pid)) joinRootNs(t, st.rootReal);
    const tar = (name: string): Buffer => {
      const b = ctx.rawImage(name);
      if (b === undefined) throw new CriuTsError('EIMAGE', `${name} is missing`, { file: name });
      return b;
    };
    // A pty slave bind-mounted elsewhere is made while the tree is built (tty/ptmx.ts).
    const ptySlave = (devpts: number, index: number): void => ptyForBindMount(t, devpts, index, ctx);
    const nested = st.nested.get(task.pid);
    if (nested !== undefined) {
      buildMountTree(t, { steps: nested.steps, root: '/', cross: nested.cross, tar, asRoot: asNamespaceRoot(ctx, t.pid), ptySlave });
      const ns = st.taskNs.get(task.pid);
      if (ns !== undefined) st.nsTask.set(ns, t.pid);
    }
    if (!isRoot(task, st.rootPid)) return;
    st.rootReal = t.pid;
    const ns = st.taskNs.get(task.pid);
    if (ns !== undefined) st.nsTask.set(ns, t.pid);
    if (st.steps !== undefined) buildMountTree(t, { steps: st.steps, root: st.root, tar, asRoot: asNamespaceRoot(ctx, t.pid), ptySlave });
  },
};

function isTreeRoot(task: { pid: number }, ctx: RestoreContext): boolean {
  return ctx.image('PSTREE')?.entries[0]?.pid === task.pid;
}

/** A task back in the tree root's mount namespace: setns into it through the root's /proc/PID/ns/mnt. */
function joinRootNs(t: RestoreTaskHandle, rootReal: number | undefined): void {
  if (rootReal === undefined) throw new CriuTsError('EINTERNAL', `task ${t.vpid}: the root's mount namespace is not made yet`, { pid: t.vpid });
  const ours = openSync(`/proc/${rootReal}/ns/mnt`, 'r');
  try {
    const fd = t.installFd(ours);
    try {
      t.syscall('setns(root mnt ns)', NR.setns, fd, CLONE_NEWNS);
    } finally {
      t.syscall('close', NR.close, fd);
    }
  } finally {
    closeSync(ours);
  }
}

function restoreState(ctx: RestoreContext): RestoreState {
  return ctx.state(RESTORE, (): RestoreState => ({
    rootPid: 0, steps: undefined, root: '/', nested: new Map(), joins: new Set(), rootReal: undefined, mountNs: new Map(), mounts: new Map(), taskNs: new Map(), nsTask: new Map(),
  }));
}

/**
 * At dump: is `mntId` a mount of a dumped mount namespace of the tree
 * (a file opened through it can be reopened through it at restore)?
 */
export function isTreeMount(ctx: DumpContext, mntId: number): boolean {
  return treeMountHolder(ctx, mntId) !== undefined;
}

/**
 * At dump: a task of the tree in the mount namespace that holds mount
 * `mntId` (names made through that mount are resolved in its namespace),
 * or undefined when it is in no dumped namespace.
 */
export function treeMountHolder(ctx: DumpContext, mntId: number): number | undefined {
  return ctx.memo(DUMP, (): DumpedNamespaces => ({ rootPid: 0, own: false, entries: new Map(), groups: new Map(), tarred: new Map(), ids: new Map(), mountIds: new Map(), hidden: new Set() })).mountIds.get(mntId);
}

/**
 * At dump: is `mntId` a mount of a dumped namespace that no path reaches
 * (another mount stacked on it or on a directory above it)? A file opened
 * through it could only be reopened through another mount.
 */
export function isHiddenMount(ctx: DumpContext, mntId: number): boolean {
  return ctx.memo(DUMP, (): DumpedNamespaces => ({ rootPid: 0, own: false, entries: new Map(), groups: new Map(), tarred: new Map(), ids: new Map(), mountIds: new Map(), hidden: new Set() })).hidden.has(mntId);
}

/**
 * At dump: one task of each dumped mount namespace of the tree (the root's
 * and every nested one), to look for a mount in namespaces other than a
 * task's own (a watched inode on a filesystem only another namespace
 * mounts). Empty when the tree is in criu-ts's own namespace.
 */
export function treeMountNsTasks(ctx: DumpContext): number[] {
  const st = ctx.memo(DUMP, (): DumpedNamespaces => ({ rootPid: 0, own: false, entries: new Map(), groups: new Map(), tarred: new Map(), ids: new Map(), mountIds: new Map(), hidden: new Set() }));
  return st.own ? [st.rootPid, ...st.entries.keys()] : [];
}

/**
 * At restore: a restored task (its pid here) in the mount namespace that
 * holds dumped mount `mntId`, when that is not the namespace of task
 * `vpid` (a file it inherited from its parent's namespace, opened through
 * a mount of it, is reopened there: through that task's /proc/PID/root).
 */
export function foreignMountTask(ctx: RestoreContext, vpid: number, mntId: number | undefined): number | undefined {
  if (mntId === undefined) return undefined;
  const st = restoreState(ctx);
  const ns = st.mountNs.get(mntId);
  if (ns === undefined || ns === st.taskNs.get(vpid)) return undefined;
  return st.nsTask.get(ns);
}

/**
 * At restore: a restored task (its pid here) in the mount namespace that
 * holds dumped mount `mntId`; undefined while that namespace has no task
 * yet (a nested one); `outside` for a mount of no dumped namespace (the
 * tree in criu-ts's own, or no mount id recorded).
 */
export function mountNsTask(ctx: RestoreContext, mntId: number | undefined, outside: number): number | undefined {
  const st = restoreState(ctx);
  const ns = mntId === undefined ? undefined : st.mountNs.get(mntId);
  return ns === undefined ? outside : st.nsTask.get(ns);
}

/**
 * At restore: a mount of a dumped namespace, made, that shows both `a` and
 * `b` (paths of mount `ma` and `mb`, as their namespaces see them), which
 * must be of one filesystem: the names to use for them through that
 * mount, and a task of its namespace. A hard link between two binds of
 * one filesystem can be made only through such a mount (CRIU looks for it
 * the same way). Undefined when none is.
 */
export function commonMount(ctx: RestoreContext, ma: number, a: string, mb: number, b: string, outside: number): { pid: number; a: string; b: string } | undefined {
  const st = restoreState(ctx);
  const ea = st.mounts.get(ma);
  const eb = st.mounts.get(mb);
  if (ea === undefined || eb === undefined || ea.root_dev !== eb.root_dev) return undefined;
  const onFs = (e: MntEntry, p: string): string | undefined => {
    const rel = under(p, e.mountpoint);
    return rel === undefined ? undefined : joinPath(e.root, rel);
  };
  const fa = onFs(ea, a);
  const fb = onFs(eb, b);
  if (fa === undefined || fb === undefined) return undefined;
  for (const [id, e] of st.mounts) {
    if (e.root_dev !== ea.root_dev) continue;
    const ra = under(fa, e.root);
    const rb = under(fb, e.root);
    const pid = mountNsTask(ctx, id, outside);
    if (ra === undefined || rb === undefined || pid === undefined) continue;
    return { pid, a: joinPath(e.mountpoint, ra), b: joinPath(e.mountpoint, rb) };
  }
  return undefined;
}

/** `p` relative to directory `dir` ('' for itself), or undefined when it is not below it. */
function under(p: string, dir: string): string | undefined {
  if (dir === '/' || p === dir) return p === dir ? '' : p.replace(/^\/+/, '');
  return p.startsWith(`${dir}/`) ? p.slice(dir.length + 1) : undefined;
}

function joinPath(dir: string, rel: string): string {
  return rel === '' ? dir : dir === '/' ? `/${rel}` : `${dir}/${rel}`;
}

/**
 * At restore: where to bind a unix socket again whose file was on dumped
 * mount `mntId`, in directory `dir` (a path of task `vpid`'s namespace),
 * when another mount covers that directory (made over it, or over a
 * directory above it, after the bind): the mountpoint of `mntId`, where
 * a clone of it is taken, and `dir` relative to it. Undefined when
 * `mntId` is no dumped mount or shows `dir` itself (nothing covers it).
 * Refused when `mntId` is of another namespace than the task's, or is
 * not the mount its own mountpoint shows.
 */
export function coveredDir(ctx: RestoreContext, vpid: number, mntId: number, dir: string, what: string): { mountpoint: string; rel: string } | undefined {
  const st = restoreState(ctx);
  const ns = st.mountNs.get(mntId);
  const m = st.mounts.get(mntId);
  if (ns === undefined || m === undefined) return undefined;
  const live = [...st.mounts.values()].filter((e) => st.mountNs.get(e.mnt_id) === ns).map((e) => ({ mntId: e.mnt_id, parentId: e.parent_mnt_id, mountpoint: e.mountpoint }));
  const seq = walk(live, dir);
  const i = seq.findIndex((x) => x.mntId === mntId);
  if (i < 0 || i === seq.length - 1) return undefined;
  if (ns !== st.taskNs.get(vpid)) {
    throw new CriuTsError('ERESTORE', `${what}: its name in ${dir} is covered by another mount, and its own mount ${mntId} is of another mount namespace than the task's`, { mntId });
  }
  if (walk(live, m.mountpoint).at(-1)?.mntId !== mntId) {
    throw new CriuTsError('ERESTORE', `${what}: its name in ${dir} is covered by another mount, and so is its own mount ${mntId}`, { mntId });
  }
  const rel = under(dir, m.mountpoint);
  if (rel === undefined) return undefined;
  return { mountpoint: m.mountpoint, rel };
}

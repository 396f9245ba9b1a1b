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
import { realpathSync, statSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import type { MntEntry } from '../../../images/messages.js';
import { stateKey, type ResourceKind } from '../../types.js';
import { isRoot } from '../common.js';
import { dumpMountNamespace } from './dump.js';
import { crossGroups, planMounts, type MountStep } from './plan.js';
import { dumpNamespaces, restoreNamespaces, type DumpedNamespaces } from './nested.js';
import { buildMountTree } from './build.js';
import { logger } from '../../../log.js';
import { parseMountinfo } from '../../../proc/index.js';

const log = logger('mnt');

const CLONE_NEWNS = 0x00020000n;

const DUMP = stateKey<DumpedNamespaces>('mnt:dump');
interface Nested { steps: MountStep[]; cross: Map<number, string> }
const RESTORE = stateKey<{ rootPid: number; steps: MountStep[] | undefined; root: string; nested: Map<number, Nested> }>('mnt:restore');

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
    const st = ctx.memo(DUMP, () => ({ rootPid: 0, own: false, entries: new Map(), groups: new Map(), tarred: new Map(), ids: new Map() }));
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
    dumpMountNamespace(task.pid, id, { extMounts: ctx.opts.extMounts, outer, groups: st.groups, tarred: st.tarred }, ctx);
  },

  prepareRestore(tree, ctx) {
    const { root: id, nested: entered } = restoreNamespaces(tree);
    const nested = new Map<number, Nested>();
    const mountsOf = (nsId: number): MntEntry[] => {
      const file = `mountpoints-${nsId}.img`;
      const entries = ctx.ownImage(file)?.entries as MntEntry[] | undefined;
      if (entries === undefined || entries.length === 0) throw new CriuTsError('EIMAGE', `${file} is missing or empty: the mount namespace cannot be re-created`, { file });
      return entries;
    };
    let steps: MountStep[] | undefined;
    let root = '/';
    if (id !== undefined) {
      const file = `mountpoints-${id}.img`;
      const entries = ctx.ownImage(file)?.entries as MntEntry[] | undefined;
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
      steps = planMounts(entries, file, ctx.opts.extMounts, (name) => ctx.rawImage(name) !== undefined);
      for (const [pid, ns] of entered) {
        const own = mountsOf(ns.nsId);
        const outer = mountsOf(ns.outerNsId);
        nested.set(pid, { steps: planMounts(own, `mountpoints-${ns.nsId}.img`, new Map(), (name) => ctx.rawImage(name) !== undefined, outer), cross: crossGroups(own, outer) });
      }
    } else if (ctx.opts.root !== undefined) {
      log.info(`--root ${ctx.opts.root} is not used: the tree shares criu-ts's mount namespace (as with CRIU)`);
    }
    ctx.state(RESTORE, () => ({ rootPid: tree.rootPid, steps, root, nested }));
  },

  // Asked before prepareRestore: from the ids alone. A task in another
  // mount namespace than its parent's is born in a copy of its parent's
  // (the entry of a nested namespace); prepareRestore refuses the cases it
  // cannot build before any task is created.
  cloneFlags(task, parentIds) {
    const ns = task.ids?.mnt_ns_id;
    const above = parentIds?.mnt_ns_id;
    return ns !== undefined && above !== undefined && ns !== above ? CLONE_NEWNS : 0n;
  },

  restoreCreated(t, task, ctx) {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, steps: undefined, root: '/', nested: new Map<number, Nested>() }));
    const tar = (name: string): Buffer => {
      const b = ctx.rawImage(name);
      if (b === undefined) throw new CriuTsError('EIMAGE', `${name} is missing`, { file: name });
      return b;
    };
    const nested = st.nested.get(task.pid);
    if (nested !== undefined) buildMountTree(t, { steps: nested.steps, root: '/', cross: nested.cross, tar });
    if (!isRoot(task, st.rootPid) || st.steps === undefined) return;
    buildMountTree(t, { steps: st.steps, root: st.root, tar });
  },
};

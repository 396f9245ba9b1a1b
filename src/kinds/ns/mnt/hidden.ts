/**
 * A mount no path reaches (a tmpfs overmounted on its own mountpoint, or
 * under a mount on a directory above it), cloned for its files to be
 * read. No path means no open_tree in the task, and a detached tree
 * cannot be unmounted in, so a helper task of ours (infect/helper-task.ts)
 * does it in a throwaway copy of the task's mount namespace: it enters the
 * task's user namespace (if other than ours: a copy made from another
 * user namespace would lock every mount) and its mount namespace,
 * unshares a copy of it, makes the copy private at once (its shared
 * mounts would otherwise carry every unmount back to the task's), lazily
 * unmounts the mounts that hide the one wanted, latest first, and clones
 * that one (open_tree, without its submounts). The clone's fd is taken
 * with pidfd_getfd; the helper, and its copy, die after. The task's own
 * namespace is not touched.
 */
import { fstatSync } from 'node:fs';
import { readNsLink } from '../../../proc/index.js';
import { CriuTsError } from '../../../errors.js';
import { withHelperTask } from '../../../infect/helper-task.js';
import type { MountInfo } from '../../../proc/index.js';
import {
  AT_FDCWD, NR, O_CLOEXEC, closeQuiet, fdOfTask, CLONE_NEWNS, CLONE_NEWUSER, MS_REC, MS_PRIVATE, MNT_DETACH, OPEN_TREE_CLONE,
} from '../../../sys/index.js';

/** A mount as the walk needs it: mountinfo's, or a dumped mnt_entry's ids and mountpoint. */
export interface WalkMount { mntId: number; parentId: number; mountpoint: string }

/** The mounts path resolution passes through, in order, walking `path` from the namespace's root mount. */
export function walk<M extends WalkMount>(live: readonly M[], path: string): M[] {
  const root = live.find((x) => x.mountpoint === '/' && !live.some((p) => p.mntId === x.parentId && p !== x));
  if (root === undefined) return [];
  const seq = [root];
  let cur = root;
  // A walk from "/" does not see mounts stacked on the root itself; below, the last one made at a
  // mountpoint is the one crossed into, then every mount stacked on its root.
  const enter = (at: string): void => {
    for (;;) {
      const next = live.filter((o) => o.parentId === cur.mntId && o.mountpoint === at && o !== cur).pop();
      if (next === undefined) return;
      seq.push(next);
      cur = next;
    }
  };
  let at = '';
  for (const c of path.split('/').filter((x) => x !== '')) {
    at = `${at}/${c}`;
    enter(at);
  }
  return seq;
}

/**
 * The mountpoints to unmount (MNT_DETACH, in this order) for `m` to be
 * the mount its own mountpoint shows: [] when it is already, undefined
 * when no unmount would make it so. Worked out on mountinfo alone, by
 * walking the path as the kernel does: each round unmounts the topmost
 * mount at the first place the walk leaves m's chain of parents (a
 * mount stacked there, or on a directory above, hides the rest), and
 * that mount's subtree with it.
 */
export function unmountsToReach(mounts: readonly MountInfo[], m: MountInfo): string[] | undefined {
  const byId = new Map(mounts.map((x) => [x.mntId, x]));
  const chain = new Set<number>();
  for (let x: MountInfo | undefined = m; x !== undefined && !chain.has(x.mntId); x = byId.get(x.parentId)) chain.add(x.mntId);
  let live = [...mounts];
  const out: string[] = [];
  for (let round = 0; round < mounts.length; round++) {
    const seq = walk(live, m.mountpoint);
    if (seq.at(-1) === m) return out;
    const h = seq.find((x) => !chain.has(x.mntId));
    if (h === undefined) return undefined;
    const top = walk(live, h.mountpoint).at(-1) as MountInfo;
    out.push(h.mountpoint);
    const gone = new Set([top.mntId]);
    for (let grew = true; grew;) {
      grew = false;
      for (const x of live) if (!gone.has(x.mntId) && gone.has(x.parentId)) { gone.add(x.mntId); grew = true; }
    }
    live = live.filter((x) => !gone.has(x.mntId));
  }
  return undefined;
}


/**
 * Our fd on a detached clone (no submounts) of the mount at `mountpoint`
 * of task `pid`'s namespace once the mounts at `hiders` (mountpoints as
 * the task sees them, latest first) are unmounted in a copy of it. `dev`
 * is the filesystem's st_dev: the clone must show it.
 */
export function cloneHiddenMount(pid: number, mountpoint: string, hiders: readonly string[], dev: number, who: string): number {
  const what = `${who}: the hidden mount at ${mountpoint}`;
  const fd = withHelperTask(what, (h) => {
    h.mapScratch();
    let at = 0;
    const str = (s: string): bigint => {
      const b = Buffer.from(`${s}\0`);
      const a = h.putScratch(b, at);
      at += b.length;
      return a;
    };
    const open = (path: string): number => Number(h.syscall(`open(${path})`, NR.openat, AT_FDCWD, str(path), O_CLOEXEC));
    const ownUser = readNsLink(pid, 'user') !== readNsLink('self', 'user');
    // Both opened before the helper leaves our namespaces.
    const user = ownUser ? open(`/proc/${pid}/ns/user`) : -1;
    const mnt = open(`/proc/${pid}/ns/mnt`);
    if (ownUser) h.syscall('setns(user)', NR.setns, user, CLONE_NEWUSER);
    h.syscall('setns(mnt)', NR.setns, mnt, CLONE_NEWNS);
    h.syscall('unshare(CLONE_NEWNS)', NR.unshare, CLONE_NEWNS);
    at = 0;
    h.syscall('mount(/, MS_REC|MS_PRIVATE)', NR.mount, 0, str('/'), 0, MS_REC | MS_PRIVATE, 0);
    for (const p of hiders) {
      at = 0;
      const r = h.syscallRaw(NR.umount2, str(p), MNT_DETACH);
      if (r < 0n) throw new CriuTsError('EUNSUPPORTED', `${what}: the mount at ${p} over it cannot be unmounted in a copy of the namespace (errno ${String(-r)}): its files cannot be read`, { pid, mountpoint });
    }
    at = 0;
    const clone = Number(h.syscall(`open_tree(${mountpoint})`, NR.open_tree, AT_FDCWD, str(mountpoint), OPEN_TREE_CLONE | O_CLOEXEC));
    return fdOfTask(h.tid, clone);
  });
  // The copy's mount at that path must be the filesystem dumped, not another one left over it.
  if (fstatSync(fd).dev !== dev) {
    closeQuiet(fd);
    throw new CriuTsError('EUNSUPPORTED', `${what}: another filesystem still shows at its mountpoint once the mounts over it are gone: its files cannot be read`, { pid, mountpoint });
  }
  return fd;
}

/**
 * External mounts that were in a peer group of criu-ts's namespace (an
 * automatic external mount shared with its source, --external mnt[]:s):
 * at restore each is made private like every mount, and once the tree is
 * built criu-ts puts it back in its source's group with
 * MOVE_MOUNT_SET_GROUP, from a clone of the source it took in its own
 * namespace (a peer of it) to the task's mount (through pidfd_getfd). The
 * task cannot: the source's group belongs to our mount namespace, which a
 * task in a user namespace of its own may not change, and the copy of our
 * tree it was born with holds slaves of our mounts, not peers.
 * An external mount that was a slave of a group outside is checked to be
 * one again once bound.
 */
import { closeSync, openSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { parseFdinfo, parseMountinfo } from '../../../proc/index.js';
import { cloneMountTree, fdOfTask, joinPeerGroup } from '../../../sys/index.js';
import type { RestoreTaskHandle } from '../../types.js';
import type { MountStep } from './plan.js';

/**
 * Our clone of the mount at `path` in criu-ts's namespace when that mount
 * is shared: the clone is a peer of it. Undefined for a private or slave
 * mount (nothing to join).
 */
export function sourceGroupClone(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new CriuTsError('ERESTORE', `external mount source ${path}: ${(e as Error).message}`, { path }, e);
  }
  let shared: number;
  try {
    const id = parseFdinfo(process.pid, fd).mntId;
    shared = parseMountinfo(process.pid).find((m) => m.mntId === id)?.shared ?? 0;
  } finally {
    closeSync(fd);
  }
  return shared === 0 ? undefined : cloneMountTree(path, false);
}

/**
 * External mounts back in their sources' peer groups (the tree made,
 * each still private): criu-ts moves each into the group of its clone of
 * the source (the task, in a user namespace of its own, may not). Their
 * groups are then started: the other members of the tree join them from
 * these mounts.
 */
export function joinSourceGroups(t: RestoreTaskHandle, steps: readonly MountStep[], fds: ReadonlyMap<number, number>, ourClones: ReadonlyMap<number, number>): { groups: Map<number, number>; mounts: Set<number> } {
  const groups = new Map<number, number>();
  const mounts = new Set<number>();
  for (const s of steps) {
    const from = ourClones.get(s.e.mnt_id);
    const fd = fds.get(s.e.mnt_id);
    const g = s.e.shared_id ?? 0;
    if (from === undefined || fd === undefined || g === 0 || s.how !== 'external') continue;
    const to = fdOfTask(t.pid, fd);
    try {
      joinPeerGroup(from, to);
    } catch (e) {
      throw new CriuTsError('ERESTORE', `mount ${s.e.mnt_id} at ${s.e.mountpoint} (external, from ${s.path}): cannot join its source's peer group: ${(e as Error).message}`, { mountpoint: s.e.mountpoint }, e);
    } finally {
      closeSync(to);
    }
    mounts.add(s.e.mnt_id);
    if (!groups.has(g)) groups.set(g, fd);
  }
  return { groups, mounts };
}

/**
 * An external mount that was a slave of a group outside the dump is one
 * again only if its source here is in a peer group: checked in the task's
 * mountinfo, found by the mount id of the task's fd on it (the tree is
 * made relative to the cwd, so its mountpoint as mountinfo shows it is
 * not the path it was attached at).
 */
export function slaveOfOutside(pid: number, fd: number, s: Extract<MountStep, { how: 'external' }>): void {
  const id = parseFdinfo(pid, fd).mntId;
  const m = parseMountinfo(pid).find((x) => x.mntId === id);
  if (m === undefined || m.master === 0) {
    throw new CriuTsError('ERESTORE', `mount ${s.e.mnt_id} at ${s.e.mountpoint} (external ${s.key}) was a slave of peer group ${String(s.e.master_id)} outside the dump, and its source ${s.path} is in no peer group here: it cannot be a slave again`, { mountpoint: s.e.mountpoint, key: s.key });
  }
}

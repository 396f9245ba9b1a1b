/**
 * The restore side of remaps: before any task opens a file, every ghost is
 * made once and each remapped file entry pointed at what to open; after
 * the restore the ghosts (and, on success, the link remaps) are removed.
 */
import { linkSync, lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { PID_MAX_LIMIT, O_NOFOLLOW, asMappedIfNeeded } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { imageFile } from '../../../images/index.js';
import { treePathsOf, closeTreeFds, type TreePaths } from '../tree-paths.js';
import { logger } from '../../../log.js';

const log = logger('ghost');
import { REMAP_GHOST_BIT, S_IFMT, S_IFLNK } from './common.js';
import { createGhost } from './create.js';
import { mountNsTask } from '../../ns/mnt/index.js';

/**
 * At restore: the pids whose /proc entries the dump saw dead (PROCFS
 * remaps). The plan adds a short-lived helper task for each.
 */
export function deadProcPids(ctx: RestoreContext): number[] {
  const pids = new Set<number>();
  for (const r of ctx.kindImage('REMAP_FPATH').entries) {
    if (r.remap_type !== 'PROCFS' && r.remap_type !== 2) continue;
    if (!Number.isSafeInteger(r.remap_id) || r.remap_id < 1 || r.remap_id > PID_MAX_LIMIT) {
      throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} names dead pid ${r.remap_id}, which is not a pid`, { id: r.orig_id });
    }
    pids.add(r.remap_id);
  }
  return [...pids].sort((a, b) => a - b);
}

/** What a restore created for remaps, to remove once it is over. */
export interface MaterializedRemaps {
  /**
   * ghost files and directories, then directories made for them (removed
   * in this order), as criu-ts reaches them: in a tree of its own mount
   * namespace, through fds of `fds` (remove them before closing those)
   */
  ghosts: string[];
  /**
   * link_remap.N names made by the dump, with the mount each is on (its
   * namespace's task may not exist yet when the remaps are made): removed
   * by removeLinks after a successful restore only (a retry needs them)
   */
  links: { name: string; mntId: number | undefined }[];
  /** the restored tree's root task (names of its namespace), or ours */
  rootPid: number;
  /**
   * our O_PATH fds on the ghosts (the tasks open them through
   * /proc/<us>/fd/N, never by name: docs/security.md) and on the tree's
   * directories; closed by removeRemapFds
   */
  fds: number[];
  /** made in a mount namespace other than ours: the names are fd links, meaningless to another process */
  foreign: boolean;
}

/** Close the fds that pinned the ghosts (after the restore, whatever its outcome). */
export function removeRemapFds(made: MaterializedRemaps): void {
  closeTreeFds(made.fds);
}

/**
 * Before any task opens a file: create every ghost once (per ghost id) and
 * point each file entry remapped to it, or to a link remap, at the name to
 * open. The names are the tree's: with `tree`, the restored tree's root
 * task once it built its mount namespace, they are made in that namespace
 * (tree-paths.ts; a read-only mount there is made writable meanwhile,
 * rofs.ts); without, in ours.
 */
export function materializeRemaps(ctx: RestoreContext, tree?: RestoreTaskHandle): MaterializedRemaps {
  const made: MaterializedRemaps = { ghosts: [], links: [], fds: [], foreign: false, rootPid: tree?.pid ?? process.pid };
  const ghostPaths = new Map<number, string>();
  const ownNames = new Map<string, string>();
  try {
    const paths = treePathsOf(tree?.pid ?? process.pid, made.fds);
    made.foreign = paths.foreign;
    for (const r of ctx.kindImage('REMAP_FPATH').entries) {
      let type = r.remap_type as string | number | undefined;
      let remapId = r.remap_id;
      if (type === undefined) {
        type = (remapId & REMAP_GHOST_BIT) !== 0 ? 'GHOST' : 'LINKED';
        remapId = (remapId & ~REMAP_GHOST_BIT) >>> 0;
      }
      const f = ctx.fileById(r.orig_id);
      if (!f?.reg) throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} is not a regular file entry`, { id: r.orig_id });
      if (type === 'GHOST' || type === 1) {
        let path = ghostPaths.get(remapId);
        if (path === undefined) {
          path = createGhost(ctx, remapId, f.reg.name, paths, made.ghosts, made.fds, tree);
          ghostPaths.set(remapId, path);
        }
        f.reg.name = path;
        // A symlink ghost is reached by following our fd's magic link once (which lands on the link itself).
        if (ghostIsSymlink(ctx, remapId)) f.reg.flags &= ~O_NOFOLLOW;
      } else if (type === 'LINKED' || type === 0) {
        const link = ctx.fileById(remapId)?.reg?.name;
        if (link === undefined) throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: link remap ${remapId} of file ${r.orig_id} is missing`, { id: r.orig_id });
        const mntId = ctx.fileById(remapId)?.reg?.mnt_id;
        if (!made.links.some((l) => l.name === link && l.mntId === mntId)) made.links.push({ name: link, mntId });
        const key = `${mntId ?? ''}:${link}`;
        let name = ownNames.get(key);
        if (name === undefined) {
          name = ownName(ctx, link, f.reg.name, mntId, paths, made);
          ownNames.set(key, name);
        }
        f.reg.name = name;
      } else if (type === 'PROCFS' || type === 2) {
        // Opened by its own name while the helper with that pid lives (deadProcPids).
      } else {
        throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} (${f.reg.name}) has unknown remap type ${String(type)}`, { id: r.orig_id });
      }
    }
  } catch (e) {
    removeGhosts(made.ghosts);
    removeRemapFds(made);
    throw e;
  }
  return made;
}

/**
 * A link remap is opened under the file's own name, as after CRIU's
 * restore (its fds then read "NAME (deleted)" again): the dump's link gets
 * that name too, through the mount the link is on, in its namespace, and
 * the name goes with the ghosts once the restore is over. If the name is
 * taken, its directory gone, or the namespace not built yet (a nested
 * one: its tasks come later), the link's own name is opened instead.
 */
function ownName(ctx: RestoreContext, link: string, orig: string, mntId: number | undefined, rootPaths: TreePaths, made: MaterializedRemaps): string {
  const pid = mountNsTask(ctx, mntId, made.rootPid);
  if (pid === undefined) return link;
  try {
    const paths = pid === made.rootPid ? rootPaths : treePathsOf(pid, made.fds);
    const from = paths.at(link);
    const to = paths.at(orig);
    const st = lstatSync(from);
    asMappedIfNeeded(st.uid, st.gid, () => linkSync(from, to));
    made.ghosts.push(to);
    return orig;
  } catch (e) {
    log.debug(`link remap ${link}: opened by that name, not as ${orig}: ${(e as Error).message}`);
    return link;
  }
}

function ghostIsSymlink(ctx: RestoreContext, gid: number): boolean {
  const g = ctx.image('GHOST_FILE', gid)?.entries[0];
  return g !== undefined && (g.mode & S_IFMT) === S_IFLNK;
}

/**
 * After a successful restore: the dump's link_remap.N names go, each in the
 * mount namespace of the mount it is on (once all the tree's tasks exist),
 * else in the tree root's.
 */
export function removeLinks(ctx: RestoreContext, made: MaterializedRemaps): void {
  const fds: number[] = [];
  try {
    for (const l of made.links) {
      try {
        unlinkSync(treePathsOf(mountNsTask(ctx, l.mntId, made.rootPid) ?? made.rootPid, fds).at(l.name));
      } catch {
        // already gone
      }
    }
  } finally {
    closeTreeFds(fds);
  }
}

export function removeGhosts(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      unlinkSync(p);
    } catch {
      try {
        rmdirSync(p);
      } catch {
        // already gone, or a directory the task filled meanwhile
      }
    }
  }
}

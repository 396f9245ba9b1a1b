/**
 * The restore side of remaps: before any task opens a file, every ghost is
 * made once and each remapped file entry pointed at what to open; after
 * the restore the ghosts (and, on success, the link remaps) are removed.
 */
import { rmdirSync, unlinkSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { PID_MAX_LIMIT, O_NOFOLLOW } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { imageFile } from '../../../images/index.js';
import { treePathsOf, closeTreeFds } from '../tree-paths.js';
import { REMAP_GHOST_BIT, S_IFMT, S_IFLNK } from './common.js';
import { createGhost } from './create.js';

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
  /** link_remap.N names made by the dump, as `ghosts`: removed after a successful restore only (a retry needs them) */
  links: string[];
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
  const made: MaterializedRemaps = { ghosts: [], links: [], fds: [], foreign: false };
  const ghostPaths = new Map<number, string>();
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
        f.reg.name = link;
        const ours = paths.at(link);
        if (!made.links.includes(ours)) made.links.push(ours);
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

function ghostIsSymlink(ctx: RestoreContext, gid: number): boolean {
  const g = ctx.image('GHOST_FILE', gid)?.entries[0];
  return g !== undefined && (g.mode & S_IFMT) === S_IFLNK;
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

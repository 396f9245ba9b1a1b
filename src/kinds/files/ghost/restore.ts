/**
 * The restore side of remaps: before any task opens a file, every ghost is
 * made once and each remapped file entry pointed at what to open; after
 * the restore the ghosts (and, on success, the link remaps) are removed.
 */
import { linkSync, lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { PID_MAX_LIMIT, O_NOFOLLOW, asMappedIfNeeded } from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { imageFile } from '../../../images/index.js';
import { treePathsOf, closeTreeFds, plainPath, type TreePaths } from '../tree-paths.js';
import { logger } from '../../../log.js';

const log = logger('ghost');
import { REMAP_GHOST_BIT, S_IFMT, S_IFLNK } from './common.js';
import { createGhost } from './create.js';
import { commonMount, mountNsTask } from '../../ns/mnt/index.js';

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
   * `ghosts` as plain paths of our mount namespace, for a process holding
   * none of our fds (the guardian); empty for a tree of its own namespace
   */
  plain: string[];
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
  const made: MaterializedRemaps = { ghosts: [], links: [], fds: [], foreign: false, rootPid: tree?.pid ?? process.pid, plain: [] };
  const ghostPaths = new Map<number, { reopen: string; name: string; dir: boolean; mntId: number | undefined }>();
  const elsewhere = ctx.state(ELSEWHERE, () => ({ made, byFile: new Map() }));
  elsewhere.made = made;
  const ownNames = new Map<string, string>();
  try {
    const paths = treePathsOf(tree?.pid ?? process.pid, made.fds);
    made.foreign = paths.foreign;
    // Entries on mounts of the root's namespace first: a ghost is made through the first of its entries,
    // in that namespace, so it is on that entry's mount and the others can be linked from it.
    const inRootNs = (id: number): number => (mountNsTask(ctx, ctx.fileById(id)?.reg?.mnt_id, made.rootPid) === made.rootPid ? 0 : 1);
    const remaps = [...ctx.kindImage('REMAP_FPATH').entries].sort((a, b) => inRootNs(a.orig_id) - inRootNs(b.orig_id));
    for (const r of remaps) {
      let type = r.remap_type as string | number | undefined;
      let remapId = r.remap_id;
      if (type === undefined) {
        type = (remapId & REMAP_GHOST_BIT) !== 0 ? 'GHOST' : 'LINKED';
        remapId = (remapId & ~REMAP_GHOST_BIT) >>> 0;
      }
      const f = ctx.fileById(r.orig_id);
      if (!f?.reg) throw new CriuTsError('EIMAGE', `${imageFile('REMAP_FPATH')}: file ${r.orig_id} is not a regular file entry`, { id: r.orig_id });
      if (type === 'GHOST' || type === 1) {
        let g = ghostPaths.get(remapId);
        if (g === undefined) {
          // Made in the root's namespace: on this entry's mount only if that mount is of that namespace.
          const onIt = inRootNs(f.id) === 0;
          g = { ...createGhost(ctx, remapId, f.reg.name, paths, made.ghosts, made.fds, tree), mntId: onIt ? f.reg.mnt_id : undefined };
          ghostPaths.set(remapId, g);
        }
        // An fd opened through another mount than the ghost's: linked there when its task opens it (ghostOnOwnMount).
        if (!g.dir && g.mntId !== undefined && f.reg.mnt_id !== undefined && f.reg.mnt_id !== g.mntId) {
          elsewhere.byFile.set(f.id, { ghost: g.name, ghostMnt: g.mntId, orig: f.reg.name });
        }
        f.reg.name = g.reopen;
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
  if (!made.foreign) made.plain = made.ghosts.map(plainPath);
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

/** Ghost fds of another mount than their ghost's, by file id, and the remaps they belong to. */
const ELSEWHERE = stateKey<{ made: MaterializedRemaps; byFile: Map<number, { ghost: string; ghostMnt: number; orig: string }> }>('ghost:elsewhere');

/**
 * When task `pid` is about to open file `fileId` through mount `mntId`: if
 * its ghost was made through another mount (a bind of another directory
 * of the same filesystem, maybe of another namespace), the ghost gets the
 * file's own name (else `NAME.cr.ID.ghost`) through a mount that shows
 * both, and the name to open is returned: the fd is then on the file's own
 * mount, as at dump (zdtm's mntns_link_ghost checks the mount ids). The
 * name goes with the ghosts. Undefined when no mount shows both: the
 * ghost is opened through ours (its mount id differs).
 */
export function ghostOnOwnMount(ctx: RestoreContext, fileId: number, mntId: number | undefined): string | undefined {
  const st = ctx.state(ELSEWHERE, () => ({ made: { ghosts: [], links: [], fds: [], foreign: false, rootPid: process.pid, plain: [] }, byFile: new Map() }));
  const d = st.byFile.get(fileId);
  if (d === undefined || mntId === undefined) return undefined;
  const names = [d.orig, `${d.orig}.cr.${fileId.toString(16)}.ghost`];
  for (const name of names) {
    const c = commonMount(ctx, d.ghostMnt, d.ghost, mntId, name, st.made.rootPid);
    if (c === undefined) break;
    try {
      // The ghost's own name already shows on this mount: opened by it.
      if (c.a === c.b) return opened(ctx, fileId, name);
      const paths = treePathsOf(c.pid, st.made.fds);
      const from = paths.at(c.a);
      const to = paths.at(c.b);
      const owner = lstatSync(from);
      asMappedIfNeeded(owner.uid, owner.gid, () => linkSync(from, to));
      st.made.ghosts.unshift(to);
      st.byFile.delete(fileId);
      return opened(ctx, fileId, name);
    } catch (e) {
      log.debug(`ghost ${d.ghost}: not linked as ${name} for mount ${mntId}: ${(e as Error).message}`);
    }
  }
  log.info(`ghost ${d.ghost}: no mount shows it and ${d.orig}: file ${fileId} reopens it through the ghost's mount`);
  return undefined;
}

/** The entry names what its task opens (restore --verify compares the fd's name with it). */
function opened(ctx: RestoreContext, fileId: number, name: string): string {
  const reg = ctx.fileById(fileId)?.reg;
  if (reg !== undefined) reg.name = name;
  return name;
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

/**
 * Remove the ghosts' names (`paths` as made: fd links of ours); returns
 * them as plain paths of ours, as the guardian was told them (`plain`).
 */
export function removeGhosts(paths: readonly string[]): string[] {
  const plain: string[] = [];
  for (const p of paths) {
    try {
      plain.push(plainPath(p));
    } catch {
      // its directory fd already closed: it was not told either
    }
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
  return plain;
}

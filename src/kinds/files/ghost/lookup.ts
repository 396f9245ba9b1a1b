/**
 * fsnotify marks on an unlinked inode come back on the ghost a task's fd
 * made of it: find that ghost by device and inode.
 */
import type { RestoreContext } from '../../types.js';

/** The kernel's dev_t (fdinfo's sdev) as major/minor. */
function kernelMajorMinor(sdev: number): [number, number] {
  return [sdev >>> 20, sdev & 0xfffff];
}

/** A stat dev_t (ghost_file_entry.dev) as major/minor. */
function userMajorMinor(dev: number): [number, number] {
  return [((dev >>> 8) & 0xfff), (dev & 0xff) | ((dev >>> 12) & 0xfff00)];
}

/**
 * At restore, after materializeRemaps: the path to reach the ghost made for
 * inode `ino` of device `sdev` (kernel encoding, as fsnotify images keep
 * it), or undefined when the dump has no ghost of it.
 */
export function ghostReopenPath(ctx: RestoreContext, sdev: number, ino: bigint): string | undefined {
  const [major, minor] = kernelMajorMinor(sdev);
  for (const r of ctx.kindImage('REMAP_FPATH').entries) {
    const type = r.remap_type as string | number | undefined;
    if (type !== 'GHOST' && type !== 1) continue;
    const g = ctx.image('GHOST_FILE', r.remap_id)?.entries[0];
    if (!g || g.ino === undefined || BigInt(g.ino) !== BigInt(ino) || g.dev === undefined) continue;
    const [gmaj, gmin] = userMajorMinor(g.dev);
    if (gmaj === major && gmin === minor) return ctx.fileById(r.orig_id)?.reg?.name;
  }
  return undefined;
}

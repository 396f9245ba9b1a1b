/**
 * A ghost on a read-only mount of a tree's own mount namespace (the mount
 * read-only, its superblock writable, as a read-only bind is): as CRIU,
 * the mount is made writable in the tree's root task while the ghost is
 * made and the tasks open it, and read-only again once every file is
 * open, before any task runs (RestoreContext.afterAllFiles); its other
 * per-mount flags stay as they are. A read-only superblock, or a mount
 * hidden under another at the same place, cannot be written: refused with
 * one line.
 */
import { rmSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { NR } from '../../../sys/index.js';
import { parseMountinfo } from '../../../proc/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { mountFlags, superFlags } from '../../ns/mnt/fstypes.js';
import { MS_BIND, MS_NOATIME, MS_RDONLY, MS_RELATIME, MS_REMOUNT, MS_STRICTATIME } from '../../../sys/index.js';
import { logger } from '../../../log.js';

const log = logger('ghost');

/** Mounts made writable for ghosts in this restore (mount id → the ghosts' names there, for us). */
const WRITABLE = stateKey<Map<number, string[]>>('ghost:writable-mounts');

/**
 * Ghost `path` (as we reach it) was made on mount `mntId`, made writable
 * for it: its name goes once every file is open, before the mount is
 * read-only again (then it could not).
 */
export function removeBeforeReadOnly(ctx: RestoreContext, mntId: number, path: string): void {
  ctx.state(WRITABLE, () => new Map<number, string[]>()).get(mntId)?.push(path);
}

/** Make mount `mntId` (as the root task `t` sees it) writable until every file is open, for ghost `name`. */
export function writableWhileRestoring(t: RestoreTaskHandle, ctx: RestoreContext, mntId: number, name: string): void {
  const done = ctx.state(WRITABLE, () => new Map<number, string[]>());
  if (done.has(mntId)) throw new CriuTsError('ERESTORE', `ghost ${name}: mount ${mntId} is read-only even after it was made writable`, { mntId });
  const mounts = parseMountinfo(t.pid);
  const m = mounts.find((x) => x.mntId === mntId);
  if (m === undefined) throw new CriuTsError('ERESTORE', `ghost ${name}: its mount ${mntId} is not in the tree's mount namespace`, { mntId });
  if ((superFlags(m.superOptions).sbFlags & MS_RDONLY) !== 0) {
    throw new CriuTsError('EUNSUPPORTED', `ghost ${name}: the filesystem at ${m.mountpoint} is read-only (not only the mount): the ghost cannot be made on it`, { mntId });
  }
  // The mountpoint names the mount only when nothing was mounted over it later.
  if (mounts.some((x) => x !== m && x.mountpoint === m.mountpoint && x.parentId === m.mntId)) {
    throw new CriuTsError('EUNSUPPORTED', `ghost ${name}: read-only mount ${mntId} at ${m.mountpoint} is mounted over: it cannot be made writable for the ghost`, { mntId });
  }
  const perMount = mountFlags(m.options).flags;
  // MS_REMOUNT|MS_BIND sets every per-mount flag: no atime flag would mean strictatime.
  const keep = (perMount & (MS_NOATIME | MS_RELATIME)) === 0 ? perMount | MS_STRICTATIME : perMount;
  const remount = (flags: number, what: string): void => {
    t.syscall(`remount(${m.mountpoint}, ${what})`, NR.mount, 0, t.putString(m.mountpoint), 0, MS_REMOUNT | MS_BIND | flags, 0);
  };
  remount(keep & ~MS_RDONLY, 'rw for a ghost');
  const names: string[] = [];
  done.set(mntId, names);
  log.debug(`ghost ${name}: mount ${mntId} at ${m.mountpoint} writable until the files are open`);
  ctx.afterAllFiles(() => {
    // Regular files, FIFOs, devices, symlinks: a directory ghost is not made on such a mount.
    for (const p of names) rmSync(p, { force: true });
    remount(keep | MS_RDONLY, 'ro again');
  });
}

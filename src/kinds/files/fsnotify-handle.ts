/**
 * Inotify watches and fanotify inode marks name their inode by a file
 * handle (fdinfo's f_handle) and the superblock's device. CRIU stores the
 * handle in an fh_entry (bytes, type, handle as 16 u64 words) and resolves
 * it to a path at dump; we do the same: open the handle on a mount of that
 * device (from the task's mountinfo, opened through /proc/PID/root so the
 * task's mount namespace is used) and read the path back, stored in
 * fh_entry.path and used by restore.
 *
 * A watched inode that has no name any more (unlinked) keeps its old path
 * in fh_entry.path, and `unlinked` says so with the inode's (dev, ino) as
 * stat gives them: its kind then needs a ghost of that inode in the dump
 * (a task holds it open), which the restore watches instead.
 *
 * An inode on a filesystem the task's own mount namespace does not mount
 * (a tmpfs mounted in a nested namespace of the tree, reached through
 * another task's fd) is looked for in the tree's other dumped mount
 * namespaces; fh_entry.mnt_id names the mount the path was found through,
 * as in CRIU's images, so the restore resolves the path in the namespace
 * that holds that mount.
 *
 * Known limits: the path is the one the kernel prints, relative to the
 * root of the namespace of the mount it was found through.
 */
import { fstatSync, openSync, readlinkSync, constants } from 'node:fs';
import { openByHandleAt, closeQuiet, MAX_HANDLE_BYTES } from '../../sys/index.js';
import { parseMountinfo, type FHandle } from '../../proc/index.js';
import type { FhEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';

const HANDLE_WORDS = MAX_HANDLE_BYTES / 8;

/** The kernel's dev_t (major << 20 | minor), as fdinfo prints sdev. */
export function kernelDev(major: number, minor: number): number {
  return ((major << 20) | minor) >>> 0;
}

/** An unlinked watched inode: its (dev, ino) as stat gives them. */
export interface UnlinkedInode {
  dev: bigint;
  ino: bigint;
}

/**
 * fh_entry for a handle from fdinfo, with the path it resolves to in the
 * task's mount namespace, or else in that of one of the `elsewhere` tasks
 * (one per other dumped namespace of the tree); `unlinked` is told of an
 * inode without a name.
 */
export function fhEntryFor(
  pid: number, sdev: number, fh: FHandle | undefined, what: string, unlinked?: (u: UnlinkedInode) => void, elsewhere: readonly number[] = [],
): FhEntry {
  if (!fh) throw new CriuTsError('EUNSUPPORTED', `task ${pid}: ${what}: the kernel gave no file handle for the watched inode`, { pid });
  const padded = Buffer.alloc(MAX_HANDLE_BYTES);
  fh.handle.copy(padded, 0, 0, Math.min(fh.handle.length, MAX_HANDLE_BYTES));
  const handle: bigint[] = [];
  for (let i = 0; i < HANDLE_WORDS; i++) handle.push(padded.readBigUInt64LE(i * 8));
  const found = pathOfHandle(pid, sdev, fh, what, unlinked, elsewhere);
  return { bytes: fh.bytes, type: fh.type, handle, path: found.path, mnt_id: found.mntId };
}

function pathOfHandle(
  pid: number, sdev: number, fh: FHandle, what: string, unlinked: ((u: UnlinkedInode) => void) | undefined, elsewhere: readonly number[],
): { path: string; mntId: number } {
  // The task's own namespace first, then the tree's other ones.
  const seen = new Set<number>();
  const mounts: { pid: number; mountpoint: string; root: string; mntId: number }[] = [];
  for (const owner of [pid, ...elsewhere]) {
    const own = parseMountinfo(owner).filter((m) => kernelDev(m.devMajor, m.devMinor) === sdev && !seen.has(m.mntId));
    // Prefer a mount of the filesystem's root: every inode of it is below.
    own.sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
    for (const m of own) {
      seen.add(m.mntId);
      mounts.push({ pid: owner, mountpoint: m.mountpoint, root: m.root, mntId: m.mntId });
    }
  }
  let lastErr: unknown;
  for (const m of mounts) {
    let mfd = -1;
    let fd = -1;
    try {
      mfd = openSync(`/proc/${m.pid}/root${m.mountpoint}`, constants.O_RDONLY | constants.O_DIRECTORY);
      fd = openByHandleAt(mfd, fh.type, fh.handle.subarray(0, fh.bytes));
      const path = readlinkSync(`/proc/self/fd/${fd}`);
      if (path.endsWith(' (deleted)')) {
        if (!unlinked) throw new CriuTsError('EUNSUPPORTED', `task ${pid}: ${what}: the watched inode was unlinked (${path})`, { pid, path });
        const st = fstatSync(fd, { bigint: true });
        unlinked({ dev: st.dev, ino: st.ino });
        return { path: path.slice(0, -' (deleted)'.length), mntId: m.mntId };
      }
      return { path, mntId: m.mntId };
    } catch (e) {
      if (e instanceof CriuTsError && e.code === 'EUNSUPPORTED') throw e;
      lastErr = e;
    } finally {
      if (fd >= 0) closeQuiet(fd);
      if (mfd >= 0) closeQuiet(mfd);
    }
  }
  throw new CriuTsError('EUNSUPPORTED',
    `task ${pid}: ${what}: cannot find a path for the watched inode on device 0x${sdev.toString(16)}` +
    (lastErr instanceof Error ? ` (${lastErr.message})` : ''), { pid, sdev }, lastErr);
}

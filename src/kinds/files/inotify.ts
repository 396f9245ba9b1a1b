/**
 * inotify instances: CRIU's INOTIFY file_entry (inotify_file_entry with one
 * inotify_wd_entry per watch: wd, mask, ignored_mask, inode, device and
 * the fh_entry naming the inode, whose `path` we fill at dump).
 *
 * Restore: inotify_init1, then inotify_add_watch by path for each watch in
 * wd order. The kernel hands out watch descriptors cyclically, so a watch
 * that comes back with a lower number than dumped is removed and added
 * again until it gets its number (as CRIU does).
 *
 * A watch on an unlinked inode that a task of the dump holds (so it is a
 * ghost of the dump, see ghost/) is put on the re-created ghost, the very
 * inode the task's fd gets back; one that only tasks outside the dump hold
 * is refused. Removing the ghost's name before the task runs queues an
 * IN_DELETE (IN_ATTRIB on the file) for watches that ask for it, as with
 * CRIU; unlike CRIU, those events and any other the restore queued are
 * read out before the task runs: its queue is empty again, as dumped.
 *
 * A watch on an inode only another mount namespace of the tree mounts
 * (fh_entry.mnt_id names a mount of it) is added from our side, through a
 * task of that namespace (its /proc/PID/root).
 *
 * Known limits: events queued at dump time refuse the dump (they cannot be
 * read back without consuming them).
 */
import { NR, FIONREAD, fdOfTask, closeQuiet, read, inotifyAddWatch, inotifyRmWatch, NR_INOTIFY_RM_WATCH, IN_MASK_CREATE, IN_MASK_ADD } from '../../sys/index.js';
import type { FileEntry, InotifyWdEntry } from '../../images/messages.js';
import type { DumpContext, FileKind, FdProbe, RestoreContext, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { createFlags, fileFlags, isAnonLink, part, queuedBytes, refuseQueued } from './anon-inode.js';
import { fhEntryFor } from './fsnotify-handle.js';
import { ghostReopenPath, requireGhostOf } from './ghost/index.js';
import { foreignMountTask, treeMountNsTasks } from '../ns/mnt/index.js';

/** Give up on reaching a wd after this many tries (each costs two injected syscalls). */
const MAX_WD_TRIES = 65536;
const DRAIN_CHUNK_BYTES = 4096;

export const inotifyKind: FileKind = {
  name: 'inotify',
  type: 'INOTIFY',
  detect: (p: FdProbe) => isAnonLink(p, 'inotify'),
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    refuseQueued(p, 'inotify');
    const wd: InotifyWdEntry[] = (p.fdinfo.inotify ?? []).map((w) => {
      const what = `fd ${p.fd}: inotify watch ${w.wd}`;
      return {
      id: 0, // as CRIU writes it
      i_ino: w.ino,
      mask: w.mask,
      ignored_mask: w.ignoredMask,
      s_dev: w.sdev,
      wd: w.wd,
      f_handle: fhEntryFor(p.pid, w.sdev, w.fhandle, what, (u) => requireGhostOf(ctx, u, `task ${p.pid}: ${what}`), treeMountNsTasks(ctx)),
      };
    });
    return { type: 'INOTIFY', id, ify: { id, flags: fileFlags(p), fown: NO_FOWN, wd } };
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const ify = part(e, 'ify', 'INOTIFY');
    const fd = Number(t.syscall('inotify_init1', NR.inotify_init1, createFlags(ify.flags)));
    const watches = [...(ify.wd ?? [])].sort((a, b) => a.wd - b.wd);
    let removed = 0;
    let ours: number | undefined;
    try {
      for (const w of watches) {
        // An inode found through a mount of another namespace of the tree: reached through a task in that one.
        const there = foreignMountTask(ctx, t.vpid, w.f_handle.mnt_id);
        const fromUs = ghostReopenPath(ctx, w.s_dev, w.i_ino) ?? (there !== undefined && w.f_handle.path ? `/proc/${there}/root${w.f_handle.path}` : undefined);
        if (fromUs === undefined) {
          removed += addWatch(w, w.f_handle.path, (path, mask) => Number(t.syscall(`inotify_add_watch ${path}`, NR.inotify_add_watch, fd, t.putString(path), mask)), (wd) => t.syscall('inotify_rm_watch', NR_INOTIFY_RM_WATCH, fd, wd));
          continue;
        }
        // The ghost is named by our fd on it, and another namespace's path by a /proc path of ours, which the
        // task cannot reach: added from our side, to the same instance.
        ours ??= fdOfTask(t.pid, fd);
        const inst = ours;
        removed += addWatch(w, fromUs, (path, mask) => inotifyAddWatch(inst, path, mask), (wd) => inotifyRmWatch(inst, wd));
      }
    } finally {
      if (ours !== undefined) closeQuiet(ours);
    }
    // Each removal queued an IN_IGNORED event the task never asked for: read them out.
    if (removed > 0) drainQueue(t, fd);
    // The queue was empty at dump (refuseQueued): what the restore itself
    // queues (the ghosts' names removed under a watched directory, files
    // our restore opens and closes there) goes too, as the last thing
    // before the task runs; it sees the events from its first instruction on.
    ctx.beforeResume(() => {
      const ours = ctx.taskFileCopy?.(e.id);
      if (ours === undefined) return;
      try {
        const buf = Buffer.alloc(DRAIN_CHUNK_BYTES);
        for (let left = queuedBytes(ours); left > 0;) {
          const n = read(ours, buf, Math.min(left, buf.length));
          if (n <= 0) break;
          left -= n;
        }
      } finally {
        closeQuiet(ours);
      }
    });
    return fd;
  },
};

/**
 * Adds one watch with its dumped wd (on `path`: the image's, or for an
 * unlinked inode our fd's magic link to its ghost, which followed is that
 * inode); returns how many stray watches it removed on the way.
 */
function addWatch(w: InotifyWdEntry, path: string | undefined, add: (path: string, mask: number) => number, rm: (wd: number) => void): number {
  if (!path) throw new CriuTsError('EUNSUPPORTED', `inotify watch ${w.wd} (inode ${w.i_ino}) has no path in the image`, { wd: w.wd });
  const mask = w.mask & ~(IN_MASK_CREATE | IN_MASK_ADD);
  for (let i = 0; i < MAX_WD_TRIES; i++) {
    const got = add(path, mask);
    if (got === w.wd) return i;
    if (got > w.wd) {
      throw new CriuTsError('ERESTORE', `inotify watch on ${path} got wd ${got}, wanted ${w.wd}: two watches on one inode?`, { path, wd: w.wd, got });
    }
    rm(got);
  }
  throw new CriuTsError('ERESTORE', `inotify watch on ${path}: could not get wd ${w.wd}`, { path, wd: w.wd });
}

function drainQueue(t: RestoreTaskHandle, fd: number): void {
  const at = t.putBytes(Buffer.alloc(DRAIN_CHUNK_BYTES));
  t.syscall('ioctl(FIONREAD)', NR.ioctl, fd, FIONREAD, at);
  let left = t.tracee.readMem(at, 4).readInt32LE(0);
  while (left > 0) {
    const n = Number(t.syscall('read(inotify)', NR.read, fd, at, Math.min(left, DRAIN_CHUNK_BYTES)));
    if (n <= 0) break;
    left -= n;
  }
}

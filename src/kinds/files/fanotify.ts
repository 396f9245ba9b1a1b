/**
 * fanotify groups: CRIU's FANOTIFY file_entry (fanotify_file_entry: group
 * flags `faflags`, event file flags `evflags`, and one fanotify_mark_entry
 * per mark: inode marks with the fh_entry of the inode, mount marks with
 * the mount id and its path).
 *
 * Restore: fanotify_init(faflags, evflags), then fanotify_mark(FAN_MARK_ADD)
 * by path for each mark, and again with FAN_MARK_IGNORED_MASK for an
 * ignored mask.
 *
 * Known limits: filesystem (superblock) marks are refused, as CRIU's image
 * has no type for them; events queued at dump time are lost (with a
 * warning naming the task, fd and bytes: refusing is no answer, since a
 * mount mark also sees the opens of the dump itself); permission events
 * pending an answer are lost.
 */
import { NR, AT_FDCWD, FAN_MARK_ADD, FAN_MARK_MOUNT, FAN_MARK_IGNORED_MASK } from '../../sys/index.js';
import type { FanotifyMarkEntry, FileEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { parseMountinfo } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { fileFlags, isAnonLink, part, queuedBytes } from './anon-inode.js';
import { logger } from '../../log.js';

const log = logger('fanotify');
import { fhEntryFor } from './fsnotify-handle.js';


export const fanotifyKind: FileKind = {
  name: 'fanotify',
  type: 'FANOTIFY',
  detect: (p: FdProbe) => isAnonLink(p, 'fanotify'),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.fanotify;
    if (!info) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: fanotify without flags in fdinfo`, { pid: p.pid, fd: p.fd });
    const queued = queuedBytes(p.localFd);
    if (queued > 0) log.warn(`task ${p.pid} fd ${p.fd}: ${queued} bytes of fanotify events queued for reading are not restored`);
    const mounts = info.marks.some((m) => m.kind === 'mount') ? parseMountinfo(p.pid) : [];
    const mark = info.marks.map((m): FanotifyMarkEntry => {
      const base = { id: 0, mflags: m.mflags, mask: m.mask, ignored_mask: m.ignoredMask, s_dev: m.sdev ?? 0 };
      if (m.kind === 'inode') {
        return { ...base, type: 'INODE', ie: { i_ino: m.ino ?? 0n, f_handle: fhEntryFor(p.pid, m.sdev ?? 0, m.fhandle, `fd ${p.fd}: fanotify inode mark`) } };
      }
      if (m.kind === 'mount') {
        const mnt = mounts.find((x) => x.mntId === m.mntId);
        if (!mnt) throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: fanotify marks mount ${m.mntId}, which is not in the task's mountinfo`, { pid: p.pid, fd: p.fd });
        return { ...base, type: 'MOUNT', me: { mnt_id: m.mntId ?? 0, path: mnt.mountpoint } };
      }
      throw new CriuTsError('EUNSUPPORTED', `task ${p.pid} fd ${p.fd}: fanotify filesystem marks are not supported`, { pid: p.pid, fd: p.fd });
    });
    return {
      type: 'FANOTIFY', id,
      ffy: { id, flags: fileFlags(p), fown: NO_FOWN, faflags: info.flags, evflags: info.eventFlags, mark },
    };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const ffy = part(e, 'ffy', 'FANOTIFY');
    const fd = Number(t.syscall('fanotify_init', NR.fanotify_init, ffy.faflags, ffy.evflags));
    for (const m of ffy.mark ?? []) addMark(t, fd, m);
    return fd;
  },
};

function addMark(t: RestoreTaskHandle, fd: number, m: FanotifyMarkEntry): void {
  const path = m.type === 'MOUNT' ? m.me?.path : m.ie?.f_handle.path;
  if (!path) throw new CriuTsError('EUNSUPPORTED', `fanotify ${String(m.type)} mark without a path in the image`, { type: m.type });
  const where = (m.type === 'MOUNT' ? FAN_MARK_MOUNT : 0) | m.mflags;
  const p = t.putString(path);
  if (m.mask !== 0) t.syscall(`fanotify_mark ${path}`, NR.fanotify_mark, fd, FAN_MARK_ADD | where, m.mask, AT_FDCWD, p);
  if (m.ignored_mask !== 0) {
    t.syscall(`fanotify_mark(ignored) ${path}`, NR.fanotify_mark, fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | where, m.ignored_mask, AT_FDCWD, p);
  }
}

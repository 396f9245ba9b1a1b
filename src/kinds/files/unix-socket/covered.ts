/**
 * A unix socket bound to a name that another mount covers: bound, then a
 * mount made over its directory (or a directory above it), as zdtm's
 * overmount_sock does. The dump tells that from an unlinked name by the
 * socket's own file (SIOCUNIXFILE: still linked, on a mount that no
 * longer shows the directory) and records that mount (`mnt_id`); at
 * restore the mount tree is whole before any file, the cover included, so
 * the name is bound again through a detached clone of the socket's mount
 * alone (`open_tree(OPEN_TREE_CLONE)` in the task, no submounts: nothing
 * covers anything in it). The file lands in the covered directory itself,
 * the socket reports its dumped name, and once the cover is unmounted the
 * name reaches it again; the socket holds the clone, not the covering
 * mount, which stays free to be unmounted.
 *
 * Limits: an absolute name is bound with the clone as the task's root for
 * that one call (chroot), so its mount must be the namespace's root mount;
 * a relative one from its directory inside the clone, which must be on
 * that mount. The socket file's mount id (SIOCUNIXFILE's fdinfo) is the
 * clone's, a mount no mountinfo lists.
 */
import { basename } from 'node:path';
import { lstatSync, unlinkSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import type { UnixSkEntry } from '../../../images/messages.js';
import { AF_UNIX, AT_FDCWD, NR, OPEN_TREE_CLONE, O_CLOEXEC, O_DIRECTORY, O_PATH, closeQuiet, fdOfTask, openPathNoFollow } from '../../../sys/index.js';
import type { RestoreTaskHandle } from '../../types.js';
import { nameText } from './diag.js';

/** `p` relative to directory `dir` ('' for itself), or undefined when it is not below it. */
function below(p: string, dir: string): string | undefined {
  if (p === dir) return '';
  if (dir === '/') return p.replace(/^\/+/, '');
  return p.startsWith(`${dir}/`) ? p.slice(dir.length + 1) : undefined;
}

/**
 * Bind socket `fd` of task `t` to its name `path` (absolute, as the task
 * sees it) under the mount that covers it; `cover` is the socket's own
 * mount's mountpoint and the name's directory relative to it. Returns our
 * O_PATH fd of the new socket file (to set its owner and mode, and for
 * other sockets to reach it by: no path does while the cover is there).
 */
export function bindCovered(t: RestoreTaskHandle, fd: number, u: UnixSkEntry, path: string, cover: { mountpoint: string; rel: string }, what: string): number {
  const name = nameText(u.name);
  const absolute = name.startsWith('/');
  const start = absolute ? undefined : u.name_dir === undefined ? undefined : below(u.name_dir, cover.mountpoint);
  if (absolute ? cover.mountpoint !== '/' : start === undefined) {
    throw new CriuTsError('ERESTORE', `${what}: its name ${name} is covered by another mount and does not start on its own mount (${cover.mountpoint}): it cannot be bound under the cover`, { path });
  }
  const inTask: number[] = [];
  const keep = (n: bigint): number => {
    inTask.push(Number(n));
    return Number(n);
  };
  try {
    const clone = keep(t.syscall(`open_tree(${cover.mountpoint})`, NR.open_tree, AT_FDCWD, t.putString(cover.mountpoint), OPEN_TREE_CLONE | O_CLOEXEC));
    const dirIn = (rel: string): number => keep(t.syscall(`openat(clone, ${rel || '.'})`, NR.openat, clone, t.putString(rel || '.'), O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
    const ours = fdOfTask(t.pid, dirIn(cover.rel));
    try {
      const here = `/proc/self/fd/${ours}/${basename(path)}`;
      let st;
      try {
        st = lstatSync(here);
      } catch {
        st = undefined;
      }
      // The dumped socket's own file, left there (the same filesystem): the new one takes its place.
      if (st?.isSocket()) unlinkSync(here);
      else if (st) throw new CriuTsError('ERESTORE', `${what}: ${path} (under the mount covering it) exists and is not a socket`, { path });
      const cwd = keep(t.syscall('open .', NR.openat, AT_FDCWD, t.putString('.'), O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
      const root = absolute ? keep(t.syscall('open /', NR.openat, AT_FDCWD, t.putString('/'), O_PATH | O_DIRECTORY | O_CLOEXEC, 0)) : -1;
      const addr = Buffer.alloc(2 + u.name.length);
      addr.writeUInt16LE(AF_UNIX, 0);
      u.name.copy(addr, 2);
      t.syscall('fchdir(clone)', NR.fchdir, absolute ? clone : dirIn(start ?? ''));
      try {
        if (absolute) t.syscall('chroot(clone)', NR.chroot, t.putString('.'));
        try {
          t.syscall(`bind ${JSON.stringify(name)} under the covering mount`, NR.bind, fd, t.putBytes(addr), addr.length);
        } finally {
          if (absolute) {
            t.syscall('fchdir(root)', NR.fchdir, root);
            t.syscall('chroot(root)', NR.chroot, t.putString('.'));
          }
        }
      } finally {
        t.syscall('fchdir(cwd)', NR.fchdir, cwd);
      }
      return openPathNoFollow(here);
    } finally {
      closeQuiet(ours);
    }
  } finally {
    for (const f of inTask) t.syscall('close', NR.close, f);
  }
}

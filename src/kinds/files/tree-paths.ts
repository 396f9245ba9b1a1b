/**
 * Names as the dumped tree sees them, reached from criu-ts. A task in a
 * mount namespace of its own (a container) sees other mounts under another
 * root; Node cannot enter that namespace, so its directories are opened
 * through the task's /proc/PID/root with openat2(RESOLVE_IN_ROOT): every
 * "..", absolute symlink or mount crossing is resolved as the task would,
 * never out of its root into ours. The result is an O_PATH fd we hold; the
 * name we hand back is that fd's magic link plus the last component, which
 * the callers create exclusively (O_EXCL, mknod, symlink, mkdir, linkat)
 * or open without following (O_NOFOLLOW): a name someone planted there is
 * refused, never written through (docs/security.md).
 *
 * A tree in criu-ts's own mount namespace is reached the same way from
 * our root, each directory opened a component at a time and following only
 * symlinks root owns: a user's directory swapped for a link to /etc between
 * the dump and our use is refused, not followed (docs/security.md).
 */
import { lstatSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { openat2, openDirRootLinksOnly, O, RESOLVE, AT_FDCWD, closeQuiet } from '../../sys/index.js';
import { fdMountId, pathSeenBy, readFdLink } from '../../proc/index.js';

export interface TreePaths {
  /** does the tree see another root than ours (so names below are fd links we hold)? */
  readonly foreign: boolean;
  /** `path` (absolute, as the tree sees it) for us: its parent resolved in the tree, the last component as it is */
  at(path: string): string;
  /** the directory `path` itself, resolved in the tree (symlinks followed inside it) */
  dir(path: string): string;
  /** is there anything named `path` in the tree (a last symlink not followed)? */
  exists(path: string): boolean;
  /** the id of the mount the directory `path` is on (fdinfo's mnt_id) */
  mountOf(path: string): number;
}

function mountIdOfFd(fd: number): number {
  return fdMountId(process.pid, fd) ?? -1;
}

/**
 * Our own mount namespace: each directory opened a component at a time,
 * following only root's symlinks (sys/safe-fs.ts openDirRootLinksOnly):
 * the names handed out are fd links of ours, so a directory of a user's
 * swapped for a link between our check and our use leads nowhere else.
 */
function ownPaths(fds: number[]): TreePaths {
  const dirs = new Map<string, number>();
  const dirFd = (path: string): number => {
    let fd = dirs.get(path);
    if (fd === undefined) {
      fd = openDirRootLinksOnly(path);
      dirs.set(path, fd);
      fds.push(fd);
    }
    return fd;
  };
  return anchored(false, dirFd);
}

/** Names under the directories `dirFd` opens: `/proc/self/fd/N/last`. */
function anchored(foreign: boolean, dirFd: (path: string) => number): TreePaths {
  const dir = (path: string): string => `/proc/self/fd/${dirFd(path)}`;
  const at = (path: string): string => (basename(path) === '' ? dir('/') : `${dir(dirname(path))}/${basename(path)}`);
  return {
    foreign,
    at,
    dir,
    exists: (path) => {
      try {
        lstatSync(at(path));
        return true;
      } catch {
        return false;
      }
    },
    mountOf: (path) => mountIdOfFd(dirFd(path)),
  };
}

/** A name handed out by a TreePaths (`/proc/self/fd/N/last`) as a plain path of ours, for a process that holds no fd of ours. */
export function plainPath(p: string): string {
  const m = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(p);
  if (!m) return p;
  const d = readFdLink(process.pid, Number(m[1]));
  return `${d === '/' ? '' : d}${m[2] ?? ''}` || '/';
}

/**
 * The tree as task `pid` sees it. Every fd opened on the way goes onto
 * `fds`: the names handed out stay valid until the caller closes them.
 */
export function treePathsOf(pid: number, fds: number[]): TreePaths {
  if (pathSeenBy(pid, '/') === '/') return ownPaths(fds);
  const root = openat2(AT_FDCWD, `/proc/${pid}/root`, O.PATH | O.DIRECTORY | O.CLOEXEC, 0, 0);
  fds.push(root);
  const dirs = new Map<string, number>();
  const dirFd = (path: string): number => {
    const rel = path.replace(/^\/+/, '') || '.';
    let fd = dirs.get(rel);
    if (fd === undefined) {
      // No magic links: a /proc/PID/fd link inside the tree would lead anywhere.
      fd = openat2(root, rel, O.PATH | O.DIRECTORY | O.CLOEXEC, 0, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
      dirs.set(rel, fd);
      fds.push(fd);
    }
    return fd;
  };
  return anchored(true, dirFd);
}

/** Close what treePathsOf opened. */
export function closeTreeFds(fds: number[]): void {
  for (const fd of fds.splice(0)) closeQuiet(fd);
}

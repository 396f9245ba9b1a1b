/**
 * The new mount API (fsopen/fsconfig/fsmount, Linux 5.2): a filesystem
 * instance as a detached mount fd, attached nowhere, so no mount namespace
 * sees it and nothing needs unmounting. Paths below it are reached as
 * /proc/self/fd/N/... Used for cgroup hierarchies (kinds/cgroup).
 */
import { closeSync } from 'node:fs';
import { sys, addr } from './libc.js';
import { NR } from './nr.js';
import { AT_FDCWD } from './fcntl.js';
import {
  AT_RECURSIVE, FSCONFIG_CMD_CREATE, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_SET_GROUP,
  MOVE_MOUNT_T_EMPTY_PATH, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE,
} from './mount.js';

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);

/**
 * Make (or find: a cgroup v1 hierarchy with the same controllers is the
 * same hierarchy) a filesystem of type `fstype` with string options
 * `strings` and flag options `flags`, and return a detached mount fd of
 * its root. The caller closes it.
 */
export function detachedMount(fstype: string, strings: Readonly<Record<string, string>>, flags: readonly string[]): number {
  const type = cstr(fstype);
  const fsfd = sys(`fsopen(${fstype})`, NR.fsopen, undefined, addr(type), FSOPEN_CLOEXEC);
  try {
    for (const [k, v] of Object.entries(strings)) {
      const kb = cstr(k);
      const vb = cstr(v);
      sys(`fsconfig(${k}=${v})`, NR.fsconfig, undefined, fsfd, FSCONFIG_SET_STRING, addr(kb), addr(vb), 0);
    }
    for (const f of flags) {
      const kb = cstr(f);
      sys(`fsconfig(${f})`, NR.fsconfig, undefined, fsfd, FSCONFIG_SET_FLAG, addr(kb), 0, 0);
    }
    sys(`fsconfig(create ${fstype})`, NR.fsconfig, undefined, fsfd, FSCONFIG_CMD_CREATE, 0, 0, 0);
    return sys(`fsmount(${fstype})`, NR.fsmount, undefined, fsfd, FSMOUNT_CLOEXEC, 0);
  } finally {
    closeSync(fsfd);
  }
}

/**
 * A detached copy of the mount at `path` (with the mounts below it when
 * `recursive`), as bind mounting it would make: open_tree(OPEN_TREE_CLONE).
 * The path is resolved here, with our credentials and in our mount
 * namespace; the fd can then be attached (move_mount) by a task that could
 * not reach the path itself. The caller closes it.
 */
export function cloneMountTree(path: string, recursive: boolean): number {
  const p = cstr(path);
  return sys(`open_tree(${path})`, NR.open_tree, undefined, AT_FDCWD, addr(p), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
}

/**
 * Put the mount `to` is open on (private, in any mount namespace we may
 * change) in the peer group of the mount `from` is open on, and under its
 * master if it has one: move_mount(MOVE_MOUNT_SET_GROUP), Linux 5.15.
 * Done here, not in a restored task: a task in a user namespace of its own
 * may not touch a group whose mounts belong to ours.
 */
export function joinPeerGroup(from: number, to: number): void {
  const empty = cstr('');
  sys('move_mount(MOVE_MOUNT_SET_GROUP)', NR.move_mount, undefined, from, addr(empty), to, addr(empty), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH | MOVE_MOUNT_SET_GROUP);
}

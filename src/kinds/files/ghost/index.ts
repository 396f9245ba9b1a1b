/**
 * Files whose name is gone while a task still holds them (open, mapped, or
 * as cwd). Two remaps, as CRIU (remap-fpath.img says which file entry is
 * backed by what):
 *
 * - GHOST: the inode has no name left (nlink 0). Its contents travel in
 *   ghost-file-<gid>.img: a ghost_file_entry (type, mode with suid/sgid,
 *   owner, times, size, rdev) then, for a regular file, its data runs as
 *   ghost_chunk_entry + bytes, found with SEEK_DATA/SEEK_HOLE so holes stay
 *   holes. One ghost per inode (dev, ino) for the whole dump: every fd,
 *   mapping and cwd of that inode in every task points at it, so the restore
 *   makes one inode again. --ghost-limit is compared with the blocks the
 *   file really takes (st_blocks * 512), not its apparent size.
 * - LINKED (--link-remap): the name is gone but the inode is still linked
 *   elsewhere (nlink > 0). The dump gives it a temporary hard link
 *   `link_remap.<id>` in its old directory (linkat through /proc), recorded
 *   as a REG entry; the restore opens that name and removes it afterwards.
 *
 * At restore a ghost is created at its old path if that name is free (so
 * the task's fd reads "NAME (deleted)" again, as after CRIU's restore),
 * else next to it (`<path>.cr.<gid>.ghost`; a directory at its own path,
 * missing parents made), everybody opens it, and it is removed again once
 * the restore is over. In a tree of its own mount namespace all of this
 * happens in that namespace, once its root task has built it
 * (tree-paths.ts).
 *
 * An unlinked symlink (held by an O_PATH|O_NOFOLLOW fd) keeps its target in
 * symlnk_target, as CRIU; it comes back as a symlink the task reopens
 * through our fd's magic link, followed once: that lands on the symlink
 * itself.
 *
 * Known limits: an unlinked socket inode is refused; a ghost symlink's
 * times are not kept; a ghost on a read-only mount can be made only in a
 * tree's own mount namespace (rofs.ts); there, ghosts left by a criu-ts killed during
 * the restore are not removed by its guardian (they stay under --root).
 */
export { DELETED_SUFFIX } from './common.js';
export { dumpUnlinked, requireGhostOf } from './dump.js';
export { deadProcPids, ghostOnOwnMount, materializeRemaps, removeGhosts, removeLinks, removeRemapFds, type MaterializedRemaps } from './restore.js';
export { ghostReopenPath } from './lookup.js';

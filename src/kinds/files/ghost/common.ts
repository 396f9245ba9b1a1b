/**
 * What the ghost modules share: the file type bits of st_mode (from
 * src/sys), the old images' ghost bit, and the per-dump table of ghosts (one per inode).
 */
import { stateKey } from '../../types.js';

export const DELETED_SUFFIX = ' (deleted)';

export { S_IFMT, S_IFDIR, S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFLNK } from '../../../sys/index.js';
/** Old images say "ghost" with this bit of remap_id instead of remap_type. */
export const REMAP_GHOST_BIT = 0x80000000;

/** Ghosts of this dump: one per inode ("dev:ino" → ghost id). */
export const GHOSTS = stateKey<{ byInode: Map<string, number>; next: number }>('ghost:files');

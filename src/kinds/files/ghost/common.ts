/**
 * What the ghost modules share: the file type bits of st_mode, the old
 * images' ghost bit, and the per-dump table of ghosts (one per inode).
 */
import { stateKey } from '../../types.js';

export const DELETED_SUFFIX = ' (deleted)';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFLNK = 0o120000;
/** Old images say "ghost" with this bit of remap_id instead of remap_type. */
export const REMAP_GHOST_BIT = 0x80000000;

/** Ghosts of this dump: one per inode ("dev:ino" → ghost id). */
export const GHOSTS = stateKey<{ byInode: Map<string, number>; next: number }>('ghost:files');

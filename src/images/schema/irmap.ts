/**
 * The inode-to-path cache: CRIU images/fh.proto's irmap_cache_entry, the
 * entries of irmap-cache (service magic 0x55105940, then 0x57004059). The
 * rest of fh.proto (fh_entry, fh_entry_sizes) lives with fsnotify.
 */
import { defineMessage, f } from './types.js';

defineMessage('irmap_cache_entry', [
  f(1, 'dev', 'required', 'uint32', { opts: { dev: true, odev: true } }),
  f(2, 'inode', 'required', 'uint64'),
  f(3, 'path', 'required', 'string'),
]);

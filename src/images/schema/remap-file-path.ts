/**
 * File path remaps (linked, ghost, procfs): CRIU images/remap-file-path.proto,
 * image remap-fpath.img (magic 0x59133954).
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('remap_type', { LINKED: 0, GHOST: 1, PROCFS: 2 });

defineMessage('remap_file_path_entry', [
  f(1, 'orig_id', 'required', 'uint32'),
  f(2, 'remap_id', 'required', 'uint32'),
  f(3, 'remap_type', 'optional', 'enum', { ref: 'remap_type' }),
]);

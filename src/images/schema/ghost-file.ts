/**
 * Deleted-but-open files: CRIU images/ghost-file.proto. ghost-file-<id>.img
 * (magic 0x52583605) holds one ghost_file_entry, then either the raw contents
 * or, with chunks set, ghost_chunk_entry headers each followed by its bytes.
 */
import { defineMessage, f } from './types.js';

defineMessage('ghost_file_entry', [
  f(1, 'uid', 'required', 'uint32'),
  f(2, 'gid', 'required', 'uint32'),
  f(3, 'mode', 'required', 'uint32'),
  f(4, 'dev', 'optional', 'uint32', { opts: { dev: true } }),
  f(5, 'ino', 'optional', 'uint64'),
  f(6, 'rdev', 'optional', 'uint32', { opts: { dev: true, odev: true } }),
  f(7, 'atim', 'optional', 'message', { ref: 'timeval' }),
  f(8, 'mtim', 'optional', 'message', { ref: 'timeval' }),
  f(9, 'chunks', 'optional', 'bool'),
  f(10, 'size', 'optional', 'uint64'),
  f(11, 'symlnk_target', 'optional', 'string'),
]);

defineMessage('ghost_chunk_entry', [
  f(1, 'len', 'required', 'uint64'),
  f(2, 'off', 'required', 'uint64'),
]);

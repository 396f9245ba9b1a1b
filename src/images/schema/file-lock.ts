/**
 * POSIX/flock/OFD file locks: CRIU images/file-lock.proto, image
 * filelocks.img (magic 0x54323616).
 */
import { defineMessage, f } from './types.js';

defineMessage('file_lock_entry', [
  f(1, 'flag', 'required', 'uint32'),
  f(2, 'type', 'required', 'uint32'),
  f(3, 'pid', 'required', 'int32'),
  f(4, 'fd', 'required', 'int32'),
  f(5, 'start', 'required', 'int64'),
  f(6, 'len', 'required', 'int64'),
]);

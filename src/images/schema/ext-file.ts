/**
 * Files handled by an external plugin: CRIU images/ext-file.proto.
 * ext_file_entry is a file_entry sub-message (old dumps: ext-files.img,
 * magic 0x59255641).
 */
import { defineMessage, f } from './types.js';

defineMessage('ext_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(5, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  // criu-ts's own field, not in CRIU: a POSIX message queue fd
  // (kinds/files/mqueue.ts). CRIU has no file type for them; an EXT entry
  // makes CRIU's restore ask for a plugin and stop, and crit skips the
  // field as an unknown one.
  f(1000, 'mqueue', 'optional', 'message', { ref: 'criu_ts_mq_file' }),
]);

/**
 * pidfds: CRIU images/pidfd.proto (CRIU 4.x). pidfd_entry is a file_entry
 * sub-message. nspid is the pid in the task's own pid namespace, -1 when the
 * process had already exited at dump time; ino is the pidfs inode number.
 */
import { defineMessage, f } from './types.js';

defineMessage('pidfd_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ino', 'required', 'uint32'),
  f(3, 'flags', 'required', 'uint32'),
  f(4, 'nspid', 'required', 'int32'),
  f(5, 'fown', 'required', 'message', { ref: 'fown_entry' }),
]);

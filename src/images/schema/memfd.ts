/**
 * memfd files and inodes (CRIU images/memfd.proto): MEMFD_INODE image and file_entry.memfd.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('memfd_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { flags: 'rfile.flags' } }),
  f(3, 'pos', 'required', 'uint64'),
  f(4, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(5, 'inode_id', 'required', 'uint32'),
]);
defineMessage('memfd_inode_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'uid', 'required', 'uint32'),
  f(3, 'gid', 'required', 'uint32'),
  f(4, 'size', 'required', 'uint64'),
  f(5, 'shmid', 'required', 'uint32'),
  f(6, 'seals', 'required', 'uint32', { opts: { flags: 'seals.flags' } }),
  f(7, 'inode_id', 'required', 'uint64'),
  f(8, 'hugetlb_flag', 'optional', 'uint32'),
  f(9, 'mode', 'optional', 'uint32'),
]);

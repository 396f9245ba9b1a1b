/**
 * Unix sockets (CRIU images/sk-unix.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('file_perms_entry', [
  f(1, 'mode', 'required', 'uint32'),
  f(2, 'uid', 'required', 'uint32'),
  f(3, 'gid', 'required', 'uint32'),
]);
defineMessage('unix_sk_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ino', 'required', 'uint32'),
  f(3, 'type', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(4, 'state', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(5, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(6, 'uflags', 'required', 'uint32', { opts: { hex: true } }),
  f(7, 'backlog', 'required', 'uint32'),
  f(8, 'peer', 'required', 'uint32'),
  f(9, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(10, 'opts', 'required', 'message', { ref: 'sk_opts_entry' }),
  f(11, 'name', 'required', 'bytes', { opts: { conv: 'unix_name' } }),
  f(12, 'shutdown', 'optional', 'enum', { ref: 'sk_shutdown' }),
  f(13, 'file_perms', 'optional', 'message', { ref: 'file_perms_entry' }),
  f(14, 'name_dir', 'optional', 'string'),
  f(15, 'deleted', 'optional', 'bool'),
  f(16, 'ns_id', 'optional', 'uint32'),
  f(17, 'mnt_id', 'optional', 'sint32'),
]);

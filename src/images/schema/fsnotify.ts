/**
 * inotify and fanotify (CRIU images/fsnotify.proto) plus the file handle they use (fh.proto's fh_entry).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('fh_entry_sizes', { min_entries: 16 });
defineMessage('fh_entry', [
  f(1, 'bytes', 'required', 'uint32'),
  f(2, 'type', 'required', 'uint32'),
  f(3, 'handle', 'repeated', 'uint64'),
  f(4, 'path', 'optional', 'string'),
  f(5, 'mnt_id', 'optional', 'uint32'),
]);
defineEnum('mark_type', { INODE: 1, MOUNT: 2 });
defineMessage('inotify_wd_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'i_ino', 'required', 'uint64'),
  f(3, 'mask', 'required', 'uint32', { opts: { hex: true } }),
  f(4, 'ignored_mask', 'required', 'uint32', { opts: { hex: true } }),
  f(5, 's_dev', 'required', 'uint32', { opts: { dev: true } }),
  f(6, 'wd', 'required', 'uint32'),
  f(7, 'f_handle', 'required', 'message', { ref: 'fh_entry' }),
]);
defineMessage('inotify_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(4, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(5, 'wd', 'repeated', 'message', { ref: 'inotify_wd_entry' }),
]);
defineMessage('fanotify_inode_mark_entry', [
  f(1, 'i_ino', 'required', 'uint64'),
  f(2, 'f_handle', 'required', 'message', { ref: 'fh_entry' }),
]);
defineMessage('fanotify_mount_mark_entry', [
  f(1, 'mnt_id', 'required', 'uint32'),
  f(2, 'path', 'optional', 'string'),
]);
defineMessage('fanotify_mark_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'type', 'required', 'enum', { ref: 'mark_type' }),
  f(3, 'mflags', 'required', 'uint32', { opts: { hex: true } }),
  f(4, 'mask', 'required', 'uint32', { opts: { hex: true } }),
  f(5, 'ignored_mask', 'required', 'uint32', { opts: { hex: true } }),
  f(6, 's_dev', 'required', 'uint32', { opts: { dev: true } }),
  f(7, 'ie', 'optional', 'message', { ref: 'fanotify_inode_mark_entry' }),
  f(8, 'me', 'optional', 'message', { ref: 'fanotify_mount_mark_entry' }),
]);
defineMessage('fanotify_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(3, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(4, 'faflags', 'required', 'uint32', { opts: { hex: true } }),
  f(5, 'evflags', 'required', 'uint32', { opts: { hex: true } }),
  f(6, 'mark', 'repeated', 'message', { ref: 'fanotify_mark_entry' }),
]);

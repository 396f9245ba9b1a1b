/**
 * Mount points: CRIU images/mnt.proto, image mountpoints-<ns>.img (magic
 * 0x55563928). mnt_entry.fstype is a plain uint32 on the wire holding an
 * `fstype` enum value (kept as a number so unknown types survive).
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('fstype', { UNSUPPORTED: 0, PROC: 1, SYSFS: 2, DEVTMPFS: 3, BINFMT_MISC: 4, TMPFS: 5, DEVPTS: 6, SIMFS: 7, PSTORE: 8, SECURITYFS: 9, FUSECTL: 10, DEBUGFS: 11, CGROUP: 12, AUFS: 13, MQUEUE: 14, FUSE: 15, AUTO: 16, OVERLAYFS: 17, AUTOFS: 18, TRACEFS: 19, CGROUP2: 23 });

defineMessage('mnt_entry', [
  f(1, 'fstype', 'required', 'uint32'),
  f(2, 'mnt_id', 'required', 'uint32'),
  f(3, 'root_dev', 'required', 'uint32', { opts: { dev: true } }),
  f(4, 'parent_mnt_id', 'required', 'uint32'),
  f(5, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(6, 'root', 'required', 'string'),
  f(7, 'mountpoint', 'required', 'string'),
  f(8, 'source', 'required', 'string'),
  f(9, 'options', 'required', 'string'),
  f(10, 'shared_id', 'optional', 'uint32'),
  f(11, 'master_id', 'optional', 'uint32'),
  f(12, 'with_plugin', 'optional', 'bool'),
  f(13, 'ext_mount', 'optional', 'bool'),
  f(14, 'fsname', 'optional', 'string'),
  f(15, 'internal_sharing', 'optional', 'bool'),
  f(16, 'deleted', 'optional', 'bool'),
  f(17, 'sb_flags', 'optional', 'uint32', { opts: { hex: true } }),
  f(18, 'ext_key', 'optional', 'string'),
]);

/**
 * Namespace files (open /proc/PID/ns/*): CRIU images/ns.proto. ns_file_entry
 * is a file_entry sub-message (old dumps: ns-files.img, magic 0x61394011).
 */
import { defineMessage, f } from './types.js';

defineMessage('ns_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ns_id', 'required', 'uint32'),
  f(3, 'ns_cflag', 'required', 'uint32'),
  f(4, 'flags', 'required', 'uint32'),
]);

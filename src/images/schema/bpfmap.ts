/**
 * BPF maps: CRIU images/bpfmap-file.proto and bpfmap-data.proto.
 * bpfmap_file_entry is a file_entry sub-message (old dumps: bpfmap-file.img);
 * bpfmap-data.img holds bpfmap_data_entry headers each followed by the raw
 * keys (keys_bytes) and values (values_bytes).
 */
import { defineMessage, f } from './types.js';

defineMessage('bpfmap_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { flags: 'rfile.flags' } }),
  f(3, 'pos', 'required', 'uint64'),
  f(4, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(5, 'map_type', 'required', 'uint32'),
  f(6, 'key_size', 'required', 'uint32'),
  f(7, 'value_size', 'required', 'uint32'),
  f(8, 'map_id', 'required', 'uint32'),
  f(9, 'max_entries', 'required', 'uint32'),
  f(10, 'map_flags', 'required', 'uint32'),
  f(11, 'memlock', 'required', 'uint64'),
  f(12, 'frozen', 'required', 'bool'),
  f(13, 'map_name', 'required', 'string'),
  f(14, 'ifindex', 'required', 'uint32'),
  f(15, 'mnt_id', 'optional', 'sint32'),
  f(16, 'map_extra', 'optional', 'uint64'),
]);

defineMessage('bpfmap_data_entry', [
  f(1, 'map_id', 'required', 'uint32'),
  f(2, 'keys_bytes', 'required', 'uint32'),
  f(3, 'values_bytes', 'required', 'uint32'),
  f(4, 'count', 'required', 'uint32'),
]);

/**
 * Regular files (CRIU images/regfile.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('reg_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { flags: 'rfile.flags' } }),
  f(3, 'pos', 'required', 'uint64'),
  f(5, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(6, 'name', 'required', 'string'),
  f(7, 'mnt_id', 'optional', 'sint32'),
  f(8, 'size', 'optional', 'uint64'),
  f(9, 'ext', 'optional', 'bool'),
  f(10, 'mode', 'optional', 'uint32'),
  f(11, 'build_id', 'repeated', 'uint32'),
  f(12, 'checksum', 'optional', 'uint32'),
  f(13, 'checksum_config', 'optional', 'uint32'),
  f(14, 'checksum_parameter', 'optional', 'uint32'),
]);

/**
 * Task cwd/root (CRIU images/fs.proto): the FS image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('fs_entry', [
  f(1, 'cwd_id', 'required', 'uint32'),
  f(2, 'root_id', 'required', 'uint32'),
  f(3, 'umask', 'optional', 'uint32'),
]);

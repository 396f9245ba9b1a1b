/**
 * File owner (CRIU images/fown.proto), part of most file entries.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('fown_entry', [
  f(1, 'uid', 'required', 'uint32'),
  f(2, 'euid', 'required', 'uint32'),
  f(3, 'signum', 'required', 'uint32'),
  f(4, 'pid_type', 'required', 'uint32'),
  f(5, 'pid', 'required', 'uint32'),
]);

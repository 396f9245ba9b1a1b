/**
 * Process tree (CRIU images/pstree.proto): the PSTREE image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('pstree_entry', [
  f(1, 'pid', 'required', 'uint32'),
  f(2, 'ppid', 'required', 'uint32'),
  f(3, 'pgid', 'required', 'uint32'),
  f(4, 'sid', 'required', 'uint32'),
  f(5, 'threads', 'repeated', 'uint32'),
]);

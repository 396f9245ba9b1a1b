/**
 * Seccomp filters (CRIU images/seccomp.proto): the SECCOMP image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('seccomp_filter', [
  f(1, 'filter', 'required', 'bytes'),
  f(2, 'prev', 'optional', 'uint32'),
  f(3, 'flags', 'optional', 'uint32'),
]);
defineMessage('seccomp_entry', [
  f(1, 'seccomp_filters', 'repeated', 'message', { ref: 'seccomp_filter' }),
]);

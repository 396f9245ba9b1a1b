/**
 * Resource limits (CRIU images/rlimit.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('rlimit_entry', [
  f(1, 'cur', 'required', 'uint64'),
  f(2, 'max', 'required', 'uint64'),
]);

/**
 * Signal actions (CRIU images/sa.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('sa_entry', [
  f(1, 'sigaction', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'flags', 'required', 'uint64', { opts: { hex: true } }),
  f(3, 'restorer', 'required', 'uint64', { opts: { hex: true } }),
  f(4, 'mask', 'required', 'uint64', { opts: { hex: true } }),
  f(5, 'compat_sigaction', 'optional', 'bool'),
  f(6, 'mask_extended', 'optional', 'uint64', { opts: { hex: true } }),
]);

/**
 * signalfd (CRIU images/signalfd.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('signalfd_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(3, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(4, 'sigmask', 'required', 'uint64', { opts: { hex: true } }),
]);

/**
 * Pipes and FIFOs (CRIU images/pipe.proto, pipe-data.proto, fifo.proto); PIPES_DATA/FIFO_DATA carry the data after each entry.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('pipe_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'pipe_id', 'required', 'uint32'),
  f(3, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(4, 'fown', 'required', 'message', { ref: 'fown_entry' }),
]);
defineMessage('pipe_data_entry', [
  f(1, 'pipe_id', 'required', 'uint32'),
  f(2, 'bytes', 'required', 'uint32'),
  f(3, 'size', 'optional', 'uint32'),
]);
defineMessage('fifo_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'pipe_id', 'required', 'uint32'),
  f(3, 'regf_id', 'optional', 'uint32'),
]);

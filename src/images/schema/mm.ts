/**
 * Address space (CRIU images/mm.proto, vma.proto): the MM image with its VMAs.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('aio_ring_entry', [
  f(1, 'id', 'required', 'uint64'),
  f(2, 'nr_req', 'required', 'uint32'),
  f(3, 'ring_len', 'required', 'uint32'),
]);
defineMessage('mm_entry', [
  f(1, 'mm_start_code', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'mm_end_code', 'required', 'uint64', { opts: { hex: true } }),
  f(3, 'mm_start_data', 'required', 'uint64', { opts: { hex: true } }),
  f(4, 'mm_end_data', 'required', 'uint64', { opts: { hex: true } }),
  f(5, 'mm_start_stack', 'required', 'uint64', { opts: { hex: true } }),
  f(6, 'mm_start_brk', 'required', 'uint64', { opts: { hex: true } }),
  f(7, 'mm_brk', 'required', 'uint64', { opts: { hex: true } }),
  f(8, 'mm_arg_start', 'required', 'uint64', { opts: { hex: true } }),
  f(9, 'mm_arg_end', 'required', 'uint64', { opts: { hex: true } }),
  f(10, 'mm_env_start', 'required', 'uint64', { opts: { hex: true } }),
  f(11, 'mm_env_end', 'required', 'uint64', { opts: { hex: true } }),
  f(12, 'exe_file_id', 'required', 'uint32'),
  f(13, 'mm_saved_auxv', 'repeated', 'uint64'),
  f(14, 'vmas', 'repeated', 'message', { ref: 'vma_entry' }),
  f(15, 'dumpable', 'optional', 'int32'),
  f(16, 'aios', 'repeated', 'message', { ref: 'aio_ring_entry' }),
  f(17, 'thp_disabled', 'optional', 'bool'),
]);
defineMessage('vma_entry', [
  f(1, 'start', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'end', 'required', 'uint64', { opts: { hex: true } }),
  f(3, 'pgoff', 'required', 'uint64'),
  f(4, 'shmid', 'required', 'uint64'),
  f(5, 'prot', 'required', 'uint32', { opts: { flags: 'mmap.prot' } }),
  f(6, 'flags', 'required', 'uint32', { opts: { flags: 'mmap.flags' } }),
  f(7, 'status', 'required', 'uint32', { opts: { flags: 'mmap.status' } }),
  f(8, 'fd', 'required', 'sint64'),
  f(9, 'madv', 'optional', 'uint64', { opts: { hex: true } }),
  f(10, 'fdflags', 'optional', 'uint32', { opts: { hex: true } }),
]);

/**
 * Page map (CRIU images/pagemap.proto): PAGEMAP images, a head then one entry per run of pages.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('pagemap_head', [
  f(1, 'pages_id', 'required', 'uint32'),
]);
defineMessage('pagemap_entry', [
  f(1, 'vaddr', 'required', 'uint64', { opts: { hex: true } }),
  // 4.x: the u32 count moved to field 5 as u64; CRIU writes 0 here
  f(2, 'compat_nr_pages', 'required', 'uint32'),
  f(3, 'in_parent', 'optional', 'bool'),
  f(4, 'flags', 'optional', 'uint32', { opts: { flags: 'pmap.flags' } }),
  f(5, 'nr_pages', 'optional', 'uint64'),
]);

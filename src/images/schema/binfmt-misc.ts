/**
 * binfmt_misc registrations: CRIU images/binfmt-misc.proto, image
 * binfmt-misc.img (magic 0x67343323).
 */
import { defineMessage, f } from './types.js';

defineMessage('binfmt_misc_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'enabled', 'required', 'bool'),
  f(3, 'interpreter', 'required', 'string'),
  f(4, 'flags', 'optional', 'string'),
  f(5, 'extension', 'optional', 'string'),
  f(6, 'magic', 'optional', 'string'),
  f(7, 'mask', 'optional', 'string'),
  f(8, 'offset', 'optional', 'int32'),
]);

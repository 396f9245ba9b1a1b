/**
 * autofs mount options: CRIU images/autofs.proto, image autofs-<id>.img
 * (magic 0x49353943).
 */
import { defineMessage, f } from './types.js';

defineMessage('autofs_entry', [
  f(1, 'fd', 'required', 'int32'),
  f(2, 'pgrp', 'required', 'int32'),
  f(3, 'timeout', 'required', 'int32'),
  f(4, 'minproto', 'required', 'int32'),
  f(5, 'maxproto', 'required', 'int32'),
  f(6, 'mode', 'required', 'int32'),
  f(7, 'uid', 'optional', 'int32'),
  f(8, 'gid', 'optional', 'int32'),
  f(9, 'read_fd', 'optional', 'int32'),
]);

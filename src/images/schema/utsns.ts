/**
 * UTS namespace: CRIU images/utsns.proto, image utsns-<id>.img (magic
 * 0x54473203).
 */
import { defineMessage, f } from './types.js';

defineMessage('utsns_entry', [
  f(1, 'nodename', 'required', 'string'),
  f(2, 'domainname', 'required', 'string'),
]);

/**
 * PID namespace: CRIU images/pidns.proto, image pidns-<id>.img.
 */
import { defineMessage, f } from './types.js';

defineMessage('pidns_entry', [
  f(1, 'ext_key', 'optional', 'string'),
]);

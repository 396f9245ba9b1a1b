/**
 * Socket receive queues (CRIU images/sk-packet.proto): SK_QUEUES entries, each followed by `length` bytes of data.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('scm_entry', [
  f(1, 'type', 'required', 'uint32'),
  f(2, 'rights', 'repeated', 'uint32'),
]);
defineMessage('sk_packet_entry', [
  f(1, 'id_for', 'required', 'uint32'),
  f(2, 'length', 'required', 'uint32'),
  f(4, 'scm', 'repeated', 'message', { ref: 'scm_entry' }),
]);

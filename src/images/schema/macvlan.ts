/**
 * macvlan link parameters: CRIU images/macvlan.proto, embedded in
 * net_device_entry.
 */
import { defineMessage, f } from './types.js';

defineMessage('macvlan_link_entry', [
  f(1, 'mode', 'required', 'uint32'),
  f(2, 'flags', 'optional', 'uint32'),
]);

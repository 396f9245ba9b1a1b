/**
 * TUN/TAP: CRIU images/tun.proto. tunfile_entry is a file_entry sub-message
 * (old dumps: tunfile.img, magic 0x57143751); tun_link_entry is embedded in
 * net_device_entry.
 */
import { defineMessage, f } from './types.js';

defineMessage('tunfile_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'netdev', 'optional', 'string'),
  f(3, 'detached', 'optional', 'bool'),
  f(4, 'ns_id', 'optional', 'uint32'),
]);

defineMessage('tun_link_entry', [
  f(1, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(2, 'owner', 'required', 'int32'),
  f(3, 'group', 'required', 'int32'),
  f(4, 'vnethdr', 'required', 'uint32'),
  f(5, 'sndbuf', 'required', 'uint32'),
]);

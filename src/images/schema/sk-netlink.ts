/**
 * Netlink sockets: CRIU images/sk-netlink.proto. netlink_sk_entry is a
 * file_entry sub-message (old dumps: netlinksk.img, magic 0x58005614).
 */
import { defineMessage, f } from './types.js';

defineMessage('netlink_sk_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ino', 'required', 'uint32'),
  f(3, 'protocol', 'required', 'uint32'),
  f(4, 'state', 'required', 'uint32'),
  f(6, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(7, 'portid', 'required', 'uint32'),
  f(8, 'groups', 'repeated', 'uint32'),
  f(9, 'dst_portid', 'required', 'uint32'),
  f(10, 'dst_group', 'required', 'uint32'),
  f(11, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(12, 'opts', 'required', 'message', { ref: 'sk_opts_entry' }),
  f(13, 'ns_id', 'optional', 'uint32'),
]);

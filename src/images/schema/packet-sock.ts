/**
 * AF_PACKET sockets: CRIU images/packet-sock.proto. packet_sock_entry is a
 * file_entry sub-message (old dumps: packetsk.img, magic 0x60454618).
 */
import { defineMessage, f } from './types.js';

defineMessage('packet_mclist', [
  f(1, 'index', 'required', 'uint32'),
  f(2, 'type', 'required', 'uint32'),
  f(3, 'addr', 'required', 'bytes'),
]);

defineMessage('packet_ring', [
  f(1, 'block_size', 'required', 'uint32'),
  f(2, 'block_nr', 'required', 'uint32'),
  f(3, 'frame_size', 'required', 'uint32'),
  f(4, 'frame_nr', 'required', 'uint32'),
  f(5, 'retire_tmo', 'required', 'uint32'),
  f(6, 'sizeof_priv', 'required', 'uint32'),
  f(7, 'features', 'required', 'uint32'),
]);

defineMessage('packet_sock_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'type', 'required', 'uint32'),
  f(3, 'protocol', 'required', 'uint32'),
  f(4, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(5, 'ifindex', 'required', 'uint32'),
  f(6, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(7, 'opts', 'required', 'message', { ref: 'sk_opts_entry' }),
  f(8, 'version', 'required', 'uint32'),
  f(9, 'reserve', 'required', 'uint32'),
  f(10, 'aux_data', 'required', 'bool'),
  f(11, 'orig_dev', 'required', 'bool'),
  f(12, 'vnet_hdr', 'required', 'bool'),
  f(13, 'loss', 'required', 'bool'),
  f(14, 'timestamp', 'required', 'uint32'),
  f(15, 'copy_thresh', 'required', 'uint32'),
  f(16, 'mclist', 'repeated', 'message', { ref: 'packet_mclist' }),
  f(17, 'fanout', 'optional', 'uint32'),
  f(18, 'rx_ring', 'optional', 'message', { ref: 'packet_ring' }),
  f(19, 'tx_ring', 'optional', 'message', { ref: 'packet_ring' }),
  f(20, 'ns_id', 'optional', 'uint32'),
]);

/**
 * Inet sockets (CRIU images/sk-inet.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('ip_opts_raw_entry', [
  f(1, 'hdrincl', 'optional', 'bool'),
  f(2, 'nodefrag', 'optional', 'bool'),
  f(3, 'checksum', 'optional', 'bool'),
  f(4, 'icmpv_filter', 'repeated', 'uint32'),
]);
defineMessage('ip_opts_entry', [
  f(1, 'freebind', 'optional', 'bool'),
  f(4, 'raw', 'optional', 'message', { ref: 'ip_opts_raw_entry' }),
  f(5, 'pktinfo', 'optional', 'bool'),
  f(6, 'tos', 'optional', 'uint32'),
  f(7, 'ttl', 'optional', 'uint32'),
]);
defineMessage('tcp_opts_entry', [
  f(1, 'cork', 'optional', 'bool'),
  f(2, 'nodelay', 'optional', 'bool'),
  f(3, 'keepcnt', 'optional', 'uint32'),
  f(4, 'keepidle', 'optional', 'uint32'),
  f(5, 'keepintvl', 'optional', 'uint32'),
]);
defineMessage('inet_sk_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ino', 'required', 'uint32'),
  f(3, 'family', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(4, 'type', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(5, 'proto', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(6, 'state', 'required', 'uint32', { opts: { dict: 'sk' } }),
  f(7, 'src_port', 'required', 'uint32'),
  f(8, 'dst_port', 'required', 'uint32'),
  f(9, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(10, 'backlog', 'required', 'uint32'),
  f(11, 'src_addr', 'repeated', 'uint32', { opts: { ipadd: true } }),
  f(12, 'dst_addr', 'repeated', 'uint32', { opts: { ipadd: true } }),
  f(13, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(14, 'opts', 'required', 'message', { ref: 'sk_opts_entry' }),
  f(15, 'v6only', 'optional', 'bool'),
  f(16, 'ip_opts', 'optional', 'message', { ref: 'ip_opts_entry' }),
  f(17, 'ifname', 'optional', 'string'),
  f(18, 'ns_id', 'optional', 'uint32'),
  f(19, 'shutdown', 'optional', 'enum', { ref: 'sk_shutdown' }),
  f(20, 'tcp_opts', 'optional', 'message', { ref: 'tcp_opts_entry' }),
  f(21, 'uid', 'optional', 'uint32'),
]);

/**
 * SIT (IPv6-in-IPv4) tunnel parameters: CRIU images/sit.proto, embedded in
 * net_device_entry.
 */
import { defineMessage, f } from './types.js';

defineMessage('sit_entry', [
  f(1, 'link', 'optional', 'uint32'),
  f(2, 'local', 'repeated', 'uint32', { opts: { ipadd: true } }),
  f(3, 'remote', 'repeated', 'uint32', { opts: { ipadd: true } }),
  f(4, 'ttl', 'optional', 'uint32'),
  f(5, 'tos', 'optional', 'uint32'),
  f(6, 'pmtudisc', 'optional', 'bool'),
  f(7, 'proto', 'optional', 'uint32'),
  f(8, 'flags', 'optional', 'uint32'),
  f(9, 'encap_type', 'optional', 'uint32'),
  f(10, 'encap_flags', 'optional', 'uint32'),
  f(11, 'encap_sport', 'optional', 'uint32'),
  f(12, 'encap_dport', 'optional', 'uint32'),
  f(13, 'rd_prefixlen', 'optional', 'uint32'),
  f(14, 'rd_prefix', 'repeated', 'uint32', { opts: { ipadd: true } }),
  f(15, 'relay_prefixlen', 'optional', 'uint32'),
  f(16, 'relay_prefix', 'repeated', 'uint32', { opts: { ipadd: true } }),
]);

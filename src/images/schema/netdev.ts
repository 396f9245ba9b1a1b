/**
 * Network devices and per-netns sysctls: CRIU images/netdev.proto.
 * net_device_entry lives in netdev-<ns>.img (magic 0x57373951), netns_entry
 * in netns-<ns>.img (magic 0x55933752).
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('nd_type', { LOOPBACK: 1, VETH: 2, TUN: 3, EXTLINK: 4, VENET: 5, BRIDGE: 6, MACVLAN: 7, SIT: 8 });

defineMessage('net_device_entry', [
  f(1, 'type', 'required', 'enum', { ref: 'nd_type' }),
  f(2, 'ifindex', 'required', 'uint32'),
  f(3, 'mtu', 'required', 'uint32'),
  f(4, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(5, 'name', 'required', 'string'),
  f(6, 'tun', 'optional', 'message', { ref: 'tun_link_entry' }),
  f(7, 'address', 'optional', 'bytes'),
  f(8, 'conf', 'repeated', 'int32'),
  f(9, 'conf4', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(10, 'conf6', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(11, 'macvlan', 'optional', 'message', { ref: 'macvlan_link_entry' }),
  f(12, 'peer_ifindex', 'optional', 'uint32'),
  f(13, 'peer_nsid', 'optional', 'uint32'),
  f(14, 'master', 'optional', 'uint32'),
  f(15, 'sit', 'optional', 'message', { ref: 'sit_entry' }),
]);

defineMessage('netns_id', [
  f(1, 'target_ns_id', 'required', 'uint32'),
  f(2, 'netnsid_value', 'required', 'int32'),
]);

defineMessage('netns_entry', [
  f(1, 'def_conf', 'repeated', 'int32'),
  f(2, 'all_conf', 'repeated', 'int32'),
  f(3, 'def_conf4', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(4, 'all_conf4', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(5, 'def_conf6', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(6, 'all_conf6', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(7, 'nsids', 'repeated', 'message', { ref: 'netns_id' }),
  f(8, 'ext_key', 'optional', 'string'),
  f(9, 'unix_conf', 'repeated', 'message', { ref: 'sysctl_entry' }),
  f(10, 'ipv4_sysctl', 'repeated', 'message', { ref: 'sysctl_entry' }),
]);

/**
 * TCP, UDP, raw and ICMP ping sockets over IPv4 and IPv6: CRIU's INETSK
 * file_entry (inet_sk_entry with sk_opts_entry, ip_opts_entry,
 * tcp_opts_entry) and sk-queues.img for datagrams waiting to be read.
 * State and a listener's backlog come from sock_diag (INET_DIAG), raw and
 * ping sockets' from /proc/PID/net (raw.ts), addresses and options from our
 * pidfd_getfd copy of the socket.
 *
 * Handles listening TCP sockets, bound-only and unbound TCP sockets, UDP
 * (and UDP-Lite) sockets bound and/or connected, shut down, with
 * SO_REUSEADDR/SO_REUSEPORT (also groups sharing a port, ports.ts),
 * IPV6_V6ONLY, IP_FREEBIND, IP_PKTINFO, TTL/TOS, Nagle, cork and keepalive
 * settings and the generic socket options (../socket-opts/); raw sockets
 * with their ICMP filters and raw options; ping sockets with their echo
 * identifier.
 *
 * An IPv6 link-local address (fe80::/10, ff02::/16) is tied to an
 * interface: CRIU's ifname (the socket's bound device), which gives the
 * bind its sin6_scope_id in the restored namespace.
 *
 * Connections (--tcp-established), also half closed, closing or reset, go
 * through TCP_REPAIR into tcp-stream-<ino>.img (see tcp-repair.ts and
 * tcp-states.ts).
 *
 * Known limits: SYN_RECV and TIME_WAIT are refused; with --network-lock skip, a peer
 * outside the dump that sends between dump and restore gets a reset; a
 * listener with connections not accepted yet is refused; queued datagrams
 * come back with their bytes and boundaries but from another source
 * address (CRIU's sk_packet_entry has no field for it; CRIU drops them);
 * packets queued on raw and ping sockets are dropped (logged); a corked
 * UDP socket, IP_TRANSPARENT and IP_PKTINFO on IPv6 are refused; file
 * owner (fown) is not handled; a
 * listener whose old connections linger in TIME_WAIT cannot be bound again
 * unless it had SO_REUSEADDR (the kernel's rule; restore says so).
 */
import { AF_INET, AF_INET6, getsockoptInt, SOL_SOCKET, SO_DOMAIN } from '../../../sys/index.js';
import type { FileKind, FdProbe } from '../../types.js';
import { dumpInetSocket } from './dump.js';
import { finishInetSocket, restoreInetSocket } from './restore.js';
import { inSocketNetns } from '../../ns/net.js';


export const inetSocketKind: FileKind = {
  name: 'inet-socket',
  type: 'INETSK',
  detect(p: FdProbe): boolean {
    if (!p.link.startsWith('socket:[') || !p.stat.isSocket()) return false;
    try {
      const family = getsockoptInt(p.localFd, SOL_SOCKET, SO_DOMAIN);
      return family === AF_INET || family === AF_INET6;
    } catch {
      return false;
    }
  },
  dump: dumpInetSocket,
  restore: (t, e, fdi, ctx) => inSocketNetns(t, ctx, e.isk?.ns_id, () => restoreInetSocket(t, e, fdi.fd, ctx)),
  finish: (t, e, fd, ctx) => inSocketNetns(t, ctx, e.isk?.ns_id, () => finishInetSocket(t, e, fd, ctx)),
};

/**
 * Packet sockets (AF_PACKET: SOCK_RAW, SOCK_DGRAM and the old SOCK_PACKET):
 * CRIU's PACKETSK file_entry (packet_sock_entry), read from sock_diag
 * (PACKET_DIAG) and restored by socket(), bind and setsockopt in the task.
 *
 * Handles the bound protocol and device, TPACKET version, reserve,
 * timestamp source, copy threshold, auxdata/origdev/vnet_hdr/loss,
 * memberships (promiscuous, all-multicast, multicast and unicast
 * addresses), RX and TX rings (their configuration; a ring's frames are
 * new), fanout groups, and the generic socket options.
 *
 * Known limits: packets waiting to be read are dropped (logged), as CRIU
 * does; a membership joined more than once is refused (the image keeps no
 * count); sockets in another network namespace are refused. A ring the
 * task mapped into its memory is the memory kind's (VMA_AREA_SOCKET): it
 * maps it again from this socket's fd.
 */
import { getsockoptInt, SOL_SOCKET, SO_DOMAIN, AF_PACKET } from '../../../sys/index.js';
import type { FileKind, FdProbe } from '../../types.js';
import { dumpPacketSocket } from './dump.js';
import { restorePacketSocket } from './restore.js';
import { inSocketNetns } from '../../ns/net.js';


export const packetSocketKind: FileKind = {
  name: 'packet-socket',
  type: 'PACKETSK',
  detect(p: FdProbe): boolean {
    if (!p.link.startsWith('socket:[') || !p.stat.isSocket()) return false;
    try {
      return getsockoptInt(p.localFd, SOL_SOCKET, SO_DOMAIN) === AF_PACKET;
    } catch {
      return false;
    }
  },
  dump: dumpPacketSocket,
  restore: (t, e, _fdi, ctx) => inSocketNetns(t, ctx, e.psk?.ns_id, () => restorePacketSocket(t, e, ctx)),
};

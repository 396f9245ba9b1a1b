/**
 * Netlink sockets (AF_NETLINK, any protocol: route, generic, uevent, ...):
 * CRIU's NETLINKSK file_entry (netlink_sk_entry), read from sock_diag
 * (NETLINK_DIAG) and restored by socket(), bind, setsockopt and connect in
 * the task.
 *
 * Handles the port id (bound or kernel-assigned), multicast groups (all of
 * them; CRIU's own restore takes 32), the peer of a connected socket, and
 * the generic socket options with SO_PASSCRED/SO_PASSSEC.
 *
 * Known limits: messages waiting to be read are refused, as CRIU refuses
 * them (they cannot be sent again in the kernel's or the sender's name), as
 * are a kernel dump in progress and the NETLINK_PKTINFO,
 * BROADCAST_ERROR, NO_ENOBUFS, LISTEN_ALL_NSID and CAP_ACK flags (no field
 * in the image); a port id taken by another socket fails the restore
 * naming it (CRIU picks another one). NETLINK_EXT_ACK and
 * NETLINK_GET_STRICT_CHK are not reported by the kernel and come back off.
 */
import { getsockoptInt, SOL_SOCKET, SO_DOMAIN, AF_NETLINK } from '../../../sys/index.js';
import type { FileKind, FdProbe } from '../../types.js';
import { dumpNetlinkSocket } from './dump.js';
import { restoreNetlinkSocket } from './restore.js';
import { inSocketNetns } from '../../ns/net.js';


export const netlinkSocketKind: FileKind = {
  name: 'netlink-socket',
  type: 'NETLINKSK',
  detect(p: FdProbe): boolean {
    if (!p.link.startsWith('socket:[') || !p.stat.isSocket()) return false;
    try {
      return getsockoptInt(p.localFd, SOL_SOCKET, SO_DOMAIN) === AF_NETLINK;
    } catch {
      return false;
    }
  },
  dump: dumpNetlinkSocket,
  restore: (t, e, fdi, ctx) => inSocketNetns(t, ctx, e.nlsk?.ns_id, () => restoreNetlinkSocket(t, e, fdi.fd, ctx)),
};

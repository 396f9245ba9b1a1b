/**
 * Dump of one netlink socket fd into CRIU's netlink_sk_entry: protocol,
 * own port id and groups, the peer it is connected to, from sock_diag
 * (NETLINK_DIAG); generic options (with SO_PASSCRED/SO_PASSSEC) from our
 * copy. A socket sock_diag does not list was never bound: only its protocol.
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, NetlinkSkEntry } from '../../../images/messages.js';
import { getsockoptInt, nlAttrs, sockDiag, SOL_SOCKET, AF_NETLINK, SO_PROTOCOL, O_CLOEXEC, NDIAG_PROTO_ALL } from '../../../sys/index.js';
import { listingFor } from '../socket-opts/net-ns.js';
import { stateKey, type DumpContext, type FdProbe } from '../../types.js';
import { NO_FOWN } from '../fown.js';
import { dumpSkOpts } from '../socket-opts/index.js';

const SHOW = { MEMINFO: 1, GROUPS: 2, FLAGS: 8 } as const;
const ATTR = { MEMINFO: 0, GROUPS: 1, FLAGS: 4 } as const;
const MSG_BYTES = 28;
/** NETLINK_DIAG_FLAGS bits, none of which the image can carry */
const FLAG_NAMES: readonly [number, string][] = [
  [0x1, 'a dump in progress'], [0x2, 'NETLINK_PKTINFO'], [0x4, 'NETLINK_BROADCAST_ERROR'], [0x8, 'NETLINK_NO_ENOBUFS'],
  [0x10, 'NETLINK_LISTEN_ALL_NSID'], [0x20, 'NETLINK_CAP_ACK'],
];

interface NetlinkDiag {
  protocol: number;
  state: number;
  portid: number;
  dstPortid: number;
  dstGroup: number;
  /** bitmap words of the groups it listens to */
  groups: number[];
  rmem: number;
  flags: number;
}

/** listings of this dump by net namespace */
const TABLES = stateKey<Map<string, Map<number, NetlinkDiag>>>('netlink-socket:diag');

function table(): Map<number, NetlinkDiag> {
  const req = Buffer.alloc(20);
  req.writeUInt8(AF_NETLINK, 0);
  req.writeUInt8(NDIAG_PROTO_ALL, 1);
  req.writeUInt32LE(SHOW.MEMINFO | SHOW.GROUPS | SHOW.FLAGS, 8);
  const m = new Map<number, NetlinkDiag>();
  for (const msg of sockDiag(req, true)) {
    if (msg.length < MSG_BYTES) continue;
    const a = nlAttrs(msg, MSG_BYTES);
    const g = a.get(ATTR.GROUPS) ?? Buffer.alloc(0);
    const groups: number[] = [];
    for (let o = 0; o + 4 <= g.length; o += 4) groups.push(g.readUInt32LE(o));
    m.set(msg.readUInt32LE(16), {
      protocol: msg.readUInt8(2), state: msg.readUInt8(3), portid: msg.readUInt32LE(4),
      dstPortid: msg.readUInt32LE(8), dstGroup: msg.readUInt32LE(12), groups,
      rmem: a.get(ATTR.MEMINFO)?.readUInt32LE(0) ?? 0,
      flags: a.get(ATTR.FLAGS)?.readUInt32LE(0) ?? 0,
    });
  }
  return m;
}

export function dumpNetlinkSocket(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
  const ino = Number(p.stat.ino);
  const protocol = getsockoptInt(p.localFd, SOL_SOCKET, SO_PROTOCOL);
  const what = `task ${p.pid} fd ${p.fd}: netlink socket ${ino} (protocol ${protocol})`;
  const refuse = (why: string): never => {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${why}`, { pid: p.pid, fd: p.fd, ino });
  };
  // sock_diag of the socket's own net namespace: a socket it does not list was never bound.
  const d = listingFor(ctx, TABLES, p.localFd, table).get(ino);
  const ne: NetlinkSkEntry = {
    id, ino, protocol, state: 0, flags: p.fdinfo.flags & ~O_CLOEXEC, portid: 0, dst_portid: 0, dst_group: 0,
    fown: NO_FOWN, opts: dumpSkOpts(p.localFd, true, what),
  };
  if (d) {
    // Messages from the kernel or a peer: CRIU refuses them too (they cannot be sent again in the sender's name).
    if (d.rmem > 0) refuse(`${d.rmem} bytes of messages waiting to be read`);
    for (const [bit, name] of FLAG_NAMES) if (d.flags & bit) refuse(`${name} is on, which the image cannot carry`);
    const groups = [...d.groups];
    while (groups.length > 0 && groups[groups.length - 1] === 0) groups.pop();
    ne.state = d.state;
    ne.portid = d.portid;
    ne.dst_portid = d.dstPortid;
    ne.dst_group = d.dstGroup;
    if (groups.length > 0) ne.groups = groups;
  }
  if (p.netNsId !== undefined) ne.ns_id = p.netNsId;
  return { type: 'NETLINKSK', id, nlsk: ne };
}

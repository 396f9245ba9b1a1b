/**
 * A packet socket re-created inside the task, in CRIU's order: socket(),
 * bind to the dumped device (SOCK_PACKET by device name), version and
 * reserve (before the rings, which they shape), timestamp source, copy
 * threshold, flags, memberships, rings, fanout, then the generic options
 * and the filter.
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, PacketRing, PacketSockEntry } from '../../../images/messages.js';
import { closeQuiet, inNetNamespaceOf, ioctl, NR, socket, SOCK_DGRAM, SOL_PACKET, SIOCGIFNAME, AF_PACKET, SOCK_PACKET } from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { setStatusFlags } from '../pipe.js';
import { dumpSkOpts, restoreFilter, restoreSkOpts } from '../socket-opts/index.js';

const OPT = {
  ADD_MEMBERSHIP: 1, RX_RING: 5, COPY_THRESH: 7, AUXDATA: 8, ORIGDEV: 9, VERSION: 10, RESERVE: 12, TX_RING: 13,
  LOSS: 14, VNET_HDR: 15, TIMESTAMP: 17, FANOUT: 18,
} as const;
const FRESH = stateKey<Map<number, ReturnType<typeof dumpSkOpts>>>('packet-socket:fresh-opts');

export function pskOf(e: FileEntry): PacketSockEntry {
  if (!e.psk) throw new CriuTsError('EIMAGE', `file ${e.id}: PACKETSK entry without psk data`, { id: e.id });
  return e.psk;
}

function setOpt(t: RestoreTaskHandle, fd: number, name: number, v: Buffer, what: string): void {
  t.syscall(`setsockopt(${what})`, NR.setsockopt, fd, SOL_PACKET, name, t.putBytes(v), v.length);
}

function setInt(t: RestoreTaskHandle, fd: number, name: number, v: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  setOpt(t, fd, name, b, what);
}

/** struct tpacket_req3: the kernel reads its first four words for TPACKET_V1/V2. */
function setRing(t: RestoreTaskHandle, fd: number, name: number, r: PacketRing | undefined, what: string): void {
  if (!r) return;
  const b = Buffer.alloc(28);
  [r.block_size, r.block_nr, r.frame_size, r.frame_nr, r.retire_tmo, r.sizeof_priv, r.features].forEach((v, i) => b.writeUInt32LE(v >>> 0, 4 * i));
  setOpt(t, fd, name, b, what);
}

/** The name of device `ifindex` in the net namespace of task `pid` (the socket's). */
function ifName(pid: number, ifindex: number): string {
  const fd = inNetNamespaceOf(pid, () => socket(AF_PACKET, SOCK_DGRAM, 0));
  try {
    const req = Buffer.alloc(40);
    req.writeInt32LE(ifindex, 16);
    ioctl(fd, SIOCGIFNAME, req);
    return req.subarray(0, 16).toString('latin1').replace(/\0.*$/s, '');
  } finally {
    closeQuiet(fd);
  }
}

function bindAsDumped(t: RestoreTaskHandle, fd: number, s: PacketSockEntry): void {
  if (s.type === SOCK_PACKET) {
    if (s.ifindex === 0) return;
    // struct sockaddr with the device name in sa_data (14 bytes, NUL-terminated).
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_PACKET, 0);
    sa.write(ifName(t.pid, s.ifindex).slice(0, 13), 2, 'latin1');
    t.syscall('bind', NR.bind, fd, t.putBytes(sa), sa.length);
    return;
  }
  // struct sockaddr_ll: family, protocol 0 (keep the socket's), ifindex.
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeInt32LE(s.ifindex, 4);
  t.syscall(`bind ifindex ${s.ifindex}`, NR.bind, fd, t.putBytes(sll), sll.length);
}

function freshOpts(type: number, ctx: RestoreContext): ReturnType<typeof dumpSkOpts> {
  const all = ctx.state(FRESH, () => new Map<number, ReturnType<typeof dumpSkOpts>>());
  let o = all.get(type);
  if (!o) {
    const fd = socket(AF_PACKET, type, 0);
    try {
      o = dumpSkOpts(fd, false);
    } finally {
      closeQuiet(fd);
    }
    all.set(type, o);
  }
  return o;
}

export function restorePacketSocket(t: RestoreTaskHandle, e: FileEntry, ctx: RestoreContext): number {
  const s = pskOf(e);
  const fd = Number(t.syscall('socket', NR.socket, AF_PACKET, s.type, s.protocol));
  bindAsDumped(t, fd, s);
  if (s.type !== SOCK_PACKET) {
    setInt(t, fd, OPT.VERSION, s.version, 'PACKET_VERSION');
    setInt(t, fd, OPT.RESERVE, s.reserve, 'PACKET_RESERVE');
    setInt(t, fd, OPT.TIMESTAMP, s.timestamp, 'PACKET_TIMESTAMP');
    setInt(t, fd, OPT.COPY_THRESH, s.copy_thresh, 'PACKET_COPY_THRESH');
    if (s.aux_data) setInt(t, fd, OPT.AUXDATA, 1, 'PACKET_AUXDATA');
    if (s.orig_dev) setInt(t, fd, OPT.ORIGDEV, 1, 'PACKET_ORIGDEV');
    if (s.vnet_hdr) setInt(t, fd, OPT.VNET_HDR, 1, 'PACKET_VNET_HDR');
    if (s.loss) setInt(t, fd, OPT.LOSS, 1, 'PACKET_LOSS');
    for (const m of s.mclist ?? []) {
      // struct packet_mreq: ifindex, type, address length, address (8 bytes).
      const b = Buffer.alloc(16);
      b.writeInt32LE(m.index, 0);
      b.writeUInt16LE(m.type, 4);
      b.writeUInt16LE(Math.min(m.addr.length, 8), 6);
      m.addr.copy(b, 8, 0, Math.min(m.addr.length, 8));
      setOpt(t, fd, OPT.ADD_MEMBERSHIP, b, 'PACKET_ADD_MEMBERSHIP');
    }
    setRing(t, fd, OPT.RX_RING, s.rx_ring, 'PACKET_RX_RING');
    setRing(t, fd, OPT.TX_RING, s.tx_ring, 'PACKET_TX_RING');
    // Sockets of one fanout group join it in turn: the first one makes it.
    if (s.fanout !== undefined && s.fanout !== 0xffffffff) setInt(t, fd, OPT.FANOUT, s.fanout, 'PACKET_FANOUT');
  }
  restoreSkOpts(t, fd, s.opts, freshOpts(s.type, ctx));
  restoreFilter(t, fd, s.opts.so_filter);
  setStatusFlags(t, fd, s.flags);
  return fd;
}

/**
 * What sock_diag (PACKET_DIAG) tells about packet sockets: the bound
 * protocol and device, version, reserve, copy threshold, timestamp source,
 * flags, multicast memberships, rings and fanout. The kernel lists the
 * sockets of the caller's net namespace only and has no lookup by inode
 * alone: each namespace is listed once per dump, from inside it, and
 * indexed by inode.
 */
import { nlAttrs, sockDiag, AF_PACKET } from '../../../sys/index.js';
import { listingFor } from '../socket-opts/net-ns.js';
import { stateKey, type DumpContext } from '../../types.js';

const REQ_BYTES = 20;
const MSG_BYTES = 16;
const SHOW = { INFO: 1, MCLIST: 2, RING_CFG: 4, FANOUT: 8 } as const;
const ATTR = { INFO: 0, MCLIST: 1, RX_RING: 2, TX_RING: 3, FANOUT: 4 } as const;
export const PDI = { RUNNING: 1, AUXDATA: 2, ORIGDEV: 4, VNETHDR: 8, LOSS: 0x10 } as const;
const MCLIST_BYTES = 44;

export interface PacketRingCfg {
  block_size: number; block_nr: number; frame_size: number; frame_nr: number;
  retire_tmo: number; sizeof_priv: number; features: number;
}

export interface PacketMembership {
  index: number;
  count: number;
  type: number;
  addr: Buffer;
}

export interface PacketDiag {
  ino: number;
  type: number;
  /** the bound protocol, host order */
  num: number;
  ifindex: number;
  version: number;
  reserve: number;
  copyThresh: number;
  tstamp: number;
  flags: number;
  mclist: PacketMembership[];
  rx?: PacketRingCfg;
  tx?: PacketRingCfg;
  /** id | type << 16 | flags << 24, as PACKET_FANOUT takes it */
  fanout?: number;
}

function ring(b: Buffer | undefined): PacketRingCfg | undefined {
  if (!b || b.length < 28) return undefined;
  const w = (i: number): number => b.readUInt32LE(4 * i);
  return { block_size: w(0), block_nr: w(1), frame_size: w(2), frame_nr: w(3), retire_tmo: w(4), sizeof_priv: w(5), features: w(6) };
}

function parse(msg: Buffer): PacketDiag {
  const a = nlAttrs(msg, MSG_BYTES);
  const info = a.get(ATTR.INFO) ?? Buffer.alloc(24);
  const mc = a.get(ATTR.MCLIST) ?? Buffer.alloc(0);
  const mclist: PacketMembership[] = [];
  for (let o = 0; o + MCLIST_BYTES <= mc.length; o += MCLIST_BYTES) {
    const alen = mc.readUInt16LE(o + 10);
    mclist.push({ index: mc.readUInt32LE(o), count: mc.readUInt32LE(o + 4), type: mc.readUInt16LE(o + 8), addr: Buffer.from(mc.subarray(o + 12, o + 12 + Math.min(alen, 32))) });
  }
  const d: PacketDiag = {
    ino: msg.readUInt32LE(4),
    type: msg.readUInt8(1),
    num: msg.readUInt16LE(2),
    ifindex: info.readUInt32LE(0),
    version: info.readUInt32LE(4),
    reserve: info.readUInt32LE(8),
    copyThresh: info.readUInt32LE(12),
    tstamp: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    mclist,
  };
  const rx = ring(a.get(ATTR.RX_RING));
  const tx = ring(a.get(ATTR.TX_RING));
  if (rx) d.rx = rx;
  if (tx) d.tx = tx;
  const f = a.get(ATTR.FANOUT);
  if (f && f.length >= 4) d.fanout = f.readUInt32LE(0);
  return d;
}

/** listings of this dump by net namespace */
const TABLES = stateKey<Map<string, Map<number, PacketDiag>>>('packet-socket:diag');

function listHere(): Map<number, PacketDiag> {
  const req = Buffer.alloc(REQ_BYTES);
  req.writeUInt8(AF_PACKET, 0);
  req.writeUInt32LE(SHOW.INFO | SHOW.MCLIST | SHOW.RING_CFG | SHOW.FANOUT, 8);
  const m = new Map<number, PacketDiag>();
  for (const msg of sockDiag(req, true)) {
    if (msg.length < MSG_BYTES) continue;
    const d = parse(msg);
    m.set(d.ino, d);
  }
  return m;
}

/** The packet socket `ino` (our copy `sockFd`), or undefined when sock_diag of its namespace does not list it. */
export function packetDiag(ctx: DumpContext, sockFd: number, ino: number): PacketDiag | undefined {
  return listingFor(ctx, TABLES, sockFd, listHere).get(ino);
}

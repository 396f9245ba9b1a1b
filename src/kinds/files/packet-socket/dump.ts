/**
 * Dump of one packet socket fd into CRIU's packet_sock_entry: type and
 * protocol (network order, as socket() takes it), bound device, the
 * SOL_PACKET settings and rings from sock_diag, generic options from our
 * copy.
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, PacketSockEntry } from '../../../images/messages.js';
import { logger } from '../../../log.js';
import { ioctlTry, SIOCINQ, O_CLOEXEC } from '../../../sys/index.js';
import type { DumpContext, FdProbe } from '../../types.js';
import { NO_FOWN } from '../fown.js';
import { dumpSkOpts } from '../socket-opts/index.js';
import { packetDiag, PDI, type PacketRingCfg } from './diag.js';

const log = logger('packet-sk');

export const htons = (v: number): number => ((v & 0xff) << 8) | ((v >> 8) & 0xff);

const ringOf = (r: PacketRingCfg): PacketRingCfg => ({ ...r });

export function dumpPacketSocket(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
  const ino = Number(p.stat.ino);
  const what = `task ${p.pid} fd ${p.fd}: packet socket ${ino}`;
  const refuse = (why: string): never => {
    throw new CriuTsError('EUNSUPPORTED', `${what}: ${why}`, { pid: p.pid, fd: p.fd, ino });
  };
  const d = packetDiag(ctx, p.localFd, ino);
  if (!d) return refuse('sock_diag of its net namespace does not list it');
  for (const m of d.mclist) {
    // One entry stands for one membership; the image has no count.
    if (m.count !== 1) refuse(`joined the same membership of device ${m.index} ${m.count} times`);
  }
  const next = Buffer.alloc(4);
  if (ioctlTry(p.localFd, SIOCINQ, next) >= 0 && next.readInt32LE(0) > 0) {
    log.warn(`${what}: packets waiting to be read are dropped (not restorable), as CRIU does`);
  }
  const psk: PacketSockEntry = {
    id, type: d.type, protocol: htons(d.num),
    flags: p.fdinfo.flags & ~O_CLOEXEC,
    ifindex: d.ifindex,
    fown: NO_FOWN,
    opts: dumpSkOpts(p.localFd, false, what),
    version: d.version, reserve: d.reserve,
    aux_data: (d.flags & PDI.AUXDATA) !== 0,
    orig_dev: (d.flags & PDI.ORIGDEV) !== 0,
    vnet_hdr: (d.flags & PDI.VNETHDR) !== 0,
    loss: (d.flags & PDI.LOSS) !== 0,
    timestamp: d.tstamp, copy_thresh: d.copyThresh,
  };
  if (d.mclist.length > 0) psk.mclist = d.mclist.map((m) => ({ index: m.index, type: m.type, addr: m.addr }));
  if (d.fanout !== undefined) psk.fanout = d.fanout;
  if (d.rx) psk.rx_ring = ringOf(d.rx);
  if (d.tx) psk.tx_ring = ringOf(d.tx);
  if (p.netNsId !== undefined) psk.ns_id = p.netNsId;
  log.debug(`${what}: type ${d.type} protocol ${d.num} ifindex ${d.ifindex}`);
  return { type: 'PACKETSK', id, psk };
}

/**
 * A netlink socket re-created inside the task: socket(), options, bind to
 * its port id and first 32 groups, the groups beyond by
 * NETLINK_ADD_MEMBERSHIP, connect to its peer (port id and group).
 */
import { CriuTsError } from '../../../errors.js';
import type { FileEntry, NetlinkSkEntry } from '../../../images/messages.js';
import { closeQuiet, NR, socket, SOCK_RAW, EADDRINUSE, AF_NETLINK, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NETLINK_CONNECTED } from '../../../sys/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { setStatusFlags } from '../pipe.js';
import { dumpSkOpts, restoreFilter, restoreSkOpts } from '../socket-opts/index.js';

const FRESH = stateKey<Map<number, ReturnType<typeof dumpSkOpts>>>('netlink-socket:fresh-opts');

export function nlskOf(e: FileEntry): NetlinkSkEntry {
  if (!e.nlsk) throw new CriuTsError('EIMAGE', `file ${e.id}: NETLINKSK entry without nlsk data`, { id: e.id });
  return e.nlsk;
}

function sockaddrNl(portid: number, groups: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(AF_NETLINK, 0);
  b.writeUInt32LE(portid >>> 0, 4);
  b.writeUInt32LE(groups >>> 0, 8);
  return b;
}

function freshOpts(protocol: number, ctx: RestoreContext): ReturnType<typeof dumpSkOpts> {
  const all = ctx.state(FRESH, () => new Map<number, ReturnType<typeof dumpSkOpts>>());
  let o = all.get(protocol);
  if (!o) {
    const fd = socket(AF_NETLINK, SOCK_RAW, protocol);
    try {
      o = dumpSkOpts(fd, true);
    } finally {
      closeQuiet(fd);
    }
    all.set(protocol, o);
  }
  return o;
}

export function restoreNetlinkSocket(t: RestoreTaskHandle, e: FileEntry, fd0: number, ctx: RestoreContext): number {
  const n = nlskOf(e);
  const where = `task ${t.pid} fd ${fd0}: netlink socket (protocol ${n.protocol})`;
  const fd = Number(t.syscall('socket', NR.socket, AF_NETLINK, SOCK_RAW, n.protocol));
  restoreSkOpts(t, fd, n.opts, freshOpts(n.protocol, ctx));
  const groups = n.groups ?? [];
  if (n.portid !== 0) {
    const sa = sockaddrNl(n.portid, groups[0] ?? 0);
    try {
      t.syscall(`bind port id ${n.portid}`, NR.bind, fd, t.putBytes(sa), sa.length);
    } catch (err) {
      if (err instanceof CriuTsError && err.data['errno'] === EADDRINUSE) {
        throw new CriuTsError('ERESTORE', `${where}: port id ${n.portid} is taken by another socket (EADDRINUSE)`, { portid: n.portid }, err);
      }
      throw err;
    }
  }
  // Groups past the first 32 (or all of them on a socket never bound) go in one by one.
  groups.forEach((word, w) => {
    if (n.portid !== 0 && w === 0) return;
    for (let bit = 0; bit < 32; bit++) {
      if (((word >>> bit) & 1) === 0) continue;
      const b = Buffer.alloc(4);
      b.writeUInt32LE(w * 32 + bit + 1, 0);
      t.syscall(`setsockopt(NETLINK_ADD_MEMBERSHIP ${w * 32 + bit + 1})`, NR.setsockopt, fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, t.putBytes(b), 4);
    }
  });
  if (n.state === NETLINK_CONNECTED) {
    const sa = sockaddrNl(n.dst_portid, n.dst_group > 0 ? 2 ** (n.dst_group - 1) : 0);
    t.syscall(`connect port id ${n.dst_portid} group ${n.dst_group}`, NR.connect, fd, t.putBytes(sa), sa.length);
  }
  restoreFilter(t, fd, n.opts.so_filter);
  setStatusFlags(t, fd, n.flags);
  return fd;
}

/**
 * Persistent tun/tap devices of the tree's net namespace (kernel: struct
 * tun_struct), CRIU's net_device_entry type TUN with its tun_link_entry:
 * flags (IFF_TUN/IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE,
 * IFF_PERSIST), owner, group, vnet header size, send buffer.
 *
 * Dump (our thread inside the namespace): type, flags, owner and group
 * come from `ip -d` (IFLA_TUN_*; a name is mapped back to its id through
 * /etc/passwd and /etc/group, as ip mapped it); the vnet header size and
 * the send buffer are asked of the device itself, attached for a moment
 * from /dev/net/tun (TUNSETIFF, TUNGETVNETHDRSZ, TUNGETSNDBUF, then closed:
 * the device is persistent and stays), as CRIU does. Restore: made again
 * from /dev/net/tun inside the new namespace (TUNSETIFINDEX, TUNSETIFF,
 * the sizes, TUNSETOWNER/TUNSETGROUP, TUNSETPERSIST).
 *
 * Refused at dump with one line: a device a process holds open (a tun fd:
 * CRIU's tunfile, not supported yet), which is also every non-persistent
 * one.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import type { NetDeviceEntry, TunLinkEntry } from '../../images/messages.js';
import { ioctl } from '../../sys/index.js';

const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const TUNSETOWNER = 0x400454cc;
const TUNSETGROUP = 0x400454ce;
const TUNGETSNDBUF = 0x800454d3;
const TUNSETSNDBUF = 0x400454d4;
const TUNGETVNETHDRSZ = 0x800454d7;
const TUNSETVNETHDRSZ = 0x400454d8;
const TUNSETIFINDEX = 0x400454da;

const IFF_TUN = 0x1;
const IFF_TAP = 0x2;
const IFF_MULTI_QUEUE = 0x100;
const IFF_PERSIST = 0x800;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;

/** ip's info_data for a tun device. */
export interface IpTunInfo {
  type?: string;
  pi?: boolean;
  vnet_hdr?: boolean;
  multi_queue?: boolean;
  persist?: boolean;
  user?: string | number;
  group?: string | number;
}

/** A user or group id from what ip printed: a number, or a name it took from the files it reads. */
function idOf(file: '/etc/passwd' | '/etc/group', v: string | number | undefined, what: string): number {
  if (v === undefined) return -1;
  if (typeof v === 'number') return v;
  if (/^\d+$/.test(v)) return Number(v);
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // answered below
  }
  const line = text.split('\n').find((l) => l.split(':')[0] === v);
  const id = line === undefined ? NaN : Number(line.split(':')[2]);
  if (!Number.isInteger(id)) throw new CriuTsError('EDUMP', `${what}: its ${file === '/etc/passwd' ? 'owner' : 'group'} ${v} is not in ${file}`, { name: v });
  return id;
}

function ifreq(name: string, flags: number): Buffer {
  const b = Buffer.alloc(40);
  b.write(name, 0, 15, 'latin1');
  b.writeUInt16LE(flags, 16);
  return b;
}

function intArg(v = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
}

/** The tun_link_entry of device `name` (our thread in its namespace); `what` names it in a refusal. */
export function readTun(name: string, info: IpTunInfo, what: string): TunLinkEntry {
  let flags = info.type === 'tap' ? IFF_TAP : IFF_TUN;
  if (info.pi !== true) flags |= IFF_NO_PI;
  if (info.vnet_hdr === true) flags |= IFF_VNET_HDR;
  if (info.multi_queue === true) flags |= IFF_MULTI_QUEUE;
  if (info.persist !== true) {
    throw new CriuTsError('EUNSUPPORTED', `${what} is not persistent: it lives while a process holds it open, and tun fds are not supported yet`, { device: name });
  }
  const owner = idOf('/etc/passwd', info.user, what);
  const group = idOf('/etc/group', info.group, what);
  const fd = openSync('/dev/net/tun', 'r+');
  try {
    try {
      ioctl(fd, TUNSETIFF, ifreq(name, flags));
    } catch (e) {
      throw new CriuTsError('EUNSUPPORTED', `${what} is held open by a process (tun fds are not supported yet): ${(e as Error).message}`, { device: name }, e);
    }
    const hdr = intArg();
    ioctl(fd, TUNGETVNETHDRSZ, hdr);
    const sndbuf = intArg();
    ioctl(fd, TUNGETSNDBUF, sndbuf);
    return { flags: flags | IFF_PERSIST, owner, group, vnethdr: hdr.readInt32LE(0), sndbuf: sndbuf.readInt32LE(0) };
  } finally {
    // Detached again: a persistent device stays as it was.
    closeSync(fd);
  }
}

/** Make device `d` again in our thread's namespace, persistent, with its ifindex; parameters (mtu, address, up) follow. */
export function makeTun(d: NetDeviceEntry, who: string): void {
  const t = d.tun;
  if (t === undefined) throw new CriuTsError('EIMAGE', `${who}: device ${d.name} (tun) has no tun entry`, { device: d.name });
  const fd = openSync('/dev/net/tun', 'r+');
  const step = (what: string, req: number, arg: Buffer | number): void => {
    try {
      ioctl(fd, req, arg);
    } catch (e) {
      throw new CriuTsError('ERESTORE', `${who}: device ${d.name} (tun): ${what}: ${(e as Error).message}`, { device: d.name }, e);
    }
  };
  try {
    const idx = Buffer.alloc(4);
    idx.writeUInt32LE(d.ifindex, 0);
    step('TUNSETIFINDEX', TUNSETIFINDEX, idx);
    step('TUNSETIFF', TUNSETIFF, ifreq(d.name, t.flags & (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)));
    if (t.vnethdr > 0) step('TUNSETVNETHDRSZ', TUNSETVNETHDRSZ, intArg(t.vnethdr));
    if (t.sndbuf > 0) step('TUNSETSNDBUF', TUNSETSNDBUF, intArg(t.sndbuf));
    if (t.owner >= 0) step('TUNSETOWNER', TUNSETOWNER, t.owner);
    if (t.group >= 0) step('TUNSETGROUP', TUNSETGROUP, t.group);
    step('TUNSETPERSIST', TUNSETPERSIST, 1);
  } finally {
    closeSync(fd);
  }
}

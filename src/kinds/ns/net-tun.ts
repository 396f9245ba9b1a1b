/**
 * Tun/tap devices of the tree's net namespaces (kernel: struct
 * tun_struct), CRIU's net_device_entry type TUN with its tun_link_entry:
 * flags (IFF_TUN/IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE,
 * IFF_PERSIST), owner, group, vnet header size, send buffer.
 *
 * Dump (our thread inside the namespace): type, flags, owner and group
 * come from `ip -d` (IFLA_TUN_*; a name is mapped back to its id through
 * /etc/passwd and /etc/group, as ip mapped it); the vnet header size and
 * the send buffer are asked of the device itself, as CRIU does: through a
 * tun file of the tree attached to it (our copy; every non-persistent
 * device has one), else by attaching to it for a moment from
 * /dev/net/tun (TUNSETIFF, then closed: the device is persistent and
 * stays). Restore: made again from /dev/net/tun inside the new namespace
 * (TUNSETIFINDEX, TUNSETIFF, the sizes, TUNSETOWNER/TUNSETGROUP), always
 * persistent: a non-persistent one loses that when the first tun file of
 * the tree is attached to it again (kinds/files/tun-file.ts).
 *
 * Refused at dump with one line: a tap with a socket filter attached (as
 * CRIU), a non-persistent device no task of the tree holds.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fdsLinkedTo } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import type { NetDeviceEntry, TunLinkEntry } from '../../images/messages.js';
import {
  fdOfTask, ioctl, ioctlTry, EBADFD, TUNSETIFF, TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP, TUNGETSNDBUF, TUNSETSNDBUF,
  TUNGETVNETHDRSZ, TUNSETVNETHDRSZ, TUNSETIFINDEX, TUNGETFILTER, TUNGETIFF, IFF_TUN, IFF_TAP, IFF_MULTI_QUEUE, IFF_PERSIST,
  IFF_NO_PI, IFF_VNET_HDR,
} from '../../sys/index.js';


/** The flags TUNSETIFF takes to attach to a device as it was made. */
export const IFF_ATTACH_FLAGS = IFF_TUN | IFF_TAP | IFF_MULTI_QUEUE | IFF_NO_PI | IFF_VNET_HDR;

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

/** The vnet header size and send buffer of the device `fd` is attached to; a tap's filter refused. */
function sizesOf(fd: number, flags: number, what: string): { vnethdr: number; sndbuf: number } {
  const hdr = intArg();
  ioctl(fd, TUNGETVNETHDRSZ, hdr);
  const sndbuf = intArg();
  ioctl(fd, TUNGETSNDBUF, sndbuf);
  if ((flags & IFF_TAP) !== 0) {
    // struct sock_fprog: len first. The program is somewhere in a task's memory: CRIU refuses it too.
    const flt = Buffer.alloc(16);
    ioctl(fd, TUNGETFILTER, flt);
    if (flt.readUInt16LE(0) !== 0) throw new CriuTsError('EUNSUPPORTED', `${what} has a socket filter attached: not supported`, {});
  }
  return { vnethdr: hdr.readInt32LE(0), sndbuf: sndbuf.readInt32LE(0) };
}

/**
 * The tun_link_entry of device `name` (our thread in its namespace);
 * `held` is our copy of a tun file of the tree attached to it, if any;
 * `what` names it in a refusal.
 */
export function readTun(name: string, info: IpTunInfo, what: string, held?: number): TunLinkEntry {
  let flags = info.type === 'tap' ? IFF_TAP : IFF_TUN;
  if (info.pi !== true) flags |= IFF_NO_PI;
  if (info.vnet_hdr === true) flags |= IFF_VNET_HDR;
  if (info.multi_queue === true) flags |= IFF_MULTI_QUEUE;
  const owner = idOf('/etc/passwd', info.user, what);
  const group = idOf('/etc/group', info.group, what);
  const persist = info.persist === true ? IFF_PERSIST : 0;
  if (held !== undefined) return { flags: flags | persist, owner, group, ...sizesOf(held, flags, what) };
  if (persist === 0) {
    throw new CriuTsError('EUNSUPPORTED', `${what} is not persistent and no task of the tree holds it: it lives while a process outside the tree holds it open`, { device: name });
  }
  const fd = openSync('/dev/net/tun', 'r+');
  try {
    try {
      ioctl(fd, TUNSETIFF, ifreq(name, flags));
    } catch (e) {
      throw new CriuTsError('EUNSUPPORTED', `${what} is held open by a process outside the tree: ${(e as Error).message}`, { device: name }, e);
    }
    return { flags: flags | IFF_PERSIST, owner, group, ...sizesOf(fd, flags, what) };
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
    step('TUNSETIFF', TUNSETIFF, ifreq(d.name, t.flags & IFF_ATTACH_FLAGS));
    if (t.vnethdr > 0) step('TUNSETVNETHDRSZ', TUNSETVNETHDRSZ, intArg(t.vnethdr));
    if (t.sndbuf > 0) step('TUNSETSNDBUF', TUNSETSNDBUF, intArg(t.sndbuf));
    if (t.owner >= 0) step('TUNSETOWNER', TUNSETOWNER, t.owner);
    if (t.group >= 0) step('TUNSETGROUP', TUNSETGROUP, t.group);
    step('TUNSETPERSIST', TUNSETPERSIST, 1);
  } finally {
    closeSync(fd);
  }
}

/** The device `fd` (our copy of a tun file) is attached to and its TUNGETIFF flags; undefined when never attached. */
export function tunAttachment(fd: number, what: string): { name: string; flags: number } | undefined {
  const ifr = Buffer.alloc(40);
  const r = ioctlTry(fd, TUNGETIFF, ifr);
  if (r === -EBADFD) return undefined;
  if (r < 0) throw new CriuTsError('EDUMP', `${what}: TUNGETIFF failed (errno ${-r})`, { errno: -r });
  const end = ifr.indexOf(0);
  return { name: ifr.toString('latin1', 0, end < 0 || end > 16 ? 16 : end), flags: ifr.readUInt16LE(16) };
}

/** Our copies of task `pid`'s /dev/net/tun files (a tun device they hold is read through them). */
export function tunFilesOf(pid: number): number[] {
  // (a thread of a held task cannot close one meanwhile: the task is frozen)
  return fdsLinkedTo(pid, '/dev/net/tun').map((fd) => fdOfTask(pid, fd));
}

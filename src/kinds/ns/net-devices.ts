/**
 * The devices of the tree's net namespace (kernel: struct net_device), as
 * CRIU's netdev-<ns>.img holds them (net_device_entry: type, ifindex, mtu,
 * ifi_flags, name, hardware address, peer_ifindex/peer_nsid of a veth,
 * master, macvlan mode, the device's own ipv4/ipv6 conf). Read with
 * `ip -j -d link show` inside the namespace; made again with `ip link`.
 *
 * Handled:
 * - loopback: mtu, up;
 * - veth, both ends inside, or the other end in another net namespace of
 *   the tree (a nested one, or the tree's own seen from a nested one): the
 *   pair is made once, with both ifindexes and addresses, each end in its
 *   namespace;
 * - veth whose peer was outside (another namespace, the host's): made with
 *   its peer in criu-ts's namespace, named as --veth-pair IN=OUT[@BRIDGE]
 *   or --external veth[IN]:OUT[@BRIDGE] says (the restore refuses without
 *   one, naming the device), the peer attached to BRIDGE and brought up
 *   when one is given, as CRIU does; or, with --external netdev[IN]:OUT,
 *   not made at all: OUT, a veth the caller made in criu-ts's namespace
 *   (its peer stays there), is moved in and becomes IN;
 * - bridge, with its ports (master) inside the namespace;
 * - macvlan, made again on the device of criu-ts's namespace named by
 *   --external macvlan[IN]:OUTDEV (CRIU's rule: its lower device is taken
 *   to be outside), with its mode;
 * - persistent tun/tap devices with their flags, owner and group
 *   (net-tun.ts).
 * Each gets back its ifindex, hardware address, mtu, master, up,
 * promisc/allmulticast/noarp flags and per-device conf.
 *
 * Refused at dump with one line naming the device: a non-persistent tun/tap
 * device no task of the tree holds, sit, ipip, gre, vxlan and every other
 * kind.
 */
import { CriuTsError } from '../../errors.js';
import type { NetDeviceEntry } from '../../images/messages.js';
import {
  AF_INET, closeQuiet, ioctl, rtnlRequest, socket, SOCK_DGRAM, SIOCGIFINDEX, RTM_NEWLINK, IFLA, IFF,
} from '../../sys/index.js';
import type { MacvlanLower, NetdevMoved, VethPeerOut } from '../types.js';
import { readConf, writeConf } from './net-conf.js';
import { runTool } from './net-tools.js';
import { makeTun, readTun, type IpTunInfo } from './net-tun.js';

/** The flags by the names `ip -j link` shows. */
const IFF_BY_NAME: Readonly<Record<string, number>> = IFF;

/** MACVLAN_MODE_* (linux/if_link.h), by ip's names. */
const MACVLAN_MODES: Readonly<Record<string, number>> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 };

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  operstate?: string;
  link_type?: string;
  address?: string;
  /** the peer (veth) or lower device (macvlan) when in the same namespace */
  link?: string;
  /** ... its ifindex when in another namespace, then link_netnsid is set */
  link_index?: number;
  link_netnsid?: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } & IpTunInfo };
}

/**
 * ifi_flags from ip's names. ip prints LOWER_UP but never RUNNING: the
 * kernel sets RUNNING on an up device whose operstate is up or unknown
 * (dev_get_flags, netif_oper_up), so it is derived the same way.
 */
function flagsOf(l: IpLink): number {
  let f = 0;
  for (const n of l.flags ?? []) f |= IFF_BY_NAME[n] ?? 0;
  if ((f & IFF.UP) !== 0 && (l.operstate === 'UP' || l.operstate === 'UNKNOWN')) f |= IFF.RUNNING;
  return f;
}

function macBytes(a: string | undefined): Buffer | undefined {
  if (a === undefined || !/^[0-9a-f]{2}(:[0-9a-f]{2})*$/i.test(a)) return undefined;
  return Buffer.from(a.split(':').map((x) => Number.parseInt(x, 16)));
}

function macText(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The devices of the caller's net namespace (ns id `nsId`) as netdev
 * entries; `who` names the namespace in a refusal. `dumped` maps the
 * netnsids this namespace gives the tree's other dumped namespaces to
 * their ns ids: a veth whose peer is in one of them names it (peer_nsid).
 * `heldTun`: our copy of a tun file of the tree attached to each tun
 * device here, by device name.
 */
export function readNetDevices(who: string, nsId: number, dumped: ReadonlyMap<number, number> = new Map(), heldTun: ReadonlyMap<string, number> = new Map()): NetDeviceEntry[] {
  const out = runTool('EDUMP', 'ip', ['-j', '-d', 'link', 'show'], `${who}: listing its devices`) ?? Buffer.alloc(0);
  let links: IpLink[];
  try {
    links = JSON.parse(out.toString('utf8')) as IpLink[];
  } catch (e) {
    throw new CriuTsError('EDUMP', `${who}: \`ip -j -d link show\` printed no JSON: ${(e as Error).message}`, {}, e);
  }
  const index = new Map(links.map((l) => [l.ifname, l.ifindex]));
  return links.map((l): NetDeviceEntry => {
    const kind = l.link_type === 'loopback' ? 'loopback' : l.linkinfo?.info_kind ?? l.link_type ?? 'unknown';
    const refuse = (why: string): CriuTsError => new CriuTsError('EUNSUPPORTED', `${who}: device ${l.ifname} (${kind}) cannot be saved: ${why}`, { device: l.ifname, kind });
    const e: NetDeviceEntry = { type: 'LOOPBACK', ifindex: l.ifindex, mtu: l.mtu, flags: flagsOf(l), name: l.ifname };
    switch (kind) {
      case 'loopback':
        break;
      case 'veth':
        e.type = 'VETH';
        if (l.link_netnsid === undefined && l.link !== undefined && index.has(l.link)) {
          // Both ends here (CRIU: peer_nsid is this namespace).
          e.peer_ifindex = index.get(l.link) as number;
          e.peer_nsid = nsId;
        } else if (l.link_index !== undefined) {
          e.peer_ifindex = l.link_index;
          // In another namespace of the tree: that namespace's ns id (CRIU's peer_nsid); else outside it.
          const peerNs = l.link_netnsid === undefined ? undefined : dumped.get(l.link_netnsid);
          if (peerNs !== undefined) e.peer_nsid = peerNs;
        }
        break;
      case 'bridge':
        e.type = 'BRIDGE';
        break;
      case 'macvlan': {
        e.type = 'MACVLAN';
        const mode = MACVLAN_MODES[l.linkinfo?.info_data?.mode ?? ''];
        if (mode === undefined) throw refuse(`macvlan mode ${JSON.stringify(l.linkinfo?.info_data?.mode)} is not known`);
        e.macvlan = { mode };
        break;
      }
      case 'tun':
        e.type = 'TUN';
        e.tun = readTun(l.ifname, l.linkinfo?.info_data ?? {}, `${who}: device ${l.ifname} (tun)`, heldTun.get(l.ifname));
        break;
      default:
        throw refuse('only loopback, veth, bridge, macvlan and tun/tap devices are supported');
    }
    if (l.master !== undefined) {
      const m = index.get(l.master);
      if (m === undefined) throw refuse(`its master ${l.master} is not in the namespace`);
      e.master = m;
    }
    const mac = macBytes(l.address);
    if (mac !== undefined) e.address = mac;
    e.conf4 = readConf('ipv4', l.ifname);
    e.conf6 = readConf('ipv6', l.ifname);
    return e;
  });
}

/** How the restore makes the devices again. */
export interface DeviceRestore {
  who: string;
  /** the ns id of the namespace the devices were in */
  nsId: number;
  /** the tree's other re-created net namespaces: their devices (a veth's peer), and our fd of each */
  others?: ReadonlyMap<number, { devices: readonly NetDeviceEntry[]; fd?: number | undefined }>;
  /** `nsId:ifindex` of every device made so far in any of them (a pair is made once, from one side) */
  made?: Set<string>;
  vethPairs: readonly VethPeerOut[];
  macvlans: readonly MacvlanLower[];
  netdevs: readonly NetdevMoved[];
}

/**
 * Before anything is made: each device must be one the restore can make
 * here, and one whose other side was outside must be named by the caller.
 */
export function checkNetDevices(devs: readonly NetDeviceEntry[], r: DeviceRestore): void {
  const byIndex = new Map(devs.map((d) => [d.ifindex, d]));
  for (const d of devs) {
    const what = `${r.who}: device ${d.name}`;
    switch (d.type) {
      case 'LOOPBACK':
      case 'BRIDGE':
      case 'TUN':
        break;
      case 'VETH':
        if (d.peer_nsid === undefined) {
          if (!r.vethPairs.some((p) => p.inside === d.name) && !r.netdevs.some((n) => n.inside === d.name)) {
            throw new CriuTsError('EUNSUPPORTED', `${what} (veth) had its peer outside the namespace: name the peer to make with --veth-pair ${d.name}=OUTNAME[@BRIDGE] (or --external veth[${d.name}]:OUTNAME)`, { device: d.name });
          }
          const out = r.vethPairs.find((p) => p.inside === d.name)?.outside;
          if (out !== undefined && ifindexOrUndefined(out) !== undefined) {
            // Often the dumped namespace's own end: the kernel frees a dead
            // namespace's devices only once its last socket is gone, and an
            // orphaned TCP connection can hold it for tcp_fin_timeout.
            throw new CriuTsError('EBUSY', `${what} (veth): its peer's name ${out} is taken by a device here (if it is the dumped namespace's old end, the kernel removes it once that namespace's last connection is gone)`, { device: d.name, peer: out });
          }
        } else {
          const peers = d.peer_nsid === r.nsId ? devs : r.others?.get(d.peer_nsid)?.devices;
          const peer = peers?.find((p) => p.ifindex === d.peer_ifindex);
          if (peer?.type !== 'VETH') {
            throw new CriuTsError('EIMAGE', `${what} (veth): its peer (ifindex ${String(d.peer_ifindex)}, ns id ${d.peer_nsid}) is not a veth among the devices of the tree's net namespaces`, { device: d.name });
          }
        }
        break;
      case 'MACVLAN':
        if (!r.macvlans.some((m) => m.inside === d.name)) {
          throw new CriuTsError('EUNSUPPORTED', `${what} (macvlan): name the device it sits on with --external macvlan[${d.name}]:OUTDEV`, { device: d.name });
        }
        if (d.macvlan === undefined) throw new CriuTsError('EIMAGE', `${what} (macvlan) has no macvlan entry`, { device: d.name });
        break;
      default:
        throw new CriuTsError('EUNSUPPORTED', `${what} of type ${String(d.type)} cannot be restored: only loopback, veth, bridge, macvlan and tun/tap devices are supported`, { device: d.name });
    }
    if (d.master !== undefined && byIndex.get(d.master)?.type !== 'BRIDGE') {
      throw new CriuTsError('EUNSUPPORTED', `${what}: its master (ifindex ${d.master}) is not a bridge of the namespace`, { device: d.name });
    }
  }
}

/** `index I address A` of a device being made. */
function identity(d: NetDeviceEntry): string[] {
  const a = ['index', String(d.ifindex)];
  if (d.address !== undefined && d.address.length === 6) a.push('address', macText(d.address));
  return a;
}


/** The ifindex of device `name` in the caller's net namespace, undefined when there is none. */
function ifindexOrUndefined(name: string): number | undefined {
  try {
    return ifindexHere(name, '');
  } catch {
    return undefined;
  }
}

/** The ifindex of device `name` in the caller's net namespace. */
function ifindexHere(name: string, what: string): number {
  const fd = socket(AF_INET, SOCK_DGRAM, 0);
  try {
    const req = Buffer.alloc(40);
    req.write(name, 0, 15, 'latin1');
    try {
      ioctl(fd, SIOCGIFINDEX, req);
    } catch (e) {
      throw new CriuTsError('ERESTORE', `${what}: no device ${name} here to move in: ${(e as Error).message}`, { device: name }, e);
    }
    return req.readInt32LE(16);
  } finally {
    closeQuiet(fd);
  }
}

/**
 * Move our device `out` into the net namespace behind our fd `ns` as `d`, in
 * one RTM_NEWLINK: the new name, mtu, hardware address and ifindex (the
 * kernel's IFLA_NEW_IFINDEX; ifaddr-<ns>.img names devices by ifindex).
 */
function moveIn(out: string, d: NetDeviceEntry, ns: number, what: string): void {
  const index = ifindexHere(out, what);
  const head = Buffer.alloc(16);
  head.writeInt32LE(index, 4);
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0, 0);
    return b;
  };
  try {
    const attrs: [number, Buffer][] = [[IFLA.NET_NS_FD, u32(ns)], [IFLA.IFNAME, Buffer.from(`${d.name}\0`, 'latin1')], [IFLA.MTU, u32(d.mtu)]];
    if (d.ifindex > 0) attrs.push([IFLA.NEW_IFINDEX, u32(d.ifindex)]);
    if (d.address !== undefined && d.address.length > 0) attrs.push([IFLA.ADDRESS, Buffer.from(d.address)]);
    rtnlRequest(`RTM_NEWLINK ${out} -> ${d.name}`, RTM_NEWLINK, head, attrs);
  } catch (e) {
    if (e instanceof CriuTsError) throw e;
    throw new CriuTsError('ERESTORE', `${what}: cannot move ${out} in as ${d.name} (ifindex ${d.ifindex}): ${(e as Error).message}`, { device: d.name }, e);
  }
}

/**
 * From criu-ts's namespace, before our thread steps into the new one:
 * macvlans, made on their lower device here and placed in the namespace
 * behind our fd `nsFd` with their ifindex; veths named by --external
 * netdev[IN]:OUT, moved in.
 */
export function createFromOutside(devs: readonly NetDeviceEntry[], r: DeviceRestore, nsFd: number): void {
  for (const d of devs) {
    const moved = d.type === 'VETH' && d.peer_nsid === undefined ? r.netdevs.find((n) => n.inside === d.name) : undefined;
    if (moved !== undefined) moveIn(moved.outside, d, nsFd, `${r.who}: device ${d.name}`);
  }
  for (const d of devs) {
    if (d.type !== 'MACVLAN') continue;
    const lower = r.macvlans.find((m) => m.inside === d.name)?.lower as string;
    const mode = Object.entries(MACVLAN_MODES).find(([, v]) => v === d.macvlan?.mode)?.[0];
    if (mode === undefined) throw new CriuTsError('EIMAGE', `${r.who}: device ${d.name}: macvlan mode ${String(d.macvlan?.mode)} is not known`, { device: d.name });
    runTool('ERESTORE', 'ip', ['link', 'add', 'link', lower, 'name', d.name, ...identity(d), 'netns', '/proc/self/fd/3', 'type', 'macvlan', 'mode', mode],
      `${r.who}: device ${d.name} (macvlan on ${lower})`, undefined, false, nsFd);
  }
}

/**
 * Inside the namespace (our thread in it): make the rest, then give every
 * device its parameters, in CRIU's spirit: masters, mtu, flags, up, conf.
 * `ourNs` is our fd of criu-ts's own namespace (where an outside peer goes).
 */
export function restoreNetDevices(devs: readonly NetDeviceEntry[], r: DeviceRestore, ourNs: number): void {
  const byIndex = new Map(devs.map((d) => [d.ifindex, d]));
  const made = r.made ?? new Set<string>();
  const key = (ns: number, ifindex: number): string => `${ns}:${ifindex}`;
  const ip = (what: string, ...args: string[]): void => {
    runTool('ERESTORE', 'ip', args, `${r.who}: device ${what}`, undefined, false, ourNs);
  };
  for (const d of [...devs].sort((a, b) => a.ifindex - b.ifindex)) {
    if (made.has(key(r.nsId, d.ifindex))) continue;
    made.add(key(r.nsId, d.ifindex));
    if (d.type === 'VETH' && d.peer_nsid === r.nsId) {
      const peer = byIndex.get(d.peer_ifindex as number) as NetDeviceEntry;
      made.add(key(r.nsId, peer.ifindex));
      ip(d.name, 'link', 'add', d.name, ...identity(d), 'type', 'veth', 'peer', 'name', peer.name, ...identity(peer));
    } else if (d.type === 'VETH' && d.peer_nsid !== undefined) {
      // The other end in another namespace of the tree: made from here, straight into it (ip's fd 3 is ours of it).
      const other = r.others?.get(d.peer_nsid);
      const peer = other?.devices.find((p) => p.ifindex === d.peer_ifindex);
      if (other?.fd === undefined || peer === undefined) {
        throw new CriuTsError('EINTERNAL', `${r.who}: device ${d.name}: its peer's namespace (ns id ${d.peer_nsid}) is not made`, { device: d.name });
      }
      made.add(key(d.peer_nsid, peer.ifindex));
      runTool('ERESTORE', 'ip', ['link', 'add', d.name, ...identity(d), 'type', 'veth', 'peer', 'name', peer.name, ...identity(peer), 'netns', '/proc/self/fd/3'],
        `${r.who}: device ${d.name} (veth, its peer ${peer.name} in ns id ${d.peer_nsid})`, undefined, false, other.fd);
    } else if (d.type === 'VETH' && r.netdevs.some((n) => n.inside === d.name)) {
      // Moved in already (createFromOutside).
    } else if (d.type === 'VETH') {
      const out = r.vethPairs.find((p) => p.inside === d.name) as VethPeerOut;
      // The peer goes to our namespace: ip names it as /proc/self/fd/3, our fd handed to it.
      ip(d.name, 'link', 'add', d.name, ...identity(d), 'type', 'veth', 'peer', 'name', out.outside, 'netns', '/proc/self/fd/3');
    } else if (d.type === 'BRIDGE') {
      ip(d.name, 'link', 'add', d.name, ...identity(d), 'type', 'bridge');
    } else if (d.type === 'TUN') {
      makeTun(d, r.who);
      if (d.address !== undefined && d.address.length === 6) ip(d.name, 'link', 'set', 'dev', d.name, 'address', macText(d.address));
    }
  }
  for (const d of devs) {
    if (d.master !== undefined) ip(d.name, 'link', 'set', 'dev', d.name, 'master', (byIndex.get(d.master) as NetDeviceEntry).name);
  }
  for (const d of devs) {
    const args = ['link', 'set', 'dev', d.name, 'mtu', String(d.mtu)];
    if (d.type !== 'LOOPBACK') {
      args.push('promisc', (d.flags & IFF.PROMISC) !== 0 ? 'on' : 'off');
      args.push('allmulticast', (d.flags & IFF.ALLMULTI) !== 0 ? 'on' : 'off');
      args.push('arp', (d.flags & IFF.NOARP) !== 0 ? 'off' : 'on');
    }
    ip(d.name, ...args);
  }
  for (const d of devs) if ((d.flags & IFF.UP) !== 0) ip(d.name, 'link', 'set', 'dev', d.name, 'up');
  // The conf after the device is up, as CRIU: bringing a device up sets its ipv6 mtu to the link's
  // (addrconf_notify NETDEV_UP), which would undo a saved conf/<dev>/mtu below the link mtu.
  for (const d of devs) {
    writeConf('ipv4', d.name, d.conf4);
    writeConf('ipv6', d.name, d.conf6);
  }
}

/**
 * Back in criu-ts's namespace once the devices are made: the outside ends
 * of veths given with a bridge are attached to it and brought up, as
 * CRIU does (an end without a bridge is left down for the caller).
 */
export function attachOutsidePeers(devs: readonly NetDeviceEntry[], r: DeviceRestore): void {
  for (const d of devs) {
    if (d.type !== 'VETH' || d.peer_nsid !== undefined) continue;
    const out = r.vethPairs.find((p) => p.inside === d.name);
    if (out?.bridge === undefined) continue;
    runTool('ERESTORE', 'ip', ['link', 'set', 'dev', out.outside, 'master', out.bridge], `${r.who}: veth ${d.name}'s peer ${out.outside} to bridge ${out.bridge}`);
    runTool('ERESTORE', 'ip', ['link', 'set', 'dev', out.outside, 'up'], `${r.who}: veth ${d.name}'s peer ${out.outside}`);
  }
}

/**
 * The network namespace's devices, addresses, routes, rules and firewall
 * as CRIU keeps them: addresses, routes and rules are the netlink dumps of
 * `ip addr save`, `ip route save`, `ip -6 route save` and `ip rule save`
 * (raw images ifaddr-, route-, route6-, rule-<ns>.img) put back with
 * `ip ... restore`; the nftables ruleset is `nft list ruleset` text
 * (nftables-<ns>.img), put back with `nft -f`. Every tool runs as a child
 * of our thread while it is inside the namespace (sys/ns.ts: the child is
 * forked by that thread and inherits its namespace).
 *
 * Devices are read from `ip -j -d link show`. Only the loopback device is
 * saved; any other (veth, tun, bridge, macvlan, ...) is refused at dump
 * with one line naming it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriuTsError } from '../../errors.js';
import type { NetDeviceEntry } from '../../images/messages.js';
import { readConf } from './net-conf.js';

/**
 * `ip route restore` wants a file it can seek in (ftell on its stdin), as
 * CRIU gives it: the bytes go to an unlinked temporary file.
 */
function seekableInput(data: Buffer): number {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-net-'));
  const path = join(dir, 'input');
  try {
    const fd = openSync(path, 'wx+', 0o600);
    writeSync(fd, data, 0, data.length, 0);
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run `bin args` in the caller's namespaces with `input` on stdin; its stdout, or undefined when `canFail` and it failed. */
export function runTool(code: 'EDUMP' | 'ERESTORE', bin: string, args: readonly string[], what: string, input?: Buffer, canFail = false): Buffer | undefined {
  const stdin = input === undefined ? 'ignore' : seekableInput(input);
  let r;
  try {
    r = spawnSync(bin, args, { stdio: [stdin, 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  } finally {
    if (typeof stdin === 'number') closeSync(stdin);
  }
  if (r.error === undefined && r.status === 0) return r.stdout;
  if (canFail) return undefined;
  const why = r.error !== undefined ? r.error.message : `exit status ${String(r.status ?? r.signal)}: ${r.stderr.toString().trim().split('\n')[0] ?? ''}`;
  throw new CriuTsError(code, `${what}: \`${bin} ${args.join(' ')}\` failed: ${why}`, { bin, args });
}

/** The raw images of the namespace, CRIU's names and tools: [image name prefix, save args, restore args]. */
export const IP_DUMPS: readonly { prefix: string; save: readonly string[]; restore: readonly string[]; canFail?: boolean }[] = [
  { prefix: 'ifaddr', save: ['addr', 'save'], restore: ['addr', 'restore'] },
  { prefix: 'route', save: ['route', 'save'], restore: ['route', 'restore'] },
  { prefix: 'route6', save: ['-6', 'route', 'save'], restore: ['-6', 'route', 'restore'] },
  // Older ip lacks `rule save`: CRIU then leaves the image out.
  { prefix: 'rule', save: ['rule', 'save'], restore: ['rule', 'restore'], canFail: true },
];

const IFF: Readonly<Record<string, number>> = {
  UP: 0x1, BROADCAST: 0x2, DEBUG: 0x4, LOOPBACK: 0x8, POINTOPOINT: 0x10, NOTRAILERS: 0x20, RUNNING: 0x40,
  NOARP: 0x80, PROMISC: 0x100, ALLMULTI: 0x200, MASTER: 0x400, SLAVE: 0x800, MULTICAST: 0x1000,
  PORTSEL: 0x2000, AUTOMEDIA: 0x4000, DYNAMIC: 0x8000, LOWER_UP: 0x10000, DORMANT: 0x20000, ECHO: 0x40000,
};
export const IFF_UP = 0x1;

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  operstate?: string;
  link_type?: string;
  address?: string;
  linkinfo?: { info_kind?: string };
}

/**
 * ifi_flags from ip's names. ip prints LOWER_UP but never RUNNING: the
 * kernel sets RUNNING on an up device whose operstate is up or unknown
 * (dev_get_flags, netif_oper_up), so it is derived the same way.
 */
function flagsOf(l: IpLink): number {
  let f = 0;
  for (const n of l.flags ?? []) f |= IFF[n] ?? 0;
  if ((f & IFF_UP) !== 0 && (l.operstate === 'UP' || l.operstate === 'UNKNOWN')) f |= IFF['RUNNING'] as number;
  return f;
}

function macBytes(a: string | undefined): Buffer | undefined {
  if (a === undefined || !/^[0-9a-f]{2}(:[0-9a-f]{2})*$/i.test(a)) return undefined;
  return Buffer.from(a.split(':').map((x) => Number.parseInt(x, 16)));
}

/** The devices of the caller's net namespace as netdev entries; `who` names the namespace in a refusal. */
export function readNetDevices(who: string): NetDeviceEntry[] {
  const out = runTool('EDUMP', 'ip', ['-j', '-d', 'link', 'show'], `${who}: listing its devices`) ?? Buffer.alloc(0);
  let links: IpLink[];
  try {
    links = JSON.parse(out.toString('utf8')) as IpLink[];
  } catch (e) {
    throw new CriuTsError('EDUMP', `${who}: \`ip -j -d link show\` printed no JSON: ${(e as Error).message}`, {}, e);
  }
  return links.map((l): NetDeviceEntry => {
    if (l.link_type !== 'loopback') {
      const kind = l.linkinfo?.info_kind ?? l.link_type ?? 'unknown';
      throw new CriuTsError(
        'EUNSUPPORTED',
        `${who}: device ${l.ifname} (${kind}) cannot be saved: only the loopback device of a net namespace is supported`,
        { device: l.ifname, kind },
      );
    }
    const e: NetDeviceEntry = {
      type: 'LOOPBACK',
      ifindex: l.ifindex,
      mtu: l.mtu,
      flags: flagsOf(l),
      name: l.ifname,
      conf4: readConf('ipv4', l.ifname),
      conf6: readConf('ipv6', l.ifname),
    };
    const mac = macBytes(l.address);
    if (mac !== undefined) e.address = mac;
    return e;
  });
}

/**
 * Bring a saved loopback device back as it was in the new namespace (the
 * kernel made it, down, with its default mtu). Other device types never
 * reach the images criu-ts writes; one from another tool is refused.
 */
export function restoreNetDevice(d: NetDeviceEntry, who: string): void {
  if (d.type !== 'LOOPBACK') {
    throw new CriuTsError('EUNSUPPORTED', `${who}: device ${d.name} of type ${String(d.type)} cannot be restored: only the loopback device is supported`, { device: d.name });
  }
  const args = ['link', 'set', 'dev', d.name, 'mtu', String(d.mtu)];
  if ((d.flags & IFF_UP) !== 0) args.push('up');
  runTool('ERESTORE', 'ip', args, `${who}: device ${d.name}`);
}

/**
 * One net namespace's images (netns-, netdev-, ifaddr-, route-, route6-,
 * rule-, iptables-, ip6tables-, nftables-<ns id>.img): read at dump with
 * our thread inside the namespace, and put back at restore the same way,
 * in CRIU's order. net.ts decides which namespaces of a tree are saved
 * and which task makes each at restore.
 *
 * The namespace's netnsids for the tree's other saved namespaces are kept
 * as CRIU keeps them (netns_entry.nsids: target ns id, netnsid value), so
 * a veth whose peer is in one of them names it (peer_nsid, net-devices.ts)
 * and the restore gives them the same values before any device is made.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { inNamespaceFiles, netNamespaceInoOfSocket, netnsIdOf, setNetnsId } from '../../sys/index.js';
import type { NetDeviceEntry, NetnsEntry, NetnsId } from '../../images/messages.js';
import { imageFile, type EntriesOf, type RawImageKey } from '../../images/index.js';
import type { DumpContext, RestoreContext } from '../types.js';
import { readConf, readIpv4Sysctls, readUnixConf, writeConf, writeIpv4Sysctls, writeUnixConf } from './net-conf.js';
import { IP_DUMPS, runTool } from './net-tools.js';
import { readNetDevices, restoreNetDevices, type DeviceRestore } from './net-devices.js';
import { openRestorePass, type RestorePass } from './net-pass.js';
import { tunAttachment } from './net-tun.js';
import { logger } from '../../log.js';

const log = logger('netns');

/** The legacy iptables tools (iptables-nft rules are nftables rules, saved by nft). */
const IPTABLES_LEGACY = [
  { image: 'IPTABLES', save: 'iptables-legacy-save', restore: 'iptables-legacy-restore' },
  { image: 'IP6TABLES', save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' },
] as const;

export interface NetImages {
  id: number;
  netns: NetnsEntry;
  devices: NetDeviceEntry[];
  /** the raw images: ip's saved addresses, routes and rules, the legacy iptables rules, the nftables ruleset */
  raw: Map<RawImageKey, Buffer>;
}

function hasTool(bin: string): boolean {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    try {
      accessSync(`${dir}/${bin}`, constants.X_OK);
      return true;
    } catch {
      // not there
    }
  }
  return false;
}

/**
 * Read the namespace behind our fd `nsFd` (ns id `id`) and write its
 * images. `others` are the tree's other saved namespaces (ns id, our fd):
 * their netnsids here are asked of the kernel (RTM_GETNSID). `tunFiles`
 * are our copies of the tree's tun files (a device they hold is read
 * through them). Nothing in the namespace changes.
 */
export function dumpNamespace(ctx: DumpContext, who: string, id: number, nsFd: number, others: readonly { id: number; fd: number }[], tunFiles: readonly number[]): NetImages {
  const got = inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${nsFd}` }], () => {
    const nsids: NetnsId[] = [];
    for (const o of others) {
      const value = netnsIdOf(o.fd);
      if (value >= 0) nsids.push({ target_ns_id: o.id, netnsid_value: value });
    }
    // The tree's tun files attached to a device of this namespace, by device name.
    const here = statSync('/proc/thread-self/ns/net').ino;
    const heldTun = new Map<string, number>();
    for (const fd of tunFiles) {
      if (netNamespaceInoOfSocket(fd) !== here) continue;
      const a = tunAttachment(fd, `${who}: a tun file of the tree`);
      if (a !== undefined && !heldTun.has(a.name)) heldTun.set(a.name, fd);
    }
    const devices = readNetDevices(who, id, new Map(nsids.map((n) => [n.netnsid_value, n.target_ns_id])), heldTun);
    const netns: NetnsEntry = {
      def_conf4: readConf('ipv4', 'default'),
      all_conf4: readConf('ipv4', 'all'),
      def_conf6: readConf('ipv6', 'default'),
      all_conf6: readConf('ipv6', 'all'),
      unix_conf: readUnixConf(),
      ipv4_sysctl: readIpv4Sysctls(),
    };
    if (nsids.length > 0) netns.nsids = nsids;
    const raw = new Map<RawImageKey, Buffer>();
    for (const d of IP_DUMPS) {
      const out = runTool('EDUMP', 'ip', d.save, who, undefined, d.canFail === true);
      if (out !== undefined) raw.set(d.image, out);
    }
    for (const t of IPTABLES_LEGACY) {
      if (hasTool(t.save)) raw.set(t.image, runTool('EDUMP', t.save, [], who) ?? Buffer.alloc(0));
    }
    if (hasTool('nft')) raw.set('NFTABLES', runTool('EDUMP', 'nft', ['list', 'ruleset'], who) ?? Buffer.alloc(0));
    else log.warn(`${who}: no nft tool here: its nftables ruleset is not saved`);
    return { id, devices, netns, raw };
  });
  ctx.saveImage('NETNS', id, [got.netns]);
  ctx.saveImage('NETDEV', id, got.devices);
  for (const [key, data] of got.raw) ctx.writeRawImage(imageFile(key, id), data);
  log.info(`net namespace ${id}: ${got.devices.length} device(s): ${got.devices.map((d) => d.name).join(', ')}`);
  return got;
}

export function loadImages(ctx: RestoreContext, id: number, what: string): NetImages {
  const need = <K extends 'NETNS' | 'NETDEV'>(key: K): EntriesOf<K> => {
    const img = ctx.image(key, id);
    if (img === undefined) {
      const file = imageFile(key, id);
      throw new CriuTsError('ENOIMAGE', `${file} is missing: ${what} cannot be re-created (a dump made with --empty-ns net is restored with --empty-ns net)`, { file });
    }
    return img.entries;
  };
  const netns = need('NETNS')[0];
  if (netns === undefined) throw new CriuTsError('EIMAGE', `${imageFile('NETNS', id)} is empty: ${what} cannot be re-created`, { id });
  const devices = [...need('NETDEV')];
  const raw = new Map<RawImageKey, Buffer>();
  for (const key of [...IP_DUMPS.map((d) => d.image), ...IPTABLES_LEGACY.map((d) => d.image), 'NFTABLES' as const]) {
    const b = ctx.rawImage(imageFile(key, id));
    if (b !== undefined) raw.set(key, b);
  }
  return { id, netns, devices, raw };
}

/**
 * Our thread in a namespace the restore made: the netnsids it gave the
 * tree's other namespaces (`fds`: ns id -> our fd), before any device
 * between them is made (the kernel would pick its own).
 */
export function setNetnsIds(images: NetImages, fds: ReadonlyMap<number, number>, who: string): void {
  for (const n of images.netns.nsids ?? []) {
    const fd = fds.get(n.target_ns_id);
    if (fd === undefined) {
      throw new CriuTsError('EIMAGE', `${who}: ${imageFile('NETNS', images.id)} names ns id ${n.target_ns_id} (netnsid ${n.netnsid_value}), not a net namespace of the tree`, { id: images.id });
    }
    try {
      setNetnsId(fd, n.netnsid_value);
    } catch (e) {
      throw new CriuTsError('ERESTORE', `${who}: cannot give ns id ${n.target_ns_id} the netnsid ${n.netnsid_value}: ${(e as Error).message}`, { id: images.id }, e);
    }
  }
}

/** Inside the new namespace (our thread is in it): everything back, in CRIU's order; `ourNs` is our own namespace's fd. */
export function fillNamespace(images: NetImages, r: DeviceRestore, ourNs: number, pass: RestorePass): void {
  const who = r.who;
  const n = images.netns;
  writeConf('ipv4', 'all', n.all_conf4);
  writeConf('ipv4', 'default', n.def_conf4);
  writeConf('ipv6', 'all', n.all_conf6);
  writeConf('ipv6', 'default', n.def_conf6);
  writeUnixConf(n.unix_conf);
  writeIpv4Sysctls(n.ipv4_sysctl);
  restoreNetDevices(images.devices, r, ourNs);
  for (const d of IP_DUMPS) {
    const data = images.raw.get(d.image);
    if (data === undefined || data.length === 0) continue;
    // The kernel's default rules would be there twice: the saved set has them (CRIU does the same).
    if (d.image === 'RULE') {
      runTool('ERESTORE', 'ip', ['rule', 'flush'], who);
      runTool('ERESTORE', 'ip', ['rule', 'delete', 'table', 'local'], who, undefined, true);
    }
    runTool('ERESTORE', 'ip', d.restore, `${who}: ${imageFile(d.image, images.id)}`, data);
  }
  for (const t of IPTABLES_LEGACY) {
    const data = images.raw.get(t.image);
    if (data === undefined || data.toString('utf8').trim() === '') continue;
    runTool('ERESTORE', t.restore, ['-w'], `${who}: ${imageFile(t.image, images.id)}`, data);
  }
  const nft = images.raw.get('NFTABLES');
  if (nft !== undefined && nft.toString('utf8').trim() !== '') runTool('ERESTORE', 'nft', ['-f', '-'], `${who}: ${imageFile('NFTABLES', images.id)}`, nft);
  const legacy = IPTABLES_LEGACY.filter((t) => (images.raw.get(t.image)?.toString('utf8').trim() ?? '') !== '').map((t) => t.save.replace(/-save$/, ''));
  openRestorePass(who, legacy, pass);
}

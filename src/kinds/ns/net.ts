/**
 * The network namespace (kernel: struct net) of the tree's root: its
 * sysctls, devices, addresses, routes, rules and firewall. CRIU images
 * netns-<ns>.img (netns_entry: ipv4/ipv6 conf all/default,
 * net.unix.max_dgram_qlen, net.ipv4.ping_group_range), netdev-<ns>.img
 * (net_device_entry per device, with its own ipv4/ipv6 conf), and the raw
 * images ifaddr-, route-, route6-, rule-<ns>.img (ip's netlink dumps),
 * iptables-<ns>.img (iptables-legacy-save text, when that tool exists)
 * and nftables-<ns>.img (`nft list ruleset` text).
 *
 * Dump: when the tree's root is in a net namespace other than criu-ts's,
 * our thread steps into it (setns) and reads everything there, with the
 * tools run as its children (net-tools.ts); nothing in the namespace
 * changes; then, with --network-lock nftables, the whole namespace is
 * locked (net-lock.ts). Restore: the root task, right after its clone3 and before its
 * children and its files, runs an injected unshare(CLONE_NEWNET); our
 * thread steps into the new namespace and puts back the sysctls, the
 * devices, addresses, routes, rules and firewall, in CRIU's order; the
 * tree's sockets are then created by its tasks inside it. With --join-ns
 * net the root enters the given namespace instead (join.ts), everything
 * saved is put there the same way, and a lock the dump left in it is
 * lifted where the restore lifts the network lock. With --empty-ns net
 * (runc's empty_ns) nothing of the namespace is saved; the restore makes a
 * new one and leaves it empty (lo down) for the caller's setup-namespaces
 * step, locked again (with --network-lock nftables) until the tree runs.
 * With --external net[INODE]:KEY naming the root's namespace (runc's
 * container in a namespace someone else made), only KEY is saved
 * (netns_entry.ext_key, as CRIU) and the namespace is locked; the restore
 * puts the tree into the namespace the caller hands over with
 * --inherit-fd fd[N]:KEY, and lifts the lock there.
 *
 * Limits: only the loopback device is saved (veth, tun, bridge, macvlan
 * and the rest are refused at dump, naming the device); nested net
 * namespaces inside the tree are refused; conntrack entries and netns ids
 * of other namespaces (nsids) are not saved.
 */
import { accessSync, closeSync, constants, openSync, statSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { NR, NSTYPE, CLONE_NEWNET, inNamespaceFiles, inNamespacesOf, namespaceTypeOf } from '../../sys/index.js';
import { closeRestorePass, openRestorePass, type RestorePass } from './net-pass.js';
import type { NetDeviceEntry, NetnsEntry } from '../../images/messages.js';
import { stateKey, type ExternalNetNs, type ResourceKind, type RestoreContext } from '../types.js';
import { isRoot, rootHasOwnNamespace, rootNamespaceToCreate } from './common.js';
import { readConf, readIpv4Sysctls, readUnixConf, writeConf, writeIpv4Sysctls, writeUnixConf } from './net-conf.js';
import { IP_DUMPS, runTool } from './net-tools.js';
import { attachOutsidePeers, checkNetDevices, createFromOutside, readNetDevices, restoreNetDevices, type DeviceRestore } from './net-devices.js';
import { lockNamespace, relockIn, unlockIn, type NsLockMethod } from './net-lock.js';
import { closeJoinFd, joinInTask, openJoinNs } from './join.js';
import { logger } from '../../log.js';

const log = logger('netns');

/** The legacy iptables tools (iptables-nft rules are nftables rules, saved by nft). */
const IPTABLES_LEGACY = [
  { prefix: 'iptables', save: 'iptables-legacy-save', restore: 'iptables-legacy-restore' },
  { prefix: 'ip6tables', save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' },
] as const;

interface NetImages {
  id: number;
  netns: NetnsEntry;
  devices: NetDeviceEntry[];
  raw: Map<string, Buffer>;
}

const DUMP = stateKey<{ rootPid: number; own: boolean }>('net:dump');
interface RestoreState {
  rootPid: number;
  /** the ns id of the tree's own net namespace, undefined when it was criu-ts's */
  nsId?: number | undefined;
  /** what goes into it; undefined with --empty-ns net */
  images: NetImages | undefined;
  /** --empty-ns net: our fd of the new namespace, locked again until the network unlock */
  emptyFd?: number | undefined;
  /** --join-ns net, or the --inherit-fd of an external one: our fd of the namespace to join, kept until the network unlock */
  joinFd?: number | undefined;
  /** the namespace was external at dump (--external net[..]:KEY): joined, nothing put into it */
  external?: boolean | undefined;
  /** how the dump locked the namespace, and its run id (the lock's name) */
  lock?: { method: NsLockMethod; runId: string } | undefined;
  /** the restore's packets let through the tree's firewall (net-pass.ts), with our fd of the namespace, until the network unlock */
  pass?: { fd: number; pass: RestorePass; who: string } | undefined;
}

const RESTORE = stateKey<RestoreState>('net:restore');
const NO_RESTORE = (): RestoreState => ({ rootPid: 0, images: undefined });

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

function loadImages(ctx: RestoreContext, id: number): NetImages {
  const need = (file: string): readonly object[] => {
    const img = ctx.ownImage(file);
    if (img === undefined) {
      throw new CriuTsError('ENOIMAGE', `${file} is missing: the tree's net namespace cannot be re-created (a dump made with --empty-ns net is restored with --empty-ns net)`, { file });
    }
    return img.entries;
  };
  const netns = need(`netns-${id}.img`)[0] as NetnsEntry | undefined;
  if (netns === undefined) throw new CriuTsError('EIMAGE', `netns-${id}.img is empty: the tree's net namespace cannot be re-created`, { id });
  const devices = need(`netdev-${id}.img`) as NetDeviceEntry[];
  const raw = new Map<string, Buffer>();
  for (const p of [...IP_DUMPS.map((d) => d.prefix), ...IPTABLES_LEGACY.map((d) => d.prefix), 'nftables']) {
    const b = ctx.rawImage(`${p}-${id}.img`);
    if (b !== undefined) raw.set(p, b);
  }
  return { id, netns, devices, raw };
}

/** Inside the new namespace (our thread is in it): everything back, in CRIU's order; `ourNs` is our own namespace's fd. */
function fillNamespace(images: NetImages, r: DeviceRestore, ourNs: number, pass: RestorePass): void {
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
    const data = images.raw.get(d.prefix);
    if (data === undefined || data.length === 0) continue;
    // The kernel's default rules would be there twice: the saved set has them (CRIU does the same).
    if (d.prefix === 'rule') {
      runTool('ERESTORE', 'ip', ['rule', 'flush'], who);
      runTool('ERESTORE', 'ip', ['rule', 'delete', 'table', 'local'], who, undefined, true);
    }
    runTool('ERESTORE', 'ip', d.restore, `${who}: ${d.prefix}-${images.id}.img`, data);
  }
  for (const t of IPTABLES_LEGACY) {
    const data = images.raw.get(t.prefix);
    if (data === undefined || data.toString('utf8').trim() === '') continue;
    runTool('ERESTORE', t.restore, ['-w'], `${who}: ${t.prefix}-${images.id}.img`, data);
  }
  const nft = images.raw.get('nftables');
  if (nft !== undefined && nft.toString('utf8').trim() !== '') runTool('ERESTORE', 'nft', ['-f', '-'], `${who}: nftables-${images.id}.img`, nft);
  const legacy = IPTABLES_LEGACY.filter((t) => (images.raw.get(t.prefix)?.toString('utf8').trim() ?? '') !== '').map((t) => t.save.replace(/-save$/, ''));
  openRestorePass(who, legacy, pass);
}

/** The key of --external net[INODE]:KEY when it names `pid`'s net namespace. */
function externalKey(list: readonly ExternalNetNs[] | undefined, pid: number): string | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const ino = statSync(`/proc/${pid}/ns/net`).ino;
  return list.find((x) => x.inode === ino)?.key;
}

/** netns-<id>.img's ext_key: the dump was told the namespace was not the tree's. */
function externalKeyOf(ctx: RestoreContext, id: number): string | undefined {
  const entry = ctx.ownImage(`netns-${id}.img`)?.entries[0] as NetnsEntry | undefined;
  const key = entry?.ext_key;
  return key === undefined || key === '' ? undefined : key;
}

/** Our own fd of the namespace the caller handed over for `key` (--inherit-fd fd[N]:KEY), checked to be a net namespace. */
function openInherited(ctx: RestoreContext, key: string): number {
  if (ctx.opts.joinNs.some((j) => j.type === 'net')) {
    throw new CriuTsError('EUSAGE', `the tree's net namespace was external at dump (key ${key}): it is given with --inherit-fd fd[N]:${key}, not --join-ns net`, { key });
  }
  const given = ctx.opts.inheritFds?.get(key);
  if (given === undefined) {
    throw new CriuTsError('ERESTORE', `the tree's net namespace was external at dump (key ${key}): give it with --inherit-fd fd[N]:${key}`, { key });
  }
  const fd = openSync(`/proc/self/fd/${given}`, 'r');
  if (namespaceTypeOf(fd) !== NSTYPE.net) {
    closeSync(fd);
    throw new CriuTsError('EUSAGE', `--inherit-fd fd[${given}]:${key}: not a net namespace`, { key, fd: given });
  }
  return fd;
}

function deviceRestore(ctx: RestoreContext, who: string, nsId: number): DeviceRestore {
  return { who, nsId, vethPairs: ctx.opts.vethPairs, macvlans: ctx.opts.macvlans, netdevs: ctx.opts.netdevs };
}

export const netKind: ResourceKind = {
  name: 'net',
  namespaces: ['net'],

  dumpTree(tree, ctx) {
    const own = rootHasOwnNamespace(tree, 'net');
    ctx.memo(DUMP, () => ({ rootPid: tree.rootPid, own }));
  },

  dumpTask(task, ctx) {
    const st = ctx.memo(DUMP, () => ({ rootPid: 0, own: false }));
    if (!st.own || task.pid !== st.rootPid) return;
    const id = task.ids.net_ns_id;
    if (id === undefined) throw new CriuTsError('EDUMP', `task ${task.pid}: no net namespace id`, { pid: task.pid });
    const who = `task ${task.pid}'s net namespace`;
    const ext = externalKey(ctx.opts.externalNetNs, task.pid);
    if (ext !== undefined) {
      // Someone else's namespace (runc: a netns made by CNI): only its key is saved, as CRIU; locked all the same.
      lockNamespace(ctx, task.pid, who);
      ctx.writeImage(`netns-${id}.img`, 'NETNS', [{ ext_key: ext } as NetnsEntry]);
      log.info(`net namespace ${id}: external (key ${ext}), its contents are not saved`);
      return;
    }
    if (ctx.opts.emptyNetNs) {
      // --empty-ns net: the runtime makes the namespace's contents again; as CRIU, no image of them is written
      // (a restore without --empty-ns refuses for want of netns-<id>.img). The lock holds it all the same.
      lockNamespace(ctx, task.pid, who);
      log.info(`net namespace ${id}: --empty-ns net, its contents are not saved`);
      return;
    }
    const got = inNamespacesOf(task.pid, ['net'], () => {
      const devices = readNetDevices(who, id);
      const netns: NetnsEntry = {
        def_conf4: readConf('ipv4', 'default'),
        all_conf4: readConf('ipv4', 'all'),
        def_conf6: readConf('ipv6', 'default'),
        all_conf6: readConf('ipv6', 'all'),
        unix_conf: readUnixConf(),
        ipv4_sysctl: readIpv4Sysctls(),
      };
      const raw = new Map<string, Buffer>();
      for (const d of IP_DUMPS) {
        const out = runTool('EDUMP', 'ip', d.save, who, undefined, d.canFail === true);
        if (out !== undefined) raw.set(d.prefix, out);
      }
      for (const t of IPTABLES_LEGACY) {
        if (hasTool(t.save)) raw.set(t.prefix, runTool('EDUMP', t.save, [], who) ?? Buffer.alloc(0));
      }
      if (hasTool('nft')) raw.set('nftables', runTool('EDUMP', 'nft', ['list', 'ruleset'], who) ?? Buffer.alloc(0));
      else log.warn(`${who}: no nft tool here: its nftables ruleset is not saved`);
      return { devices, netns, raw };
    });
    // After the ruleset is read (the lock table is not the tree's), before any socket is dumped.
    lockNamespace(ctx, task.pid, who);
    ctx.writeImage(`netns-${id}.img`, 'NETNS', [got.netns]);
    ctx.writeImage(`netdev-${id}.img`, 'NETDEV', got.devices);
    for (const [prefix, data] of got.raw) ctx.writeRawImage(`${prefix}-${id}.img`, data);
    log.info(`net namespace ${id}: ${got.devices.length} device(s): ${got.devices.map((d) => d.name).join(', ')}`);
  },

  prepareRestore(tree, ctx) {
    const nsId = rootNamespaceToCreate(tree, 'net');
    const extKey = nsId === undefined ? undefined : externalKeyOf(ctx, nsId);
    const images = nsId === undefined || ctx.opts.emptyNetNs || extKey !== undefined ? undefined : loadImages(ctx, nsId);
    if (images !== undefined) checkNetDevices(images.devices, deviceRestore(ctx, `the tree's net namespace (ns id ${images.id})`, images.id));
    const inv = tree.inventory;
    // inventory's network_lock_method: CRIU's numbering, iptables 0, nftables 1, skip 2
    const method = inv.network_lock_method === 1 ? 'nftables' : inv.network_lock_method === 0 ? 'iptables' : undefined;
    const lock = method === undefined || inv.dump_criu_run_id === undefined ? undefined : { method, runId: inv.dump_criu_run_id } as const;
    const joinFd = extKey === undefined ? openJoinNs(ctx, 'net') : openInherited(ctx, extKey);
    ctx.state(RESTORE, () => ({ rootPid: tree.rootPid, nsId, images, joinFd, external: extKey !== undefined, lock }));
  },

  restoreCreated(t, task, ctx) {
    const st = ctx.state(RESTORE, NO_RESTORE);
    if (!isRoot(task, st.rootPid)) return;
    // --join-ns net: into the given namespace, which gets what was saved as a new one would (CRIU does the same).
    if (st.joinFd !== undefined) joinInTask(t, ctx, 'net', st.joinFd);
    if (st.nsId === undefined || st.external === true) return;
    if (st.joinFd === undefined) t.syscall('unshare(CLONE_NEWNET)', NR.unshare, CLONE_NEWNET);
    const images = st.images;
    if (images !== undefined) {
      const r = deviceRestore(ctx, `task ${t.pid}'s ${st.joinFd === undefined ? 'new' : 'joined'} net namespace`, images.id);
      createFromOutside(images.devices, r, t.pid);
      const ourNs = openSync('/proc/thread-self/ns/net', 'r');
      try {
        // Our fd of the namespace first: the passes come out even if the tasks are gone by then.
        const fd = openSync(`/proc/${t.pid}/ns/net`, 'r');
        const pass: RestorePass = { nft: [], legacy: [] };
        st.pass = { fd, pass, who: r.who };
        inNamespacesOf(t.pid, ['net'], () => fillNamespace(images, r, ourNs, pass));
      } finally {
        closeSync(ourNs);
      }
      attachOutsidePeers(images.devices, r);
      return;
    }
    // --empty-ns net: left empty (lo down) for the caller's setup-namespaces; locked until the tree runs, as CRIU.
    log.info(`task ${t.pid}: new net namespace left empty (--empty-ns net)`);
    if (st.lock === undefined) return;
    st.emptyFd = openSync(`/proc/${t.pid}/ns/net`, 'r');
    relockIn(st.emptyFd, st.lock.method, st.lock.runId);
  },

  unlockNetwork(ctx) {
    const st = ctx.state(RESTORE, NO_RESTORE);
    try {
      // Every connection is out of repair mode: the tree's firewall applies to all again.
      const p = st.pass;
      st.pass = undefined;
      if (p !== undefined) {
        try {
          inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${p.fd}` }], () => closeRestorePass(p.pass, p.who));
        } finally {
          closeSync(p.fd);
        }
      }
      // A namespace the dump locked and that outlived the tree, or one locked again: lift it now.
      const fd = st.joinFd ?? st.emptyFd;
      if (fd !== undefined && st.lock !== undefined) unlockIn(fd, st.lock.method, st.lock.runId);
    } finally {
      closeJoinFd(st);
      if (st.emptyFd !== undefined) closeSync(st.emptyFd);
      st.emptyFd = undefined;
    }
  },
};

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
 *
 * Nested net namespaces (a task of the tree that unshared its own, or
 * entered another task's): every net namespace a live task of the tree is
 * in, other than criu-ts's own, is saved under its ns id, with the
 * netnsids it gives the others, and locked. At restore the root makes
 * them all, as CRIU does: after its own, one injected
 * unshare(CLONE_NEWNET) per nested namespace, our fd of each kept; the
 * root goes back into its own; every namespace then gets its netnsids and
 * its contents (a veth between two of them is made once, each end in its
 * namespace); a task whose namespace is not its parent's enters it
 * (setns, right after its clone3, before its files and children), so its
 * sockets are made there. --join-ns, --empty-ns and --external net apply
 * to the root's namespace (naming a nested one: refused at dump).
 *
 * A socket is made in its own namespace (its entry's ns_id), which may not
 * be its holder's (inSocketNetns).
 *
 * Limits: devices as net-devices.ts says; conntrack entries are not saved;
 * a socket of a net namespace no task of the tree is in is refused at
 * dump (files/socket-opts/net-ns.ts).
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { readNsLink } from '../../proc/index.js';
import { NR, NSTYPE, CLONE_NEWNET, inNamespaceFiles, namespaceTypeOf } from '../../sys/index.js';
import { closeRestorePass, type RestorePass } from './net-pass.js';
import type { NetnsEntry } from '../../images/messages.js';
import { stateKey, type DumpContext, type DumpTreeView, type ExternalNetNs, type RestoreContext, type RestoreTaskHandle, type RestoreTreeView } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import { commOf, isRoot } from './common.js';
import { attachOutsidePeers, checkNetDevices, createFromOutside, type DeviceRestore } from './net-devices.js';
import { lockNamespace, relockIn, unlockIn, type NsLockMethod } from './net-lock.js';
import { closeJoinFd, joinInTask, openJoinNs } from './join.js';
import { dumpNamespace, fillNamespace, loadImages, setNetnsIds, type NetImages } from './net-images.js';
import { tunFilesOf } from './net-tun.js';
import { CRIU_NET_NS, DUMP_NET_NAMESPACES } from '../files/socket-opts/net-ns.js';
import { logger } from '../../log.js';

const log = logger('netns');

interface RestoreState {
  rootPid: number;
  /** the ns id of the tree's own net namespace, undefined when it was criu-ts's */
  nsId?: number | undefined;
  /** what goes into it; undefined with --empty-ns net */
  images: NetImages | undefined;
  /** the nested namespaces, made by the root after its own, in ns id order */
  nested: NetImages[];
  /** task (image pid) -> the ns id of the namespace it enters right after its clone3 (not its parent's) */
  enter: Map<number, number>;
  /** ns id -> our fd of that namespace, once it exists (closed at the network unlock) */
  fds: Map<number, number>;
  /** the dumper's own ns id (inventory root_ids): tasks that were in criu-ts's namespace enter ours */
  ours?: number | undefined;
  /** the root's ns id (its namespace, whatever it is: tasks that come back to it name it) */
  rootNs?: number | undefined;
  /** --empty-ns net: our fd of the new namespace, locked again until the network unlock */
  emptyFd?: number | undefined;
  /** --join-ns net, or the --inherit-fd of an external one: our fd of the namespace to join, kept until the network unlock */
  joinFd?: number | undefined;
  /** the namespace was external at dump (--external net[..]:KEY): joined, nothing put into it */
  external?: boolean | undefined;
  /** how the dump locked the namespace, and its run id (the lock's name) */
  lock?: { method: NsLockMethod; runId: string } | undefined;
  /** the restore's packets let through each namespace's firewall (net-pass.ts), with our fd of it, until the network unlock */
  passes: { fd: number; pass: RestorePass; who: string }[];
}

const RESTORE = stateKey<RestoreState>('net:restore');
const NO_RESTORE = (): RestoreState => ({ rootPid: 0, images: undefined, nested: [], enter: new Map(), fds: new Map(), passes: [] });

/** The key of --external net[INODE]:KEY when it names `pid`'s net namespace. */
function externalKey(list: readonly ExternalNetNs[] | undefined, pid: number): string | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const ino = statSync(`/proc/${pid}/ns/net`).ino;
  return list.find((x) => x.inode === ino)?.key;
}

/** netns-<id>.img's ext_key: the dump was told the namespace was not the tree's. */
function externalKeyOf(ctx: RestoreContext, id: number): string | undefined {
  const entry = ctx.image('NETNS', id)?.entries[0];
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

function deviceRestore(ctx: RestoreContext, who: string, nsId: number, st: RestoreState, made: Set<string>): DeviceRestore {
  const others = new Map<number, { devices: NetImages['devices']; fd?: number | undefined }>();
  for (const im of [st.images, ...st.nested]) if (im !== undefined && im.id !== nsId) others.set(im.id, { devices: im.devices, fd: st.fds.get(im.id) });
  return { who, nsId, vethPairs: ctx.opts.vethPairs, macvlans: ctx.opts.macvlans, netdevs: ctx.opts.netdevs, others, made };
}

/** Every net namespace a live task of the tree is in, but criu-ts's own: its first task (tree order) and whether it is the root's. */
function treeNamespaces(tree: DumpTreeView): { pid: number; link: string; root: boolean }[] {
  const ours = readNsLink(process.pid, 'net');
  const rootLink = readNsLink(tree.rootPid, 'net');
  const found = new Map<string, number>();
  for (const t of tree.tasks) {
    if (t.zombie) continue;
    const link = readNsLink(t.pid, 'net');
    if (link !== ours && !found.has(link)) found.set(link, t.pid);
  }
  return [...found].map(([link, pid]) => ({ pid, link, root: link === rootLink }));
}

function dumpTreeNamespaces(tree: DumpTreeView, ctx: DumpContext): void {
  const found = treeNamespaces(tree);
  const idOf = ctx.nsIdOf;
  if (idOf === undefined) throw new CriuTsError('EINTERNAL', 'no namespace ids at dump', {});
  // Where the tree's sockets may belong (socket-opts/net-ns.ts): criu-ts's own namespace and every saved one.
  const known = ctx.memo(DUMP_NET_NAMESPACES, () => new Map<number, number>());
  const ours = tree.rootIds.net_ns_id;
  if (ours !== undefined) known.set(statSync('/proc/self/ns/net').ino, ours);
  ctx.memo(CRIU_NET_NS, () => ({ id: ours }));
  if (found.length === 0) return;
  const all = found.map((n) => ({ ...n, fd: openSync(`/proc/${n.pid}/ns/net`, 'r') }));
  const tunFiles: number[] = [];
  try {
    for (const t of tree.tasks) if (!t.zombie) tunFiles.push(...tunFilesOf(t.pid));
    const saved: { id: number; fd: number }[] = [];
    const todo: (typeof all[number] & { id: number })[] = [];
    for (const n of all) {
      const ino = statSync(`/proc/self/fd/${n.fd}`).ino;
      const id = idOf('net', ino);
      known.set(ino, id);
      const who = `task ${n.pid}'s net namespace`;
      const ext = externalKey(ctx.opts.externalNetNs, n.pid);
      if (!n.root) {
        if (ext !== undefined) {
          throw new CriuTsError('EUNSUPPORTED', `task ${n.pid}${commOf(n.pid)} is in ${n.link}, named external (--external net[...]:${ext}), nested inside the tree's own: only the root's net namespace can be external`, { pid: n.pid, key: ext });
        }
      } else if (ext !== undefined) {
        // Someone else's namespace (runc: a netns made by CNI): only its key is saved, as CRIU; locked all the same.
        lockNamespace(ctx, n.pid, who);
        ctx.saveImage('NETNS', id, [{ ext_key: ext } as NetnsEntry]);
        log.info(`net namespace ${id}: external (key ${ext}), its contents are not saved`);
        continue;
      } else if (ctx.opts.emptyNetNs) {
        // --empty-ns net: the runtime makes the namespace's contents again; as CRIU, no image of them is written
        // (a restore without --empty-ns refuses for want of netns-<id>.img). The lock holds it all the same.
        lockNamespace(ctx, n.pid, who);
        log.info(`net namespace ${id}: --empty-ns net, its contents are not saved`);
        continue;
      }
      saved.push({ id, fd: n.fd });
      todo.push({ ...n, id });
    }
    // Each is read before any is locked (a lock table is no namespace's), all before any socket is dumped.
    for (const n of todo) dumpNamespace(ctx, `task ${n.pid}'s net namespace`, n.id, n.fd, saved.filter((o) => o.id !== n.id), tunFiles);
    for (const n of todo) lockNamespace(ctx, n.pid, `task ${n.pid}'s net namespace`);
  } finally {
    for (const n of all) closeSync(n.fd);
    for (const fd of tunFiles) closeSync(fd);
  }
}

/** At restore: the ns ids of the tree's tasks, who enters which, the nested namespaces to make. */
function plan(tree: RestoreTreeView): { rootNs: number | undefined; nsId: number | undefined; nested: number[]; enter: Map<number, number> } {
  const byPid = new Map(tree.tasks.map((t) => [t.pid, t]));
  const nsOf = (pid: number, depth = 0): number | undefined => {
    const t = byPid.get(pid);
    if (t === undefined || depth > tree.tasks.length) return undefined;
    // Helpers and zombies have no ids: they are in their parent's.
    return t.ids?.net_ns_id ?? (t.pid === tree.rootPid ? undefined : nsOf(t.ppid, depth + 1));
  };
  const rootNs = nsOf(tree.rootPid);
  const ours = tree.rootIds?.net_ns_id;
  const nsId = rootNs === undefined || ours === undefined || rootNs === ours ? undefined : rootNs;
  const nested = new Set<number>();
  const enter = new Map<number, number>();
  for (const t of tree.tasks) {
    const mine = t.ids?.net_ns_id;
    if (t.pid === tree.rootPid || mine === undefined) continue;
    if (mine !== rootNs && mine !== ours) nested.add(mine);
    if (mine !== (nsOf(t.ppid) ?? rootNs)) enter.set(t.pid, mine);
  }
  return { rootNs, nsId, nested: [...nested].sort((a, b) => a - b), enter };
}

/** Our fd of the tree's net namespace `id` once made; criu-ts's own (the dump's) opened on first use. */
function fdOfNamespace(st: RestoreState, id: number): number | undefined {
  let fd = st.fds.get(id);
  if (fd === undefined && id === st.ours) {
    fd = openSync('/proc/self/ns/net', 'r');
    st.fds.set(id, fd);
  }
  return fd;
}

/** At restore: our fd of the tree's net namespace `nsId` (made before any file), undefined when it is none of the tree's. */
export function netNamespaceFd(ctx: RestoreContext, nsId: number): number | undefined {
  return fdOfNamespace(ctx.state(RESTORE, NO_RESTORE), nsId);
}

/** A task entering the namespace its parent is not in: our fd of it, installed in the task, setns. */
function enterIn(t: RestoreTaskHandle, pid: number, ctx: RestoreContext, st: RestoreState): void {
  const id = st.enter.get(pid);
  if (id === undefined) return;
  const fd = fdOfNamespace(st, id);
  if (fd === undefined) throw new CriuTsError('EINTERNAL', `task ${pid}: its net namespace (ns id ${id}) is not made`, { pid, nsId: id });
  joinInTask(t, ctx, 'net', fd);
}

/**
 * Make a socket of net namespace `nsId` (its entry's ns_id) in task `t`:
 * when that is not the task's own namespace (a socket made before its
 * holder changed namespace), the task steps into the socket's for `make`
 * and back (setns), so the socket() it runs, and whatever criu-ts does
 * for the socket in the task's namespace meanwhile, happen in the
 * socket's. A namespace the restore did not make (images without ns ids):
 * the task's.
 */
export function inSocketNetns<T>(t: RestoreTaskHandle, ctx: RestoreContext, nsId: number | undefined, make: () => T): T {
  const st = ctx.state(RESTORE, NO_RESTORE);
  const fd = nsId === undefined ? undefined : fdOfNamespace(st, nsId);
  if (fd === undefined || fstatSync(fd).ino === statSync(`/proc/${t.pid}/ns/net`).ino) return make();
  // The task's own, by our fd of it (its /proc may not be ours to name it by).
  const back = openSync(`/proc/${t.pid}/ns/net`, 'r');
  try {
    joinInTask(t, ctx, 'net', fd);
    try {
      return make();
    } finally {
      joinInTask(t, ctx, 'net', back);
    }
  } finally {
    closeSync(back);
  }
}

/** The saved tun_link flags of tun device `name` of net namespace `nsId` (the root's when undefined), as the restore made it. */
export function tunDeviceFlags(ctx: RestoreContext, nsId: number | undefined, name: string): number | undefined {
  const st = ctx.state(RESTORE, NO_RESTORE);
  const id = nsId ?? st.rootNs;
  const im = [st.images, ...st.nested].find((x) => x !== undefined && x.id === id);
  return im?.devices.find((d) => d.type === 'TUN' && d.name === name)?.tun?.flags;
}

/** The root right after its clone3: its own namespace, then the nested ones, all filled; back in its own. */
function makeNamespaces(t: RestoreTaskHandle, ctx: RestoreContext, st: RestoreState): void {
  const rootNs = st.rootNs;
  // --join-ns net: into the given namespace, which gets what was saved as a new one would (CRIU does the same).
  if (st.joinFd !== undefined) joinInTask(t, ctx, 'net', st.joinFd);
  const made = st.nsId !== undefined && st.external !== true;
  if (made && st.joinFd === undefined) t.syscall('unshare(CLONE_NEWNET)', NR.unshare, CLONE_NEWNET);
  if (made && st.images === undefined) {
    // --empty-ns net: left empty (lo down) for the caller's setup-namespaces; locked until the tree runs, as CRIU.
    log.info(`task ${t.pid}: new net namespace left empty (--empty-ns net)`);
    if (st.lock !== undefined) {
      st.emptyFd = openSync(`/proc/${t.pid}/ns/net`, 'r');
      relockIn(st.emptyFd, st.lock.method, st.lock.runId);
    }
  }
  // Our fd of the root's namespace: it fills it, tasks and sockets coming back to it enter it.
  const home = rootNs === undefined ? undefined : openSync(`/proc/${t.pid}/ns/net`, 'r');
  if (home !== undefined && rootNs !== undefined) st.fds.set(rootNs, home);
  for (const im of st.nested) {
    t.syscall(`unshare(CLONE_NEWNET) for ns id ${im.id}`, NR.unshare, CLONE_NEWNET);
    st.fds.set(im.id, openSync(`/proc/${t.pid}/ns/net`, 'r'));
  }
  if (st.nested.length > 0) {
    if (home === undefined) throw new CriuTsError('EINTERNAL', `task ${t.pid}: no fd of its own net namespace`, { pid: t.pid });
    joinInTask(t, ctx, 'net', home);
  }
  const fill: { im: NetImages; fd: number; who: string }[] = [];
  if (st.images !== undefined && home !== undefined) fill.push({ im: st.images, fd: home, who: `task ${t.pid}'s ${st.joinFd === undefined ? 'new' : 'joined'} net namespace` });
  for (const im of st.nested) fill.push({ im, fd: st.fds.get(im.id) as number, who: `the tree's nested net namespace (ns id ${im.id})` });
  // The netnsids first, in every namespace made (the joined one has its own): a veth between two would make the kernel pick them.
  for (const f of fill) {
    if (f.im === st.images && st.joinFd !== undefined) continue;
    inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${f.fd}` }], () => setNetnsIds(f.im, st.fds, f.who));
  }
  const madeDevs = new Set<string>();
  for (const f of fill) {
    const r = deviceRestore(ctx, f.who, f.im.id, st, madeDevs);
    createFromOutside(f.im.devices, r, f.fd);
    const ourNs = openSync('/proc/thread-self/ns/net', 'r');
    try {
      const pass: RestorePass = { nft: [], legacy: [] };
      // Kept first: the pass comes out even if the tasks are gone by then.
      st.passes.push({ fd: f.fd, pass, who: f.who });
      inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${f.fd}` }], () => fillNamespace(f.im, r, ourNs, pass));
    } finally {
      closeSync(ourNs);
    }
    attachOutsidePeers(f.im.devices, r);
  }
}

export const netKind: ResourceKind = {
  name: 'net',
  namespaces: ['net'], joins: ['net'],

  dumpTree(tree, ctx) {
    dumpTreeNamespaces(tree, ctx);
  },

  prepareRestore(tree, ctx) {
    const p = plan(tree);
    const nsId = p.nsId;
    const extKey = nsId === undefined ? undefined : externalKeyOf(ctx, nsId);
    const images = nsId === undefined || ctx.opts.emptyNetNs || extKey !== undefined ? undefined : loadImages(ctx, nsId, "the tree's net namespace");
    const nested = p.nested.map((id) => {
      if (externalKeyOf(ctx, id) !== undefined) throw new CriuTsError('EIMAGE', `${imageFile('NETNS', id)}: a nested net namespace (ns id ${id}) saved as external`, { id });
      return loadImages(ctx, id, `the tree's nested net namespace (ns id ${id})`);
    });
    const st: RestoreState = { rootPid: tree.rootPid, nsId, images, nested, enter: p.enter, fds: new Map(), ours: tree.rootIds?.net_ns_id, rootNs: p.rootNs, passes: [] };
    for (const im of [images, ...nested]) if (im !== undefined) checkNetDevices(im.devices, deviceRestore(ctx, `the tree's net namespace (ns id ${im.id})`, im.id, st, new Set()));
    const inv = tree.inventory;
    // inventory's network_lock_method: CRIU's numbering, iptables 0, nftables 1, skip 2
    const method = inv.network_lock_method === 1 ? 'nftables' : inv.network_lock_method === 0 ? 'iptables' : undefined;
    st.lock = method === undefined || inv.dump_criu_run_id === undefined ? undefined : { method, runId: inv.dump_criu_run_id } as const;
    st.joinFd = extKey === undefined ? openJoinNs(ctx, 'net') : openInherited(ctx, extKey);
    st.external = extKey !== undefined;
    ctx.state(RESTORE, () => st);
  },

  restoreCreated(t, task, ctx) {
    const st = ctx.state(RESTORE, NO_RESTORE);
    if (!isRoot(task, st.rootPid)) {
      enterIn(t, task.pid, ctx, st);
      return;
    }
    makeNamespaces(t, ctx, st);
  },

  unlockNetwork(ctx) {
    const st = ctx.state(RESTORE, NO_RESTORE);
    try {
      // Every connection is out of repair mode: the tree's firewall applies to all again.
      // Every namespace's, even when one fails: the first failure is said.
      let failure: unknown;
      for (const p of st.passes.splice(0)) {
        try {
          inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${p.fd}` }], () => closeRestorePass(p.pass, p.who));
        } catch (e) {
          failure ??= e;
        }
      }
      if (failure !== undefined) throw failure;
      // A namespace the dump locked and that outlived the tree, or one locked again: lift it now.
      const fd = st.joinFd ?? st.emptyFd;
      if (fd !== undefined && st.lock !== undefined) unlockIn(fd, st.lock.method, st.lock.runId);
    } finally {
      closeJoinFd(st);
      if (st.emptyFd !== undefined) closeSync(st.emptyFd);
      st.emptyFd = undefined;
      for (const fd of st.fds.values()) closeSync(fd);
      st.fds.clear();
    }
  },
};

/**
 * Dump of a mount namespace: the mount tree the tree's root sees
 * (/proc/PID/mountinfo), one mnt_entry per mount in
 * mountpoints-<ns id>.img, and a tmpfs's files as a gzip'd tar in
 * tmpfs-dev-<s_dev>.tar.gz.img, as CRIU writes them.
 *
 * Every mount must be one the restore can make again, else the dump is
 * refused with one line naming the task, the mount and why:
 *  - the namespace's root "/": made from --root at restore;
 *  - a mount named by --external mnt[MOUNTPOINT]:KEY: bound from the
 *    path the restore's --external mnt[KEY]:PATH gives;
 *  - a fresh mount of a type in FS_TYPES whose root is its filesystem's
 *    "/" (proc, sysfs, devpts, mqueue, cgroup, tmpfs with its files...);
 *  - a bind: the same filesystem (s_dev) as another dumped mount whose
 *    root holds this one's root (a subdirectory of the ns root's
 *    filesystem, a second view of a tmpfs, /proc/sys read-only...).
 * Peer groups (shared:N) and masters (master:N) are kept when every
 * member lives in the dumped tree; one shared with or slave to a mount
 * outside is refused.
 *
 * A nested namespace (a task of the tree that made its own, by unshare)
 * is dumped the same way from its first task, with the mounts of the
 * namespace it was made from (its parent task's) as more sources: its "/"
 * and any copy of a parent's mount are bound from there at restore. Its
 * peer groups may span the two namespaces (copies of shared mounts), not
 * a third one.
 */
import { childProcess } from '../../../builtins.js';
import { closeSync, statSync } from 'node:fs';
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import { nsLinkOf, parseMountinfo, procMountPidNs, readComm, type MountInfo } from '../../../proc/index.js';
import type { MntEntry } from '../../../images/messages.js';
import type { DumpContext } from '../../types.js';
import { FS_TYPES, FSTYPE_UNSUPPORTED, kdev, mountFlags, superFlags } from './fstypes.js';
import { logger } from '../../../log.js';
import { INVALID_ID, asTreeRoot, treeGid, treeUid } from '../user.js';
import { cloneHiddenMount, unmountsToReach } from './hidden.js';
import { AUTODETECTED_KEY, findAutoExternals, type AutoExternal, type AutoOptions } from './auto-external.js';

const log = logger('mnt');

/** CRIU's tar flags for a tmpfs (filesystems.c): ownership, modes, hard links and holes kept, nothing below other mounts. */
const TAR_CREATE = ['--create', '--gzip', '--no-unquote', '--no-wildcards', '--one-file-system', '--check-links',
  '--preserve-permissions', '--sparse', '--numeric-owner'];

function commOf(pid: number): string {
  try {
    return ` (${readComm(pid)})`;
  } catch {
    return '';
  }
}

/** Is `root` (a path inside a filesystem) at or below `wide`? */
export function within(root: string, wide: string): boolean {
  return wide === '/' || root === wide || root.startsWith(`${wide}/`);
}

/** The user-space dev_t of major:minor (glibc's makedev), as stat() reports it. */
function userDev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) + (minor & 0xff) + ((minor & ~0xff) << 12) + (major & ~0xfff) * 2 ** 32;
}

export interface MountDumpOptions {
  /** --external mnt[MOUNTPOINT]:KEY at dump: mountpoint -> key (the tree's root namespace only) */
  extMounts: ReadonlyMap<string, string>;
  /** --external mnt[] (with --enable-external-sharing/-masters): mounts that show a filesystem of ours are external (auto-external.ts) */
  auto?: AutoOptions | undefined;
  /** a nested namespace: the mounts of the namespace it was made from, its id and the task that dumps it */
  outer?: { mounts: readonly MountInfo[]; nsId: number; pid: number } | undefined;
  /** every dumped namespace's peer groups: group -> the tasks dumping a namespace with a member */
  groups: ReadonlyMap<number, ReadonlySet<number>>;
  /** the devices whose files a namespace saves (a tmpfs made anew there): s_dev -> the task dumping it */
  tarred: Map<string, number>;
  /**
   * Our fd on a detached clone, without its submounts, of the mount at
   * `mountpoint` as the task sees it (open_tree in the task): its files,
   * those under other mounts too; undefined when the task may not
   * (no CAP_SYS_ADMIN): then its path is read, without what other mounts
   * hide.
   */
  cloneMount(mountpoint: string): number | undefined;
}

export function dumpMountNamespace(pid: number, nsId: number, opts: MountDumpOptions, ctx: DumpContext): void {
  const mounts = parseMountinfo(pid);
  const who = `task ${pid}${commOf(pid)}`;
  const ids = new Set(mounts.map((m) => m.mntId));
  const tops = mounts.filter((m) => !ids.has(m.parentId) || m.parentId === m.mntId);
  const root = tops[0];
  if (root === undefined || tops.length !== 1 || root.mountpoint !== '/') {
    throw new CriuTsError('EUNSUPPORTED', `${who}: its mount namespace has no single root mount at / (${tops.map((m) => m.mountpoint).join(', ')})`, { pid });
  }
  const describe = (m: MountInfo): string => `mount ${m.mntId} at ${m.mountpoint} (${m.fstype} ${m.source}, root ${m.root})`;
  const refuse = (m: MountInfo, why: string): never => {
    throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: ${why}`, { pid, mountpoint: m.mountpoint, fstype: m.fstype });
  };

  const used = new Set<string>();
  const outer = opts.outer;
  const keyed = (m: MountInfo): string | undefined => {
    if (outer !== undefined) return undefined;
    const k = opts.extMounts.get(m.mountpoint);
    if (k !== undefined) used.add(m.mountpoint);
    return k;
  };
  // Only in the tree's root namespace, as mounts named by key: a nested one's are found through its parent's.
  const auto = outer === undefined && opts.auto !== undefined
    ? findAutoExternals(mounts, (m) => m === root || keyed(m) !== undefined, opts.auto)
    : new Map<MountInfo, AutoExternal>();
  const extKey = (m: MountInfo): string | undefined => keyed(m) ?? (auto.has(m) ? AUTODETECTED_KEY : undefined);
  for (const [m, a] of auto) log.info(`${who}: ${describe(m)}: an external mount of ${a.source} (found automatically${a.sharedOutside ? ', shared with it' : ''})`);
  // Where each mount comes from at restore: the namespace root and
  // external mounts are given by the caller; every other mount is either
  // fresh (the widest view of a filesystem we can make anew) or a bind of a
  // mount that shows a root holding its own.
  const dev = (m: MountInfo): string => `${m.devMajor}:${m.devMinor}`;
  const sources = outer === undefined ? mounts.filter((m) => m === root || extKey(m) !== undefined) : [...outer.mounts];
  // A nested root is a view of a mount of the namespace it was made from, or a tmpfs of its own (pivoted into).
  if (outer !== undefined && !outer.mounts.some((o) => dev(o) === dev(root) && within(root.root, o.root)) && (root.fstype !== 'tmpfs' || root.root !== '/')) {
    refuse(root, `the root of this nested mount namespace shows no mount of the namespace it was made from (task ${outer.pid}'s) and is no tmpfs: not supported`);
  }
  const tarred: MountInfo[] = [];
  for (const m of mounts) {
    if ((m === root && outer === undefined) || extKey(m) !== undefined) continue;
    const { unknown } = mountFlags(m.options);
    if (unknown.length > 0) refuse(m, `mount option ${unknown.join(',')} is not supported`);
    if (sources.some((o) => dev(o) === dev(m) && within(m.root, o.root))) continue; // a bind
    const type = FS_TYPES[m.fstype];
    if (type === undefined) {
      // --external mnt[] would find it when our namespace mounts it too.
      const ours = opts.auto === undefined && outer === undefined && parseMountinfo(process.pid).some((o) => dev(o) === dev(m));
      return refuse(m, `its ${m.fstype} filesystem is outside every dumped mount: name it with --external mnt[${m.mountpoint}]:KEY${ours ? ' (or --external mnt[]: criu-ts\'s namespace mounts it too)' : ''}`);
    }
    // The first full view of a filesystem we can make anew is made anew; its other views are binds of it.
    const full = mounts.find((o) => dev(o) === dev(m) && o.root === '/');
    if (full === undefined) {
      return refuse(m, `only a subdirectory of this ${m.fstype} is mounted, and a new ${m.fstype} mount cannot show it alone: name it with --external mnt[${m.mountpoint}]:KEY`);
    }
    sources.push(full);
    // A new proc shows the pid namespace of the task that mounts it: at
    // restore, the task building this namespace (this one's counterpart).
    if (m.fstype === 'proc' && full === m) {
      const shows = procMountPidNs(pid, m.mountpoint);
      const own = nsLinkOf(pid, 'pid');
      if (shows !== undefined && own !== undefined && shows !== own) {
        refuse(m, `this proc shows pid namespace ${shows}, not that of the task whose mount namespace it is in (${own}), which would mount it again at restore: not supported`);
      }
    }
    if (type.tar && !tarred.includes(full)) {
      const other = opts.tarred.get(dev(full));
      if (other !== undefined && other !== pid) refuse(full, `this ${m.fstype} is also mounted in the mount namespace of task ${other}, which this one was not made from: not supported`);
      opts.tarred.set(dev(full), pid);
      tarred.push(full);
    }
  }
  // As CRIU: a key that names no mount of the tree is not an error (runc names every bind of its
  // config, device nodes among them, whatever the container's mounts became).
  for (const k of opts.extMounts.keys()) {
    if (!used.has(k)) log.info(`--external mnt[${k}]: ${who} has no mount at ${k}; ignored`);
  }
  if (outer === undefined) checkPropagation(mounts, new Set(mounts.filter((m) => extKey(m) !== undefined)), auto, opts.auto, who, describe);
  else checkNestedPropagation(mounts, pid, outer, opts.groups, who, describe);

  const entries: MntEntry[] = mounts.map((m) => {
    const { flags } = mountFlags(m.options);
    const { sbFlags, options: shown } = superFlags(m.superOptions);
    const options = optionsInside(shown, ctx, () => refuse(m, 'its owner option names an id with no mapping in the tree\'s user namespace'));
    const e: MntEntry = {
      fstype: FS_TYPES[m.fstype]?.code ?? FSTYPE_UNSUPPORTED,
      mnt_id: m.mntId,
      root_dev: kdev(m.devMajor, m.devMinor),
      parent_mnt_id: m.parentId,
      flags,
      root: m.root,
      mountpoint: m.mountpoint,
      source: m.source,
      options: m.fstype === 'devpts' && !options.split(',').includes('newinstance') ? [options, 'newinstance'].filter((s) => s !== '').join(',') : options,
      shared_id: m.shared,
      master_id: m.master,
      sb_flags: sbFlags,
    };
    const k = extKey(m);
    if (k !== undefined) e.ext_key = k;
    const a = auto.get(m);
    // CRIU's form: the path of ours in source. An external mount's peer group that only the dumped
    // tree has is internal_sharing (the restore makes it there, not through the source's).
    if (a !== undefined) e.source = a.source;
    if (k !== undefined && m.shared !== 0 && a?.sharedOutside !== true) e.internal_sharing = true;
    if (FS_TYPES[m.fstype] === undefined && m !== root) e.fsname = m.fstype;
    if (m.root.endsWith(DELETED) && m.root !== DELETED && k === undefined) {
      checkDeletedSource(pid, m, mounts, ctx, refuse);
      e.root = m.root.slice(0, -DELETED.length);
      e.deleted = true;
    }
    return e;
  });
  ctx.saveImage('MNTS', nsId, entries);
  // Once every task's files are dumped: a link remap (files/ghost/) the dump made on a tmpfs must be in its tar.
  ctx.atEnd(() => {
    for (const m of tarred) dumpTmpfs(pid, who, m, mounts, ctx, describe, opts.cloneMount);
  });
}

/** What mountinfo (dentry_path) appends to the root of a mount whose source was removed after the bind. */
const DELETED = '//deleted';

/**
 * A bind whose source was removed (zdtm's mntns_deleted) is made again at
 * restore from a new empty directory or file of the tree's root, mode 0700
 * or 0600 (as CRIU makes it), removed once bound: anything else it showed
 * (a file's contents, another mode or owner, another type) would not come
 * back, and is refused. Checked through its mountpoint.
 */
function checkDeletedSource(pid: number, m: MountInfo, mounts: readonly MountInfo[], ctx: DumpContext, refuse: (m: MountInfo, why: string) => never): void {
  if (unmountsToReach(mounts, m)?.length !== 0) refuse(m, 'its source was removed and another mount covers it: what it shows cannot be checked');
  const st = statSync(`/proc/${pid}/root${m.mountpoint}`);
  const mode = st.mode & 0o7777;
  const owned = treeUid(ctx, st.uid) === 0 && treeGid(ctx, st.gid) === 0;
  if (st.isDirectory() && mode === 0o700 && owned) return;
  if (st.isFile() && st.size === 0 && mode === 0o600 && owned) return;
  refuse(m, `its source was removed after the bind: only an empty directory (0700) or file (0600) of the tree's root can be made again for it, not this ${st.isDirectory() ? 'directory' : st.isFile() ? `file of ${st.size} bytes` : 'object'}, mode ${mode.toString(8)}`);
}

/**
 * Peer groups and masters must lie inside the dumped tree: a mount shared
 * with one outside would lose that link. An external mount may be a slave
 * of a group outside (its source's, at restore).
 */
function checkPropagation(mounts: readonly MountInfo[], external: ReadonlySet<MountInfo>, auto: ReadonlyMap<MountInfo, AutoExternal>, autoOpts: AutoOptions | undefined, who: string, describe: (m: MountInfo) => string): void {
  const ours = new Map<number, string>();
  for (const m of parseMountinfo(process.pid)) if (m.shared !== 0) ours.set(m.shared, m.mountpoint);
  const groups = new Set(mounts.filter((m) => m.shared !== 0).map((m) => m.shared));
  for (const m of mounts) {
    // An automatic external mount shared with a group of ours joins it again through its source (build.ts).
    if (m.shared !== 0 && ours.has(m.shared) && auto.get(m)?.sharedOutside !== true) {
      const how = autoOpts === undefined ? 'keep it with --external mnt[] --enable-external-sharing (mnt[]:s)'
        : autoOpts.sharing ? 'no mount of criu-ts\'s namespace in that group shows its root' : 'keep it with --enable-external-sharing (mnt[]:s)';
      throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: it is shared with ${ours.get(m.shared) ?? '?'} outside its mount namespace (peer group ${m.shared}): ${how}`, { mountpoint: m.mountpoint });
    }
    // An external mount's master outside is its source's group at restore (build.ts checks it is in one).
    if (m.master !== 0 && !groups.has(m.master) && !external.has(m)) {
      const how = autoOpts === undefined ? 'keep it with --external mnt[] --enable-external-masters (mnt[]:m), or name it with --external mnt[MOUNTPOINT]:KEY'
        : autoOpts.masters ? 'no mount of criu-ts\'s namespace in that group (or a slave of it) shows its root' : 'keep it with --enable-external-masters (mnt[]:m)';
      throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: it receives mounts from peer group ${m.master} outside its mount namespace: ${how}`, { mountpoint: m.mountpoint });
    }
  }
}

/**
 * A nested namespace's peer groups and masters: shared with criu-ts's own
 * namespace is refused as for the root's; a group may span this namespace
 * and the one it was made from (where the restore finds it, through the
 * task's copy), and no other.
 */
function checkNestedPropagation(mounts: readonly MountInfo[], pid: number, outer: { mounts: readonly MountInfo[]; pid: number }, groups: ReadonlyMap<number, ReadonlySet<number>>, who: string, describe: (m: MountInfo) => string): void {
  const ours = new Set(parseMountinfo(process.pid).map((m) => m.shared).filter((g) => g !== 0));
  const seen = outer.mounts.filter((o) => !outer.mounts.some((x) => x.mountpoint === o.mountpoint && x.mntId > o.mntId));
  for (const m of mounts) {
    for (const [g, role] of [[m.shared, 'is shared with'], [m.master, 'receives mounts from']] as const) {
      if (g === 0) continue;
      const why = (what: string): never => {
        throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: it ${role} peer group ${g}, ${what}: not supported`, { mountpoint: m.mountpoint, group: g });
      };
      if (ours.has(g)) why('which has mounts outside the dumped mount namespaces');
      const where = groups.get(g) ?? new Set<number>();
      const inOuter = seen.some((o) => o.shared === g);
      if (!inOuter && [...where].some((n) => n !== pid)) why(`which has members in the mount namespace of task ${[...where].filter((n) => n !== pid).join(', ')}, not the one this was made from (task ${outer.pid}'s)`);
      if (!inOuter && !where.has(pid)) why('which has no member in a dumped mount namespace');
    }
  }
}

/**
 * A tmpfs's files, as CRIU's tar saves them, read through a clone of the
 * mount made in the task (its files under other mounts are not hidden
 * there), found by the task's own path to it.
 */
function dumpTmpfs(pid: number, who: string, m: MountInfo, mounts: readonly MountInfo[], ctx: DumpContext, describe: (m: MountInfo) => string, cloneMount: (mountpoint: string) => number | undefined): void {
  // Mounts stacked on it or on a mount above it hide it from every path: it is cloned in a copy of
  // the namespace without them.
  const hiders = unmountsToReach(mounts, m);
  if (hiders === undefined) {
    throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: no path reaches it, even with the mounts over it gone: its files cannot be read`, { pid, mountpoint: m.mountpoint });
  }
  const dir = `/proc/${pid}/root${m.mountpoint}`;
  let fd: number | undefined;
  if (hiders.length > 0) {
    fd = cloneHiddenMount(pid, m.mountpoint, hiders, userDev(m.devMajor, m.devMinor), `${who}: ${describe(m)}`);
  } else {
    let st;
    try {
      st = statSync(dir);
    } catch (e) {
      throw new CriuTsError('EDUMP', `${who}: ${describe(m)}: cannot reach it at ${dir}: ${(e as Error).message}`, { pid }, e);
    }
    if (st.dev !== userDev(m.devMajor, m.devMinor)) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: ${describe(m)}: its mountpoint shows another filesystem, and no mount made after it covers it: its files cannot be read`, { pid, mountpoint: m.mountpoint });
    }
    fd = cloneMount(m.mountpoint);
    if (fd === undefined) log.info(`${who}: ${describe(m)}: the task may not clone it (no CAP_SYS_ADMIN): its files are read at ${dir}, without those other mounts hide`);
  }
  // In the tree's user namespace, if it has one: the tar then holds the owners as the tree sees them.
  const [cmd = 'tar', ...pre] = [...asTreeRoot(ctx, pid), 'tar'];
  let r;
  try {
    // tar's fd 3 is the clone's root.
    r = fd === undefined
      ? childProcess().spawnSync(cmd, [...pre, ...TAR_CREATE, '--directory', dir, '.'], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] })
      : childProcess().spawnSync(cmd, [...pre, ...TAR_CREATE, '--directory', '/proc/self/fd/3', '.'], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe', fd] });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (r.error !== undefined || r.status !== 0) {
    const why = r.error?.message ?? r.stderr.toString().trim().split('\n')[0] ?? `exit ${String(r.status)}`;
    throw new CriuTsError('EDUMP', `${who}: ${describe(m)}: tar of its files failed: ${why}`, { pid, mountpoint: m.mountpoint });
  }
  ctx.writeRawImage(imageFile('TMPFS_DEV', kdev(m.devMajor, m.devMinor)), r.stdout);
}

/**
 * A filesystem's uid=/gid= options (tmpfs, devpts, ...) as the tree sees
 * them. The kernel shows them as the initial user namespace sees them,
 * and reads them at mount time through the mounter's: with a user
 * namespace of the tree's own they are saved mapped, as CRIU does.
 */
function optionsInside(options: string, ctx: DumpContext, unmapped: () => never): string {
  return options.split(',').map((o) => {
    const m = /^(uid|gid)=(\d+)$/.exec(o);
    if (m === null) return o;
    const id = Number(m[2]);
    const v = m[1] === 'uid' ? treeUid(ctx, id) : treeGid(ctx, id);
    if (v === INVALID_ID) unmapped();
    return `${m[1]}=${v}`;
  }).join(',');
}

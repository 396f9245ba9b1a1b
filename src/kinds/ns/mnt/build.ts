/**
 * Building the restored mount tree inside the root task, which was born
 * with CLONE_NEWNS: every call is injected into it (Node cannot enter a
 * mount namespace), and nothing leaves the new namespace: its copy of our
 * tree is made private first, so no mount propagates back to the host, and
 * a failed restore takes every mount with the task.
 *
 * The new "/" is a recursive bind of --root: criu-ts clones it
 * (open_tree(OPEN_TREE_CLONE), in its own mount namespace, which the
 * task's is a copy of) and hands the detached tree to the task, which
 * stacks it on its "/" and works from there with paths relative to its
 * cwd, the new root. The task never walks to --root itself: in a user
 * namespace of its own it walks as its mapped uid, and a runtime's --root
 * often lies below a directory only the real root may enter (runc's
 * /run/runc, zdtm's uns flavour). The dumped mounts are made under it in
 * plan order (plan.ts), each then given its dumped
 * per-mount flags; a tmpfs gets its files from its tar before anything is
 * mounted inside it. pivot_root makes the new tree the task's "/" and the
 * old one is detached; then peer groups and masters are put back
 * (MOVE_MOUNT_SET_GROUP, mount_setattr): a shared new root or put_old
 * would make pivot_root fail. The tree is made before the task's memory
 * and files, so their paths resolve in it.
 *
 * A nested namespace (a task born with CLONE_NEWNS from a parent whose
 * namespace is already built) starts as a copy of its parent's. Before
 * anything, a detached clone (open_tree) of a copy in each peer group it
 * shares with the parent's namespace is kept: the copies are peers of the
 * parent's mounts, and so are the clones, which later let its own mounts
 * join those groups. The copy is then made private, and its new root, a
 * clone of the parent's mount that shows it, is stacked on "/" and made
 * the cwd: from there relative paths reach the new tree while absolute
 * ones still resolve in the copy (the task's root did not move), so the
 * parent's mounts can be bound from. pivot_root(".", ".") then drops the
 * copy, as for the tree's root.
 */
import { childProcess } from '../../../builtins.js';
import { CriuTsError } from '../../../errors.js';
import { logger } from '../../../log.js';
import {
  NR, cloneMountTree, AT_FDCWD, AT_EMPTY_PATH, AT_REMOVEDIR, O_CLOEXEC, O_CREAT, O_EXCL, O_WRONLY,
  OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, MOVE_MOUNT_SET_GROUP, MNT_DETACH,
  FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE, FSCONFIG_CMD_RECONFIGURE,
  FSPICK_CLOEXEC, FSPICK_EMPTY_PATH, MOUNT_ATTR_SIZE_VER0, MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC, MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_NODIRATIME,
  MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
  MS_RELATIME, MS_SHARED, MS_SLAVE, MS_SYNCHRONOUS,
} from '../../../sys/index.js';
import { closeSync, statSync } from 'node:fs';
import { joinSourceGroups, slaveOfOutside, sourceGroupClone } from './source-groups.js';
import type { RestoreTaskHandle } from '../../types.js';
import type { MntEntry } from '../../../images/messages.js';
import type { MountStep } from './plan.js';
import { FS_TYPES } from './fstypes.js';

const log = logger('mnt');


const TAR_EXTRACT = ['--extract', '--gzip', '--no-unquote', '--no-wildcards'];

export interface BuildInput {
  steps: readonly MountStep[];
  /** --root, absolute, as criu-ts (and the task, before the pivot) sees it; unused for a nested namespace */
  root: string;
  /** a nested namespace: peer groups shared with the parent's namespace -> the path of a member in the task's copy of it */
  cross?: ReadonlyMap<number, string> | undefined;
  tar(name: string): Buffer;
  /** the command prefix that runs tar as the root of the tree's user namespace ([] without one) */
  asRoot: readonly string[];
  /** a pty slave of the devpts mount open at `devpts` (an fd in the task) is bind-mounted: make it exist */
  ptySlave?(devpts: number, index: number): void;
}

export function buildMountTree(t: RestoreTaskHandle, input: BuildInput): void {
  const { root } = input;
  const nested = input.cross !== undefined;
  const str = (s: string): bigint => t.putString(s);
  const mount = (what: string, src: string | undefined, target: string, fstype: string | undefined, flags: number, data: string | undefined): void => {
    // Each string goes into the scratch ring right before the call that uses it.
    const a = src === undefined ? 0n : str(src);
    const b = str(target);
    const c = fstype === undefined ? 0n : str(fstype);
    const d = data === undefined || data === '' ? 0n : str(data);
    t.syscall(what, NR.mount, a, b, c, flags, d);
  };
  const clone = (path: number | string, sub: string): number => {
    const [dfd, p] = typeof path === 'number' ? [path, sub] : [AT_FDCWD, path];
    return Number(t.syscall(`open_tree(${typeof path === 'number' ? `fd ${path}/` : ''}${p})`, NR.open_tree, dfd, str(p), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (p === '' ? AT_EMPTY_PATH : 0)));
  };
  // A subdirectory of a mount, without what is mounted on the way: cloned from a clone of that mount
  // alone (open_tree without AT_RECURSIVE has no submounts). Takes `alone` over.
  const cloneSub = (alone: number, sub: string): number => {
    if (sub === '') return alone;
    try {
      return clone(alone, sub);
    } finally {
      t.syscall('close', NR.close, alone);
    }
  };
  const fds = new Map<number, number>();
  const groups = new Map<number, number>();
  const extSources = new Map<number, number>();
  /** external mount id -> our fd on a clone of its source, a peer of the source's group (criu-ts's, not the task's) */
  const ourClones = new Map<number, number>();
  // Each mount is attached at its place in its parent mount, found from that mount's own fd (taken
  // when it was made, before anything was stacked on it): a path from the new root (the cwd) would
  // cross the mounts stacked since, and put a mount that was overmounted on the mount over it.
  const place = (e: MntEntry): { dfd: number; rel: string } => {
    if (e.mountpoint === '/') return { dfd: AT_FDCWD, rel: '/' };
    const parent = byId.get(e.parent_mnt_id);
    const dfd = fds.get(e.parent_mnt_id);
    if (parent === undefined || dfd === undefined) return { dfd: AT_FDCWD, rel: `.${e.mountpoint}` };
    const rel = parent.mountpoint === e.mountpoint ? '' : e.mountpoint.slice(parent.mountpoint === '/' ? 1 : parent.mountpoint.length + 1);
    return { dfd, rel };
  };
  const attach = (tree: number, e: MntEntry, what: string): void => {
    const { dfd, rel } = place(e);
    t.syscall(`move_mount(${what})`, NR.move_mount, tree, str(''), dfd, str(rel), MOVE_MOUNT_F_EMPTY_PATH | (rel === '' ? MOVE_MOUNT_T_EMPTY_PATH : 0));
  };
  const byId = new Map(input.steps.map((s) => [s.e.mnt_id, s.e]));
  try {
    for (const [g, path] of input.cross ?? []) groups.set(g, clone(path, ''));
    // An external mount whose peer group may be its source's: our clone of the source, when that is in a group.
    for (const s of input.steps) {
      if (s.how !== 'external' || !s.sharedWithSource) continue;
      const c = sourceGroupClone(s.path);
      if (c !== undefined) ourClones.set(s.e.mnt_id, c);
      else log.info(`mnt: external mount ${s.e.mnt_id} at ${s.e.mountpoint}: its source ${s.path} is in no peer group here; its group ${String(s.e.shared_id)} is made in the tree only`);
    }
    // An external mount that was a slave of a group outside is a clone of its source taken while that is still in its group.
    for (const s of input.steps) if (s.how === 'external' && s.slaveOutside) extSources.set(s.e.mnt_id, clone(s.path, ''));
    mount('mount(/, MS_REC|MS_PRIVATE)', undefined, '/', undefined, MS_REC | MS_PRIVATE, undefined);
    for (const s of input.steps) {
      log.debug(`mnt: ${s.how} mount ${s.e.mnt_id} at ${s.e.mountpoint}`);
      // The mount's own fd, kept: its place for its children, its handle for flags and propagation.
      let made: number;
      switch (s.how) {
        case 'root': {
          // Cloned by criu-ts, stacked on the task's "/" (the one place it can always reach), made
          // private before anything is mounted in it: nothing made here may propagate to its source.
          const ours = cloneMountTree(root, true);
          try {
            made = t.installFd(ours);
          } finally {
            closeSync(ours);
          }
          fds.set(s.e.mnt_id, made);
          attach(made, s.e, `--root ${root} onto /`);
          t.syscall('fchdir(new root)', NR.fchdir, made);
          mount('mount(new root, MS_REC|MS_PRIVATE)', undefined, '.', undefined, MS_REC | MS_PRIVATE, undefined);
          break;
        }
        case 'outer': {
          made = cloneSub(clone(s.path, ''), s.sub);
          fds.set(s.e.mnt_id, made);
          attach(made, s.e, `${s.path}${s.sub === '' ? '' : ` (${s.sub})`} at ${s.e.mountpoint}`);
          if (s.e.mountpoint === '/') t.syscall('fchdir(new root)', NR.fchdir, made);
          break;
        }
        case 'external': {
          const src = extSources.get(s.e.mnt_id);
          extSources.delete(s.e.mnt_id);
          made = src ?? clone(s.path, '');
          fds.set(s.e.mnt_id, made);
          attach(made, s.e, `external ${s.key}: ${s.path} at ${s.e.mountpoint}`);
          if (src !== undefined) {
            // A slave of its source's group at once: nothing made below it reaches the outside.
            setPropagation(t, made, MS_SLAVE, s.e.mountpoint);
            slaveOfOutside(t.pid, made, s);
          }
          break;
        }
        case 'bind': {
          const from = fds.get(s.from.mnt_id);
          if (from === undefined) throw new CriuTsError('EINTERNAL', `mount ${s.from.mnt_id} was not made before its bind ${s.e.mnt_id}`);
          // A pty slave bound elsewhere exists only once its pair does.
          if (s.from.fstype === FS_TYPES['devpts']?.code && /^\d+$/.test(s.sub)) input.ptySlave?.(from, Number(s.sub));
          if (s.e.deleted !== true) {
            made = cloneSub(clone(from, ''), s.sub);
            fds.set(s.e.mnt_id, made);
            attach(made, s.e, s.e.mountpoint);
            break;
          }
          // Its source was removed after the bind (zdtm's mntns_deleted): made again in the source
          // (empty, 0700 or 0600: dump.ts refuses anything else), bound, and removed once attached.
          const sub = s.sub;
          const { dfd, rel } = place(s.e);
          const dir = statSync(`/proc/${t.pid}/fd/${dfd}${rel === '' ? '' : `/${rel}`}`).isDirectory();
          const alone = clone(from, '');
          try {
            if (dir) t.syscall(`mkdirat(${sub})`, NR.mkdirat, alone, str(sub), 0o700);
            else t.syscall('close', NR.close, Number(t.syscall(`openat(${sub}, O_CREAT)`, NR.openat, alone, str(sub), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)));
            made = clone(alone, sub);
            fds.set(s.e.mnt_id, made);
            attach(made, s.e, s.e.mountpoint);
            t.syscall(`unlinkat(${sub})`, NR.unlinkat, alone, str(sub), dir ? AT_REMOVEDIR : 0);
          } finally {
            t.syscall('close', NR.close, alone);
          }
          break;
        }
        case 'fresh': {
          // Made detached, filled (through its fd: no path reaches a mount that is to be overmounted
          // once the tree is whole), then attached; a read-only one is made read-only once filled.
          const sb = s.e.sb_flags ?? 0;
          const first = s.tar === undefined ? sb : sb & ~MS_RDONLY;
          made = freshDetached(t, s.fstype, s.e, first);
          fds.set(s.e.mnt_id, made);
          if (s.tar !== undefined) untar(`/proc/${t.pid}/fd/${made}`, input.tar(s.tar), s.e, input.asRoot);
          if (first !== sb) reconfigureReadOnly(t, made, s.e.mountpoint);
          attach(made, s.e, `new ${s.fstype} at ${s.e.mountpoint}`);
          if (s.e.mountpoint === '/') t.syscall('fchdir(new root)', NR.fchdir, made);
          break;
        }
      }
      setMountFlags(t, made, s.e);
    }
    t.syscall('pivot_root(., .)', NR.pivot_root, str('.'), str('.'));
    t.syscall('umount2(old root, MNT_DETACH)', NR.umount2, str('.'), MNT_DETACH);
    t.syscall('chdir(/)', NR.chdir, str('/'));
    const joined = joinSourceGroups(t, input.steps, fds, ourClones);
    propagation(t, input.steps, fds, new Map([...groups, ...joined.groups]), joined.mounts);
  } finally {
    for (const fd of [...fds.values(), ...groups.values(), ...extSources.values()]) t.syscall('close', NR.close, fd);
    for (const fd of ourClones.values()) closeSync(fd);
  }
}

/** mount_setattr on the mount `fd` is open on: struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }. */
function mountSetattr(t: RestoreTaskHandle, fd: number, what: string, set: number, clr: number, propagation: number): void {
  const attr = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  attr.writeBigUInt64LE(BigInt(set), 0);
  attr.writeBigUInt64LE(BigInt(clr), 8);
  attr.writeBigUInt64LE(BigInt(propagation), 16);
  t.syscall(`mount_setattr(${what})`, NR.mount_setattr, fd, t.putString(''), AT_EMPTY_PATH, t.putBytes(attr), MOUNT_ATTR_SIZE_VER0);
}

function setPropagation(t: RestoreTaskHandle, fd: number, type: number, mountpoint: string): void {
  mountSetattr(t, fd, `${mountpoint}, ${type === MS_SLAVE ? 'MS_SLAVE' : type === MS_SHARED ? 'MS_SHARED' : `propagation 0x${type.toString(16)}`}`, 0, 0, type);
}


/**
 * The dumped per-mount flags, exactly (what is not set is cleared), as
 * MS_REMOUNT|MS_BIND would set them, on the mount's fd: no atime flag
 * shown in mountinfo means strictatime.
 */
function setMountFlags(t: RestoreTaskHandle, fd: number, e: MntEntry): void {
  const f = e.flags;
  let set = 0;
  if ((f & MS_RDONLY) !== 0) set |= MOUNT_ATTR_RDONLY;
  if ((f & MS_NOSUID) !== 0) set |= MOUNT_ATTR_NOSUID;
  if ((f & MS_NODEV) !== 0) set |= MOUNT_ATTR_NODEV;
  if ((f & MS_NOEXEC) !== 0) set |= MOUNT_ATTR_NOEXEC;
  if ((f & MS_NODIRATIME) !== 0) set |= MOUNT_ATTR_NODIRATIME;
  if ((f & MS_NOATIME) !== 0) set |= MOUNT_ATTR_NOATIME;
  else if ((f & MS_RELATIME) === 0) set |= MOUNT_ATTR_STRICTATIME;
  const clr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
  mountSetattr(t, fd, `${e.mountpoint}, flags 0x${f.toString(16)}`, set, clr, 0);
}

/** A filled new filesystem (its detached mount's fd) made read-only: fspick + fsconfig(ro) + reconfigure. */
function reconfigureReadOnly(t: RestoreTaskHandle, fd: number, mountpoint: string): void {
  const fs = Number(t.syscall(`fspick(${mountpoint})`, NR.fspick, fd, t.putString(''), FSPICK_CLOEXEC | FSPICK_EMPTY_PATH));
  try {
    t.syscall(`fsconfig(${mountpoint}: ro)`, NR.fsconfig, fs, FSCONFIG_SET_FLAG, t.putString('ro'), 0, 0);
    t.syscall(`fsconfig(${mountpoint}: reconfigure)`, NR.fsconfig, fs, FSCONFIG_CMD_RECONFIGURE, 0, 0, 0);
  } finally {
    t.syscall('close', NR.close, fs);
  }
}

/** Superblock flags as fsconfig flag names. */
const SB_FLAG_NAMES: readonly [number, string][] = [[MS_RDONLY, 'ro'], [MS_SYNCHRONOUS, 'sync'], [MS_DIRSYNC, 'dirsync'], [MS_MANDLOCK, 'mand'], [MS_LAZYTIME, 'lazytime']];

/** A new filesystem made in the task (fsopen, fsconfig, fsmount) as a detached mount: its fd there. */
function freshDetached(t: RestoreTaskHandle, fstype: string, e: MntEntry, sb: number): number {
  const fsfd = Number(t.syscall(`fsopen(${fstype})`, NR.fsopen, t.putString(fstype), FSOPEN_CLOEXEC));
  try {
    const set = (k: string, v: string | undefined): void => {
      const key = t.putString(k);
      if (v === undefined) t.syscall(`fsconfig(${k})`, NR.fsconfig, fsfd, FSCONFIG_SET_FLAG, key, 0, 0);
      else t.syscall(`fsconfig(${k}=${v})`, NR.fsconfig, fsfd, FSCONFIG_SET_STRING, key, t.putString(v), 0);
    };
    if (e.source !== undefined && e.source !== '') set('source', e.source);
    for (const o of (e.options ?? '').split(',')) {
      if (o === '') continue;
      const i = o.indexOf('=');
      set(i < 0 ? o : o.slice(0, i), i < 0 ? undefined : o.slice(i + 1));
    }
    for (const [f, name] of SB_FLAG_NAMES) if ((sb & f) !== 0) set(name, undefined);
    t.syscall(`fsconfig(create ${fstype})`, NR.fsconfig, fsfd, FSCONFIG_CMD_CREATE, 0, 0, 0);
    return Number(t.syscall(`fsmount(${fstype})`, NR.fsmount, fsfd, FSMOUNT_CLOEXEC, 0));
  } finally {
    t.syscall('close', NR.close, fsfd);
  }
}

/** A tmpfs's files, through the task's view of the new mount: its cwd (the new root) or a detached mount's fd. */
function untar(dir: string, data: Buffer, e: MntEntry, asRoot: readonly string[]): void {
  // A tmpfs made in a user namespace takes files only from ids it maps; the tar holds them as the tree saw them.
  const [cmd = 'tar', ...pre] = [...asRoot, 'tar'];
  const r = childProcess().spawnSync(cmd, [...pre, ...TAR_EXTRACT, '--directory', dir], { input: data, stdio: ['pipe', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
  if (r.error !== undefined || r.status !== 0) {
    // tar's first complaint, not its closing "Exiting with failure status".
    const why = r.error?.message ?? r.stderr.toString().trim().split('\n')[0] ?? `exit ${String(r.status)}`;
    throw new CriuTsError('ERESTORE', `mount ${e.mnt_id} at ${e.mountpoint}: cannot put its files back: ${why}`, { mountpoint: e.mountpoint });
  }
}

/**
 * Peer groups and masters, once every mount exists (each was made
 * private) and the tree is the task's root. The first member of a group
 * (in plan order) starts it, unless the group lives on in the parent's
 * namespace (a nested one's `outer` clones): then every member joins the
 * clone. The others join it, and a slave first joins a member of its
 * master's group, then turns slave. A member that is also a slave takes
 * its master from the first member it joins. Propagation types are set
 * with mount_setattr on the mount's fd: the new tree may have no /proc.
 */
function propagation(t: RestoreTaskHandle, steps: readonly MountStep[], fds: ReadonlyMap<number, number>, outer: ReadonlyMap<number, number>, joined: ReadonlySet<number>): void {
  const first = new Map<number, MntEntry>();
  for (const s of steps) {
    const g = s.e.shared_id ?? 0;
    if (g !== 0 && !first.has(g) && !outer.has(g)) first.set(g, s.e);
  }
  const fd = (e: MntEntry): number => fds.get(e.mnt_id) ?? -1;
  const groupFd = (g: number): number => outer.get(g) ?? fd(first.get(g) as MntEntry);
  const setGroup = (from: number, to: MntEntry, g: number): void => {
    t.syscall(`move_mount(${to.mountpoint} joins peer group ${g})`, NR.move_mount, from, t.putString(''), fd(to), t.putString(''), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH | MOVE_MOUNT_SET_GROUP);
  };
  const flag = (e: MntEntry, f: number): void => setPropagation(t, fd(e), f, e.mountpoint);
  const done = new Set<number>();
  const started = (g: number): boolean => outer.has(g) || (first.has(g) && done.has((first.get(g) as MntEntry).mnt_id));
  const ready = (e: MntEntry): boolean => {
    const g = e.shared_id ?? 0;
    const m = masterOf(e);
    if (g !== 0 && first.get(g) !== e) return started(g);
    return m === 0 || started(m);
  };
  // A master outside (an external mount's, made a slave of its source's group when bound) is not set here.
  const outside = new Set(steps.filter((s) => s.how === 'external' && s.slaveOutside).map((s) => s.e.mnt_id));
  const masterOf = (e: MntEntry): number => (outside.has(e.mnt_id) ? 0 : e.master_id ?? 0);
  let todo = steps.map((s) => s.e).filter((e) => !joined.has(e.mnt_id) && ((e.shared_id ?? 0) !== 0 || masterOf(e) !== 0));
  while (todo.length > 0) {
    const next = todo.filter((e) => !ready(e));
    if (next.length === todo.length) {
      throw new CriuTsError('ERESTORE', `mount ${todo[0]?.mnt_id}: its master's peer group is in no dumped mount`, {});
    }
    for (const e of todo.filter(ready)) {
      const g = e.shared_id ?? 0;
      const m = masterOf(e);
      if (g !== 0 && first.get(g) !== e) {
        setGroup(groupFd(g), e, g);
      } else {
        if (m !== 0) {
          setGroup(groupFd(m), e, m);
          flag(e, MS_SLAVE);
        }
        if (g !== 0) flag(e, MS_SHARED);
      }
      done.add(e.mnt_id);
    }
    todo = next;
  }
}

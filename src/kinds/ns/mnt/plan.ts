/**
 * The order and the means of re-making a dumped mount tree, worked out
 * from mountpoints-<ns>.img before any task exists (so a missing --root,
 * --external mapping or tar image fails the restore before anything is
 * made). Pure: no syscall here.
 *
 * Each mount is, in an order where its parent and its source come first:
 *  - `root`: the namespace's "/", a recursive bind of --root (as CRIU);
 *  - `external`: a bind of the path --external mnt[KEY]:PATH gives;
 *  - `bind`: a bind of a subdirectory of a mount made before it (same
 *    filesystem, its root holding ours);
 *  - `fresh`: a new mount of its type (tmpfs then gets its files back);
 *  - `outer`, in a nested namespace only: a bind of a mount of the parent's
 *    namespace (the copy the task is born with) that shows its root; the
 *    namespace's "/" is always one.
 */
import { resolve } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import type { MntEntry } from '../../../images/messages.js';
import { FS_TYPES, fsTypeName } from './fstypes.js';
import { within } from './dump.js';

export type MountStep =
  | { how: 'root'; e: MntEntry }
  /** slaveOutside: it was a slave of a peer group outside the dump, which its source at restore must be in */
  | { how: 'external'; e: MntEntry; path: string; key: string; slaveOutside: boolean }
  | { how: 'bind'; e: MntEntry; from: MntEntry; sub: string }
  | { how: 'fresh'; e: MntEntry; fstype: string; tar: string | undefined }
  | { how: 'outer'; e: MntEntry; path: string; sub: string };

/** The mounts a path can reach: a mount hidden under a later one on the same mountpoint is not. */
function visible(entries: readonly MntEntry[]): MntEntry[] {
  return entries.filter((e) => !entries.some((o) => o.mountpoint === e.mountpoint && o.mnt_id > e.mnt_id));
}

/**
 * A mount of the parent's namespace that shows `root` (a path inside o's
 * filesystem): o's mountpoint and the path below its root. The restore
 * clones o alone (no submounts) and then the subdirectory inside that
 * clone: a path walked from o's mountpoint would cross what is mounted
 * below it (another filesystem stacked on a directory on the way).
 */
function through(o: MntEntry, root: string): { path: string; sub: string } {
  return { path: o.mountpoint, sub: below(root, o.root) };
}

/**
 * A nested namespace's peer groups that live on in its parent's: group ->
 * the path of a member there (in the task's copy of the parent's tree).
 */
export function crossGroups(entries: readonly MntEntry[], outer: readonly MntEntry[]): Map<number, string> {
  const out = new Map<number, string>();
  const there = visible(outer);
  for (const e of entries) {
    for (const g of [e.shared_id ?? 0, e.master_id ?? 0]) {
      if (g === 0 || out.has(g)) continue;
      const o = there.find((x) => x.shared_id === g);
      if (o !== undefined) out.set(g, o.mountpoint);
    }
  }
  return out;
}

/** The external key of an entry: CRIU 4.2's ext_key, or older images' ext_mount with the key in root. */
function extKeyOf(e: MntEntry): string | undefined {
  if (e.ext_key !== undefined && e.ext_key !== '') return e.ext_key;
  return e.ext_mount === true ? e.root : undefined;
}

/** The relative path of `root` below `wide` ("" when equal). */
function below(root: string, wide: string): string {
  if (root === wide) return '';
  return wide === '/' ? root.slice(1) : root.slice(wide.length + 1);
}

/**
 * `outer`: for a nested namespace, the mounts of the parent's namespace
 * (built before it): its "/" and every mount that shows none of its own
 * are bound from there.
 */
export function planMounts(entries: readonly MntEntry[], file: string, extMounts: ReadonlyMap<string, string>, hasTar: (name: string) => boolean, outer?: readonly MntEntry[]): MountStep[] {
  const ids = new Set(entries.map((e) => e.mnt_id));
  const tops = entries.filter((e) => !ids.has(e.parent_mnt_id) || e.parent_mnt_id === e.mnt_id);
  const root = tops[0];
  if (root === undefined || tops.length !== 1 || root.mountpoint !== '/') {
    throw new CriuTsError('EIMAGE', `${file}: no single root mount at /`, { file });
  }
  const there = outer === undefined ? [] : visible(outer);
  const fromOuter = (e: MntEntry): MntEntry | undefined => there.find((o) => o.root_dev === e.root_dev && within(e.root, o.root));
  let first: MountStep = { how: 'root', e: root };
  if (outer !== undefined) {
    const o = fromOuter(root);
    if (o !== undefined) first = { how: 'outer', e: root, ...through(o, root.root) };
    else if (fsTypeName(root.fstype) === 'tmpfs' && root.root === '/') first = { how: 'fresh', e: root, fstype: 'tmpfs', tar: tarOf(root) };
    else throw new CriuTsError('EUNSUPPORTED', `${file}: its root (root ${root.root}) shows no mount of the namespace it was made from`, { file });
  }
  const steps: MountStep[] = [first];
  const made = new Map<number, MntEntry>([[root.mnt_id, root]]);
  // Children in the order mountinfo lists them, parents first; a bind
  // waits for its source. That order is the order of mounting (the kernel
  // keeps a namespace's mounts by their never-reused unique id); mnt_id is
  // not (a freed one is given again), so a tree whose first mount's id is
  // higher than a later one's would come back in another order.
  let rest = entries.filter((e) => e !== root);
  const firstFull = new Map<number, MntEntry>();
  while (rest.length > 0) {
    const waiting: MntEntry[] = [];
    for (const e of rest) {
      // A mount on a directory above a sibling's mountpoint hides it: the sibling goes first.
      const under = e.mountpoint === '/' ? '/' : `${e.mountpoint}/`;
      if (!made.has(e.parent_mnt_id) || rest.some((o) => o.parent_mnt_id === e.parent_mnt_id && !made.has(o.mnt_id) && o.mountpoint.startsWith(under))) {
        waiting.push(e);
        continue;
      }
      const step = stepFor(e);
      if (step === undefined) {
        waiting.push(e);
        continue;
      }
      steps.push(step);
      made.set(e.mnt_id, e);
    }
    if (waiting.length === rest.length) {
      const e = waiting[0] as MntEntry;
      const t = fsTypeName(e.fstype) ?? e.fsname ?? `type ${e.fstype}`;
      throw new CriuTsError('EIMAGE', `${file}: mount ${e.mnt_id} at ${e.mountpoint} (${t}, root ${e.root}) has no parent or source to be made from`, { file, mountpoint: e.mountpoint });
    }
    rest = waiting;
  }
  return steps;

  function stepFor(e: MntEntry): MountStep | undefined {
    const key = extKeyOf(e);
    if (key !== undefined) {
      const given = extMounts.get(key);
      // A relative source is taken from "/" (CRIU makes its mounts from there; zdtm's mnt_root_ext gives one).
      const path = given === undefined ? undefined : resolve('/', given);
      if (path === undefined) {
        throw new CriuTsError('EUSAGE', `mount ${e.mnt_id} at ${e.mountpoint} is external (key ${key}): give its source with --external mnt[${key}]:PATH`, { mountpoint: e.mountpoint, key });
      }
      const m = e.master_id ?? 0;
      return { how: 'external', e, path, key, slaveOutside: m !== 0 && !entries.some((o) => o.shared_id === m) && !(outer ?? []).some((o) => o.shared_id === m) };
    }
    const from = [...made.values()].find((o) => o.root_dev === e.root_dev && within(e.root, o.root) && (o.mnt_id !== e.mnt_id));
    if (from !== undefined) return { how: 'bind', e, from, sub: below(e.root, from.root) };
    // A view of an external mount's filesystem is a bind of it (dump.ts saved no files for it), even
    // when mountinfo lists it first (bound into the tree before the external mount was made from it).
    if (entries.some((o) => o !== e && extKeyOf(o) !== undefined && o.root_dev === e.root_dev && within(e.root, o.root) && !made.has(o.mnt_id))) return undefined;
    const o = fromOuter(e);
    if (o !== undefined) return { how: 'outer', e, ...through(o, e.root) };
    const fstype = fsTypeName(e.fstype);
    const type = fstype === undefined ? undefined : FS_TYPES[fstype];
    if (fstype === undefined || type === undefined || e.root !== '/') {
      // Maybe its source is still to come (a bind made before the mount it shows).
      if (entries.some((o) => o !== e && o.root_dev === e.root_dev && within(e.root, o.root) && !made.has(o.mnt_id))) return undefined;
      const t = fstype ?? e.fsname ?? `fstype ${e.fstype}`;
      throw new CriuTsError('EUNSUPPORTED', `mount ${e.mnt_id} at ${e.mountpoint} (${t}, root ${e.root}) cannot be made: no dumped mount shows its filesystem`, { mountpoint: e.mountpoint });
    }
    if (firstFull.has(e.root_dev)) return undefined;
    firstFull.set(e.root_dev, e);
    return { how: 'fresh', e, fstype, tar: type.tar ? tarOf(e) : undefined };
  }

  function tarOf(e: MntEntry): string {
    const tar = imageFile('TMPFS_DEV', e.root_dev);
    if (!hasTar(tar)) throw new CriuTsError('EIMAGE', `${tar} is missing: the files of the ${fsTypeName(e.fstype) ?? 'filesystem'} at ${e.mountpoint} cannot be restored`, { file: tar });
    return tar;
  }
}

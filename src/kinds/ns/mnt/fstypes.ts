/**
 * What criu-ts knows of each filesystem type a mount namespace may hold:
 * CRIU's `fstype` number (images/mnt.proto), whether a mount of it can be
 * made anew at restore, and whether its contents travel in the images.
 * Also the mount flags as mountinfo prints them, split as CRIU splits
 * them: per-mount flags (`flags`, the 6th field) and superblock flags
 * (`sb_flags`, taken out of the super options, whose rest is `options`).
 */
import {
  MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_RELATIME, MS_SYNCHRONOUS,
} from '../../../sys/index.js';

export interface FsType {
  /** CRIU's fstype enum value */
  code: number;
  /** a fresh mount of this type holds everything (no contents to save), or the contents are saved (tmpfs) */
  fresh: boolean;
  /** the contents are saved as a gzip'd tar (tmpfs-dev-<s_dev>.tar.gz.img) */
  tar: boolean;
}

/**
 * The types a restore can mount anew. proc, sysfs, mqueue and cgroup
 * mounts show the namespaces of the task that mounts them (the restored
 * root, inside every namespace it was given): nothing of theirs is saved.
 */
export const FS_TYPES: Readonly<Record<string, FsType>> = {
  proc: { code: 1, fresh: true, tar: false },
  sysfs: { code: 2, fresh: true, tar: false },
  binfmt_misc: { code: 4, fresh: true, tar: false },
  tmpfs: { code: 5, fresh: true, tar: true },
  devpts: { code: 6, fresh: true, tar: false },
  securityfs: { code: 9, fresh: true, tar: false },
  fusectl: { code: 10, fresh: true, tar: false },
  debugfs: { code: 11, fresh: true, tar: false },
  cgroup: { code: 12, fresh: true, tar: false },
  mqueue: { code: 14, fresh: true, tar: false },
  tracefs: { code: 19, fresh: true, tar: false },
  cgroup2: { code: 23, fresh: true, tar: false },
};

/** CRIU's FSTYPE__UNSUPPORTED: a type restored only by a bind (the ns root, or a bind inside it) or as an external mount. */
export const FSTYPE_UNSUPPORTED = 0;

/** The type name of a CRIU fstype number (for the restore of an image). */
export function fsTypeName(code: number): string | undefined {
  return Object.entries(FS_TYPES).find(([, t]) => t.code === code)?.[0];
}

/** mountinfo's per-mount options (field 6) as MS_* flags; "rw" is no flag, relatime is the kernel's default but shown. */
const MNT_OPTS: Readonly<Record<string, number>> = {
  ro: MS_RDONLY, rw: 0, nosuid: MS_NOSUID, nodev: MS_NODEV, noexec: MS_NOEXEC,
  noatime: MS_NOATIME, nodiratime: MS_NODIRATIME, relatime: MS_RELATIME,
};

/** Super options that are superblock flags, not the filesystem's own options. */
const SB_OPTS: Readonly<Record<string, number>> = {
  ro: MS_RDONLY, rw: 0, sync: MS_SYNCHRONOUS, dirsync: MS_DIRSYNC, mand: MS_MANDLOCK, lazytime: MS_LAZYTIME,
};

/** Per-mount flags from mountinfo's 6th field; an option we do not know is returned to be refused. */
export function mountFlags(options: string): { flags: number; unknown: string[] } {
  let flags = 0;
  const unknown: string[] = [];
  for (const o of options.split(',')) {
    if (o === '') continue;
    const f = MNT_OPTS[o];
    if (f === undefined) unknown.push(o);
    else flags |= f;
  }
  return { flags, unknown };
}

/** Super options split into superblock flags and the rest, in order (CRIU's sb_flags and options). */
export function superFlags(superOptions: string): { sbFlags: number; options: string } {
  let sbFlags = 0;
  const rest: string[] = [];
  for (const o of superOptions.split(',')) {
    if (o === '') continue;
    const f = SB_OPTS[o];
    if (f === undefined) rest.push(o);
    else sbFlags |= f;
  }
  return { sbFlags, options: rest.join(',') };
}

/** The kernel's internal dev_t (MKKDEV: major << 20 | minor), as CRIU writes root_dev and names tmpfs-dev-N images. */
export function kdev(major: number, minor: number): number {
  return ((major << 20) | minor) >>> 0;
}

/**
 * Mount flags and the new mount API's flags (linux/mount.h, uapi
 * linux/fs.h): mount(2)'s MS_*, umount2's MNT_DETACH, open_tree,
 * move_mount, fsopen/fsconfig/fsmount/fspick and mount_setattr.
 */

/** mount(2) flags (also mountinfo's per-mount and per-superblock options, as the kinds read them) */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** umount2(2) */
export const MNT_DETACH = 2;

/** open_tree(2); OPEN_TREE_CLOEXEC is O_CLOEXEC's value */
export const OPEN_TREE_CLONE = 1;
export const OPEN_TREE_CLOEXEC = 0o2000000;
export const AT_RECURSIVE = 0x8000;

/** move_mount(2) */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
export const MOVE_MOUNT_SET_GROUP = 0x100;

/** fsopen(2), fsmount(2), fspick(2), fsconfig(2) */
export const FSOPEN_CLOEXEC = 1;
export const FSMOUNT_CLOEXEC = 1;
export const FSPICK_CLOEXEC = 1;
export const FSPICK_EMPTY_PATH = 8;
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_CMD_CREATE = 6;
export const FSCONFIG_CMD_RECONFIGURE = 7;

/** mount_setattr(2): struct mount_attr's first version, and its attr_set/attr_clr bits */
export const MOUNT_ATTR_SIZE_VER0 = 32;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;

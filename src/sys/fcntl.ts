/**
 * Open flags, fcntl commands, *at() flags and lseek whences (x86_64,
 * asm-generic/fcntl.h, linux/fcntl.h, linux/fs.h), and the statfs magics
 * code compares with. Declared once here; every layer imports them.
 */

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
/** as fdinfo shows it: the kernel sets it on every open of a 64-bit task */
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;

export const F_DUPFD = 0;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_SETOWN_EX = 15;
export const FD_CLOEXEC = 1;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** statfs f_type of a hugetlbfs mount */
export const HUGETLBFS_MAGIC = 0x958458f6;

/** File type bits of st_mode (sys/stat.h). */
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFLNK = 0o120000;

// Used by the kinds (src/kinds), declared here once.
export const F_UNLCK = 2;
export const F_SETPIPE_SZ = 1031;
export const F_GETPIPE_SZ = 1032;
export const EPOLL_CTL_ADD = 1;
export const EFD_SEMAPHORE = 1;
export const FAN_MARK_ADD = 0x1;
export const FAN_MARK_MOUNT = 0x10;
export const FAN_MARK_IGNORED_MASK = 0x20;
export const LEASE_BREAKING = 4;
export const F_SETLEASE = 1024;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_SETLK = 6;
export const F_OFD_SETLK = 37;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const F_SETOWN = 8;
export const F_GETOWN_EX = 16;
export const F_SETSIG = 10;
export const F_GETSIG = 11;
/** Flags that change how add_watch treats the mask, not part of the watch itself. */
export const IN_MASK_CREATE = 0x10000000;
export const IN_MASK_ADD = 0x20000000;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const MFD_ALLOW_SEALING = 2;
export const MFD_HUGETLB = 4;
export const MFD_HUGE_SHIFT = 26;
export const SPLICE_F_NONBLOCK = 2;
export const O_DIRECT = 0o40000;
/** __O_TMPFILE | O_DIRECTORY */
export const O_TMPFILE = 0o20200000;
export const MQUEUE_MAGIC = 0x19800202;
export const PROC_SUPER_MAGIC = 0x9fa0;
export const TFD_TIMER_ABSTIME = 1;
export const DEVPTS_SUPER_MAGIC = 0x1cd1;

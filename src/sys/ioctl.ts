/** ioctl request numbers used on files and sockets from our side (x86_64, asm-generic/ioctls.h, linux/sockios.h). */

/** bytes ready to read: a pipe, an inotify fd */
export const FIONREAD = 0x541b;
/** a socket's receive queue length (FIONREAD under its socket name) */
export const SIOCINQ = 0x541b;
/** SIOCUNIXFILE (SIOCPROTOPRIVATE + 0): an O_PATH fd of the file a unix socket is bound to (ENOENT: unbound or abstract) */
export const SIOCUNIXFILE = 0x89e0;
/** struct ifreq: the index of the device named (linux/sockios.h) */
export const SIOCGIFINDEX = 0x8933;

// Used by the kinds (src/kinds), declared here once.
export const SIOCOUTQ = 0x5411;
export const SIOCOUTQNSD = 0x894b;
export const SIOCGIFNAME = 0x8910;
/** _IOW('T', 0, __u64): the kernel's checkpoint/restore hook for timerfd ticks. */
export const TFD_IOC_SET_TICKS = 0x40085400;
/** struct termios of a terminal: fails (ENOTTY) on anything else, which is how isatty(3) tells */
export const TCGETS = 0x5401;
export const TIOCSTI = 0x5412;
export const TIOCINQ = 0x541b;

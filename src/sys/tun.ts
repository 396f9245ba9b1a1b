/**
 * The tun/tap driver's ioctls and interface flags (linux/if_tun.h), for
 * the tun devices of a net namespace and the /dev/net/tun files on them.
 */

export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNSETOWNER = 0x400454cc;
export const TUNSETGROUP = 0x400454ce;
export const TUNGETIFF = 0x800454d2;
export const TUNGETSNDBUF = 0x800454d3;
export const TUNSETSNDBUF = 0x400454d4;
export const TUNGETVNETHDRSZ = 0x800454d7;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;
export const TUNSETIFINDEX = 0x400454da;
export const TUNGETFILTER = 0x801054db;

/** struct ifreq's ifr_flags for TUNSETIFF/TUNGETIFF (not the netdevice IFF_* flags of the same names' family) */
export const IFF_TUN = 0x1;
export const IFF_TAP = 0x2;
export const IFF_MULTI_QUEUE = 0x100;
export const IFF_DETACH_QUEUE = 0x400;
export const IFF_PERSIST = 0x800;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;

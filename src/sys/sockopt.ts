/**
 * Socket constants the kinds use (linux/socket.h, in.h, in6.h, tcp.h,
 * netlink, sock_diag, unix_diag, inet_diag, packet): socket options and
 * their levels, protocols, and the sock_diag request and attribute numbers.
 * Declared here once; the calls that use them are in socket.ts.
 */
export const AF_PACKET = 17;
export const SOCK_PACKET = 10;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;
export const IP_FREEBIND = 15;
export const INET_DIAG_SHUTDOWN = 8;
/** a TCP socket bound and not listening; 6.7+ lists it when asked (TCPF_BOUND_INACTIVE) */
export const TCP_BOUND_INACTIVE = 13;
export const TCP_TIME_WAIT = 6;
export const SO_TYPE = 3;
export const SO_PEERNAME = 28;
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_PKTINFO = 8;
export const IP_TRANSPARENT = 19;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_TRANSPARENT = 75;
export const IPV6_FREEBIND = 78;
export const TCP_NODELAY = 1;
export const TCP_CORK = 3;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const SO_REUSEPORT = 15;
export const SOL_RAW = 255;
export const SOL_ICMPV6 = 58;
export const IP_HDRINCL = 3;
export const IP_NODEFRAG = 22;
export const ICMP_FILTER = 1;
export const IPV6_HDRINCL = 36;
export const IPV6_CHECKSUM = 7;
export const ICMPV6_FILTER = 1;
export const IPPROTO_MH = 135;
export const TCP_MAXSEG = 2;
export const TCP_REPAIR = 19;
export const TCP_QUEUE_SEQ = 21;
export const TCP_REPAIR_OPTIONS = 22;
export const TCP_TIMESTAMP = 24;
export const TCP_REPAIR_WINDOW = 29;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const SO_BUF_LOCK = 72;
export const SHUT_WR = 1;
export const IPPROTO_RAW = 255;
export const SO_MARK = 36;
export const NDIAG_PROTO_ALL = 255;
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_CONNECTED = 1;
export const SOL_PACKET = 263;
export const SO_ATTACH_FILTER = 26;
export const SO_LOCK_FILTER = 44;
export const IFNAMSIZ = 16;
export const UDIAG_SHOW_NAME = 0x01;
export const UDIAG_SHOW_VFS = 0x02;
export const UDIAG_SHOW_PEER = 0x04;
export const UDIAG_SHOW_ICONS = 0x08;
export const UDIAG_SHOW_RQLEN = 0x10;
export const UNIX_DIAG_NAME = 0;
export const UNIX_DIAG_VFS = 1;
export const UNIX_DIAG_PEER = 2;
export const UNIX_DIAG_ICONS = 3;
export const UNIX_DIAG_RQLEN = 4;
export const UNIX_DIAG_SHUTDOWN = 6;
export const SO_PEEK_OFF = 42;

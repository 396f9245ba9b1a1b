/**
 * nftables through netlink (NETLINK_NETFILTER), for the one question the
 * network lock asks on every restore: is the dump's table there? Running
 * the nft program for it costs a process start (about 10-20 ms); the
 * kernel answers a NFT_MSG_GETTABLE in microseconds. Changing rules stays
 * with the nft program (kinds/files/inet-socket/net-lock.ts).
 */
import { nlRequest } from './socket.js';
import { SyscallError } from './error.js';
import { ENOENT } from './errno.js';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETTABLE = 1;
const NFTA_TABLE_NAME = 1;
/** nfgenmsg.nfgen_family for nft's table families */
export const NFPROTO = { inet: 1, ip: 2, ip6: 10 } as const;

/**
 * Whether table `name` of `family` exists in the calling thread's net
 * namespace: true or false as the kernel says; undefined when it cannot be
 * asked (no nf_tables, no permission), so the caller falls back to nft.
 */
export function nftTableExists(family: keyof typeof NFPROTO, name: string): boolean | undefined {
  // struct nfgenmsg: family, version (NFNETLINK_V0), resource id (0)
  const head = Buffer.from([NFPROTO[family], 0, 0, 0]);
  try {
    nlRequest(NETLINK_NETFILTER, 'NFT_MSG_GETTABLE', (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, head, [[NFTA_TABLE_NAME, Buffer.from(`${name}\0`)]]);
    return true;
  } catch (e) {
    if (e instanceof SyscallError && e.errno === ENOENT) return false;
    return undefined;
  }
}

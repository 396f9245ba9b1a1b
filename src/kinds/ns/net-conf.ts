/**
 * The sysctls of a network namespace CRIU saves, under
 * /proc/sys/net (the kernel answers for the caller's net namespace: the
 * caller is our thread stepped into the task's with setns): the ipv4 and
 * ipv6 `conf/{all,default,<device>}/*` settings, net.unix.max_dgram_qlen
 * and net.ipv4.ping_group_range. CRIU stores them by position: entry i of
 * conf4 is the i-th name of its list below, so the lists are CRIU 4.2's,
 * in its order. A setting this kernel lacks is saved without a value and
 * skipped at restore, as CRIU does.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readSysctl } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import type { SysctlEntry } from '../../images/messages.js';

/** net/ipv4/conf/<x>/ names, in CRIU's order (its devconfs4). */
export const IPV4_CONF: readonly string[] = [
  'accept_local', 'accept_redirects', 'accept_source_route', 'arp_accept', 'arp_announce', 'arp_filter',
  'arp_ignore', 'arp_notify', 'bootp_relay', 'disable_policy', 'disable_xfrm', 'force_igmp_version',
  'forwarding', 'igmpv2_unsolicited_report_interval', 'igmpv3_unsolicited_report_interval', 'log_martians',
  'medium_id', 'promote_secondaries', 'proxy_arp', 'proxy_arp_pvlan', 'route_localnet', 'rp_filter',
  'secure_redirects', 'send_redirects', 'shared_media', 'src_valid_mark', 'tag', 'ignore_routes_with_linkdown',
  'drop_gratuitous_arp', 'drop_unicast_in_l2_multicast',
];

/** net/ipv6/conf/<x>/ names, in CRIU's order (its devconfs6); stable_secret is a string. */
export const IPV6_CONF: readonly string[] = [
  'accept_dad', 'accept_ra', 'accept_ra_defrtr', 'accept_ra_from_local', 'accept_ra_min_hop_limit', 'accept_ra_mtu',
  'accept_ra_pinfo', 'accept_ra_rt_info_max_plen', 'accept_ra_rtr_pref', 'accept_redirects', 'accept_source_route',
  'autoconf', 'dad_transmits', 'disable_ipv6', 'drop_unicast_in_l2_multicast', 'drop_unsolicited_na',
  'force_mld_version', 'force_tllao', 'forwarding', 'hop_limit', 'ignore_routes_with_linkdown', 'keep_addr_on_down',
  'max_addresses', 'max_desync_factor', 'mldv1_unsolicited_report_interval', 'mldv2_unsolicited_report_interval',
  'mtu', 'ndisc_notify', 'optimistic_dad', 'proxy_ndp', 'regen_max_retry', 'router_probe_interval',
  'router_solicitation_delay', 'router_solicitation_interval', 'router_solicitations', 'stable_secret',
  'suppress_frag_ndisc', 'temp_prefered_lft', 'temp_valid_lft', 'use_oif_addrs_only', 'use_optimistic', 'use_tempaddr',
];

const STRING_SYSCTLS = new Set(['stable_secret', 'ping_group_range']);


function readEntry(path: string, name: string): SysctlEntry {
  const text = readSysctl(path);
  if (STRING_SYSCTLS.has(name)) return text === undefined ? { type: 'CTL_STR' } : { type: 'CTL_STR', sarg: text };
  const n = text === undefined ? NaN : Number.parseInt(text, 10);
  return Number.isFinite(n) ? { type: 'CTL_32', iarg: n } : { type: 'CTL_32' };
}

/** The conf entries of `proto` (ipv4/ipv6) for `target` ("all", "default" or a device), in CRIU's order. */
export function readConf(proto: 'ipv4' | 'ipv6', target: string): SysctlEntry[] {
  const names = proto === 'ipv4' ? IPV4_CONF : IPV6_CONF;
  return names.map((name) => readEntry(`net/${proto}/conf/${target}/${name}`, name));
}

/** net.unix.* and net.ipv4.* beyond conf, as netns_entry holds them. */
export function readUnixConf(): SysctlEntry[] {
  return [readEntry('net/unix/max_dgram_qlen', 'max_dgram_qlen')];
}

export function readIpv4Sysctls(): SysctlEntry[] {
  return [readEntry('net/ipv4/ping_group_range', 'ping_group_range')];
}

function valueOf(e: SysctlEntry | undefined): string | undefined {
  if (e === undefined) return undefined;
  if (e.type === 'CTL_STR') return e.sarg;
  return e.iarg === undefined ? undefined : String(e.iarg);
}

/** Write one sysctl when its value differs from what the kernel has (a write of the same value may be refused: mtu, stable_secret). */
function writeSysctl(path: string, value: string): void {
  const cur = readSysctl(path);
  if (cur === undefined && !existsSync(`/proc/sys/${path}`)) {
    throw new CriuTsError('ERESTORE', `sysctl ${path} of the restored net namespace is missing on this kernel (it was ${JSON.stringify(value)})`, { path });
  }
  // Present but unreadable: not set yet (stable_secret says EIO until it is written once).
  const same = cur !== undefined && (cur === value || cur.split(/\s+/).join(' ') === value.split(/\s+/).join(' '));
  if (same) return;
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `cannot set sysctl ${path} to ${JSON.stringify(value)} in the restored net namespace: ${(e as Error).message}`, { path }, e);
  }
}

/**
 * Put back the conf entries of `target`. Entries without a value were
 * missing at dump and are skipped; accept_redirects goes last, after
 * forwarding (which resets it), as CRIU does.
 */
export function writeConf(proto: 'ipv4' | 'ipv6', target: string, entries: readonly SysctlEntry[] | undefined): void {
  if (entries === undefined || entries.length === 0) return;
  const names = proto === 'ipv4' ? IPV4_CONF : IPV6_CONF;
  const order = names.map((n, i) => i).filter((i) => i < entries.length);
  const ar = names.indexOf('accept_redirects');
  const sorted = [...order.filter((i) => i !== ar), ...order.filter((i) => i === ar)];
  for (const i of sorted) {
    const v = valueOf(entries[i]);
    if (v === undefined) continue;
    writeSysctl(`net/${proto}/conf/${target}/${names[i] as string}`, v);
  }
}

export function writeUnixConf(entries: readonly SysctlEntry[] | undefined): void {
  const v = valueOf(entries?.[0]);
  if (v !== undefined) writeSysctl('net/unix/max_dgram_qlen', v);
}

export function writeIpv4Sysctls(entries: readonly SysctlEntry[] | undefined): void {
  const v = valueOf(entries?.[0]);
  if (v !== undefined) writeSysctl('net/ipv4/ping_group_range', v);
}

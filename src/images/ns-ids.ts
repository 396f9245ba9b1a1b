/**
 * Namespace ids in images (ids-*.img, inventory root_ids): which field holds
 * each namespace kind, in CRIU's order, the order its ids are given out in
 * (the dumper's own namespaces first: pid 1, net 2, ... cgroup 8).
 */
import type { TaskKobjIdsEntry } from './messages.js';

export const NS_KINDS = ['pid', 'net', 'ipc', 'uts', 'time', 'mnt', 'user', 'cgroup'] as const;
export type NsKind = (typeof NS_KINDS)[number];

export const NS_ID_FIELD: Readonly<Record<NsKind, keyof TaskKobjIdsEntry>> = {
  pid: 'pid_ns_id', net: 'net_ns_id', ipc: 'ipc_ns_id', uts: 'uts_ns_id',
  time: 'time_ns_id', mnt: 'mnt_ns_id', user: 'user_ns_id', cgroup: 'cgroup_ns_id',
};

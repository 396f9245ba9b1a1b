/**
 * /proc/PID/net/{raw,raw6,icmp,icmp6}: raw and ICMP ping sockets of the
 * task's network namespace. sock_diag is no help for these: the kernel has
 * no ping diag, and raw diag lists nothing on some kernels (6.18 here); and
 * getpeername on them says ENOTCONN even when connected (their peer port
 * is 0). Each line gives the addresses, the state and the queue sizes.
 */
import { readProcText } from './read.js';

export interface ProcNetSocket {
  inode: number;
  /** address as the kernel keeps it: 1 (IPv4) or 4 (IPv6) host-endian words of network-order bytes */
  local: number[];
  /** raw: the protocol number; ping: the echo identifier */
  localPort: number;
  remote: number[];
  remotePort: number;
  state: number;
  txQueue: number;
  rxQueue: number;
}

function words(hex: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += 8) out.push(parseInt(hex.slice(i, i + 8), 16) >>> 0);
  return out;
}

function endpoint(s: string | undefined): [number[], number] | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(s ?? '');
  return m?.[1] === undefined || m[2] === undefined ? undefined : [words(m[1]), parseInt(m[2], 16)];
}

/** The sockets listed in /proc/PID/net/`table`, by inode. */
export function procNetSockets(pid: number, table: 'raw' | 'raw6' | 'icmp' | 'icmp6'): Map<number, ProcNetSocket> {
  const out = new Map<number, ProcNetSocket>();
  const lines = readProcText(pid, `/proc/${pid}/net/${table}`).split('\n').slice(1);
  for (const line of lines) {
    // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ...
    const f = line.trim().split(/\s+/);
    const local = endpoint(f[1]);
    const remote = endpoint(f[2]);
    const q = /^([0-9A-Fa-f]+):([0-9A-Fa-f]+)$/.exec(f[4] ?? '');
    if (!local || !remote || !q?.[1] || !q[2] || f[9] === undefined) continue;
    const inode = Number(f[9]);
    out.set(inode, {
      inode, local: local[0], localPort: local[1], remote: remote[0], remotePort: remote[1],
      state: parseInt(f[3] ?? '0', 16), txQueue: parseInt(q[1], 16), rxQueue: parseInt(q[2], 16),
    });
  }
  return out;
}

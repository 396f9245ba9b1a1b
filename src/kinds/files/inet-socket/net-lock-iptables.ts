/**
 * The network lock with iptables (--network-lock iptables), connection by
 * connection, in the rules CRIU writes, so that either tool unlocks what
 * the other locked: for a connection src:sport -> dst:dport, two rules in
 * the filter table,
 *
 *   INPUT:  -p tcp -m mark ! --mark 0xc114 -s dst --sport dport -d src --dport sport -j DROP
 *   OUTPUT: -p tcp -m mark ! --mark 0xc114 -s src --sport sport -d dst --dport dport -j DROP
 *
 * inserted (-I) at dump before the connection is looked at, deleted (-D) at
 * restore once it is back, or when the dump fails or leaves the tree
 * running. The program is `iptables`/`ip6tables` as installed (CRIU does
 * the same; the backend, legacy or nf_tables, is the system's), with -w.
 * A v4-mapped IPv6 connection is IPv4 on the wire.
 *
 * A dump killed before it is over leaves its rules; each is written to the
 * dump's marker (/run/criu-ts/net-lock/<run id>, see net-lock.ts) before it
 * is inserted, and the next criu-ts removes the rules of a marker whose
 * owner is gone.
 *
 * Whether iptables-legacy exists (check --feature has_ipt_legacy) is asked
 * as CRIU asks it: `iptables-save -V` (then `iptables-legacy-save -V`)
 * must run and not say nf_tables.
 */
import { childProcess } from '../../../builtins.js';
import { CriuTsError } from '../../../errors.js';
import { logger } from '../../../log.js';
import { AF_INET6 } from '../../../sys/index.js';
import { addrText, isV4Mapped } from './addr.js';
import { REPAIR_PACKET_MARK } from './tcp-states.js';

const log = logger('net-lock');

/** One locked connection as the marker keeps it: family 4 or 6, addresses in text. */
export interface IptConnection {
  v: 4 | 6;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}


function host(family: number, words: readonly number[]): string {
  const t = addrText(family, words, 0);
  return t.slice(0, t.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** The connection src -> dst as the rules name it (IPv4 for a v4-mapped IPv6 pair). */
export function iptConnection(family: number, src: readonly number[], sport: number, dst: readonly number[], dport: number): IptConnection {
  if (family === AF_INET6 && isV4Mapped(src) && isV4Mapped(dst)) {
    return { v: 4, src: host(2, [src[3] ?? 0]), sport, dst: host(2, [dst[3] ?? 0]), dport };
  }
  const v = family === AF_INET6 ? 6 : 4;
  return { v, src: host(family, src), sport, dst: host(family, dst), dport };
}

/** The two rules' arguments after -I/-D: [chain, ...match]. */
function rules(c: IptConnection): string[][] {
  const mark = ['-m', 'mark', '!', '--mark', `0x${REPAIR_PACKET_MARK.toString(16)}`];
  const rule = (chain: string, s: string, sp: number, d: string, dp: number): string[] =>
    [chain, '--protocol', 'tcp', ...mark, '--source', s, '--sport', String(sp), '--destination', d, '--dport', String(dp), '-j', 'DROP'];
  return [rule('INPUT', c.dst, c.dport, c.src, c.sport), rule('OUTPUT', c.src, c.sport, c.dst, c.dport)];
}

function iptables(v: 4 | 6, args: readonly string[]): { ok: boolean; why: string } {
  const bin = v === 6 ? 'ip6tables' : 'iptables';
  const r = childProcess().spawnSync(bin, ['-w', '-t', 'filter', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error === undefined && r.status === 0) return { ok: true, why: '' };
  const why = r.error !== undefined ? r.error.message : r.stderr.toString().trim().split('\n')[0] ?? `exit status ${String(r.status)}`;
  return { ok: false, why: `${bin}: ${why}` };
}

export function describe(c: IptConnection): string {
  const at = (h: string, p: number): string => (c.v === 6 ? `[${h}]:${p}` : `${h}:${p}`);
  return `${at(c.src, c.sport)} -> ${at(c.dst, c.dport)}`;
}

/** Insert both rules of `c`; the first is taken back if the second fails. */
export function iptLock(c: IptConnection): void {
  const [input, output] = rules(c) as [string[], string[]];
  const a = iptables(c.v, ['-I', ...input]);
  if (!a.ok) throw new CriuTsError('EDUMP', `network lock of ${describe(c)}: ${a.why}`, { connection: describe(c) });
  const b = iptables(c.v, ['-I', ...output]);
  if (!b.ok) {
    iptables(c.v, ['-D', ...input]);
    throw new CriuTsError('EDUMP', `network lock of ${describe(c)}: ${b.why}`, { connection: describe(c) });
  }
  log.debug(`locked ${describe(c)} (iptables)`);
}

/** The programs that delete both rules of `c` (argv each): what the guardian runs if criu-ts dies with them in place. */
export function iptUnlockArgv(c: IptConnection): string[][] {
  return rules(c).map((r) => [c.v === 6 ? 'ip6tables' : 'iptables', '-w', '-t', 'filter', '-D', ...r]);
}

/** Delete both rules of `c`; a rule already gone is what we want. Returns false if iptables failed otherwise. */
export function iptUnlock(c: IptConnection): boolean {
  let ok = true;
  for (const r of rules(c)) {
    const d = iptables(c.v, ['-D', ...r]);
    if (d.ok || /does a matching rule exist|bad rule|no chain\/target\/match/i.test(d.why)) continue;
    log.warn(`network unlock of ${describe(c)}: ${d.why}`);
    ok = false;
  }
  return ok;
}

/** The marker line of `c`, and back. */
export function iptMarkerLine(c: IptConnection): string {
  return `iptables ${c.v} ${c.src} ${c.sport} ${c.dst} ${c.dport}`;
}

export function parseIptMarkerLine(line: string): IptConnection | undefined {
  const m = /^iptables ([46]) ([0-9a-fA-F.:]+) (\d+) ([0-9a-fA-F.:]+) (\d+)$/.exec(line.trim());
  if (!m) return undefined;
  return { v: m[1] === '6' ? 6 : 4, src: m[2] as string, sport: Number(m[3]), dst: m[4] as string, dport: Number(m[5]) };
}

/** `bin -V` runs and its backend is not nf_tables. */
function legacy(bin: string): boolean {
  const r = childProcess().spawnSync(bin, ['-V'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return r.error === undefined && r.status === 0 && !r.stdout.toString().includes('nf_tables');
}

/** check --feature has_ipt_legacy: an iptables-save (v4 and v6) with the legacy backend. */
export function probeIptLegacy(): { ok: boolean; why?: string } {
  for (const [plain, alt] of [['iptables-save', 'iptables-legacy-save'], ['ip6tables-save', 'ip6tables-legacy-save']] as const) {
    if (!legacy(plain) && !legacy(alt)) return { ok: false, why: `neither ${plain} nor ${alt} uses the legacy iptables backend` };
  }
  return { ok: true };
}

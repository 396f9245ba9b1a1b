/**
 * The restore's own packets through the tree's firewall. While a net
 * namespace is being restored, criu-ts writes segments in a TCP peer's name
 * (the FIN and ACK of a half-closed connection, on a raw socket, marked
 * 0xc114 like CRIU's): the tree's own rules, already back, must not drop
 * them (zdtm socket-tcp-closed-last-ack drops its port's input to hold
 * LAST_ACK). CRIU gets this from its restore lock, a chain jumped to first
 * that accepts the mark. nftables runs every base chain of a hook and an
 * accept ends only its own chain, so here a rule accepting the mark goes
 * first into every base chain (ip, ip6, inet) at the hooks a local packet
 * passes, right after the ruleset is put back, and legacy iptables gets
 * the same at the top of its filter INPUT and OUTPUT when it had rules.
 * They are removed (by handle) once every connection is out of repair
 * mode, before the tree runs, and by a failed restore.
 *
 * Limits: chains of other families (netdev, bridge, arp) and legacy
 * iptables tables other than filter are left as they are.
 */
import { runTool } from './net-tools.js';
import { REPAIR_PACKET_MARK } from '../files/inet-socket/tcp-states.js';

const FAMILIES = new Set(['ip', 'ip6', 'inet']);
const HOOKS = new Set(['prerouting', 'input', 'output', 'postrouting']);

/** What was added to the namespace, to take out again. */
export interface RestorePass {
  nft: { family: string; table: string; chain: string; handle: number }[];
  legacy: { bin: string; chain: string }[];
}

interface NftChain { family?: string; table?: string; name?: string; hook?: string }

const MARK_RULE = ['-m', 'mark', '--mark', `0x${REPAIR_PACKET_MARK.toString(16)}`, '-j', 'ACCEPT'];

/**
 * In the namespace (our thread in it), after its firewall is back: let the
 * restore's marked packets pass every base chain. `legacy` names the
 * iptables-legacy binaries whose tables were put back (iptables-legacy,
 * ip6tables-legacy). Each rule goes into `pass` as soon as it is in, so
 * that a failure halfway still takes out what was added.
 */
export function openRestorePass(who: string, legacy: readonly string[], pass: RestorePass): void {
  const listed = runTool('ERESTORE', 'nft', ['-j', 'list', 'chains'], `${who}: nft list chains`, undefined, true);
  const chains = listed === undefined ? [] : (JSON.parse(listed.toString('utf8')) as { nftables?: { chain?: NftChain }[] }).nftables ?? [];
  for (const { chain: c } of chains) {
    if (c?.family === undefined || c.table === undefined || c.name === undefined || c.hook === undefined) continue;
    if (!FAMILIES.has(c.family) || !HOOKS.has(c.hook)) continue;
    const rule = {
      family: c.family, table: c.table, chain: c.name,
      expr: [{ match: { op: '==', left: { meta: { key: 'mark' } }, right: REPAIR_PACKET_MARK } }, { accept: null }],
    };
    const out = runTool('ERESTORE', 'nft', ['-j', '--echo', '--handle', '-f', '-'], `${who}: a pass for the restore's packets in ${c.family} ${c.table} ${c.name}`,
      Buffer.from(JSON.stringify({ nftables: [{ insert: { rule } }] })));
    const echoed = JSON.parse(out?.toString('utf8') ?? '{}') as { nftables?: { insert?: { rule?: { handle?: number } } }[] };
    const handle = echoed.nftables?.[0]?.insert?.rule?.handle;
    if (handle !== undefined) pass.nft.push({ family: c.family, table: c.table, chain: c.name, handle });
  }
  for (const bin of legacy) {
    for (const chain of ['INPUT', 'OUTPUT']) {
      runTool('ERESTORE', bin, ['-w', '-I', chain, '1', ...MARK_RULE], `${who}: a pass for the restore's packets in ${bin} filter ${chain}`);
      pass.legacy.push({ bin, chain });
    }
  }
}

/** In the namespace: take the passes out again (each one that is still there). */
export function closeRestorePass(pass: RestorePass, who: string): void {
  for (const r of pass.nft.splice(0)) {
    const del = { delete: { rule: { family: r.family, table: r.table, chain: r.chain, handle: r.handle } } };
    runTool('ERESTORE', 'nft', ['-j', '-f', '-'], `${who}: removing the pass in ${r.family} ${r.table} ${r.chain}`, Buffer.from(JSON.stringify({ nftables: [del] })), true);
  }
  for (const r of pass.legacy.splice(0)) runTool('ERESTORE', r.bin, ['-w', '-D', r.chain, ...MARK_RULE], `${who}: removing the pass in ${r.bin} ${r.chain}`, undefined, true);
}

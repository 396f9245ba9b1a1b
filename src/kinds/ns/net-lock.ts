/**
 * The network lock of a tree in a net namespace of its own
 * (--network-lock nftables|iptables): as CRIU does, the whole namespace is
 * locked, not connection by connection. A table `inet CRIU-<dump run id>`
 * (nftables), or CRIU's chain CRIU jumped to from INPUT and OUTPUT
 * (iptables, IPv4 and IPv6), made inside the namespace drops every packet
 * in and out, but those marked 0xc114 (the segments a restore writes in a
 * peer's name), from before any socket is dumped until the restored tree
 * runs.
 *
 * Lifetime: a failed dump, or one that leaves the tree running, deletes
 * the table. A dump that kills the tree leaves it: the namespace goes with
 * its last task, unless someone keeps it (a runtime's bind mount), and
 * then it stays locked, as with CRIU, until a restore into that namespace
 * (`--join-ns net:...`: unlockIn) or its owner removes it. The nftables ruleset is
 * read before the lock, so the table is never in nftables-<ns>.img.
 */
import { inNamespaceFiles, inNamespacesOf } from '../../sys/index.js';
import { checkRunId } from '../files/inet-socket/net-lock.js';
import { REPAIR_PACKET_MARK } from '../files/inet-socket/tcp-states.js';
import type { DumpContext } from '../types.js';
import { runTool } from './net-tools.js';
import { logger } from '../../log.js';
import { guardian } from '../../infect/guardian.js';

const log = logger('netns');

function table(runId: string): string {
  checkRunId(runId);
  return `inet CRIU-${runId}`;
}

/** The table that drops every packet but the restore's own (marked 0xc114). */
function lockScript(t: string): Buffer {
  const m = `0x${REPAIR_PACKET_MARK.toString(16)}`;
  return Buffer.from([
    `add table ${t}`,
    `add chain ${t} output { type filter hook output priority 0; policy drop; }`,
    `add chain ${t} input { type filter hook input priority 0; policy drop; }`,
    `add rule ${t} output meta mark ${m} accept`,
    `add rule ${t} input meta mark ${m} accept`,
    '',
  ].join('\n'));
}

/**
 * The iptables lock of a namespace, CRIU's rules to the letter (so either
 * tool lifts the other's): a chain CRIU in the filter table, jumped to
 * first from INPUT and OUTPUT, that accepts the restore's packets (mark
 * 0xc114) and drops the rest; for IPv4 and IPv6, with
 * `iptables-restore -w --noflush` as installed.
 */
const IPT_LOCK = `*filter\n:CRIU - [0:0]\n-I INPUT -j CRIU\n-I OUTPUT -j CRIU\n-A CRIU -m mark --mark 0x${REPAIR_PACKET_MARK.toString(16)} -j ACCEPT\n-A CRIU -j DROP\nCOMMIT\n`;
const IPT_UNJUMP = '*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\nCOMMIT\n';
const IPT_DROP_CHAIN = '*filter\n:CRIU - [0:0]\n-X CRIU\nCOMMIT\n';

export type NsLockMethod = 'nftables' | 'iptables';

/** Our thread is in the namespace: take the lock there. */
function lockHere(method: NsLockMethod, runId: string, code: 'EDUMP' | 'ERESTORE', what: string): void {
  if (method === 'nftables') {
    runTool(code, 'nft', ['-f', '-'], what, lockScript(table(runId)));
    return;
  }
  for (const bin of ['iptables-restore', 'ip6tables-restore']) runTool(code, bin, ['-w', '--noflush'], what, Buffer.from(IPT_LOCK));
}

/** Our thread is in the namespace: lift the lock there, if it is still there (its owner may have lifted it). */
function unlockHere(method: NsLockMethod, runId: string, what: string): boolean {
  if (method === 'nftables') {
    const t = table(runId);
    const tables = runTool('ERESTORE', 'nft', ['list', 'tables', 'inet'], what)?.toString('utf8') ?? '';
    if (!tables.split('\n').some((l) => l.trim() === `table ${t}`)) return false;
    runTool('ERESTORE', 'nft', ['delete', 'table', 'inet', t.split(' ')[1] as string], what);
    return true;
  }
  let found = false;
  for (const [bin, save] of [['iptables-restore', 'iptables-save'], ['ip6tables-restore', 'ip6tables-save']] as const) {
    const rules = runTool('ERESTORE', save, ['-t', 'filter'], what)?.toString('utf8') ?? '';
    if (!/^:CRIU /m.test(rules)) continue;
    found = true;
    // CRIU's order: the jumps (twice for iptables-nft, which may keep one), then the chain.
    while (/^-A (INPUT|OUTPUT) -j CRIU$/m.test(runTool('ERESTORE', save, ['-t', 'filter'], what)?.toString('utf8') ?? '')) {
      runTool('ERESTORE', bin, ['-w', '--noflush'], what, Buffer.from(IPT_UNJUMP));
    }
    runTool('ERESTORE', bin, ['-w', '--noflush'], what, Buffer.from(IPT_DROP_CHAIN));
  }
  return found;
}

/**
 * --empty-ns net at restore: the dump's lock is not among what the new,
 * empty namespace gets, so it is made again there (as CRIU does) and lifted
 * at network unlock (unlockIn). `nsFd` is our fd of the namespace.
 */
export function relockIn(nsFd: number, method: NsLockMethod, runId: string): void {
  inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${nsFd}` }], () => lockHere(method, runId, 'ERESTORE', 'the restored net namespace: network lock'));
  log.info(`restored net namespace: locked (${method})`);
}

/**
 * A restore into a namespace the dump locked (--join-ns net), or one
 * locked again at restore (relockIn): lift the dump's lock there, if it is
 * still there. `nsFd` is our fd of the namespace.
 */
export function unlockIn(nsFd: number, method: NsLockMethod, runId: string): void {
  const done = inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${nsFd}` }], () => unlockHere(method, runId, 'the restored net namespace: network unlock'));
  if (done) log.info(`restored net namespace: unlocked (${method})`);
}

/** Lock task `pid`'s net namespace (our thread must not be in it: it steps in itself). No-op with --network-lock skip. */
export function lockNamespace(ctx: DumpContext, pid: number, who: string): void {
  const method = ctx.opts.networkLock;
  if (method === 'skip') return;
  // Killed from here on, with the tree running on, the guardian lifts an
  // nftables lock (its table's name is this run's alone, in whatever
  // namespace the pid names by then); CRIU's iptables chain has a fixed
  // name, so that one is left to the next restore or the namespace's owner.
  if (method === 'nftables') guardian()?.undo(['nsenter', `--net=/proc/${pid}/ns/net`, '--', 'nft', 'delete', ...table(ctx.runId).split(' ')]);
  inNamespacesOf(pid, ['net'], () => lockHere(method, ctx.runId, 'EDUMP', `${who}: network lock`));
  ctx.atExit((tasksLive) => {
    // Tasks that run on need their network; killed ones leave the lock to the restore.
    if (!tasksLive) return;
    try {
      inNamespacesOf(pid, ['net'], () => unlockHere(method, ctx.runId, `${who}: network unlock`));
    } catch (e) {
      log.warn(`${who}: the network lock (${method}) could not be lifted: ${(e as Error).message}`);
    }
  });
  log.info(`${who}: locked (${method})`);
}

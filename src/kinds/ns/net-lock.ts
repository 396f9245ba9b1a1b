/**
 * The network lock of a tree in a net namespace of its own
 * (--network-lock nftables): as CRIU does, the whole namespace is locked,
 * not connection by connection. A table `inet CRIU-<dump run id>` made
 * inside the namespace drops every packet in and out, but those marked
 * 0xc114 (the segments a restore writes in a peer's name), from before any
 * socket is dumped until the restored tree runs.
 *
 * Lifetime: a failed dump, or one that leaves the tree running, deletes
 * the table. A dump that kills the tree leaves it: the namespace goes with
 * its last task, unless someone keeps it (a runtime's bind mount), and
 * then it stays locked, as with CRIU, until a restore into that namespace
 * (`--join-ns net:...`) or its owner removes it. The nftables ruleset is
 * read before the lock, so the table is never in nftables-<ns>.img.
 */
import { CriuTsError } from '../../errors.js';
import { inNamespacesOf } from '../../sys/index.js';
import { checkRunId } from '../files/inet-socket/net-lock.js';
import { REPAIR_PACKET_MARK } from '../files/inet-socket/tcp-states.js';
import type { DumpContext } from '../types.js';
import { runTool } from './net-tools.js';
import { logger } from '../../log.js';

const log = logger('netns');

function table(runId: string): string {
  checkRunId(runId);
  return `inet CRIU-${runId}`;
}

/** Lock task `pid`'s net namespace (our thread must not be in it: it steps in itself). No-op with --network-lock skip. */
export function lockNamespace(ctx: DumpContext, pid: number, who: string): void {
  if (ctx.opts.networkLock === 'skip') return;
  if (ctx.opts.networkLock !== 'nftables') {
    throw new CriuTsError('EUNSUPPORTED', `${who}: --network-lock ${ctx.opts.networkLock} is not supported (nftables or skip)`, {});
  }
  const t = table(ctx.runId);
  const m = `0x${REPAIR_PACKET_MARK.toString(16)}`;
  const script = [
    `add table ${t}`,
    `add chain ${t} output { type filter hook output priority 0; policy drop; }`,
    `add chain ${t} input { type filter hook input priority 0; policy drop; }`,
    `add rule ${t} output meta mark ${m} accept`,
    `add rule ${t} input meta mark ${m} accept`,
    '',
  ].join('\n');
  inNamespacesOf(pid, ['net'], () => runTool('EDUMP', 'nft', ['-f', '-'], `${who}: network lock`, Buffer.from(script)));
  ctx.atExit((tasksLive) => {
    // Tasks that run on need their network; killed ones leave the lock to the restore.
    if (!tasksLive) return;
    try {
      inNamespacesOf(pid, ['net'], () => runTool('EDUMP', 'nft', ['delete', 'table', ...t.split(' ')], `${who}: network unlock`));
    } catch (e) {
      log.warn(`${who}: the network lock table ${t} could not be removed: ${(e as Error).message}`);
    }
  });
  log.info(`${who}: locked (table ${t})`);
}

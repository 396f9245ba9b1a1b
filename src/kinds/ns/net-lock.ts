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
 * (`--join-ns net:...`: unlockIn) or its owner removes it. The nftables ruleset is
 * read before the lock, so the table is never in nftables-<ns>.img.
 */
import { CriuTsError } from '../../errors.js';
import { inNamespaceFiles, inNamespacesOf } from '../../sys/index.js';
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
 * --empty-ns net at restore: the dump's lock is not among what the new,
 * empty namespace gets, so it is made again there (as CRIU does) and lifted
 * at network unlock (unlockIn). `nsFd` is our fd of the namespace.
 */
export function relockIn(nsFd: number, runId: string): void {
  const t = table(runId);
  inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${nsFd}` }], () => {
    runTool('ERESTORE', 'nft', ['-f', '-'], 'the restored net namespace: network lock', lockScript(t));
  });
  log.info(`restored net namespace: locked (table ${t})`);
}

/** Lock task `pid`'s net namespace (our thread must not be in it: it steps in itself). No-op with --network-lock skip. */
export function lockNamespace(ctx: DumpContext, pid: number, who: string): void {
  if (ctx.opts.networkLock === 'skip') return;
  if (ctx.opts.networkLock !== 'nftables') {
    throw new CriuTsError('EUNSUPPORTED', `${who}: --network-lock ${ctx.opts.networkLock} is not supported (nftables or skip)`, {});
  }
  const t = table(ctx.runId);
  inNamespacesOf(pid, ['net'], () => runTool('EDUMP', 'nft', ['-f', '-'], `${who}: network lock`, lockScript(t)));
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

/**
 * A restore into a namespace the dump locked (--join-ns net), or one
 * locked again at restore (relockIn): remove the dump's table there, if it
 * is still there (its owner may have removed it). `nsFd` is our fd of the
 * namespace.
 */
export function unlockIn(nsFd: number, runId: string): void {
  const t = table(runId);
  const name = t.split(' ')[1] as string;
  inNamespaceFiles([{ type: 'net', path: `/proc/self/fd/${nsFd}` }], () => {
    const tables = runTool('ERESTORE', 'nft', ['list', 'tables', 'inet'], 'the restored net namespace: network unlock')?.toString('utf8') ?? '';
    if (!tables.split('\n').some((l) => l.trim() === `table ${t}`)) return;
    runTool('ERESTORE', 'nft', ['delete', 'table', 'inet', name], 'the restored net namespace: network unlock');
    log.info(`restored net namespace: unlocked (table ${t})`);
  });
}

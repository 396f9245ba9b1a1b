/**
 * The network lock as a kind of the tree (net-lock.ts says what the lock
 * is): at dump, the method goes into inventory.img (network_lock_method),
 * so that the restore lifts the lock the way it was taken; at restore, the
 * lock is lifted once every connection is back and before any task runs,
 * or, when the images hold no connection a lock could hold, once the tasks
 * run (the nft program takes milliseconds their first instruction need not
 * wait for). A failed restore lifts it too: no connection comes back from
 * it, and the peers' packets must not stay dropped.
 */
import { logger } from '../../../log.js';
import type { RestoreContext } from '../../types.js';
import type { ResourceKind } from '../../resource-kind.js';
import { checkRunId, clearStaleLocks, defaultLockMethod, holdsConnections, LOCK_METHOD, probeNftables, unlockNetwork } from './net-lock.js';
import { probeIptLegacy } from './net-lock-iptables.js';

const log = logger('net-lock');

function unlock(ctx: RestoreContext): void {
  unlockNetwork(ctx.inventory.network_lock_method, ctx.inventory.dump_criu_run_id, ctx.files);
}

export const netLockKind: ResourceKind = {
  name: 'network-lock',
  // check --feature: nftables and network_lock_nftables ask the same (nft makes and removes a table).
  probes: { nftables: probeNftables, network_lock_nftables: probeNftables, has_ipt_legacy: probeIptLegacy },
  dumpDefaults: () => ({ networkLock: defaultLockMethod() }),
  clearStale: clearStaleLocks,
  checkInventory(inv) {
    // The run id names the lock's table in an nft command: a plain id or nothing.
    const runId = inv.dump_criu_run_id;
    if (runId !== undefined && runId !== '') checkRunId(runId);
  },
  dumpTree(_tree, ctx) {
    ctx.setInventory({ network_lock_method: LOCK_METHOD[ctx.opts.networkLock] });
  },
  unlockNetwork(ctx, failed) {
    if (failed || holdsConnections(ctx.files)) unlock(ctx);
  },
  resumed(ctx) {
    if (holdsConnections(ctx.files)) return;
    try {
      unlock(ctx);
    } catch (e) {
      // The tasks run: a table that holds nothing of theirs is no reason to fail them.
      log.warn(`network lock: ${(e as Error).message}`);
    }
  },
};

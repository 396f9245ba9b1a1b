/**
 * The end of a dump: the tree-wide images once every task is dumped
 * (files, pstree, inventory, the kinds' own images, stats-dump).
 */
import type { PstreeEntry, InventoryEntry, TaskKobjIdsEntry, StatsEntry } from '../images/messages.js';
import type { DumpStats } from './options.js';
import type { DumpKindOptions } from '../kinds/index.js';
import type { DumpSession } from './context.js';
import { usToNow } from './tree.js';
import { storeImage } from '../images/index.js';

export interface TreeImages {
  pstree: PstreeEntry[];
  rootIds: TaskKobjIdsEntry;
  kinds: DumpKindOptions;
  stats: DumpStats;
  /** When the dump began: stats-dump's frozen time ends here. */
  t0: bigint;
  /** --work-dir: stats-dump goes there (CRIU writes it in its working directory, runc and podman read it there) */
  workDir?: string | undefined;
}

/** Written in this order; the kinds' images (queued data, memfd pages) last but stats-dump. */
export function writeTreeImages(ctx: DumpSession, t: TreeImages): void {
  ctx.saveImage('FILES', undefined, ctx.files);
  ctx.saveImage('PSTREE', undefined, t.pstree);
  const inv: InventoryEntry = {
    img_version: 2,
    fdinfo_per_id: true,
    ns_per_id: true,
    lsmtype: 'NO_LSM',
    // As CRIU: the restore must be told --tcp-close too.
    ...(t.kinds.tcpClose ? { tcp_close: true } : {}),
    dump_criu_run_id: ctx.runId,
    root_ids: t.rootIds,
    ...ctx.inventoryFields,
  };
  ctx.saveImage('INVENTORY', undefined, [inv]);
  ctx.finishImages();
  t.stats.frozenTimeUs = usToNow(t.t0);
  const stats = [statsEntry(t.stats, ctx.sharedPages)];
  if (t.workDir === undefined || t.workDir === ctx.dir) ctx.saveImage('STATS', 'dump', stats);
  else storeImage(t.workDir, 'STATS', 'dump', stats);
}

/**
 * stats-dump as CRIU fills it: pages_written counts the tasks' private
 * pages, shpages_written the pages of shared objects (shared anonymous
 * memory, memfds), so that together they are every page in pages-*.img
 * (CRIU's test suite checks exactly that).
 */
function statsEntry(stats: DumpStats, sharedPages: number): StatsEntry {
  return {
    dump: {
      freezing_time: stats.freezingTimeUs,
      frozen_time: stats.frozenTimeUs,
      memdump_time: stats.memdumpTimeUs,
      memwrite_time: stats.memwriteTimeUs,
      pages_scanned: BigInt(stats.pagesScanned),
      pages_skipped_parent: BigInt(stats.pagesSkippedParent),
      pages_written: BigInt(stats.pagesWritten),
      pages_lazy: BigInt(stats.pagesLazy),
      shpages_scanned: BigInt(sharedPages),
      shpages_skipped_parent: 0n,
      shpages_written: BigInt(sharedPages),
    },
  };
}

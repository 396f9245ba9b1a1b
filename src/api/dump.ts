import { resolve } from 'node:path';
import type { DumpOptions, DumpResult } from './options.js';
import { dumpTree, finishDumpStats } from '../dump/index.js';
import { withDumpExtras } from '../kinds/files/dump-extras.js';

/**
 * Checkpoint the process tree rooted at `opts.pid` into `opts.imagesDir`.
 * The tree is killed afterwards unless `leaveRunning`/`leaveStopped`; on
 * failure it is left running exactly as before.
 */
export async function dump(opts: DumpOptions): Promise<DumpResult> {
  const dir = resolve(opts.imagesDir ?? '.');
  // Kinds queue pipe/FIFO/socket data for their own images while the tree is dumped.
  const r = await withDumpExtras(dir, () => dumpTree(opts), {
    tcpEstablished: opts.tcpEstablished ?? false,
    leaveTasks: (opts.leaveRunning ?? false) || (opts.leaveStopped ?? false),
  });
  // Shared memory (shmem, memfd) pages are written last: count them now.
  finishDumpStats(dir, r);
  return r;
}

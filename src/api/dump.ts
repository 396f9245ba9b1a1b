import type { DumpOptions, DumpResult } from './options.js';
import { dumpTree } from '../dump/index.js';

/**
 * Checkpoint the process tree rooted at `opts.pid` into `opts.imagesDir`.
 * The tree is killed afterwards unless `leaveRunning`/`leaveStopped`; on
 * failure it is left running exactly as before.
 */
export async function dump(opts: DumpOptions): Promise<DumpResult> {
  return dumpTree(opts);
}

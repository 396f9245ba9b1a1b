import type { RestoreOptions, RestoreResult } from './options.js';
import { restoreTree, waitForRoot } from '../restore/index.js';

/**
 * Restore the tree saved in `opts.imagesDir`. Returns the root's pid once
 * every task runs (or is stopped, with `leaveStopped`). On failure nothing
 * restored is left behind.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  return restoreTree(opts);
}

/** Wait for a restored root that is our child; returns its exit status like a shell ($? semantics). */
export function waitRestored(pid: number): number {
  return waitForRoot(pid);
}

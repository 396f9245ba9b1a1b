import type { DumpOptions, DumpResult } from './options.js';
import { preDumpTree } from '../dump/pre-dump.js';
import { coreOptions } from './dump.js';
import { CriuTsError } from '../errors.js';

/**
 * Copy the memory of the tree rooted at `opts.pid` into `opts.imagesDir`
 * and leave it running, with its memory tracked, so that a later
 * `dump({prevImagesDir})` (or another pre-dump) copies only what changed.
 */
export async function preDump(opts: DumpOptions): Promise<DumpResult> {
  // As CRIU: the tree runs on after a pre-dump, so no page can be left in it for later.
  if (opts.lazyPages) throw new CriuTsError('EUSAGE', 'Cannot pre-dump with --lazy-pages', {});
  return preDumpTree(coreOptions(opts));
}

import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { fallocate, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../sys/index.js';
import { dedupChain } from '../kinds/memory/parent-images.js';

/**
 * `criu-ts dedup` (and `--auto-dedup`): free, in the parent images of the
 * chain ending in `imagesDir`, every page a newer image holds again. The
 * files keep their size (holes); afterwards only `imagesDir` restores.
 * Returns the bytes freed.
 */
export function dedup(opts: { imagesDir?: string }): { bytesFreed: bigint } {
  const dir = resolve(opts.imagesDir ?? '.');
  const bytesFreed = dedupChain(dir, (path, off, len) => {
    const fd = openSync(path, 'r+');
    try {
      fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
    } finally {
      closeSync(fd);
    }
  });
  return { bytesFreed };
}

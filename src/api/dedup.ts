import { resolve } from 'node:path';
import { dedupChain } from '../kinds/memory/parent-images.js';
import { punchPages } from '../kinds/memory/dedup-punch.js';
import type { Range } from '../kinds/memory/ranges.js';

/**
 * `criu-ts dedup` (and `--auto-dedup`): free, in the parent images of the
 * chain ending in `imagesDir`, every page a newer image holds again. The
 * files keep their size (holes), and each parent's criu-ts-checksums says
 * what was freed (kinds/memory/dedup-punch.ts); afterwards only
 * `imagesDir` restores. Returns the bytes freed.
 */
export function dedup(opts: { imagesDir?: string }): { bytesFreed: bigint } {
  const dir = resolve(opts.imagesDir ?? '.');
  const punches = new Map<string, Range[]>();
  dedupChain(dir, (path, off, len) => {
    let rs = punches.get(path);
    if (rs === undefined) punches.set(path, (rs = []));
    rs.push({ start: off, end: off + len });
  });
  return { bytesFreed: punchPages(punches) };
}

/**
 * The punching half of `criu-ts dedup` (parent-images.ts dedupChain says
 * what to punch): page ranges of parent pages files are freed with
 * fallocate(PUNCH_HOLE | KEEP_SIZE), and each parent directory's
 * criu-ts-checksums is rewritten to stay true, so that the pages a later
 * restore still reads from that parent are checked as before:
 *
 * - the blocks a punch touches are first checked against the old digests
 *   (dedup never blesses bytes the dump did not write), then hashed again
 *   with their holes (zeros), and the file's digest follows;
 * - the punched ranges go to the entry's `freed`: a restore that would read
 *   any of them (the parent's own restore) is refused, never handed zeros.
 *
 * Files no checksums image lists (CRIU's dumps, a page server's) are
 * punched as they are.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fallocate, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../../sys/index.js';
import { blockLayout, checkBlocks, digestWith, streamWith, encodeFreed, freedRanges, loadImageIfAny, storeImage, verifyChecksums } from '../../images/index.js';
import type { CriuTsChecksumEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import { merged, type Range } from './ranges.js';

function readAt(fd: number, path: string, buf: Buffer, len: number, off: number): Buffer {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, off + got);
    if (n <= 0) throw new CriuTsError('EIMAGE', `${path}: shorter than its checksums say (offset ${off + got})`, { path });
    got += n;
  }
  return buf.subarray(0, len);
}

/** Punch `ranges` out of `path` (open as `fd`), keeping its checksums entry `e` true; EIMAGE if the bytes around them changed since the dump. */
function punchChecked(path: string, fd: number, ranges: readonly Range[], e: CriuTsChecksumEntry | undefined): void {
  const punch = (): void => {
    for (const r of ranges) fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r.start, r.end - r.start);
  };
  if (e === undefined) return punch();
  const size = fstatSync(fd).size;
  if (e.blocks === undefined) {
    // One digest for the whole file (an older criu-ts dump): checked, punched, hashed again.
    verifyChecksums(dirname(path), [{ ...e, freed: undefined }]);
    punch();
    const h = streamWith(e.algorithm);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let off = 0; off < size; off += buf.length) h.update(readAt(fd, path, buf, Math.min(buf.length, size - off), off));
    e.sha256 = h.digest();
  } else {
    const { size: bs, count } = blockLayout(path, e);
    const touched = new Set<number>();
    for (const r of ranges) {
      for (let i = Number(r.start / BigInt(bs)); i < count && BigInt(i * bs) < r.end; i++) touched.add(i);
    }
    const buf = Buffer.allocUnsafe(bs);
    const len = (i: number): number => Math.min(bs, size - i * bs);
    for (const i of touched) checkBlocks(path, e, i, readAt(fd, path, buf, len(i), i * bs));
    punch();
    const blocks = Buffer.from(e.blocks);
    for (const i of touched) digestWith(e.algorithm, readAt(fd, path, buf, len(i), i * bs)).copy(blocks, i * 32);
    e.blocks = blocks;
    e.sha256 = digestWith(e.algorithm, blocks);
  }
  e.freed = encodeFreed(merged([...freedRanges(e), ...ranges]));
}

/** Punch every file's ranges (page-aligned); returns the bytes punched. */
export function punchPages(punches: ReadonlyMap<string, readonly Range[]>): bigint {
  let total = 0n;
  const dirs = new Set([...punches.keys()].map((p) => dirname(p)));
  for (const dir of dirs) {
    const sums = loadImageIfAny(dir, 'CRIU_TS_CHECKSUMS');
    const entries = sums ? [...sums.entries] : [];
    for (const [path, rs] of punches) {
      if (dirname(path) !== dir || rs.length === 0) continue;
      const ranges = merged(rs);
      const fd = openSync(path, 'r+');
      try {
        punchChecked(path, fd, ranges, entries.find((x) => x.name === basename(path)));
      } finally {
        closeSync(fd);
      }
      for (const r of ranges) total += r.end - r.start;
    }
    if (sums !== undefined) storeImage(dir, 'CRIU_TS_CHECKSUMS', undefined, entries as typeof sums.entries);
  }
  return total;
}

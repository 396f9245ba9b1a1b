/**
 * Per-block digests of pages images (criu-ts-checksums' block_size and
 * blocks fields): the SHA-256 of every BLOCK_BYTES of the file, the last
 * block shorter. A lazy-pages daemon checks each run it serves by the
 * blocks it spans instead of reading the whole file before the tasks may
 * run. The file's own digest is then the SHA-256 of the block digests,
 * so one pass of hashing gives both.
 */
import { createHash, hash, type Hash } from 'node:crypto';

/** 64 KiB: a fault's run (16 pages) spans one or two blocks; 32 bytes of digest per block (0.05%). */
export const BLOCK_BYTES = 64 << 10;

export interface BlockHash {
  update(data: Uint8Array): void;
  /** `sha256`: over the concatenated block digests; `blocks`: 32 bytes per block */
  digest(): { sha256: Buffer; blocks: Buffer };
}

/**
 * SHA-256 of `data` in one call: `crypto.hash` (Node 20.12 and later) has
 * no Hash object, whose native context lives until a full GC.
 */
export function sha256Of(data: Uint8Array): Buffer {
  return typeof hash === 'function' ? hash('sha256', data, 'buffer') : createHash('sha256').update(data).digest();
}

/**
 * Whole blocks inside one update() are hashed one-shot (`crypto.hash`, no
 * Hash object); only a block cut across two updates gets a Hash object.
 * A Hash object per block (16,384 for a 1 GiB pages file) left their
 * native contexts and wrappers to the next full GC, which a dump does
 * not reach: 6 MiB of peak RSS. The digests go into one buffer, grown by
 * doubling (a Buffer per block was 5 MiB more, promoted and kept).
 */
export function blockHash(blockBytes = BLOCK_BYTES, expectBytes = 0): BlockHash {
  // Sized for the file the caller expects (a pages file's resident pages):
  // no chain of doublings. A hint of more than 4 GiB (a sparse shared
  // mapping's size) is not trusted that far; beyond it the buffer doubles.
  const expect = Math.min(expectBytes, 4 * 2 ** 30);
  let blocks = Buffer.allocUnsafeSlow(32 * Math.max(64, Math.ceil(expect / blockBytes) + 1));
  let count = 0;
  const room = (): void => {
    if ((count + 1) * 32 <= blocks.length) return;
    const grown = Buffer.allocUnsafeSlow(blocks.length * 2);
    blocks.copy(grown, 0, 0, count * 32);
    blocks = grown;
  };
  const push = (d: Buffer): void => {
    room();
    d.copy(blocks, count * 32);
    count++;
  };
  const pushOneShot = (data: Uint8Array): void => {
    room();
    sha256Of(data).copy(blocks, count * 32);
    count++;
  };
  let cur: Hash | null = null;
  let fill = 0;
  return {
    update(data: Uint8Array): void {
      let off = 0;
      while (off < data.length) {
        if (cur === null && data.length - off >= blockBytes) {
          pushOneShot(data.subarray(off, off + blockBytes));
          off += blockBytes;
          continue;
        }
        if (cur === null) {
          cur = createHash('sha256');
          fill = 0;
        }
        const n = Math.min(blockBytes - fill, data.length - off);
        cur.update(data.subarray(off, off + n));
        fill += n;
        off += n;
        if (fill === blockBytes) {
          push(cur.digest());
          cur = null;
        }
      }
    },
    digest(): { sha256: Buffer; blocks: Buffer } {
      if (cur !== null) push(cur.digest());
      cur = null;
      const all = blocks.subarray(0, count * 32);
      return { sha256: createHash('sha256').update(all).digest(), blocks: all };
    },
  };
}

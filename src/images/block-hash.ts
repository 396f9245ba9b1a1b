/**
 * Per-block digests of pages images (criu-ts-checksums' block_size and
 * blocks fields): the SHA-256 of every BLOCK_BYTES of the file, the last
 * block shorter. A lazy-pages daemon checks each run it serves by the
 * blocks it spans instead of reading the whole file before the tasks may
 * run. The file's own digest is then the SHA-256 of the block digests,
 * so one pass of hashing gives both.
 */
import { createHash } from 'node:crypto';

/** 64 KiB: a fault's run (16 pages) spans one or two blocks; 32 bytes of digest per block (0.05%). */
export const BLOCK_BYTES = 64 << 10;

export interface BlockHash {
  update(data: Uint8Array): void;
  /** `sha256`: over the concatenated block digests; `blocks`: 32 bytes per block */
  digest(): { sha256: Buffer; blocks: Buffer };
}

type HashFactory = () => { update(d: Uint8Array): unknown; digest(): Buffer };

export function makeBlockHash(newHash: HashFactory, blockBytes: number): BlockHash {
  // The digests go into one buffer, grown by doubling: kept as one Buffer
  // each, a 1 GiB pages file's 16,384 of them outlived many scavenges (so
  // were promoted) and took 5 MiB of heap and native memory until the end.
  let blocks = Buffer.allocUnsafeSlow(32 * 64);
  let count = 0;
  const push = (d: Buffer): void => {
    if ((count + 1) * 32 > blocks.length) {
      const grown = Buffer.allocUnsafeSlow(blocks.length * 2);
      blocks.copy(grown, 0, 0, count * 32);
      blocks = grown;
    }
    d.copy(blocks, count * 32);
    count++;
  };
  let cur: ReturnType<HashFactory> | null = null;
  let fill = 0;
  return {
    update(data: Uint8Array): void {
      let off = 0;
      while (off < data.length) {
        if (cur === null) {
          cur = newHash();
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
      const all = Buffer.from(blocks.subarray(0, count * 32));
      const whole = newHash();
      whole.update(all);
      return { sha256: whole.digest(), blocks: all };
    },
  };
}

/** A block hash on this thread. */
export function blockHash(blockBytes = BLOCK_BYTES): BlockHash {
  return makeBlockHash(() => createHash('sha256'), blockBytes);
}

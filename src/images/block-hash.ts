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
  const list: Buffer[] = [];
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
          list.push(cur.digest());
          cur = null;
        }
      }
    },
    digest(): { sha256: Buffer; blocks: Buffer } {
      if (cur !== null) list.push(cur.digest());
      cur = null;
      const blocks = Buffer.concat(list);
      const whole = newHash();
      whole.update(blocks);
      return { sha256: whole.digest(), blocks };
    },
  };
}

/** A block hash on this thread. */
export function blockHash(blockBytes = BLOCK_BYTES): BlockHash {
  return makeBlockHash(() => createHash('sha256'), blockBytes);
}

/**
 * Per-block digests of pages images (criu-ts-checksums' block_size and
 * blocks fields): the digest of every BLOCK_BYTES of the file, the last
 * block shorter. A lazy-pages daemon checks each run it serves by the
 * blocks it spans instead of reading the whole file before the tasks may
 * run. The file's own digest is then the digest of the block digests,
 * so one pass of hashing gives both. The algorithm: vmh256 (vmh.ts)
 * where this Node runs it, else SHA-256; an entry names it (`algorithm`,
 * absent for SHA-256, as older dumps wrote).
 */
import { VMH_BLOCK, VmhStream, vmhAvailable, vmhBlockDigests, vmhOf } from './vmh.js';
import { sha256, sha256Stream, type Sha256Stream } from '../sys/sha256.js';

export const SHA256 = 'sha256';
export const VMH256 = 'vmh256';

/**
 * Files smaller than this keep SHA-256 (a few ms for them): a dump or
 * restore of small tasks then never loads the WebAssembly module, whose
 * compilation costs 2-5 MiB of peak RSS.
 */
export const VMH_MIN_BYTES = 4 << 20;

/** The algorithm new pages digests use here, for a file of about `expectBytes`. */
export function preferredAlgorithm(expectBytes = VMH_MIN_BYTES): string {
  return expectBytes >= VMH_MIN_BYTES && vmhAvailable() ? VMH256 : SHA256;
}

/** Whether `algorithm` (an entry's field; undefined is SHA-256) can be checked here: the reason when not. */
export function algorithmProblem(algorithm: string | undefined): string | undefined {
  if (algorithm === undefined || algorithm === SHA256) return undefined;
  if (algorithm === VMH256) return vmhAvailable() ? undefined : 'vmh256 needs WebAssembly SIMD, which this Node lacks';
  return `unknown digest algorithm ${JSON.stringify(algorithm)}`;
}

/** The digest of `data` by `algorithm` (undefined: SHA-256). */
export function digestWith(algorithm: string | undefined, data: Uint8Array): Buffer {
  return algorithm === VMH256 ? vmhOf(data) : sha256Of(data);
}

/** A running digest by `algorithm` (undefined: SHA-256). */
export function streamWith(algorithm: string | undefined): { update(data: Uint8Array): void; digest(): Buffer } {
  return algorithm === VMH256 ? new VmhStream() : sha256Stream();
}

/** 64 KiB: a fault's run (16 pages) spans one or two blocks; 32 bytes of digest per block (0.05%). */
export const BLOCK_BYTES = 64 << 10;

export interface BlockHash {
  update(data: Uint8Array): void;
  /** `sha256`: over the concatenated block digests, by `algorithm` (undefined: SHA-256); `blocks`: 32 bytes per block */
  digest(): { sha256: Buffer; blocks: Buffer; algorithm?: string };
}

/**
 * SHA-256 of `data` in one call, by the OpenSSL Node is built with
 * (sys/sha256.ts: no node:crypto to load, no Hash object whose native
 * context lives until a full GC).
 */
export function sha256Of(data: Uint8Array): Buffer {
  return sha256(data);
}

/**
 * Whole blocks inside one update() are hashed one-shot (sha256Of, no
 * stream); only a block cut across two updates gets a stream. (With
 * node:crypto, a Hash object per block, 16,384 for a 1 GiB pages file,
 * left their native contexts and wrappers to the next full GC, which a
 * dump does not reach: 6 MiB of peak RSS.) The digests go into one buffer, grown by
 * doubling (a Buffer per block was 5 MiB more, promoted and kept).
 */
export function blockHash(blockBytes = BLOCK_BYTES, expectBytes = 0, algorithm = preferredAlgorithm(expectBytes)): BlockHash {
  const vmh = algorithm === VMH256;
  // Sized for the file the caller expects (a pages file's resident pages):
  // no chain of doublings. A hint of more than 4 GiB (a sparse shared
  // mapping's size) is not trusted that far; beyond it the buffer doubles.
  const expect = Math.min(expectBytes, 4 * 2 ** 30);
  let blocks = Buffer.allocUnsafeSlow(32 * Math.max(64, Math.ceil(expect / blockBytes) + 1));
  let count = 0;
  const room = (more = 1): void => {
    if ((count + more) * 32 <= blocks.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(blocks.length * 2, (count + more) * 32));
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
    digestWith(algorithm, data).copy(blocks, count * 32);
    count++;
  };
  let cur: Sha256Stream | VmhStream | null = null;
  let fill = 0;
  return {
    update(data: Uint8Array): void {
      let off = 0;
      while (off < data.length) {
        if (cur === null && vmh && blockBytes === VMH_BLOCK && data.length - off >= blockBytes) {
          // Many whole blocks: digested by the module in one call, where they are when they are in its memory.
          room(Math.floor((data.length - off) / blockBytes));
          const n = vmhBlockDigests(data.subarray(off), blocks, count * 32);
          count += n;
          off += n * blockBytes;
          continue;
        }
        if (cur === null && data.length - off >= blockBytes) {
          pushOneShot(data.subarray(off, off + blockBytes));
          off += blockBytes;
          continue;
        }
        if (cur === null) {
          cur = vmh ? new VmhStream() : sha256Stream();
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
    digest(): { sha256: Buffer; blocks: Buffer; algorithm?: string } {
      if (cur !== null) push(cur.digest());
      cur = null;
      const all = blocks.subarray(0, count * 32);
      return { sha256: digestWith(algorithm, all), blocks: all, ...(vmh ? { algorithm } : {}) };
    },
  };
}

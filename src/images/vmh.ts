/**
 * vmh256: criu-ts's digest of pages images (criu-ts-checksums'
 * `algorithm` "vmh256"), a vector multiply-accumulate hash of our own
 * design in WebAssembly with 128-bit SIMD, about 8 times SHA-256's speed
 * here. It guards against corruption (a flipped bit, a torn or truncated
 * copy), not against a forger: hostile edits are stopped by who may write
 * the images dir and by the service's authorization (docs/security.md).
 *
 * The algorithm (the reference, in plain JavaScript, is in
 * test/images/vmh.test.ts). State: eight 64-bit lanes, as four vectors of
 * two. Input in 1 KiB blocks of 16 stripes of 64 bytes; bytes 16v..16v+15
 * of a stripe feed vector v. For those 16 bytes d (two little-endian
 * 64-bit words d.lo, d.hi) and the stripe's key k (KEY: 64 bytes per
 * stripe of a block): x = d ^ k, seen as 32-bit words x0..x3;
 * lane 0 += d.lo + x2 * x3, lane 1 += d.hi + x0 * x1 (products of 32-bit
 * words, sums modulo 2^64). After each block every lane is scrambled:
 * a ^= a >> 47; a ^= SCRAMBLE[lane]; a *= PRIME. A last partial block is
 * padded with zeros. The digest: four 64-bit words, out[j] =
 * fin(a[j] ^ len * LEN[j]) ^ rotl(fin(a[j+4] ^ len * LEN[j+4]), 23), fin
 * being murmur's 64-bit finaliser; len the byte count.
 *
 * Why a single flipped bit always changes the digest: flipping a bit of
 * d.lo changes lane 0's sum by exactly +-2^b (its product comes from
 * d.hi's words), nonzero modulo 2^64; the same for d.hi and lane 1.
 * Nothing later depends on that lane but through bijections (adding terms
 * the flip does not change, the scramble, fin), and each digest word
 * pairs lanes of two different vectors, of which the flip touched one.
 * Stripes have keys of their own, so two stripes swapped in a block give
 * other products; blocks are chained by the scramble. The size is in the
 * digest, and criu-ts-checksums records it as well.

 * The module is assembled here from its bytes (no tool at build or run
 * time) and compiled once. Its memory also holds the pages writer's two
 * halves, so that process_vm_readv fills them and the hash reads them
 * where they are, and a scratch area for other bytes to be hashed.
 */

import {
  BLOCK, BLOCK_DIGEST, HALF_BYTES, HALF_PAIRS, HALVES_AT, IV_AT, KEY_AT, MEMORY_PAGES, OUT_AT, OUT_MAX, PEND_AT, SCRAMBLE_AT, SCRATCH_AT, SCRATCH_BYTES, STATE_AT,
  moduleBytes, vmhConstants,
} from './vmh-module.js';

export { vmhConstants };

// --- the compiled module ------------------------------------------------

interface Exports {
  blocks(state: number, data: number, n: number): void;
  final(state: number, out: number, len: bigint): void;
  digests(data: number, n: number, out: number): void;
}

/** The little of WebAssembly used here (the project's TypeScript libs do not declare it). */
interface WasmMemory { readonly buffer: ArrayBuffer }
declare const WebAssembly: {
  validate(bytes: Uint8Array): boolean;
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
};

interface Vmh {
  memory: WasmMemory;
  /** all of the module's memory (it never grows, so this view stays valid) */
  mem: Buffer;
  x: Exports;
}

let loaded: Vmh | null | undefined;

/**
 * Bytes from outside the module's memory are copied into its scratch this
 * much at a time (as fast as 1 MiB pieces; the rest of the scratch is
 * touched only by readers that read into it).
 */
const COPY_BYTES = BLOCK_DIGEST;

/** The module, compiled on first use; null where this Node's WebAssembly has no SIMD (dumps then use SHA-256). */
function vmh(): Vmh | null {
  if (loaded !== undefined) return loaded;
  const c = vmhConstants();
  const bytes = moduleBytes(c.len);
  if (!WebAssembly.validate(bytes)) return (loaded = null);
  const memory = new WebAssembly.Memory({ initial: MEMORY_PAGES, maximum: MEMORY_PAGES });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { m: { mem: memory } });
  const mem = Buffer.from(memory.buffer);
  c.key.copy(mem, KEY_AT);
  c.scramble.copy(mem, SCRAMBLE_AT);
  c.iv.copy(mem, IV_AT);
  loaded = { memory, mem, x: instance.exports as unknown as Exports };
  return loaded;
}

/** Whether vmh256 runs here. */
export function vmhAvailable(): boolean {
  return vmh() !== null;
}

function need(): Vmh {
  const v = vmh();
  if (v === null) throw new Error('vmh256 needs WebAssembly SIMD, which this Node lacks');
  return v;
}

/** Whether `data` lies in the module's memory (then it is hashed where it is). */
function inModule(v: Vmh, data: Uint8Array): boolean {
  return data.buffer === v.memory.buffer;
}

/** A running vmh256 of a byte stream (lanes kept here: any number may run at once). */
export class VmhStream {
  private readonly v = need();
  private readonly lanes = Buffer.from(this.v.mem.subarray(IV_AT, IV_AT + 64));
  private readonly pend = Buffer.alloc(BLOCK);
  private pendLen = 0;
  private total = 0;

  update(data: Uint8Array): this {
    const { mem } = this.v;
    let off = 0;
    while (off < data.length) {
      if (this.pendLen > 0 || data.length - off < BLOCK) {
        const n = Math.min(BLOCK - this.pendLen, data.length - off);
        this.pend.set(data.subarray(off, off + n), this.pendLen);
        this.pendLen += n;
        off += n;
        if (this.pendLen === BLOCK) {
          mem.set(this.pend, PEND_AT);
          this.run(PEND_AT, 1);
          this.pendLen = 0;
        }
        continue;
      }
      const whole = Math.floor((data.length - off) / BLOCK) * BLOCK;
      if (inModule(this.v, data)) {
        this.run(data.byteOffset + off, whole / BLOCK);
        off += whole;
      } else {
        // Copied in small pieces: only the first COPY_BYTES of the scratch are ever touched for them.
        const n = Math.min(whole, COPY_BYTES);
        mem.set(data.subarray(off, off + n), SCRATCH_AT);
        this.run(SCRATCH_AT, n / BLOCK);
        off += n;
      }
    }
    this.total += data.length;
    return this;
  }

  private run(at: number, n: number): void {
    const { mem, x } = this.v;
    this.lanes.copy(mem, STATE_AT);
    x.blocks(STATE_AT, at, n);
    mem.copy(this.lanes, 0, STATE_AT, STATE_AT + 64);
  }

  /** The 32-byte digest (the stream is done after this). */
  digest(): Buffer {
    const { mem, x } = this.v;
    if (this.pendLen > 0) {
      this.pend.fill(0, this.pendLen);
      mem.set(this.pend, PEND_AT);
      this.run(PEND_AT, 1);
      this.pendLen = 0;
    }
    this.lanes.copy(mem, STATE_AT);
    x.final(STATE_AT, OUT_AT, BigInt(this.total));
    return Buffer.from(mem.subarray(OUT_AT, OUT_AT + 32));
  }
}

/** vmh256 of `data` in one call. */
export function vmhOf(data: Uint8Array): Buffer {
  return new VmhStream().update(data).digest();
}

/**
 * The digests of the whole 64 KiB blocks at the start of `data` (as many
 * as fit: n * 32 bytes to `to` at `at`), each the vmh256 of its block.
 * Returns how many blocks it did (at least one when data holds one).
 */
export function vmhBlockDigests(data: Uint8Array, to: Buffer, at: number): number {
  const v = need();
  let n = Math.min(Math.floor(data.length / BLOCK_DIGEST), OUT_MAX);
  let ptr: number;
  if (inModule(v, data)) {
    ptr = data.byteOffset;
  } else {
    n = Math.min(n, COPY_BYTES / BLOCK_DIGEST);
    v.mem.set(data.subarray(0, n * BLOCK_DIGEST), SCRATCH_AT);
    ptr = SCRATCH_AT;
  }
  if (n === 0) return 0;
  v.x.digests(ptr, n, OUT_AT);
  v.mem.copy(to, at, OUT_AT, OUT_AT + n * 32);
  return n;
}

/** The block size vmhBlockDigests works in. */
export const VMH_BLOCK = BLOCK_DIGEST;

let halvesGiven = 0;

/**
 * A pair of 1 MiB halves in the module's memory for a pages writer (given
 * back to the writer's own pool, never freed): pages read into them are
 * hashed where they are. Undefined when both pairs are out or vmh256 does
 * not run here.
 */
export function vmhHalves(): [Buffer, Buffer] | undefined {
  const v = vmh();
  if (v === null || halvesGiven === HALF_PAIRS) return undefined;
  const at = HALVES_AT + halvesGiven * 2 * HALF_BYTES;
  halvesGiven++;
  return [v.mem.subarray(at, at + HALF_BYTES), v.mem.subarray(at + HALF_BYTES, at + 2 * HALF_BYTES)];
}

/** The scratch area, for a reader that reads bytes to be hashed (a restore's check): read there, they are hashed in place. */
export function vmhScratch(): Buffer | undefined {
  const v = vmh();
  return v === null ? undefined : v.mem.subarray(SCRATCH_AT, SCRATCH_AT + SCRATCH_BYTES);
}

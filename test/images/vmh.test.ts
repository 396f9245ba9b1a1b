/**
 * vmh256 (images/vmh.ts), the digest of pages images: the WebAssembly
 * module against a plain BigInt implementation of the algorithm written
 * from its description, whatever the chunks and wherever the bytes are;
 * every single flipped bit changes the digest; 64 KiB block digests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VMH_BLOCK, VmhStream, vmhAvailable, vmhBlockDigests, vmhConstants, vmhOf, vmhScratch } from '../../src/images/vmh.js';

const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;
const PRIME = 0x9e3779b185ebca87n;

function fin(x: bigint): bigint {
  x ^= x >> 33n;
  x = (x * 0xff51afd7ed558ccdn) & M64;
  x ^= x >> 29n;
  x = (x * 0xc4ceb9fe1a85ec53n) & M64;
  return x ^ (x >> 32n);
}

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;

/** The algorithm as images/vmh.ts describes it, one 64-bit lane at a time. */
function reference(data: Uint8Array): Buffer {
  const c = vmhConstants();
  const lane = Array.from({ length: 8 }, (_, i) => c.iv.readBigUInt64LE(i * 8));
  const blocks = Math.ceil(data.length / 1024);
  const padded = Buffer.alloc(blocks * 1024);
  padded.set(data);
  for (let blk = 0; blk < blocks; blk++) {
    for (let s = 0; s < 16; s++) {
      for (let v = 0; v < 4; v++) {
        const off = blk * 1024 + s * 64 + 16 * v;
        const lo = padded.readBigUInt64LE(off);
        const hi = padded.readBigUInt64LE(off + 8);
        const xlo = lo ^ c.key.readBigUInt64LE(s * 64 + 16 * v);
        const xhi = hi ^ c.key.readBigUInt64LE(s * 64 + 16 * v + 8);
        const [x0, x1, x2, x3] = [xlo & M32, xlo >> 32n, xhi & M32, xhi >> 32n];
        lane[2 * v] = ((lane[2 * v] as bigint) + lo + x2 * x3) & M64;
        lane[2 * v + 1] = ((lane[2 * v + 1] as bigint) + hi + x0 * x1) & M64;
      }
    }
    for (let l = 0; l < 8; l++) {
      let a = lane[l] as bigint;
      a ^= a >> 47n;
      a ^= c.scramble.readBigUInt64LE(l * 8);
      lane[l] = (a * PRIME) & M64;
    }
  }
  const len = BigInt(data.length);
  const out = Buffer.alloc(32);
  for (let j = 0; j < 4; j++) {
    const a = fin((lane[j] as bigint) ^ ((len * (c.len[j] as bigint)) & M64));
    const b = fin((lane[j + 4] as bigint) ^ ((len * (c.len[j + 4] as bigint)) & M64));
    out.writeBigUInt64LE(a ^ rotl(b, 23n), j * 8);
  }
  return out;
}

/** Seeded bytes (xorshift32). */
function bytes(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let s = seed | 1;
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 0xff;
  }
  return b;
}

const skip = vmhAvailable() ? false : 'this Node has no WebAssembly SIMD';

test('vmh256: the module computes the algorithm as written, at every length and in any chunks', { skip }, () => {
  for (const len of [0, 1, 15, 16, 63, 64, 1023, 1024, 1025, 4096 + 7, 3 * 1024, 70_001]) {
    const data = bytes(len, len + 1);
    const want = reference(data).toString('hex');
    assert.equal(vmhOf(data).toString('hex'), want, `length ${len}`);
    const s = new VmhStream();
    for (let off = 0, step = 1; off < len; off += step, step = step * 3 + 1) s.update(data.subarray(off, Math.min(len, off + step)));
    assert.equal(s.digest().toString('hex'), want, `length ${len}, in chunks`);
  }
  assert.equal(vmhOf(Buffer.alloc(2048)).toString('hex'), reference(Buffer.alloc(2048)).toString('hex'), 'zeros');
  assert.equal(vmhOf(Buffer.alloc(2048, 0xff)).toString('hex'), reference(Buffer.alloc(2048, 0xff)).toString('hex'), 'ones');
});

test('vmh256: bytes in the module memory are hashed where they are, to the same digest', { skip }, () => {
  const scratch = vmhScratch() as Buffer;
  const data = bytes(3 * VMH_BLOCK + 5000, 9);
  data.copy(scratch);
  assert.deepEqual(vmhOf(scratch.subarray(0, data.length)), vmhOf(data));
  const want = vmhOf(data); // (copies data through the scratch: put it back)
  data.copy(scratch);
  assert.deepEqual(new VmhStream().update(scratch.subarray(0, 2048)).update(data.subarray(2048)).digest(), want);
});

test('vmh256: every single flipped bit changes the digest', { skip }, () => {
  for (const [len, seed] of [[1024, 5], [3000, 7], [96, 0]] as const) {
    const data = seed === 0 ? Buffer.alloc(len) : bytes(len, seed);
    const base = vmhOf(data);
    const seen = new Set<string>([base.toString('hex')]);
    for (let bit = 0; bit < len * 8; bit++) {
      const at = bit >> 3;
      data.writeUInt8(data.readUInt8(at) ^ (1 << (bit & 7)), at);
      const d = vmhOf(data).toString('hex');
      data.writeUInt8(data.readUInt8(at) ^ (1 << (bit & 7)), at);
      assert.ok(!seen.has(d), `length ${len}: flipping bit ${bit} gave a digest already seen`);
      seen.add(d);
    }
  }
});

test('vmh256: block digests are the digests of each 64 KiB', { skip }, () => {
  const data = bytes(5 * VMH_BLOCK, 11);
  const out = Buffer.alloc(5 * 32);
  for (let done = 0; done < 5;) {
    const n = vmhBlockDigests(data.subarray(done * VMH_BLOCK), out, done * 32);
    assert.ok(n >= 1, 'at least one block per call');
    done += n;
  }
  const scratch = vmhScratch() as Buffer;
  data.copy(scratch);
  const inPlace = Buffer.alloc(5 * 32);
  assert.equal(vmhBlockDigests(scratch.subarray(0, data.length), inPlace, 0), 5, 'in the module\'s memory: all in one call');
  assert.deepEqual(inPlace, out);
  for (let i = 0; i < 5; i++) assert.deepEqual(out.subarray(i * 32, i * 32 + 32), vmhOf(data.subarray(i * VMH_BLOCK, (i + 1) * VMH_BLOCK)), `block ${i}`);
  assert.equal(vmhBlockDigests(data.subarray(0, VMH_BLOCK - 1), out, 0), 0, 'no whole block');
});

/**
 * Block digests of pages images (images/block-hash.ts): one SHA-256 per
 * 64 KiB, blocks cut across update() boundaries, the last one short, and
 * the file's digest over the block digests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BLOCK_BYTES, blockHash, digestWith } from '../../src/images/block-hash.js';
import { vmhAvailable } from '../../src/images/vmh.js';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

test('block digests (SHA-256, as older dumps): blocks cut across update boundaries, a short last block, the file digest over the blocks', () => {
  const data = pattern((3 << 16) + 12_345, 3);
  const h = blockHash(BLOCK_BYTES, 0, 'sha256');
  for (let off = 0; off < data.length; off += 100_000) h.update(data.subarray(off, off + 100_000));
  const d = h.digest();
  const other = blockHash(BLOCK_BYTES, 0, 'sha256');
  other.update(data.subarray(0, 5));
  other.update(data.subarray(5));
  const want: Buffer[] = [];
  for (let off = 0; off < data.length; off += BLOCK_BYTES) want.push(createHash('sha256').update(data.subarray(off, off + BLOCK_BYTES)).digest());
  assert.equal(want.length, 4);
  assert.deepEqual(d.blocks, Buffer.concat(want));
  assert.deepEqual(other.digest(), d, 'the same digests whatever the chunks');
  assert.equal(d.sha256.toString('hex'), createHash('sha256').update(Buffer.concat(want)).digest('hex'));
  assert.deepEqual(blockHash(BLOCK_BYTES, 0, 'sha256').digest().blocks, Buffer.alloc(0), 'an empty file has no block');
});

test('block digests (vmh256): the same cuts give the same digests, named by their algorithm', { skip: vmhAvailable() ? false : 'no WebAssembly SIMD' }, () => {
  const data = pattern((7 << 16) + 12_345, 4);
  const h = blockHash(BLOCK_BYTES, 0, 'vmh256');
  for (let off = 0; off < data.length; off += 100_000) h.update(data.subarray(off, off + 100_000));
  const d = h.digest();
  const other = blockHash(BLOCK_BYTES, 0, 'vmh256');
  other.update(data.subarray(0, 5));
  other.update(data.subarray(5, 3 << 16));
  other.update(data.subarray(3 << 16));
  const want: Buffer[] = [];
  for (let off = 0; off < data.length; off += BLOCK_BYTES) want.push(digestWith('vmh256', data.subarray(off, off + BLOCK_BYTES)));
  assert.equal(want.length, 8);
  assert.equal(d.algorithm, 'vmh256');
  assert.deepEqual(d.blocks, Buffer.concat(want));
  assert.deepEqual(other.digest(), d, 'the same digests whatever the chunks');
  assert.deepEqual(d.sha256, digestWith('vmh256', Buffer.concat(want)));
});

/**
 * The pages hash on its worker thread (src/images/hash-worker.ts): bytes
 * of a shared buffer are hashed in place (lent until settle()), other
 * bytes are copied through a slot; either way the digest is the file's
 * SHA-256, and files hashed side by side do not mix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { StreamHash, shareableBuffer } from '../../src/images/hash-worker.js';

const sha = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i += 4) b.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ seed) >>> 0, i);
  return b;
}

test('lent halves: each filled again only after settle(), the digest covers every byte in order', () => {
  const h = new StreamHash();
  assert.equal(h.lends, true, 'a worker runs here');
  const halves = [shareableBuffer(1 << 20), shareableBuffer(1 << 20)];
  const expected: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const half = halves[i % 2] as Buffer;
    h.settle(half);
    const len = i === 5 ? 12_288 : half.length; // a short last chunk
    pattern(len, i).copy(half);
    expected.push(pattern(len, i));
    h.update(half.subarray(0, len));
  }
  assert.equal(h.digest().toString('hex'), sha(...expected));
});

test('unshared bytes, bigger than the copy slot, and two files hashed side by side', () => {
  const a = new StreamHash();
  const b = new StreamHash();
  const big = pattern(5 << 20, 7);
  const lent = shareableBuffer(64 << 10);
  pattern(lent.length, 9).copy(lent);
  a.update(big.subarray(0, 3 << 20));
  b.update(lent);
  a.update(big.subarray(3 << 20));
  b.settle(lent);
  b.update(big.subarray(0, 4096));
  assert.equal(a.digest().toString('hex'), sha(big));
  assert.equal(b.digest().toString('hex'), sha(pattern(64 << 10, 9), big.subarray(0, 4096)));
  assert.equal(new StreamHash().digest().toString('hex'), sha(), 'an empty file');
});

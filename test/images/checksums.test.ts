/**
 * criu-ts-checksums' digests by algorithm (images/checksums.ts): a pages
 * file's entry as an older dump wrote it (SHA-256, no `algorithm`) and as
 * this one does (vmh256) both verify, a flipped byte is refused under
 * either naming the block, and an algorithm nobody knows is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyChecksums } from '../../src/images/index.js';
import { digestWith } from '../../src/images/block-hash.js';
import { vmhAvailable } from '../../src/images/vmh.js';
import type { CriuTsChecksumEntry } from '../../src/images/messages.js';

const BS = 65536;

function entry(data: Buffer, algorithm?: string): CriuTsChecksumEntry {
  const blocks: Buffer[] = [];
  for (let off = 0; off < data.length; off += BS) blocks.push(digestWith(algorithm, data.subarray(off, off + BS)));
  const all = Buffer.concat(blocks);
  return { name: 'pages-1.img', size: BigInt(data.length), sha256: digestWith(algorithm, all), block_size: BS, blocks: all, ...(algorithm ? { algorithm } : {}) };
}

test('checksums: SHA-256 entries of older dumps and vmh256 entries verify; a flipped byte or an unknown algorithm is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-sums-'));
  try {
    const data = Buffer.alloc(40 * BS + 8192);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const path = join(dir, 'pages-1.img');
    writeFileSync(path, data);
    const old = entry(data);
    assert.deepEqual(old.sha256, createHash('sha256').update(old.blocks as Buffer).digest(), 'an older dump\'s entry: SHA-256 over SHA-256 block digests');
    const algos: (string | undefined)[] = [undefined, ...(vmhAvailable() ? ['vmh256'] : [])];
    for (const a of algos) verifyChecksums(dir, [entry(data, a)]);
    const bad = Buffer.from(data);
    bad.writeUInt8(bad.readUInt8(33 * BS + 100) ^ 0x01, 33 * BS + 100);
    writeFileSync(path, bad);
    for (const a of algos) {
      assert.throws(() => verifyChecksums(dir, [entry(data, a)]), (e: Error) => {
        assert.match(e.message, new RegExp(`pages-1\\.img: contents changed since the dump at bytes ${33 * BS}\\.\\.${34 * BS} \\(${a === undefined ? 'SHA-256' : a} differs`));
        return true;
      });
    }
    writeFileSync(path, data);
    assert.throws(() => verifyChecksums(dir, [{ ...entry(data), algorithm: 'md5' }]), /cannot be checked: unknown digest algorithm "md5" \(criu-ts-checksums; --skip-checksums/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * criu-ts-checksums read without its block digests (images/checksums-lean.ts,
 * a lazy restore's): every other field as the whole decode gives it; the
 * digests a check uses are read from the file, so a block whose bytes or
 * whose stored digest changed is refused, and blocks left to the daemon
 * are not read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFreed, hasBlockDigests, loadChecksumsLean, loadImageIfAny, verifyChecksums } from '../../src/images/index.js';
import { encodeImageOf } from '../../src/images/image.js';
import { kindByKey } from '../../src/images/table.js';
import { digestWith } from '../../src/images/block-hash.js';
import type { CriuTsChecksumEntry } from '../../src/images/messages.js';

const BS = 4096;
/** 600 blocks: 19,200 bytes of digests, more than an entry read whole. */
const COUNT = 600;

function pagesEntry(data: Buffer, extra: Partial<CriuTsChecksumEntry> = {}): CriuTsChecksumEntry {
  const blocks: Buffer[] = [];
  for (let off = 0; off < data.length; off += BS) blocks.push(digestWith('sha256', data.subarray(off, off + BS)));
  const all = Buffer.concat(blocks);
  return { name: 'pages-1.img', size: BigInt(data.length), sha256: digestWith('sha256', all), block_size: BS, blocks: all, algorithm: 'sha256', ...extra };
}

test('loadChecksumsLean: the fields of every entry but the block digests, which checks read from the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-lean-'));
  try {
    const data = Buffer.alloc(COUNT * BS - 1000);
    for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(join(dir, 'pages-1.img'), data);
    const core = Buffer.from('a small image');
    writeFileSync(join(dir, 'core-1.img'), core);
    const small: CriuTsChecksumEntry = { name: 'core-1.img', size: BigInt(core.length), sha256: digestWith(undefined, core) };
    const sums = join(dir, 'criu-ts-checksums');
    const write = (pages: CriuTsChecksumEntry): void => {
      writeFileSync(sums, encodeImageOf(kindByKey('CRIU_TS_CHECKSUMS'), [small, pages] as unknown as Record<string, unknown>[]));
    };

    // With a field after the digests (freed): every field but `blocks` is the whole decode's.
    write(pagesEntry(data, { freed: encodeFreed([{ start: 0n, end: 4096n }]) }));
    const whole = loadImageIfAny(dir, 'CRIU_TS_CHECKSUMS')?.entries ?? [];
    const lean = loadChecksumsLean(dir)?.entries ?? [];
    assert.equal(lean.length, 2);
    assert.deepEqual(lean[0], whole[0]);
    const { blocks, ...rest } = whole[1] as CriuTsChecksumEntry;
    assert.equal(blocks?.length, COUNT * 32);
    assert.deepEqual(lean[1], rest);
    assert.ok(lean[1] && hasBlockDigests(lean[1]));

    // Blocks 0-4 and 590-599 checked now, the rest left to the daemon.
    write(pagesEntry(data));
    const later = (): { start: bigint; end: bigint }[] => [{ start: BigInt(5 * BS), end: BigInt(590 * BS) }];
    const check = (): void => verifyChecksums(dir, loadChecksumsLean(dir)?.entries ?? [], later);
    check();
    const bad = Buffer.from(data);
    bad[300 * BS + 7] = (bad[300 * BS + 7] as number) ^ 1;
    writeFileSync(join(dir, 'pages-1.img'), bad);
    check(); // a block left for later is not read
    bad[595 * BS + 7] = (bad[595 * BS + 7] as number) ^ 1;
    writeFileSync(join(dir, 'pages-1.img'), bad);
    assert.throws(check, new RegExp(`pages-1\\.img: contents changed since the dump at bytes ${595 * BS}\\.\\.${596 * BS}`));
    writeFileSync(join(dir, 'pages-1.img'), data);
    check();

    // A stored digest of a block checked now, changed in the file: refused.
    const file = readFileSync(sums);
    const at = file.indexOf((pagesEntry(data).blocks as Buffer).subarray(2 * 32, 3 * 32));
    assert.ok(at > 0);
    file[at] = (file[at] as number) ^ 1;
    writeFileSync(sums, file);
    assert.throws(check, new RegExp(`contents changed since the dump at bytes ${2 * BS}\\.\\.${3 * BS}`));

    // Cut short: EIMAGE, not a partial list.
    writeFileSync(sums, readFileSync(sums).subarray(0, 5000));
    assert.throws(() => loadChecksumsLean(dir), (e: Error & { code?: string }) => e.code === 'EIMAGE' && /truncated/.test(e.message));
    rmSync(sums);
    assert.equal(loadChecksumsLean(dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

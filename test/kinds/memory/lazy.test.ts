/**
 * What a lazy restore leaves to the lazy-pages daemon (src/kinds/memory/lazy.ts)
 * and what the restore checks upfront (src/images/checksums.ts): the pages the
 * kernel writes for a thread before it runs (its rseq area) are filled by the
 * restore, so their bytes are checked before anything is created; a lazy
 * range's blocks are left to the daemon, however many.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eagerPages, lazyFileRanges, registrationSpans } from '../../../src/kinds/memory/lazy.js';
import { VMA } from '../../../src/kinds/memory/vma.js';
import { verifyChecksums } from '../../../src/images/checksums.js';
import { PE_PRESENT } from '../../../src/images/flags.js';
import type { CoreEntry, CriuTsChecksumEntry, PagemapEntry, VmaEntry } from '../../../src/images/messages.js';
import { MAP_PRIVATE, MAP_ANONYMOUS, PROT_READ, PROT_WRITE } from '../../../src/sys/mman.js';

const P = 0x1000n;
const core = (ptr: bigint, size = 32): CoreEntry => ({ thread_core: { rseq_entry: { rseq_abi_pointer: ptr, rseq_abi_size: size, signature: 0x53053053 } } }) as unknown as CoreEntry;
const anon = (from: bigint, to: bigint): VmaEntry => ({
  start: from, end: to, pgoff: 0n, shmid: 0n, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS,
  status: VMA.AREA_REGULAR | VMA.ANON_PRIVATE, fd: -1n,
}) as VmaEntry;

test('eagerPages: the page of each thread\'s rseq area, both pages of one that straddles a boundary, none without rseq', () => {
  const pages = eagerPages([core(0x7000_0020n), core(0x7000_0040n), core(0x8000_0ff0n), core(0n)]);
  assert.deepEqual(pages, [{ start: 0x7000_0000n, end: 0x7000_1000n }, { start: 0x8000_0000n, end: 0x8000_2000n }]);
});

test('lazyFileRanges: the eager pages\' bytes are not left to the daemon', () => {
  const vmas = [anon(0x10_000n, 0x20_000n), anon(0x20_000n, 0x24_000n)];
  const pagemap: PagemapEntry[] = [{ vaddr: 0x10_000n, compat_nr_pages: 0, flags: PE_PRESENT, nr_pages: 20n }];
  assert.deepEqual(lazyFileRanges(pagemap, vmas), [{ start: 0n, end: 20n * P }]);
  assert.deepEqual(lazyFileRanges(pagemap, vmas, [core(0x14_020n), core(0x23_000n)]), [{ start: 0n, end: 4n * P }, { start: 5n * P, end: 19n * P }]);
});

test('registrationSpans: lazy ranges joined across holes, kept apart by any mapping in the gap', () => {
  const r = (a: number, b: number): { start: bigint; end: bigint } => ({ start: BigInt(a) * P, end: BigInt(b) * P });
  const lazy = [r(10, 20), r(30, 40), r(50, 60), r(70, 80), r(90, 95)];
  // The lazy VMAs themselves, a file mapping at 45..48 (between the 2nd and 3rd), the scratch area at 82..83.
  const occupied = [...lazy, r(45, 48), r(82, 83)];
  assert.deepEqual(registrationSpans(lazy, occupied), [
    { span: r(10, 40), ranges: [r(10, 20), r(30, 40)] },
    { span: r(50, 80), ranges: [r(50, 60), r(70, 80)] },
    { span: r(90, 95), ranges: [r(90, 95)] },
  ]);
  // A mapping that only touches the gap's edges does not lie in it.
  assert.deepEqual(registrationSpans([r(1, 2), r(4, 5)], [r(2, 2), r(5, 6)]).length, 1);
  assert.deepEqual(registrationSpans([r(1, 2), r(4, 5)], [r(3, 4)]).length, 2);
});

test('verifyChecksums: blocks wholly inside a later range are skipped, a block only partly inside is checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-lazy-'));
  try {
    const size = 4096;
    const data = Buffer.alloc(8 * size + 100, 7);
    const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
    const blocks = Buffer.concat(Array.from({ length: 9 }, (_, i) => sha(data.subarray(i * size, Math.min((i + 1) * size, data.length)))));
    const e: CriuTsChecksumEntry = { name: 'pages-1.img', size: BigInt(data.length), sha256: sha(blocks), block_size: size, blocks };
    const later = [{ start: BigInt(size), end: BigInt(4 * size + 100) }, { start: BigInt(6 * size), end: BigInt(data.length) }];
    const check = (bad: number): void => {
      const copy = Buffer.from(data);
      copy[bad] = 9;
      writeFileSync(join(dir, e.name), copy);
      verifyChecksums(dir, [e], () => later);
    };
    // Blocks 1-3 and 6-8 (the last one short) are the daemon's.
    for (const b of [1, 2, 3, 6, 7, 8]) check(b * size + 5);
    // Block 4 is only partly inside the first range; 0 and 5 are outside both.
    for (const b of [0, 4, 5]) assert.throws(() => check(b * size + 5), /contents changed since the dump at bytes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

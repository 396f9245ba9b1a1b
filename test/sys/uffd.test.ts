/**
 * PAGEMAP_SCAN through sys/uffd.ts: runs, not pages, and each page once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { pagemapScan, processVmWritev, sysTry, NR, PAGE_IS_PRESENT, getpid } from '../../src/sys/index.js';

const PS = 4096;

test('pagemapScan over a big range of many runs: every run once, in order (a short walk_end of the last call is not walked again)', () => {
  // 80 MiB with pages i % 7 == 1, 2 written: 2,926 runs of two pages, in one call's vector (4,096).
  // On 6.18 the kernel answered that call with walk_end 72 MiB in, though every run had come back.
  const pages = 20480;
  const m = sysTry(NR.mmap, 0, pages * PS, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  assert.ok(m > 0);
  const base = BigInt(m);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const touched = [...Array(pages).keys()].filter((i) => i % 7 === 1 || i % 7 === 2);
    const one = Buffer.from([1]);
    for (const i of touched) processVmWritev(getpid(), one, 0, [{ addr: base + BigInt(i * PS), len: 1 }]);
    const runs = pagemapScan(fd, base, base + BigInt(pages * PS), { flags: 0, mask: 0, anyOf: PAGE_IS_PRESENT, report: PAGE_IS_PRESENT });
    let total = 0;
    let last = 0n;
    for (const r of runs) {
      assert.ok(r.start >= last, `run at +0x${(r.start - base).toString(16)} overlaps the one before (ends +0x${(last - base).toString(16)})`);
      last = r.end;
      total += Number((r.end - r.start) / BigInt(PS));
    }
    assert.equal(total, touched.length, 'each present page reported once');
    assert.equal(runs.length, Math.ceil(pages / 7));
  } finally {
    closeSync(fd);
    sysTry(NR.munmap, m, pages * PS);
  }
});

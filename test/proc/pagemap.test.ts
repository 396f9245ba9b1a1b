import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PagemapReader, presentRuns, isPresent, isExclusive, isFilePage, isSwapped, isSoftDirty, pfn, PM_PRESENT, PM_SWAP, ownCleanMappingsOf, parseMaps } from '../../src/proc/index.js';
import { dropFilePages, MAP_PRIVATE, NR, PROT_READ, PROT_WRITE, sys } from '../../src/sys/index.js';
import { mmapView } from '../../src/sys/libc.js';
import { removeDir, tempDir } from '../lib/harness.js';
import { startProcTarget, infoHex } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

test('PagemapReader sees exactly the touched pages', () => {
  const r = new PagemapReader(t.subject.pid);
  try {
    const a = infoHex(t, 'anon');
    const e = r.read(a, a + 8n * 4096n);
    assert.equal(e.length, 8);
    const present = [...e].map(isPresent);
    assert.deepEqual(present, [true, true, true, false, false, true, false, false]);
    const e0 = e[0] ?? 0n;
    assert.ok(isExclusive(e0));
    assert.ok(!isFilePage(e0));
    assert.ok(!isSwapped(e0));
    assert.ok(!isSoftDirty(e0) || isSoftDirty(e0)); // no MEM_SOFT_DIRTY here: just must not throw
    assert.ok(pfn(e0) > 0n, 'root reads real PFNs');
    assert.deepEqual(presentRuns(e), [{ startIndex: 0, count: 3 }, { startIndex: 5, count: 1 }]);
  } finally {
    r.close();
  }
});

test('presentRuns on 1 GiB worth of entries is fast and exact', () => {
  const n = 262144;
  const e = new BigUint64Array(n);
  // Runs of 3 present every 7 pages, plus one swapped entry that only counts with includeSwapped.
  for (let i = 0; i < n; i++) if (i % 7 < 3) e[i] = PM_PRESENT | BigInt(i);
  e[5] = PM_SWAP;
  // CPU time, not wall time: a linear scan stays far under the bound however busy the machine is.
  const t0 = process.cpuUsage();
  const runs = presentRuns(e);
  const d = process.cpuUsage(t0);
  const ms = (d.user + d.system) / 1000;
  assert.equal(runs.length, Math.ceil(n / 7));
  assert.deepEqual(runs[1], { startIndex: 7, count: 3 });
  assert.equal(runs.reduce((s, r) => s + r.count, 0), e.filter((x) => isPresent(x)).length);
  assert.ok(ms < 100, `presentRuns took ${ms} ms of CPU`);
  assert.deepEqual(presentRuns(e, true)[0], { startIndex: 0, count: 3 });
  assert.deepEqual(presentRuns(e, true)[1], { startIndex: 5, count: 1 });
  assert.deepEqual(presentRuns(e, true)[2], { startIndex: 7, count: 3 });
});

test('a 1 GiB range of our own address space reads in one call', () => {
  const r = new PagemapReader(process.pid);
  try {
    const addr = 0x10000000000n; // unmapped in node: all entries zero
    const e = r.read(addr, addr + (1n << 30n));
    assert.equal(e.length, 262144);
    assert.equal(presentRuns(e).length, 0);
  } finally {
    r.close();
  }
});

test('[vsyscall] lies past pagemap\'s end: entries read as not present', () => {
  const r = new PagemapReader(process.pid);
  try {
    const e = r.read(0xffffffffff600000n, 0xffffffffff601000n);
    assert.deepEqual([...e], [0n]);
  } finally {
    r.close();
  }
});

test('ownCleanMappingsOf: our private read-only mappings of a file with no page of our own; a drop leaves them as the file says', () => {
  const dir = tempDir('pagemap-clean');
  const file = join(dir, 'data');
  writeFileSync(file, Buffer.alloc(4 * 4096, 7));
  const fd = openSync(file, 'r');
  const st = fstatSync(fd, { bigint: true });
  // One mapping written once (a copy of page 0), then made read-only: as a RELRO segment is.
  const written = mmapView(fd, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  const clean = mmapView(fd, 4 * 4096, PROT_READ, MAP_PRIVATE);
  try {
    (written.bytes as Buffer)[0] = 9;
    sys('mprotect', NR.mprotect, undefined, written.addr, 4 * 4096, PROT_READ);
    assert.equal(clean.bytes[4096], 7); // a file page in our page tables
    const own = ownCleanMappingsOf(st.dev, st.ino);
    assert.deepEqual(own.map((m) => [m.start, m.end]), [[clean.addr, clean.addr + 4n * 4096n]], 'the written one is never offered');
    assert.ok((own[0]?.residentKb ?? 0) >= 4);
    assert.equal(dropFilePages(clean.addr, 4 * 4096), true);
    assert.deepEqual(ownCleanMappingsOf(st.dev, st.ino), [], 'nothing resident after the drop');
    assert.equal(clean.bytes[8192], 7);
    assert.equal(written.bytes[0], 9, 'the copy is still ours');
  } finally {
    sys('munmap', NR.munmap, undefined, written.addr, 4 * 4096);
    sys('munmap', NR.munmap, undefined, clean.addr, 4 * 4096);
    closeSync(fd);
    removeDir(dir);
  }
});

test('ownCleanMappingsOf: the node binary\'s text is among them, its written data is not', () => {
  const st = statSync(process.execPath, { bigint: true });
  const own = ownCleanMappingsOf(st.dev, st.ino);
  const ofNode = parseMaps(process.pid).filter((m) => m.inode === st.ino);
  assert.ok(own.some((o) => ofNode.find((m) => m.start === o.start)?.prot.exec === true));
  for (const w of ofNode.filter((m) => m.prot.write)) assert.ok(!own.some((o) => o.start === w.start));
});

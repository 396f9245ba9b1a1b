/**
 * planAnonRuns (src/kinds/memory/reserve.ts): which VMAs a restore maps as
 * one anonymous run, with which protection, and which stay alone; and
 * unmapSpans (ranges.ts): the munmaps that empty the stub's address space.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adviceRuns, planAnonRuns } from '../../../src/kinds/memory/reserve.js';
import { unmapSpans } from '../../../src/kinds/memory/ranges.js';
import { VMA } from '../../../src/kinds/memory/vma.js';
import type { VmaEntry } from '../../../src/images/messages.js';
import { MAP_PRIVATE, MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_NORESERVE, PROT_READ, PROT_WRITE } from '../../../src/sys/mman.js';

const P = 0x1000n;
const RW = PROT_READ | PROT_WRITE;
const anon = (page: number, prot: number, flags = 0): VmaEntry => ({
  start: BigInt(page) * P, end: BigInt(page + 1) * P, pgoff: 0n, shmid: 0n, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | flags,
  status: VMA.AREA_REGULAR | VMA.ANON_PRIVATE, fd: -1n,
}) as VmaEntry;
const file = (page: number): VmaEntry => ({
  start: BigInt(page) * P, end: BigInt(page + 1) * P, pgoff: 0n, shmid: 7n, prot: RW, flags: MAP_PRIVATE,
  status: VMA.AREA_REGULAR | VMA.FILE_PRIVATE, fd: -1n,
}) as VmaEntry;
const plan = (vs: VmaEntry[], skip: (v: VmaEntry) => boolean = () => false) => planAnonRuns(vs, skip, (v) => v.prot);

test('maps06 shape: file, rw, none repeated is one run over all of it, mapped PROT_NONE', () => {
  const vs: VmaEntry[] = [];
  for (let i = 0; i < 4; i++) vs.push(file(3 * i), anon(3 * i + 1, RW), anon(3 * i + 2, 0));
  const runs = plan(vs);
  const run = runs.get(vs[1] as VmaEntry);
  assert.ok(run);
  // The leading file mapping is trimmed off; the trailing one inside is covered and mapped over.
  assert.equal(run.start, P);
  assert.equal(run.end, 12n * P);
  assert.equal(run.prot, 0, 'a read-only protection is preferred, so mprotect only adds write');
  assert.equal(run.anon.size, 8);
  assert.equal(runs.get(vs[0] as VmaEntry), undefined);
  assert.equal(runs.get(vs[3] as VmaEntry), run, 'a file mapping inside the run belongs to it');
  assert.equal(run.anon.has(vs[3] as VmaEntry), false);
});

test('a gap, a stack, a skipped VMA or another MAP_NORESERVE ends a run; fewer than two saved calls make none', () => {
  const a = [anon(0, RW), anon(1, PROT_READ), anon(2, RW)];
  assert.equal(plan(a).get(a[0] as VmaEntry), undefined, 'one VMA of the run protection only: nothing saved');
  const b = [anon(0, RW), anon(1, RW), anon(3, RW), anon(4, RW)];
  const rb = plan(b);
  assert.notEqual(rb.get(b[0] as VmaEntry), rb.get(b[2] as VmaEntry), 'not adjacent');
  assert.equal(rb.get(b[0] as VmaEntry)?.prot, RW, 'all writable: the commonest');
  const c = [anon(0, RW), anon(1, RW, MAP_GROWSDOWN), anon(2, RW)];
  assert.equal(plan(c).size, 0);
  const d = [anon(0, RW), anon(1, RW), anon(2, RW), anon(3, RW)];
  assert.equal(plan(d, (v) => v === d[1]).get(d[0] as VmaEntry), undefined);
  assert.equal(plan(d, (v) => v === d[1]).get(d[2] as VmaEntry)?.start, 2n * P);
  const e = [anon(0, RW), anon(1, RW), anon(2, RW, MAP_NORESERVE), anon(3, RW, MAP_NORESERVE)];
  const re = plan(e);
  assert.equal(re.get(e[0] as VmaEntry)?.noreserve, 0);
  assert.equal(re.get(e[2] as VmaEntry)?.noreserve, MAP_NORESERVE);
  assert.notEqual(re.get(e[0] as VmaEntry), re.get(e[2] as VmaEntry));
});

test('adviceRuns: one range per advice over adjacent VMAs that had it, never over a hole or a VMA without it', () => {
  const adv = (v: VmaEntry, madv: bigint): VmaEntry => ({ ...v, madv });
  const NOHUGE = 1n << 15n;
  const DONTDUMP = 1n << 16n;
  const vs = [adv(anon(0, 0), NOHUGE), adv(anon(1, RW), NOHUGE | DONTDUMP), adv(anon(2, 0), NOHUGE), adv(anon(3, RW), DONTDUMP), adv(anon(5, RW), DONTDUMP)];
  const runs = adviceRuns(vs).map((r) => `${r.advice}:${r.start / P}-${r.end / P}`).sort();
  assert.deepEqual(runs, ['15:0-3', '16:1-2', '16:3-4', '16:5-6']);
  assert.deepEqual(adviceRuns([adv(anon(0, RW), 1n << 40n)]).map((r) => r.advice), [40]);
});

test('unmapSpans: the stub\'s mappings go in one munmap per stretch between the ranges it keeps, holes included', () => {
  const r = (a: number, b: number) => ({ start: BigInt(a) * P, end: BigInt(b) * P });
  // Mappings at 1-2, 4-5, 7-8 | kept 10-11 (scratch) | 12-13, 20-22 | kept 30-32 (vDSO, vvar) | 40-41
  const drop = [r(1, 2), r(4, 5), r(7, 8), r(12, 13), r(20, 22), r(40, 41)];
  const kept = [r(30, 32), r(10, 11)];
  assert.deepEqual(unmapSpans(drop, kept), [r(1, 8), r(12, 22), r(40, 41)]);
  assert.deepEqual(unmapSpans([], kept), []);
  assert.deepEqual(unmapSpans(drop, []), [r(1, 41)]);
});

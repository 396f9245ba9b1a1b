/**
 * src/heap.ts: nothing is done unless the process allowed it (the CLI
 * does, a library user does not), nor below the heap size a small run
 * reaches, nor without growth since the last time; when done, the
 * promoted garbage is gone and the code pages are dropped only when asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { allowHeapTrims, trimIfGrown } from '../src/heap.js';

const used = (): number => getHeapStatistics().used_heap_size;

/** Objects that outlive many scavenges (so are promoted), then dropped: old-space garbage of about `mib` MiB. */
function promotedGarbage(mib: number): void {
  let keep: { i: number; s: string; a: number[] }[] | undefined = [];
  for (let i = 0; keep.length < mib * 8000; i++) keep.push({ i, s: `x${i}`, a: [i, i + 1] });
  keep = undefined;
}

test('a process that did not allow it gets no trim, however big its heap', () => {
  promotedGarbage(24);
  assert.equal(trimIfGrown(true), undefined);
});

test('once allowed: a trim when the heap grew, the code dropped only when asked, none again without growth', () => {
  let drops = 0;
  allowHeapTrims(() => { drops++; });
  promotedGarbage(24);
  const before = used();
  assert.ok(before >= 16 << 20, `heap in use ${before} (the test needs 16 MiB of it)`);
  assert.ok(trimIfGrown() !== undefined);
  assert.ok(used() < before - (8 << 20), `heap in use ${before} -> ${used()}: the garbage stayed`);
  assert.equal(drops, 0, 'code pages dropped without being asked');
  assert.equal(trimIfGrown(true), undefined, 'a second trim with no growth since');
  promotedGarbage(24);
  assert.ok(trimIfGrown(true) !== undefined);
  assert.equal(drops, 1);
});

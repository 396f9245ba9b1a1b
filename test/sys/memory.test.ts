/**
 * Probes of sys/memory.ts that decide how much of a task a dump walks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { guardFlagShown, sysTry, NR, MADV_GUARD_INSTALL } from '../../src/sys/index.js';

const GUARD_PROBE_ADDR = '00100000-';

function kernelHasGuardRegions(): boolean {
  // MADV_GUARD_INSTALL (6.13) and smaps' VM_MAYBE_GUARD flag came later; the probe must say no where either is missing.
  const [major = 0, minor = 0] = readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number);
  return major > 6 || (major === 6 && minor >= 13);
}

test('guardFlagShown: asked twice, one answer, and the probe leaves no mapping behind', () => {
  const first = guardFlagShown();
  assert.equal(guardFlagShown(), first);
  assert.ok(!readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.startsWith(GUARD_PROBE_ADDR)), 'the probe\'s two pages are unmapped');
  if (!kernelHasGuardRegions()) assert.equal(first, false);
});

test('guardFlagShown agrees with smaps: a VMA of ours with a guard region in it is marked gu', () => {
  const page = 4096;
  const m = sysTry(NR.mmap, 0, 4 * page, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  assert.ok(m > 0);
  try {
    const installed = sysTry(NR.madvise, m + page, page, MADV_GUARD_INSTALL) === 0;
    const line = readFileSync('/proc/self/smaps', 'latin1').split(/\n(?=[0-9a-f]+-)/).find((rec) => rec.startsWith(`${m.toString(16).padStart(8, '0')}-`));
    const marked = line !== undefined && / gu( |$)/m.test(/^VmFlags:.*$/m.exec(line)?.[0] ?? '');
    // Shown: the dump scans only marked VMAs, so a guard must always mark its VMA. Not shown: the whole address space is scanned.
    if (guardFlagShown()) assert.ok(installed && marked, 'the VMA holding a guard region is marked gu');
    else assert.ok(!installed || !marked);
  } finally {
    sysTry(NR.munmap, m, 4 * page);
  }
});

/**
 * PROCMAP_QUERY (sys/procmap.ts) against what /proc/self/maps says of the
 * same mappings: executable ones say true, others false, a range running
 * past its mapping's end false, an unmapped address false.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ProcMapQuery } from '../../src/sys/index.js';

interface Line {
  start: bigint;
  end: bigint;
  exec: boolean;
}

function mapsOf(pid: number): Line[] {
  return readFileSync(`/proc/${pid}/maps`, 'latin1').trim().split('\n').map((l) => {
    const [range = '', perms = ''] = l.split(' ');
    const [a = '', b = ''] = range.split('-');
    return { start: BigInt(`0x${a}`), end: BigInt(`0x${b}`), exec: perms[2] === 'x' };
  });
}

test('PROCMAP_QUERY says which mappings are executable, as /proc/PID/maps does', (t) => {
  const q = new ProcMapQuery(process.pid);
  try {
    const lines = mapsOf(process.pid).filter((l) => l.end <= 0x7fffffffffffn); // not [vsyscall]: outside the mm's own mappings
    if (q.executableAt(lines[0]?.start ?? 0n, 1) === undefined) {
      t.skip('this kernel has no PROCMAP_QUERY (Linux 6.11+)');
      return;
    }
    const exec = lines.find((l) => l.exec);
    const data = lines.find((l) => !l.exec);
    assert.ok(exec !== undefined && data !== undefined);
    assert.equal(q.executableAt(exec.start, 2), true);
    assert.equal(q.executableAt(exec.end - 2n, 2), true);
    // Running past the mapping's end (into whatever follows, or nothing) is not "in one executable mapping".
    const next = lines.find((l) => l.start === exec.end);
    if (next === undefined || !next.exec) assert.equal(q.executableAt(exec.end - 1n, 2), false);
    assert.equal(q.executableAt(data.start, 1), false);
    assert.equal(q.executableAt(0x1000n, 1), false, 'the first pages are never mapped here');
  } finally {
    q.close();
  }
});

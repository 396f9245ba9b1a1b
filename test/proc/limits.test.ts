import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseLimits, RLIM_INFINITY } from '../../src/proc/index.js';
import { startProcTarget } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

const RLIMIT_CPU = 0;
const RLIMIT_STACK = 3;
const RLIMIT_NOFILE = 7;

test('parseLimits in RLIMIT order, with the lowered NOFILE', () => {
  const l = parseLimits(t.subject.pid);
  const ours = parseLimits(process.pid);
  assert.equal(l.length, 16);
  assert.equal(l[RLIMIT_NOFILE]?.soft, 1000n);
  assert.equal(l[RLIMIT_NOFILE]?.hard, ours[RLIMIT_NOFILE]?.hard);
  assert.equal(l[RLIMIT_CPU]?.soft, RLIM_INFINITY);
  assert.deepEqual(l[RLIMIT_STACK], ours[RLIMIT_STACK]);
});

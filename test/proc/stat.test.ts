import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isSmallProcess, parseStat, parseStatText } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { startProcTarget, infoNum } from '../lib/proc-target.js';
import { startSubject } from '../lib/subjects.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

test('parseStat splits a comm with spaces and parentheses', () => {
  const pid = t.subject.pid;
  const s = parseStat(pid);
  assert.equal(s.pid, pid);
  assert.equal(s.comm, 'pt (x) y');
  assert.equal(s.state, 'S');
  assert.equal(s.ppid, process.pid);
  assert.equal(s.pgrp, pid);
  assert.equal(s.session, pid);
  assert.equal(s.ttyNr, 0);
  assert.equal(s.numThreads, 2);
  assert.equal(s.exitSignal, 17);
  assert.equal(s.exitCode, 0);
  assert.ok(s.startCode > 0n && s.startCode < s.endCode);
  assert.ok(s.startData <= s.endData && s.endData <= s.startBrk);
  assert.ok(s.argStart < s.argEnd && s.argEnd <= s.envStart && s.envStart < s.envEnd);
  assert.ok(s.startStack > s.envEnd - 0x100000000n);
  assert.ok(s.starttime > 0n);
  assert.equal(s.policy, 0);
  assert.equal(s.nice, 0);
});

test('parseStat of a thread', () => {
  const tid = infoNum(t, 'thread');
  const s = parseStat(t.subject.pid, tid);
  assert.equal(s.pid, tid);
  assert.equal(s.comm, 'pt (x) y');
});

test('parseStatText rejects garbage', () => {
  assert.throws(() => parseStatText('12 (x) S 1 2', 'f'), (e) => isCriuTsError(e) && e.code === 'EPROC');
  assert.throws(() => parseStat(99999), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
});

test('isSmallProcess: one small process is; a tree, a big resident set or a task gone is not', async () => {
  // counter-loop: one thread, a few fds and mappings, little memory, no children.
  const small = await startSubject('counter-loop');
  try {
    assert.equal(isSmallProcess(small.pid), true);
  } finally {
    small.cleanup();
  }
  // proc-target forked a child (which forked a grandchild).
  assert.equal(isSmallProcess(t.subject.pid), false);
  // This test's node: tens of MiB resident.
  assert.equal(isSmallProcess(process.pid), false);
  assert.equal(isSmallProcess(99999999), false);
});

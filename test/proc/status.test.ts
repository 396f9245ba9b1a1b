import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatus } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { startProcTarget, infoNum } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

const bit = (sig: number): bigint => 1n << BigInt(sig - 1);

test('parseStatus reads ids, umask, masks and counts', () => {
  const pid = t.subject.pid;
  const s = parseStatus(pid);
  assert.equal(s.name, 'pt (x) y');
  assert.equal(s.state, 'S');
  assert.equal(s.tgid, pid);
  assert.equal(s.pid, pid);
  assert.equal(s.ppid, process.pid);
  assert.equal(s.tracerPid, 0);
  assert.deepEqual(s.uid, [0, 0, 0, 0]);
  assert.deepEqual(s.gid, [0, 0, 0, 0]);
  assert.deepEqual(s.nsPid, [pid]);
  assert.deepEqual(s.nsSid, [pid]); // started in its own session
  assert.equal(s.threads, 2);
  assert.equal(s.umask, 0o027);
  assert.equal(s.sigBlk & bit(12), bit(12)); // SIGUSR2 blocked
  assert.equal(s.sigIgn & bit(13), bit(13)); // SIGPIPE ignored
  assert.equal(s.sigCgt & bit(15), bit(15)); // SIGTERM caught
  assert.ok(s.capBnd > 0n);
  assert.equal(s.capEff, s.capPrm);
  assert.equal(s.seccomp, 0);
  assert.equal(s.noNewPrivs, 0);
  assert.ok(s.fdSize >= 64);
  assert.ok(s.sigQ.limit > 0);
});

test('parseStatus of a thread', () => {
  const tid = infoNum(t, 'thread');
  const s = parseStatus(t.subject.pid, tid);
  assert.equal(s.pid, tid);
  assert.equal(s.tgid, t.subject.pid);
  assert.equal(s.sigBlk & bit(12), bit(12)); // inherited from the creating thread
});

test('parseStatus of a missing pid is ENOTASK', () => {
  assert.throws(() => parseStatus(99999), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { parseStatus, readComm } from '../../src/proc/index.js';
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

test('parseStatus gives the comm exactly, or nothing where the Name line is escaped', () => {
  // Our own main thread's comm (a task may rename only its own threads).
  const was = readComm(process.pid);
  try {
    for (const name of [' two  spaces ', 'tab\there', 'back\\slash', 'new\nline', 'x']) {
      writeFileSync(`/proc/${process.pid}/comm`, name);
      const s = parseStatus(process.pid);
      const comm = readComm(process.pid);
      if (name.includes('\\') || name.includes('\n')) assert.equal(s.comm, undefined, JSON.stringify(name));
      else assert.equal(s.comm, comm, JSON.stringify(name));
    }
  } finally {
    writeFileSync(`/proc/${process.pid}/comm`, was);
  }
});

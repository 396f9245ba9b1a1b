/**
 * The infect library on real victims: each victim is a subject that checks
 * its own state (registers, memory, a blocking syscall, pending signals).
 * We seize it, run syscalls inside it, use a scratch area, cure and detach;
 * the victim must then finish with its self-check passing, and its address
 * space must be exactly what it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Tracee, RemoteSyscallError } from '../../src/infect/tracee.js';
import { syscallEach } from '../../src/infect/side-by-side.js';
import { NR, decodeGpRegs } from '../../src/sys/index.js';
import { startSubject } from '../lib/subjects.js';

function maps(pid: number): string {
  return readFileSync(`/proc/${pid}/maps`, 'latin1');
}

const VICTIMS: { name: string; args: string[]; why: string }[] = [
  { name: 'counter-loop', args: [], why: 'a running loop: registers and memory' },
  { name: 'fpu', args: [], why: 'x87/SSE/AVX values live in registers' },
  { name: 'sleep-nanosleep', args: [], why: 'stopped inside a blocking syscall' },
  { name: 'signals', args: [], why: 'pending and blocked signals' },
];

for (const v of VICTIMS) {
  test(`infect ${v.name} (${v.why}): syscalls, scratch, cure; the victim carries on unharmed`, async () => {
    const s = await startSubject(v.name, v.args);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const before = maps(s.pid);
      const t = Tracee.seize(s.pid);
      const regs0 = Buffer.from(t.origRegs);
      assert.equal(t.syscall('getpid', NR.getpid), BigInt(s.pid));
      assert.equal(t.syscall('gettid', NR.gettid), BigInt(s.pid));
      const a = t.mapScratch(1 << 16);
      const data = Buffer.from('criu-ts was here\n');
      t.writeMem(a, data);
      assert.deepEqual(t.readMem(a, data.length), data);
      // A syscall that fails inside the task comes back as a typed error, not -1.
      assert.throws(() => t.syscall('close', NR.close, 9999), (e: unknown) => e instanceof RemoteSyscallError && e.errno === 9);
      for (let i = 0; i < 100; i++) t.syscall('getppid', NR.getppid);
      t.cure();
      assert.deepEqual(t.currentRegs(), regs0, 'registers not put back');
      t.detach();
      assert.equal(maps(s.pid), before, 'address space changed');
      const r = await s.terminateAndResult(10_000);
      assert.ok(r.ok, r.text);
    } finally {
      s.kill();
      s.cleanup();
    }
  });
}

test('a seized task stopped inside a syscall reports the call and the kernel restart code', async () => {
  const s = await startSubject('sleep-nanosleep', []);
  try {
    await new Promise((r) => setTimeout(r, 100));
    const t = Tracee.seize(s.pid);
    const regs = decodeGpRegs(t.origRegs);
    // clock_nanosleep (230) or nanosleep (35), interrupted with -ERESTART_RESTARTBLOCK (516).
    assert.ok(regs.orig_ax === 230n || regs.orig_ax === 35n, `orig_ax ${regs.orig_ax}`);
    assert.equal(BigInt.asIntN(64, regs.ax), -516n);
    t.cure();
    t.detach();
    const r = await s.terminateAndResult(10_000);
    assert.ok(r.ok, r.text);
  } finally {
    s.kill();
    s.cleanup();
  }
});

test('syscallEach: one injected call in each thread at once, every result its own; a failing call leaves no thread running', async () => {
  const s = await startSubject('dump-victim', []);
  try {
    await new Promise((r) => setTimeout(r, 100));
    const tids = readdirSync(`/proc/${s.pid}/task`).map(Number).sort((a, b) => a - b);
    assert.ok(tids.length >= 4, `threads: ${tids.join(',')}`);
    const ts = tids.map((tid) => Tracee.seize(tid));
    const regs0 = ts.map((t) => Buffer.from(t.origRegs));
    try {
      assert.deepEqual(syscallEach(ts.map((t) => ({ t, nr: NR.gettid, args: [] }))), tids.map(BigInt));
      // One call fails inside its thread: its raw result is -EBADF, the others still complete.
      const r = syscallEach(ts.map((t, i) => (i === 1 ? { t, nr: NR.close, args: [9999] } : { t, nr: NR.getpid, args: [] })));
      assert.deepEqual(r, ts.map((_, i) => (i === 1 ? -9n : BigInt(s.pid))));
      assert.throws(() => syscallEach([{ t: ts[0] as Tracee, nr: NR.getpid, args: [] }, { t: ts[0] as Tracee, nr: NR.getpid, args: [] }]), /two side-by-side calls/);
      // Each thread is back in a ptrace stop and takes ordinary calls again.
      for (const [i, t] of ts.entries()) assert.equal(t.syscall('gettid', NR.gettid), BigInt(tids[i] as number));
    } finally {
      for (const t of ts) t.cure();
      ts.forEach((t, i) => assert.deepEqual(t.currentRegs(), regs0[i], `thread ${t.tid}: registers not put back`));
      for (const t of ts) t.detach();
    }
    const r = await s.terminateAndResult(10_000);
    assert.ok(r.ok, r.text);
  } finally {
    s.kill();
    s.cleanup();
  }
});

test('a thread seized inside an rseq critical section goes to its abort handler; injected calls and cure never let it finish the section', async () => {
  const s = await startSubject('rseq-cs', [], { pthread: true });
  try {
    await new Promise((r) => setTimeout(r, 100));
    let aborted = 0;
    for (let i = 0; i < 20; i++) {
      const t = Tracee.seize(s.pid);
      assert.ok(t.rseqAtStop, 'glibc (or the subject) registered an rseq area: the seize must see it');
      if (t.rseqAtStop.aborted) {
        aborted++;
        // The registers the cure puts back are the abort handler's, and the thread's own are too.
        assert.deepEqual(t.currentRegs(), t.origRegs);
      }
      // Our calls return to a gadget outside the section: the kernel clears rseq_cs there.
      for (let k = 0; k < 5; k++) t.syscall('getpid', NR.getpid);
      t.cure();
      t.detach();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(aborted > 0, 'in 20 seizes the thread was never inside its critical section');
    const r = await s.terminateAndResult(10_000);
    assert.ok(r.ok, r.text);
  } finally {
    s.kill();
    s.cleanup();
  }
});

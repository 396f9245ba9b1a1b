/**
 * The kernel boundary: typed results, typed errors (syscall, errno name,
 * pid), never -1; memory of another task through process_vm_readv batches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  SyscallError, kill, pidfdOpen, pidfdGetfd, closeQuiet, processVmReadv, kcmp, KCMP, getpid, ptraceSeize,
} from '../../src/sys/index.js';
import { isCriuTsError } from '../../src/errors.js';

test('a failing syscall throws SyscallError with the call, errno name and pid', () => {
  const missing = 4_000_000; // above pid_max
  assert.throws(() => kill(missing, 0), (e: unknown) => {
    assert.ok(e instanceof SyscallError);
    assert.ok(isCriuTsError(e));
    assert.equal(e.code, 'ESYSCALL');
    assert.equal(e.syscall, 'kill');
    assert.equal(e.data['errnoName'], 'ESRCH');
    assert.equal(e.pid, missing);
    assert.match(e.message, /kill \(pid 4000000\): ESRCH/);
    return true;
  });
  assert.throws(() => ptraceSeize(getpid(), 0), (e: unknown) => e instanceof SyscallError && e.syscall === 'ptrace(SEIZE)');
});

test('process_vm_readv reads many ranges of another task in one batch', async () => {
  // Our own memory through the same call: two ranges of a buffer we know.
  const src = Buffer.alloc(8192);
  for (let i = 0; i < src.length; i++) src[i] = i & 0xff;
  const { addr } = await import('../../src/sys/libc.js');
  const base = addr(src);
  const out = Buffer.alloc(300);
  const n = processVmReadv(getpid(), out, 0, [{ addr: base + 10n, len: 100 }, { addr: base + 5000n, len: 200 }]);
  assert.equal(n, 300);
  assert.deepEqual(out.subarray(0, 100), src.subarray(10, 110));
  assert.deepEqual(out.subarray(100), src.subarray(5000, 5200));
  // A range that cannot be read is a short count where it starts, even as
  // the first range of a batch (the kernel's EFAULT): the caller's fallback
  // takes the rest, as for a fault past the first byte. The zero page is
  // never mapped.
  assert.equal(processVmReadv(getpid(), out, 0, [{ addr: 4096n, len: 100 }, { addr: base, len: 100 }]), 0);
  assert.equal(processVmReadv(getpid(), out, 0, [{ addr: base, len: 100 }, { addr: 4096n, len: 100 }]), 100);
  // A task that does not exist is still an error.
  assert.throws(() => processVmReadv(4_000_000, out, 0, [{ addr: base, len: 100 }]), (e: unknown) => e instanceof SyscallError && e.data['errnoName'] === 'ESRCH');
});

test('pidfd_getfd copies another task\'s fd; kcmp tells the same file apart', async () => {
  const child = spawn('sh', ['-c', 'exec 2>&1; exec sleep 30'], { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const pid = child.pid as number;
    const pidfd = pidfdOpen(pid);
    const fd = pidfdGetfd(pidfd, 1, pid);
    assert.ok(fd > 2);
    assert.equal(kcmp(pid, pid, KCMP.FILE, 1, 2), 0, 'fd 2 is a dup of fd 1');
    assert.notEqual(kcmp(pid, pid, KCMP.FILE, 0, 1), 0, 'fd 0 is another open of /dev/null');
    closeQuiet(fd);
    closeQuiet(pidfd);
  } finally {
    child.kill('SIGKILL');
  }
});

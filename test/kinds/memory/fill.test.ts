/**
 * writeRanges (src/kinds/memory/fill.ts): a small fill written from our
 * side into another process, on a live `sleep`. A range in a read-only
 * private file mapping (a library's first pages, as a relro area is mapped
 * now: with its final protection) is written through /proc/PID/mem with no
 * help; ranges either side go by process_vm_writev; a range the kernel
 * refuses even so (the vvar area) is offered to `unprotect`, and one it
 * declines is an ERESTORE error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { writeRanges } from '../../../src/kinds/memory/fill.js';
import { parseMaps, type MapsEntry } from '../../../src/proc/index.js';
import { ProcMem } from '../../../src/sys/index.js';
import { CriuTsError } from '../../../src/errors.js';
import { waitFor } from '../../lib/harness.js';

async function sleeper(): Promise<{ pid: number; kill: () => void }> {
  const c = spawn('sleep', ['100'], { stdio: 'ignore' });
  const pid = c.pid as number;
  const ok = await waitFor(() => {
    try {
      return readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep');
    } catch {
      return false;
    }
  });
  assert.ok(ok, 'sleep started');
  return { pid, kill: () => c.kill('SIGKILL') };
}

function read(pid: number, addr: bigint, len: number): Buffer {
  const m = new ProcMem(pid);
  try {
    const b = Buffer.alloc(len);
    assert.equal(m.read(addr, b), len);
    return b;
  } finally {
    m.close();
  }
}

test('writeRanges: writable, read-only private file, writable: all written, no unprotect asked', async () => {
  const s = await sleeper();
  try {
    const maps = parseMaps(s.pid);
    const perms = (m: MapsEntry): string => `${m.prot.read ? 'r' : '-'}${m.prot.write ? 'w' : '-'}${m.prot.exec ? 'x' : '-'}${m.shared ? 's' : 'p'}`;
    const ro = maps.find((m) => perms(m) === 'r--p' && m.path.startsWith('/'));
    const rw = maps.filter((m) => perms(m) === 'rw-p');
    assert.ok(ro && rw.length >= 2, `a read-only file mapping and two writable ones in ${maps.map(perms).join(' ')}`);
    const ranges = [
      { addr: (rw[0] as MapsEntry).start, len: 100 },
      { addr: ro.start + 8n, len: 64 },
      { addr: (rw[1] as MapsEntry).start + 16n, len: 32 },
    ];
    const buf = Buffer.alloc(196);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7 + 3) & 0xff;
    const asked: bigint[] = [];
    writeRanges(s.pid, buf, ranges, (a) => {
      asked.push(a);
      return false;
    });
    assert.deepEqual(asked, []);
    let at = 0;
    for (const r of ranges) {
      assert.deepEqual(read(s.pid, r.addr, r.len), buf.subarray(at, at + r.len), `range at 0x${r.addr.toString(16)}`);
      at += r.len;
    }
    const after = parseMaps(s.pid).find((m) => m.start === ro.start);
    assert.ok(after && perms(after) === 'r--p', 'still read-only');
  } finally {
    s.kill();
  }
});

test('writeRanges: a range even /proc/PID/mem refuses is offered to unprotect; declined, it is an ERESTORE error', async () => {
  const s = await sleeper();
  try {
    const vvar = parseMaps(s.pid).find((m) => m.path === '[vvar]');
    if (!vvar) return; // no vvar area on this kernel: nothing to refuse
    const asked: bigint[] = [];
    assert.throws(() => writeRanges(s.pid, Buffer.alloc(8), [{ addr: vvar.start, len: 8 }], (a) => {
      asked.push(a);
      return false;
    }), (e: unknown) => e instanceof CriuTsError && e.code === 'ERESTORE');
    assert.deepEqual(asked, [vvar.start]);
  } finally {
    s.kill();
  }
});

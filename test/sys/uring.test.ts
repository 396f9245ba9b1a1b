/**
 * Writes through io_uring (src/sys/uring.ts) and the pages writer that
 * overlaps them with its reads and its hash: bytes land at their
 * positions whatever order the writes are waited in, a failed write is a
 * SyscallError at its wait, writes nobody waited for do not block the
 * ring, and a big pages file is the task's bytes with the digest of
 * exactly those bytes.
 */
import { BLOCK_BYTES, digestWith } from '../../src/images/block-hash.js';
import { vmhAvailable } from '../../src/images/vmh.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Uring, SyscallError, addr, getpid } from '../../src/sys/index.js';
import { PagesWriter } from '../../src/kinds/memory/pages-writer.js';
import { beginChecksums, endChecksums } from '../../src/images/index.js';
import { PE_PRESENT } from '../../src/images/flags.js';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i += 4) b.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ seed) >>> 0, i);
  return b;
}

test('io_uring writes land at their positions, waited in any order; errors come back at the wait', () => {
  const ring = Uring.shared();
  assert.ok(ring, 'io_uring (IORING_SETUP_NO_MMAP, Linux 6.5) is available on this machine');
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-uring-'));
  try {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w');
    const a = pattern(1 << 20, 1);
    const b = pattern(300_000, 2);
    const wa = ring.write(fd, a, 0, a.length, 0);
    const wb = ring.write(fd, b, 1000, b.length - 1000, a.length);
    ring.wait(wb);
    ring.wait(wa);
    closeSync(fd);
    assert.ok(readFileSync(path).equals(Buffer.concat([a, b.subarray(1000)])));

    const bad = openSync(path, 'r');
    const w = ring.write(bad, a, 0, 4096, 0);
    assert.throws(() => ring.wait(w), (e: unknown) => e instanceof SyscallError && e.errno === 9, 'EBADF of a read-only fd');
    closeSync(bad);

    // Writes a failed caller never waited for: more than the ring holds, and it still takes new ones.
    const fd2 = openSync(path, 'w');
    for (let i = 0; i < 6; i++) ring.write(fd2, a, 0, 4096, i * 4096);
    const last = ring.write(fd2, b, 0, 4096, 6 * 4096);
    ring.wait(last);
    closeSync(fd2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a big pages file: the bytes read, written through the ring, and their digests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-uring-'));
  try {
    // Our own memory as "the task": 9 MiB (four and a half halves), page aligned, in three runs.
    const raw = pattern(10 << 20, 7);
    const skew = Number((4096n - (addr(raw) & 4095n)) & 4095n);
    const mem = raw.subarray(skew, skew + (9 << 20));
    const base = addr(mem);
    beginChecksums(dir);
    const w = new PagesWriter(dir, 1, getpid(), undefined, mem.length);
    const page = 4096;
    w.add(base, 1000, PE_PRESENT, false);
    w.breakRun();
    w.add(base + 1000n * 4096n, 1, PE_PRESENT, true); // through /proc/PID/mem
    w.add(base + 1001n * 4096n, mem.length / page - 1001, PE_PRESENT, false);
    w.close();
    const c = endChecksums(dir);
    const file = readFileSync(join(dir, 'pages-1.img'));
    assert.ok(file.equals(mem), 'the file holds the pages in order');
    const d = c?.files.get('pages-1.img');
    assert.equal(d?.size, BigInt(mem.length));
    // A pages image's digest is over its 64 KiB block digests (images/block-hash.ts, for lazy-pages).
    const blocks: Buffer[] = [];
    // vmh256 where this Node runs it (the halves then lie in its module's memory), else SHA-256.
    const algo = d?.algorithm;
    assert.equal(algo, vmhAvailable() ? 'vmh256' : undefined);
    for (let at = 0; at < mem.length; at += BLOCK_BYTES) blocks.push(digestWith(algo, mem.subarray(at, at + BLOCK_BYTES)));
    assert.equal(d?.blocks?.toString('hex'), Buffer.concat(blocks).toString('hex'));
    assert.equal(d?.sha256.toString('hex'), digestWith(algo, Buffer.concat(blocks)).toString('hex'));
    assert.equal(w.entries.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Where the first injected call of a dump target puts its frame and its
 * area (src/infect/first-call.ts), and how a ghost's directory is reached
 * (sys/safe-fs.ts openDirRootLinksOnly): from synthetic maps, and on real
 * directories with a root's and a user's symlink on the way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lchownSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pickHole, stackFrameSlot } from '../../src/infect/first-call.js';
import type { MapsEntry } from '../../src/proc/maps.js';
import { closeQuiet, isSyscallError, openDirRootLinksOnly } from '../../src/sys/index.js';

const m = (start: bigint, end: bigint, path = ''): MapsEntry => ({
  start, end, path, prot: { read: true, write: true, exec: false, value: 3 }, shared: false, pgoff: 0n, devMajor: 0, devMinor: 0, inode: 0n, deleted: false,
});

test('pickHole: the top of the highest hole, a page clear of each side, never just below the stack', () => {
  const maps = [
    m(0x555555554000n, 0x555555556000n, '/bin/x'),
    m(0x555555556000n, 0x555555577000n, '[heap]'),
    m(0x7ffff7d00000n, 0x7ffff7e00000n, '/lib/libc.so'),
    m(0x7ffff7e00000n, 0x7ffff7e10000n),
    m(0x7ffffffde000n, 0x7ffffffff000n, '[stack]'),
  ];
  // Below [stack] is left alone (it grows down); below libc is the highest other hole.
  assert.equal(pickHole(maps, 0x10000), 0x7ffff7d00000n - 0x1000n - 0x10000n);
  // Rounded up to pages.
  assert.equal(pickHole(maps, 1), 0x7ffff7d00000n - 0x2000n);
  // No hole big enough: none.
  assert.equal(pickHole([m(0x1000000n, 0x2000000n), m(0x2003000n, 0x3000000n)], 0x2000), undefined);
  assert.equal(pickHole([m(0x1000000n, 0x2000000n), m(0x2004000n, 0x3000000n)], 0x2000), 0x2001000n);
});

test('stackFrameSlot: below the red zone, 64-byte aligned, only in [stack] and only if it fits', () => {
  const maps = [m(0x7ffffffde000n, 0x7ffffffff000n, '[stack]'), m(0x7ffff0000000n, 0x7ffff0800000n)];
  const sp = 0x7fffffffe123n;
  const slot = stackFrameSlot(maps, sp, 3328) as bigint;
  assert.equal(slot % 64n, 0n);
  assert.ok(slot + 3328n <= sp - 128n, 'clear of the red zone');
  assert.ok(sp - 128n - (slot + 3328n) < 64n, 'as close as alignment allows');
  // A thread stack elsewhere (a pthread's, a goroutine's): no.
  assert.equal(stackFrameSlot(maps, 0x7ffff0400000n, 3328), undefined);
  // Too close to the bottom of [stack]: no.
  assert.equal(stackFrameSlot(maps, 0x7ffffffde000n + 1000n, 3328), undefined);
});

test('openDirRootLinksOnly: root\'s symlinks followed, a user\'s refused with ELOOP, a missing directory ENOENT', () => {
  const top = mkdtempSync('/tmp/criu-ts-rootlinks-');
  try {
    mkdirSync(join(top, 'real', 'sub'), { recursive: true });
    symlinkSync(join(top, 'real'), join(top, 'by-root'));
    symlinkSync('real', join(top, 'by-user'));
    lchownSync(join(top, 'by-user'), 65534, 65534);
    const fd = openDirRootLinksOnly(join(top, 'by-root', 'sub'));
    try {
      assert.equal(readlinkSync(`/proc/self/fd/${fd}`), join(top, 'real', 'sub'));
    } finally {
      closeQuiet(fd);
    }
    assert.throws(() => openDirRootLinksOnly(join(top, 'by-user', 'sub')), (e: unknown) => isSyscallError(e, 40) && /by-user is a symlink of uid 65534/.test((e as Error).message));
    assert.throws(() => openDirRootLinksOnly(join(top, 'real', 'gone')), (e: unknown) => isSyscallError(e, 2));
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

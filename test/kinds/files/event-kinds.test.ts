/**
 * eventfd, epoll, timerfd, signalfd, inotify and fanotify: each subject is
 * dumped, its file entries are checked against what the subject set up
 * (and decoded by crit 3.17 exactly as by crit-ts), then it is restored and
 * must verify its own state.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';
import type { FileEntry } from '../../../src/images/messages.js';

before(setUpRunner);

const O_RDWR = 2;
const O_NONBLOCK = 0o4000;

function ofType(dir: string, type: string): FileEntry[] {
  return fileEntries(dir).filter((e) => e.type === type);
}

test('eventfd: counter, semaphore mark and flags', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'eventfd',
    check(dir) {
      const efds = ofType(dir, 'EVENTFD').map((e) => e.efd);
      assert.equal(efds.length, 2);
      assert.deepEqual(efds.map((e) => [e?.counter, e?.flags]).sort(), [[3n, O_RDWR | O_NONBLOCK | 1], [0x100000005n, O_RDWR]].sort());
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('epoll: targets with events and data, nested epoll', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'epoll',
    check(dir) {
      const eps = ofType(dir, 'EVENTPOLL').map((e) => e.epfd);
      const outer = eps.find((e) => e?.tfd?.length === 2);
      assert.ok(outer, 'the epoll with two targets');
      const byFd = new Map(outer.tfd?.map((t) => [t.tfd, t]));
      assert.equal(byFd.get(20)?.data, 0x1234n);
      assert.equal(byFd.get(22)?.data, 0xdeadbeefcafen);
      assert.ok(((byFd.get(22)?.events ?? 0) >>> 0) & 0x80000000, 'EPOLLET kept');
      assert.deepEqual(eps.find((e) => e?.tfd?.length === 1)?.tfd?.map((t) => [t.tfd, t.data]), [[21, 7n]]);
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('timerfd: value, interval, ticks, absolute timers', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'timerfd',
    check(dir) {
      const tfds = ofType(dir, 'TIMERFD').map((e) => e.tfd);
      assert.equal(tfds.length, 4);
      const slow = tfds.find((t) => t?.isec === 1n);
      assert.equal(slow?.insec, 500000000n);
      assert.ok(slow !== undefined && slow.vsec >= 90n && slow.vsec < 100n, `value ${slow?.vsec}`);
      assert.ok(tfds.some((t) => t?.ticks === 1n && t.isec === 0n && t.insec === 0n), 'the fired one-shot with its tick');
      const abs = tfds.find((t) => t?.clockid === 0);
      assert.equal(abs?.settime_flags, 1);
      assert.equal(abs?.flags, O_RDWR | O_NONBLOCK);
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('signalfd: mask and flags; a pending signal survives', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'signalfd',
    check(dir) {
      const [sg] = ofType(dir, 'SIGNALFD').map((e) => e.sgfd);
      assert.equal(sg?.sigmask, (1n << 9n) | (1n << 0n)); // SIGUSR1 (10), SIGHUP (1)
      assert.equal(sg?.flags, O_RDWR | O_NONBLOCK);
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('inotify: watches by path with wd numbers', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'inotify',
    check(dir, s) {
      const [ify] = ofType(dir, 'INOTIFY').map((e) => e.ify);
      const wds = (ify?.wd ?? []).map((w) => [w.wd, w.f_handle.path, w.mask]).sort();
      assert.deepEqual(wds, [[1, `${s.workDir}/top`, 0x100], [2, `${s.workDir}/sub`, 0x300], [4, `${s.workDir}/b.txt`, 0x2]]);
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('fanotify: mount and inode marks', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'fanotify',
    check(dir, s) {
      const [ffy] = ofType(dir, 'FANOTIFY').map((e) => e.ffy);
      const inode = ffy?.mark?.find((m) => m.type === 'INODE');
      assert.equal(inode?.ie?.f_handle.path, `${s.workDir}/f.txt`);
      assert.equal(inode?.mask, 0x2);
      const mount = ffy?.mark?.find((m) => m.type === 'MOUNT');
      assert.equal(mount?.mask, 0x20);
      assert.ok(mount?.me?.path?.startsWith('/'));
      sameAsCrit(dir, ['files.img']);
    },
  });
});

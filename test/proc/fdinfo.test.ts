import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fdsLinkedTo, listFds, readFdLink, parseFdinfo, parseFdinfoText } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { startProcTarget } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let s: Subject;
let pt: ProcTarget;
before(async () => {
  s = await startSubject('fd-kinds', ['--fanotify', '1', '--tty', '1']);
  pt = await startProcTarget();
});
after(() => {
  s.cleanup();
  pt.subject.cleanup();
});

const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

test('listFds and readFdLink', () => {
  const fds = listFds(s.pid);
  for (const fd of [0, 1, 2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]) assert.ok(fds.includes(fd), `fd ${fd}`);
  assert.equal(readFdLink(s.pid, 20), 'anon_inode:[eventfd]');
  assert.equal(readFdLink(s.pid, 21), 'anon_inode:[eventpoll]');
  assert.equal(readFdLink(s.pid, 26), join(s.workDir, 'lock.dat'));
  assert.equal(readFdLink(s.pid, 0), '/dev/null');
});

test('regular file: pos, flags, ino', () => {
  const i = parseFdinfo(pt.subject.pid, 7);
  assert.equal(i.pos, 4242n);
  assert.equal(i.flags & 3, O_RDWR);
  assert.equal(i.ino, BigInt(statSync(join(pt.subject.workDir, 'offset.dat')).ino));
  assert.ok(i.mntId > 0);
});

test('eventfd', () => {
  const i = parseFdinfo(s.pid, 20);
  assert.deepEqual({ count: i.eventfd?.count, semaphore: i.eventfd?.semaphore }, { count: 5n, semaphore: true });
  assert.equal(typeof i.eventfd?.id, 'number');
  assert.equal(i.flags & O_NONBLOCK, O_NONBLOCK);
});

test('epoll', () => {
  const i = parseFdinfo(s.pid, 21);
  assert.equal(i.epoll?.length, 1);
  const tfd = i.epoll?.[0];
  assert.equal(tfd?.tfd, 20);
  assert.equal((tfd?.events ?? 0) & 0x5, 0x5); // EPOLLIN | EPOLLOUT (the kernel adds ERR|HUP)
  assert.equal(tfd?.data, 0x1234n);
  assert.equal(tfd?.pos, 0n);
  assert.equal(tfd?.ino, parseFdinfo(s.pid, 20).ino);
});

test('timerfd', () => {
  const tf = parseFdinfo(s.pid, 22).timerfd;
  assert.ok(tf);
  assert.equal(tf.clockid, 1);
  assert.equal(tf.ticks, 0n);
  assert.equal(tf.settimeFlags, 0);
  assert.deepEqual(tf.itInterval, { sec: 1n, nsec: 500000000n });
  assert.ok(tf.itValue.sec >= 90n && tf.itValue.sec < 100n);
});

test('signalfd', () => {
  assert.equal(parseFdinfo(s.pid, 23).signalfd?.sigmask, (1n << 9n) | (1n << 0n)); // SIGUSR1, SIGHUP
});

test('inotify', () => {
  const w = parseFdinfo(s.pid, 24).inotify;
  assert.equal(w?.length, 1);
  assert.equal(w?.[0]?.wd, 1);
  assert.equal(w?.[0]?.mask, 0x300); // IN_CREATE | IN_DELETE
  assert.equal(w?.[0]?.ino, BigInt(statSync(`${s.workDir}/watched`).ino));
  assert.ok((w?.[0]?.fhandle?.handle.length ?? 0) > 0);
});

test('fanotify', () => {
  const f = parseFdinfo(s.pid, 25).fanotify;
  assert.ok(f);
  assert.equal(f.marks.length, 1);
  assert.equal(f.marks[0]?.kind, 'mount');
  assert.equal(f.marks[0]?.mask, 0x20); // FAN_OPEN
  assert.ok((f.marks[0]?.mntId ?? 0) > 0);
});

test('locks', () => {
  const fl = parseFdinfo(s.pid, 26).locks;
  assert.equal(fl?.length, 1);
  assert.deepEqual({ type: fl?.[0]?.type, mode: fl?.[0]?.mode, pid: fl?.[0]?.pid, blocked: fl?.[0]?.blocked }, { type: 'FLOCK', mode: 'WRITE', pid: s.pid, blocked: false });
  assert.equal(fl?.[0]?.ino, BigInt(statSync(join(s.workDir, 'lock.dat')).ino));
  const pl = parseFdinfo(s.pid, 27).locks?.[0];
  assert.deepEqual({ type: pl?.type, kind: pl?.kind, start: pl?.start, end: pl?.end }, { type: 'POSIX', kind: 'ADVISORY', start: 100n, end: 199n });
});

test('pidfd and tty', () => {
  const p = parseFdinfo(s.pid, 28);
  assert.deepEqual(p.pidfd, { pid: s.pid, nsPid: [s.pid] });
  assert.equal(p.flags & O_CLOEXEC, 0); // dup2 drops the close-on-exec pidfd_open sets
  assert.equal(typeof parseFdinfo(s.pid, 29).ttyIndex, 'number');
});

test('errors', () => {
  assert.throws(() => parseFdinfo(s.pid, 999), (e) => isCriuTsError(e) && e.code === 'EPROC');
  assert.throws(() => listFds(99999), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
  assert.throws(() => parseFdinfoText('garbage\n', 'f'), (e) => isCriuTsError(e) && e.code === 'EPROC');
});

test('the subject still works after being inspected', async () => {
  const r = await s.terminateAndResult(5000);
  assert.ok(r.ok, r.text);
});

test('fdsLinkedTo: the fds whose link reads a target, in order; none of a task that is gone', () => {
  const a = openSync('/dev/null', 'r');
  const b = openSync('/dev/null', 'r');
  try {
    const ours = fdsLinkedTo(process.pid, '/dev/null');
    assert.ok(ours.includes(a) && ours.includes(b), JSON.stringify(ours));
    assert.deepEqual(ours, [...ours].sort((x, y) => x - y));
    assert.deepEqual(fdsLinkedTo(process.pid, '/no/such/target'), []);
    assert.deepEqual(fdsLinkedTo(4_000_000, '/dev/null'), []);
  } finally {
    closeSync(a);
    closeSync(b);
  }
});

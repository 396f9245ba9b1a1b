import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseMaps, parseMapsLine, parseSmaps, mapFilesPath, forEachSmaps, prefetchSmaps, smapsStillHolds, type SmapsEntry } from '../../src/proc/index.js';
import { PROT_READ, PROT_WRITE, PROT_EXEC } from '../../src/sys/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { startProcTarget, infoHex } from '../lib/proc-target.js';
import { startSubject } from '../lib/subjects.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

test('parseMaps finds the known anonymous, r-x and deleted-file VMAs', () => {
  const maps = parseMaps(t.subject.pid);
  const anon = maps.find((m) => m.start === infoHex(t, 'anon'));
  assert.ok(anon);
  assert.equal(anon.end - anon.start, 8n * 4096n);
  assert.deepEqual(anon.prot, { read: true, write: true, exec: false, value: PROT_READ | PROT_WRITE });
  assert.equal(anon.shared, false);
  assert.equal(anon.path, '');
  assert.equal(anon.inode, 0n);

  const rx = maps.find((m) => m.start === infoHex(t, 'rx'));
  assert.ok(rx);
  assert.equal(rx.prot.value, PROT_READ | PROT_EXEC);

  const del = maps.find((m) => m.start === infoHex(t, 'deleted'));
  assert.ok(del);
  assert.equal(del.path, join(t.subject.workDir, 'a b.dat'));
  assert.equal(del.deleted, true);
  assert.equal(del.shared, true);
  assert.ok(del.inode > 0n);
  assert.equal(del.pgoff, 0n);
});

test('parseMaps keeps special names and the executable path', () => {
  const maps = parseMaps(t.subject.pid);
  const names = new Set(maps.map((m) => m.path));
  for (const n of ['[heap]', '[stack]', '[vdso]']) assert.ok(names.has(n), `missing ${n}`);
  assert.ok(names.has('[vvar]') || names.has('[vvar_vclock]'));
  const exe = readlinkSync(`/proc/${t.subject.pid}/exe`);
  const text = maps.find((m) => m.path === exe);
  assert.ok(text, 'executable mapping');
  assert.ok(text.devMajor > 0 || text.devMinor > 0);
  assert.ok(maps.every((m) => m.start < m.end));
});

test('parseSmaps gives VmFlags and sizes', () => {
  const smaps = parseSmaps(t.subject.pid);
  assert.equal(smaps.length, parseMaps(t.subject.pid).length);
  const anon = smaps.find((m) => m.start === infoHex(t, 'anon'));
  assert.ok(anon);
  for (const f of ['rd', 'wr', 'mr', 'mw', 'me']) assert.ok(anon.vmFlags.includes(f), `anon lacks ${f}`);
  assert.equal(anon.rssKb, 16); // pages 0, 1, 2 and 5 were touched
  assert.equal(anon.anonymousKb, 16);
  assert.equal(anon.end - anon.start, 32n * 1024n);
  assert.equal(anon.sharedKb, 0, 'nobody else maps it');
  assert.equal(anon.kernelPageSizeKb, 4);
  assert.equal(anon.hugetlbKb, 0);
  const del = smaps.find((m) => m.start === infoHex(t, 'deleted'));
  assert.ok(del?.vmFlags.includes('sh'));
  const stack = smaps.find((m) => m.path === '[stack]');
  assert.ok(stack?.vmFlags.includes('gd'));
});

test('mapFilesPath names the map_files link', () => {
  const start = infoHex(t, 'deleted');
  const p = mapFilesPath(t.subject.pid, start, start + 8192n);
  assert.match(p, /^\/proc\/[0-9]+\/map_files\/[0-9a-f]+-[0-9a-f]+$/);
  assert.equal(readlinkSync(p), join(t.subject.workDir, 'a b.dat') + ' (deleted)');
});

test('a line with spaces in the path, and errors', () => {
  const m = parseMapsLine('7f0000000000-7f0000002000 r--s 00001000 08:01 1234    /x/a b  c (deleted)', 'f');
  assert.equal(m.path, '/x/a b  c');
  assert.equal(m.deleted, true);
  assert.equal(m.pgoff, 0x1000n);
  assert.equal(m.devMajor, 8);
  const anonShmem = parseMapsLine('7f0000000000-7f0000002000 rw-s 00000000 00:01 99                         [anon_shmem:x y]', 'f');
  assert.equal(anonShmem.path, '[anon_shmem:x y]');
  assert.throws(() => parseMapsLine('nonsense', 'f'), (e) => isCriuTsError(e) && e.code === 'EPROC' && e.data['line'] === 'nonsense');
  assert.throws(() => parseMaps(99999), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
});

test('the mappings subject: PROT_NONE reservation, shared anon, growsdown', async () => {
  const s = await startSubject('mappings');
  try {
    const smaps = parseSmaps(s.pid);
    const none = smaps.find((m) => m.end - m.start === 1n << 30n);
    assert.ok(none, '1 GiB VMA');
    assert.equal(none.prot.value, 0);
    assert.ok(none.vmFlags.includes('nr')); // MAP_NORESERVE
    // Shared anonymous memory shows as a deleted /dev/zero, shared.
    const shm = smaps.find((m) => m.path === '/dev/zero' && m.deleted);
    assert.ok(shm?.shared && shm.vmFlags.includes('sh'));
    assert.ok(smaps.some((m) => m.path === '' && m.vmFlags.includes('gd')), 'MAP_GROWSDOWN VMA');
    assert.ok(smaps.some((m) => m.path === join(s.workDir, 'shared.dat') && m.shared && !m.deleted));
    const r = await s.terminateAndResult(5000);
    assert.ok(r.ok, r.text);
  } finally {
    s.cleanup();
  }
});

test('smaps read early on a worker thread: the same entries, checked against maps, refused when they differ', async () => {
  const pid = t.subject.pid;
  const early = await prefetchSmaps(pid);
  assert.ok(early, 'a small task\'s smaps fits the cap');
  const fromEarly: SmapsEntry[] = [];
  forEachSmaps(pid, (v) => fromEarly.push(v), undefined, early);
  assert.deepEqual(fromEarly, parseSmaps(pid));
  assert.equal(smapsStillHolds(pid, early, []), true);
  // A VMA that maps does not show (an area mapped and unmapped since): used only if it is one of ours, left out.
  const fake = { start: 0x10000n, end: 0x11000n };
  const extra = Buffer.concat([Buffer.from('00010000-00011000 rw-s 00000000 00:01 4242 /dev/zero (deleted)\nRss: 4 kB\n'), early]);
  assert.equal(smapsStillHolds(pid, extra, []), false);
  assert.equal(smapsStillHolds(pid, extra, [fake]), true);
  // One less VMA, or another task's: not used.
  const firstBreak = early.indexOf('\n', early.indexOf('VmFlags'));
  assert.equal(smapsStillHolds(pid, early.subarray(firstBreak + 1), []), false);
  const ours = await prefetchSmaps(process.pid);
  if (ours) assert.equal(smapsStillHolds(pid, ours, []), false);
  // A file of the cap or more is left to the usual read.
  assert.equal(await prefetchSmaps(pid, 100), undefined);
  assert.equal(await prefetchSmaps(2 ** 22 + 12345), undefined);
});

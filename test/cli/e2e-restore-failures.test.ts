/**
 * A restore that cannot finish leaves nothing behind: one line on stderr
 * (exit 1, no stack), no process with the dumped pid that we created, no
 * restore stub (`sleep 1000000`) left over. Cases: the pid is taken (a
 * second restore of the same images), a truncated pages image, a corrupted
 * mm image, a regular file the task had open that is gone, and a session
 * whose leader is outside the dump and alive (a shell's job dumped without
 * --shell-job).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { oneLineFailure, runCli } from '../lib/run.js';
import { readImage, writeImage } from '../../src/images/index.js';
import { childrenOfUs, killAndWait, removeDir, strayStubs, tempDir, waitGone, useE2eHarness } from '../e2e/helpers.js';

useE2eHarness();

/** file-offsets holds regular files in its work dir (data.bin, append.log): dump it once for every case. */
let s: Subject | undefined;
let pristine = '';
let work = '';

before(async () => {
  work = tempDir('e2e-restfail');
  s = await startSubject('file-offsets', []);
  pristine = join(work, 'pristine');
  mkdirSync(pristine);
  const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', pristine, '-o', 'dump.log']);
  assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
  assert.ok(await waitGone(s.pid), 'dumped task gone');
});

after(async () => {
  if (s !== undefined) {
    await killAndWait(s.pid);
    s.cleanup();
  }
  removeDir(work);
});

/** A fresh copy of the images to spoil. */
function copyOf(name: string): string {
  const dir = join(work, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** After a failed restore: the pid is free again, and we have no new child (task or stub). */
async function nothingLeft(pid: number, childrenBefore: number[]): Promise<void> {
  assert.ok(await waitGone(pid, 10_000), `a process with pid ${pid} is left behind`);
  const extra = childrenOfUs().filter((c) => !childrenBefore.includes(c) && isAlive(c));
  assert.deepEqual(extra, [], 'processes left behind');
  assert.deepEqual(strayStubs(), [], 'restore stub left behind');
}

async function failingRestore(dir: string, re: RegExp, extra: readonly string[] = []): Promise<void> {
  const pid = s?.pid ?? 0;
  const before = childrenOfUs();
  const r = await runCli('criu-ts', ['restore', '-D', dir, '-d', '--pidfile', 'root.pid', '-o', 'restore.log', ...extra]);
  oneLineFailure(r, re);
  await nothingLeft(pid, before);
  assert.ok(!existsSync(join(dir, 'root.pid')), 'no pidfile for a failed restore');
}

test('truncated pages image: restore fails, nothing left', { timeout: 60_000 }, async () => {
  const dir = copyOf('truncated');
  truncateSync(join(dir, 'pages-1.img'), 4096);
  await failingRestore(dir, /^Error \(criu-ts\): .*pages-1\.img/);
});

test('corrupted mm image: restore fails naming it, nothing left', { timeout: 60_000 }, async () => {
  const dir = copyOf('corrupt-mm');
  const mm = join(dir, `mm-${s?.pid ?? 0}.img`);
  const b = readFileSync(mm);
  // Keep the two magics, scramble the entries after them.
  for (let i = 12; i < b.length; i += 7) b[i] = (b[i] ?? 0) ^ 0x5a;
  writeFileSync(mm, b);
  await failingRestore(dir, new RegExp(`^Error \\(criu-ts\\): .*mm-${s?.pid ?? 0}\\.img`));
});

test('a regular file the task had open is gone: restore fails naming it, nothing left', { timeout: 60_000 }, async () => {
  const dir = copyOf('missing-file');
  const data = join(s?.workDir ?? '', 'data.bin');
  renameSync(data, `${data}.away`);
  try {
    await failingRestore(dir, /^Error \(criu-ts\): .*data\.bin/);
  } finally {
    renameSync(`${data}.away`, data);
  }
});

test('a session whose leader is outside the dump and alive: the message says --shell-job, nothing left', { timeout: 60_000 }, async () => {
  const dir = copyOf('outside-session');
  // As a shell's job dumped without --shell-job: its session is the shell's (here: this test process's pid, alive).
  const file = join(dir, 'pstree.img');
  const img = readImage(file);
  for (const e of img.entries) e['sid'] = process.pid;
  writeImage(file, img.kind.name, img.entries, img.extras);
  // The edit is ours: past the checksum check.
  await failingRestore(dir, new RegExp(`^Error \\(criu-ts\\): task ${s?.pid ?? 0}'s session ${process.pid} has its leader outside the dump and pid ${process.pid} is in use here: restore with --shell-job`), ['--skip-checksums']);
});

test('pid already taken (second restore of the same images): fails, the first stays unharmed', { timeout: 60_000 }, async () => {
  const dir = copyOf('twice');
  const pid = s?.pid ?? 0;
  const ours = childrenOfUs();
  const first = await runCli('criu-ts', ['restore', '-D', dir, '-d', '-o', 'restore.log']);
  assert.equal(first.code, 0, `first restore: ${first.stderr}`);
  assert.ok(isAlive(pid), 'first restore runs');
  // The first restore's root comes to us (the subreaper) once its stub is gone, which may be after
  // the first criu-ts exits: it is not a process of the second restore.
  // Nothing else of the first restore comes to us: criu-ts collects its own helpers (the guardian's shell) before it exits.
  assert.deepEqual(childrenOfUs().filter((c) => c !== pid && !ours.includes(c)), [], 'the first restore left a process of its own to us');
  const before = [...childrenOfUs(), pid];
  const second = await runCli('criu-ts', ['restore', '-D', dir, '-d', '-o', 'restore2.log']);
  oneLineFailure(second, new RegExp(`^Error \\(criu-ts\\): .*pid ${pid}.*(in use|taken|exists)`));
  assert.deepEqual(childrenOfUs().filter((c) => !before.includes(c) && isAlive(c)), [], 'no new process');
  assert.deepEqual(strayStubs(), [], 'restore stub left behind');
  const res = await s?.terminateAndResult(30_000);
  assert.ok(res?.ok, res?.text);
});

/**
 * Lazy restore (issue 15, point 4): `criu-ts lazy-pages` serves a
 * `restore --lazy-pages`: the tasks run before their private memory is in
 * place, each page comes on its first touch (UFFDIO_COPY) and the rest in
 * the background. The subjects check every page afterwards. Covered: a
 * 64 MiB task (its memory not resident when the restore returns); a task
 * with 3000 lazy mappings that reads them from its first instruction on; a
 * pre-dump chain (PE_PARENT pages served from the parent images); a task
 * that, while its pages are still missing, drops some (REMOVE), unmaps some
 * (UNMAP) and forks (FORK: the child's missing pages served on its own
 * uffd); and the daemon killed mid-way: the tasks die visibly (SIGBUS from
 * the watchdog), never run on with zeros. Also `check --feature uffd`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSubject, repoRoot, type Subject } from '../lib/subjects.js';
import { dumpedSubject, memDirtyPhase, startLazyDaemon, startPageServer, type LazyDaemon } from '../lib/page-server.js';
import { runCli } from '../lib/run.js';
import { isAlive } from '../lib/subjects.js';
import { useSubjectCleanup, waitGone } from './helpers.js';

const { subjects } = useSubjectCleanup();

type Daemon = LazyDaemon;

/** `restore -d --lazy-pages` of `dir`, served by a daemon started first (see startLazyDaemon). */
async function lazyRestore(dir: string, pushAfterMs: number): Promise<Daemon> {
  const lp = startLazyDaemon(dir, pushAfterMs);
  const r = await runCli('criu-ts', ['restore', '-d', '-D', dir, '--lazy-pages']);
  assert.equal(r.code, 0, r.stderr);
  return lp;
}

/** The restored subject found every page right, and the daemon ended well. */
async function checkedAndServed(s: Subject, lp: Daemon): Promise<void> {
  const res = await s.terminateAndResult(60_000);
  assert.ok(res.ok, res.text);
  const e = await lp.exit;
  assert.equal(e.code, 0, e.stderr);
}

function rssKbAt(pid: number, minKb: number): number {
  // The biggest anonymous mapping's Rss (the subject's region).
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  let best = 0;
  for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const size = Number(/\nSize:\s+(\d+) kB/.exec(block)?.[1] ?? 0);
    if (size < minKb) continue;
    best = Math.max(best, Number(/\nRss:\s+(\d+) kB/.exec(block)?.[1] ?? 0));
  }
  return best;
}

test('check: uffd and uffd-noncoop say yes (the kernel has them and criu-ts uses them)', async () => {
  for (const f of ['uffd', 'uffd-noncoop']) {
    const r = await runCli('criu-ts', ['check', '--feature', f]);
    assert.equal(r.code, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
});

test('restore --lazy-pages: a 64 MiB task runs before its memory is in place; every page right', { timeout: 120_000 }, async () => {
  const { s, dir } = await dumpedSubject('big-memory', ['--mib', '64'], subjects);
  const lp = await lazyRestore(dir, 2000);
  const rss = rssKbAt(s.pid, 60 << 10);
  assert.ok(rss < 8 << 10, `the 64 MiB region is not resident when the restore returns (Rss ${rss} kB)`);
  await checkedAndServed(s, lp);
  const log = readFileSync(join(dir, 'lazy-pages.log'), 'utf8');
  const m = /all pages in place: 1 task\(s\), (\d+) fault\(s\) \((\d+) pages\), (\d+) pages pushed/.exec(log);
  assert.ok(m, log.slice(-2000));
  assert.ok(Number(m[1]) > 0, 'pages came on faults');
  assert.ok(Number(m[2]) + Number(m[3]) >= 16384, 'every page of the region went in');
});

test('a task with 3000 lazy mappings, its ranges handed to the daemon in several packets, reads every page right from its first instruction on', { timeout: 120_000 }, async () => {
  // The subject reads its last mappings (the last packet's) first, as soon as it runs: a daemon that served
  // faults before it had read every packet of the task answered those with zeros (session 10, zdtm maps05).
  const { s, dir } = await dumpedSubject('many-vmas', ['--n', '3000'], subjects);
  const lp = await lazyRestore(dir, 0);
  await checkedAndServed(s, lp);
  assert.match(readFileSync(join(dir, 'lazy-pages.log'), 'utf8'), /all pages in place: 1 task\(s\)/);
});

test('lazy restore of a pre-dump chain with a forked child: PE_PARENT pages come from the parent images; DONTNEED while pages are missing', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', ['--fork', '1']);
  subjects.push(s);
  const pre1 = join(s.workDir, 'pre1');
  const fin = join(s.workDir, 'final');
  mkdirSync(pre1);
  mkdirSync(fin);
  let c = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', pre1]);
  assert.equal(c.code, 0, c.stderr);
  await memDirtyPhase(s, 1);
  const child = Number(readFileSync(`/proc/${s.pid}/task/${s.pid}/children`, 'utf8').trim());
  c = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', fin, '--prev-images-dir', '../pre1', '--track-mem']);
  assert.equal(c.code, 0, c.stderr);
  assert.ok(await waitGone(s.pid) && await waitGone(child));
  const lp = await lazyRestore(fin, 3000);
  // Phase 2 drops pages (DONTNEED), reads some back, writes others, and has the child write: all before the push starts.
  await memDirtyPhase(s, 2);
  await checkedAndServed(s, lp);
  assert.match(readFileSync(join(fin, 'lazy-pages.log'), 'utf8'), /all pages in place: 2 task\(s\)/);
});

test('a lazily restored task forks, drops and unmaps memory whose pages are still missing: FORK, REMOVE, UNMAP followed', { timeout: 120_000 }, async () => {
  const { s, dir } = await dumpedSubject('mem-dirty', ['--fork', '1'], subjects);
  const lp = await lazyRestore(dir, 4000);
  // Phase 1: DONTNEED R[100..104), munmap R[200..208), a new mapping, a fork; phase 2: the child writes, more DONTNEED.
  await memDirtyPhase(s, 1);
  await memDirtyPhase(s, 2);
  await checkedAndServed(s, lp);
  assert.match(readFileSync(join(dir, 'lazy-pages.log'), 'utf8'), /task \d+>fork|forked; the child/);
});

test('lazy-pages --page-server: the pages come from page-server --lazy-pages (PS_IOV_GET), the task checks every one', { timeout: 120_000 }, async () => {
  const { s, dir } = await dumpedSubject('big-memory', ['--mib', '32'], subjects);
  // The source host's page server, on the images.
  const ps = await startPageServer(dir, ['--lazy-pages', '-v4', '-o', join(dir, 'ps.log')]);
  const proc = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'lazy-pages', '-D', dir, '--page-server', '--address', '127.0.0.1', '--port', String(ps.port), '-v4', '-o', join(dir, 'lp.log')], { stdio: 'ignore' });
  const lpExit = new Promise<number | null>((res) => proc.on('close', (c) => res(c)));
  const r = await runCli('criu-ts', ['restore', '-d', '-D', dir, '--lazy-pages']);
  assert.equal(r.code, 0, r.stderr);
  const res = await s.terminateAndResult(60_000);
  assert.ok(res.ok, res.text);
  assert.equal(await lpExit, 0, readFileSync(join(dir, 'lp.log'), 'utf8').slice(-1500));
  assert.equal((await ps.exit).code, 0);
  const served = /served (\d+) page\(s\)/.exec(readFileSync(join(dir, 'ps.log'), 'utf8'));
  assert.ok(served && Number(served[1]) >= 8192, `the page server sent the 32 MiB region (${served?.[1]} pages)`);
});

test('the lazy-pages daemon killed before every page is in place: the task dies by SIGBUS, it never runs on with zeros', { timeout: 120_000 }, async () => {
  const { s, dir } = await dumpedSubject('big-memory', ['--mib', '64'], subjects);
  const lp = await lazyRestore(dir, 60_000);
  assert.ok(isAlive(s.pid));
  lp.proc.kill('SIGKILL');
  const e = await lp.exit;
  assert.equal(e.signal, 'SIGKILL');
  // The subject would now check its 64 MiB: the watchdog kills it first (or while it waits on a fault).
  try {
    process.kill(s.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  assert.ok(await waitGone(s.pid, 10_000), 'the task is gone');
  assert.ok(!existsSync(s.outFile) || !readFileSync(s.outFile, 'utf8').startsWith('PASS'), 'it never finished its check');
  // The watchdog writes to the daemon's stderr (its pipe closes once the watchdog is done too).
  assert.match(e.stderr, new RegExp(`the daemon is gone before every page was in place: lazily restored task\\(s\\) ${s.pid}\\b.*killed \\(SIGBUS\\)`));
});

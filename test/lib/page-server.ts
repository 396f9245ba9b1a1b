/**
 * Shared by the tests of pre-dumps, page servers and lazy pages: a
 * `criu-ts page-server` of our own on a free port, a `criu-ts lazy-pages`
 * daemon, a subject dumped through the CLI, the phases of the mem-dirty
 * subject, and the pages a pagemap image holds in a range.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImage } from '../../src/images/index.js';
import type { PagemapEntry } from '../../src/images/messages.js';
import { repoRoot, startSubject, type Subject } from './subjects.js';
import { waitFor, waitGone } from './harness.js';
import { runCli } from './run.js';

const PS = 4096n;

export type PageServer = { proc: ChildProcess; port: number; exit: Promise<{ code: number | null; stderr: string }> };

/** `criu-ts page-server -D dir --port 0 ...extra`; resolves with the port it printed. */
export function startPageServer(imagesDir: string, extra: readonly string[] = []): Promise<PageServer> {
  const proc = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'page-server', '-D', imagesDir, '--address', '127.0.0.1', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<{ code: number | null; stderr: string }>((res) => proc.on('close', (code) => res({ code, stderr })));
  return new Promise((res, rej) => {
    let out = '';
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on port (\d+)/.exec(out);
      if (m?.[1]) res({ proc, port: Number(m[1]), exit });
    });
    void exit.then((e) => rej(new Error(`page-server exited (${e.code}): ${e.stderr}`)));
  });
}

export type LazyDaemon = { proc: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> };

/** `criu-ts lazy-pages -D dir` (its log in dir); pushing held back `pushAfterMs` after the restore (0: at once). */
export function startLazyDaemon(dir: string, pushAfterMs = 0): LazyDaemon {
  const proc = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'lazy-pages', '-D', dir, '-v4', '-o', join(dir, 'lazy-pages.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CRIU_TS_LAZY_PUSH_AFTER_MS: String(pushAfterMs) },
  });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => proc.on('close', (code, signal) => res({ code, signal, stderr })));
  return { proc, exit };
}

/** Subject `name` started (pushed on `subjects`, for the file's cleanup), dumped through the CLI into its img dir; the task is gone. */
export async function dumpedSubject(name: string, args: string[], subjects: Subject[]): Promise<{ s: Subject; dir: string }> {
  const s = await startSubject(name, args);
  subjects.push(s);
  const dir = join(s.workDir, 'img');
  mkdirSync(dir);
  const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]);
  assert.equal(d.code, 0, d.stderr);
  assert.ok(await waitGone(s.pid));
  return { s, dir };
}

/** Run phase `k` of the mem-dirty subject (SIGUSR1); what it reports: its region's address and the pages it wrote. */
export async function memDirtyPhase(s: Subject, k: number): Promise<{ rAddr: bigint; written: number }> {
  process.kill(s.pid, 'SIGUSR1');
  const file = `${s.outFile}.phase${k}`;
  assert.ok(await waitFor(() => existsSync(file)), `phase ${k} did not finish`);
  const [addr, n] = readFileSync(file, 'utf8').trim().split(' ');
  return { rAddr: BigInt('0x' + (addr ?? '0')), written: Number(n) };
}

/** Pages of [lo, hi) in task `pid`'s pagemap image in `dir`: copied into this dir, and left in the parent. */
export function pagesIn(dir: string, pid: number, lo: bigint, hi: bigint): { copied: number; parent: number } {
  const img = readImage(join(dir, `pagemap-${pid}.img`));
  let copied = 0;
  let parent = 0;
  for (const e of img.entries.slice(1) as unknown as PagemapEntry[]) {
    const a = e.vaddr;
    const b = a + (e.nr_pages ?? 0n) * PS;
    const from = a > lo ? a : lo;
    const to = b < hi ? b : hi;
    if (to <= from) continue;
    const n = Number((to - from) / PS);
    if ((e.flags ?? 0) & 1) parent += n;
    else copied += n;
  }
  return { copied, parent };
}

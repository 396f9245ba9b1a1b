/**
 * What the kill walks (criu-ts killed at many points of a dump, a pre-dump
 * or a restore; CRIU_TS_FAULT=@K:SIG, src/fault.ts) look at in a target
 * after each kill, and how they choose their kill points.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { startSubject, type Subject } from './subjects.js';
import { runCli, withFault } from './run.js';

/** Per thread: TracerPid and SigBlk; then the address space. */
export function snapshot(pid: number): string {
  const threads = readdirSync(`/proc/${pid}/task`).sort().map((tid) => {
    const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
    return `${tid} ${/\nTracerPid:\s+(\d+)/.exec(st)?.[1]} ${/\nSigBlk:\s+(\S+)/.exec(st)?.[1]}`;
  });
  return threads.join('\n') + '\n' + readFileSync(`/proc/${pid}/maps`, 'latin1');
}

/** The process's pending signals, shared and private (main thread). */
export function pending(pid: number): string {
  const st = readFileSync(`/proc/${pid}/status`, 'latin1');
  return `${/\nSigPnd:\s+(\S+)/.exec(st)?.[1]} ${/\nShdPnd:\s+(\S+)/.exec(st)?.[1]}`;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * The snapshot once it equals `want` (within a second): a thread put back
 * in sigsuspend() shows its own mask until it runs again and re-enters it.
 */
export async function settled(pid: number, want: string): Promise<string> {
  let now = snapshot(pid);
  for (let i = 0; i < 100 && now !== want; i++) {
    await sleep(10);
    now = snapshot(pid);
  }
  return now;
}

/** Send SIGUSR1 and wait until nothing is pending: the target handles signals. */
export async function handlesUsr1(pid: number): Promise<boolean> {
  process.kill(pid, 'SIGUSR1');
  for (let t = 0; t < 100 && pending(pid) !== '0000000000000000 0000000000000000'; t++) await sleep(10);
  return pending(pid) === '0000000000000000 0000000000000000';
}

/** The fault points a run passes, in order (CRIU_TS_FAULT=count). */
export function passesOf(stderr: string): string[] {
  const m = /fault passes: (\d+): ([^\n]*)/.exec(stderr);
  assert.ok(m, `no fault count in:\n${stderr}`);
  return (m[2] ?? '').split(' ');
}

/** Spread n kill points over [lo, hi], skipping the passes of `skip`. */
export function spread(lo: number, hi: number, n: number, skip: Set<number>): number[] {
  const cands: number[] = [];
  for (let k = lo; k <= hi; k++) if (!skip.has(k)) cands.push(k);
  return Array.from({ length: n }, (_, i) => cands[Math.round((i * (cands.length - 1)) / Math.max(1, n - 1))] as number);
}

/** The userfaultfds the process holds, as "fd:inode" (a memory tracker is one: kinds/memory/tracking.ts). */
export function userfaultfds(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:[userfaultfd]') continue;
      out.push(`${fd}:${statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino}`);
    } catch {
      // closed meanwhile
    }
  }
  return out.sort();
}

/** PM_UFFD_WP: the page (or its marker) is write-protected by a userfaultfd (Documentation/admin-guide/mm/pagemap.rst). */
const PM_UFFD_WP = 1n << 57n;

/** Pages of the process write-protected by a userfaultfd: each costs a fault on its next write. */
export function writeProtectedPages(pid: number): number {
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  let n = 0;
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      if (!m || line.endsWith('[vsyscall]')) continue;
      const first = BigInt('0x' + m[1]) / 4096n;
      const pages = Number(BigInt('0x' + m[2]) / 4096n - first);
      const buf = Buffer.alloc(pages * 8);
      const got = readSync(fd, buf, 0, buf.length, Number(first * 8n));
      for (let i = 0; i + 8 <= got; i += 8) if ((buf.readBigUInt64LE(i) & PM_UFFD_WP) !== 0n) n++;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

/**
 * A dump kill walk's frame: a dump-victim (4 threads, a SIGUSR1 handler;
 * `args` its own) and a work dir, `body` run with them and the victim's
 * state before; then the victim must end well by its own checks
 * (registers, heap, masks). Both are cleaned up whatever happens.
 */
export async function withDumpVictim(args: string[], prefix: string, body: (s: Subject, work: string, before: string) => Promise<void>): Promise<void> {
  const s = await startSubject('dump-victim', args, { pthread: true });
  const work = mkdtempSync(prefix);
  try {
    await body(s, work, snapshot(s.pid));
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The fault points a dump -R of `pid` into `work` passes, in order (a run with CRIU_TS_FAULT=count). */
export async function dumpPasses(pid: number, work: string): Promise<string[]> {
  const r0 = await withFault('count', () => runCli('criu-ts', ['dump', '-t', String(pid), '-D', work, '-R']));
  assert.equal(r0.code, 0, r0.stderr);
  return passesOf(r0.stderr);
}

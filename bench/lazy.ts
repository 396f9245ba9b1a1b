/**
 * Lazy restore's point: the task runs before its memory is in place. A
 * process with N MiB of filled private memory (bench/c/lazy-first.c) is
 * dumped once per run, then restored twice from those images:
 *  - plain: restore() fills every page, then lets the task go;
 *  - lazy: a `criu-ts lazy-pages` daemon (started and listening before
 *    the clock starts) and restore({lazyPages}): the task runs at once,
 *    its pages come on fault and in the background.
 * Figures, from the restore's start: "first instruction", the subject's
 * own CLOCK_REALTIME reading when it first runs after the restore (it
 * records it in a shared file); "memory in place", when restore()
 * returns (plain) or when the daemon exits with every page copied (lazy).
 * Medians over the runs. The lazy restore runs twice: through the library
 * (restore() in this process) and through the CLI (`criu-ts restore -d
 * --lazy-pages`, Node's start and criu-ts's load included).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../src/api/index.js';
import { buildHelper, startHeld, killHeld, killRestored, shmDir, removeDir, median, sleep, status, repoRoot } from './helpers.js';

export interface LazyResult {
  mib: number;
  runs: number;
  plainFirstMs: number;
  plainAllMs: number;
  lazyFirstMs: number;
  lazyAllMs: number;
  /** the same lazy restore through the CLI: first instruction, memory in place */
  cliFirstMs: number;
  cliAllMs: number;
}

/**
 * Both restores check the images against criu-ts-checksums, as they do by
 * default: the plain one reads every page for it before anything is
 * created; the lazy one checks upfront only what it reads itself and the
 * daemon checks each block it serves (restore/lazy-checked-pages.ts).
 * BENCH_CHECKSUMS=0 skips the check in both (CRIU has none).
 */
const SKIP = process.env['BENCH_CHECKSUMS'] === '0';
export const realNs = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

/** ms from `t0` (wall clock, ns) to the subject's first reading after the restore, once it has written it. */
export async function firstRunAfter(record: string, t0: bigint): Promise<number> {
  for (let i = 0; i < 20_000; i++) {
    const v = readFileSync(record).readBigUInt64LE(0);
    if (v > t0) return Number(v - t0) / 1e6;
    await sleep(1);
  }
  throw new Error('the restored subject never ran');
}

/**
 * Start a lazy-pages daemon on `img`; resolves once it listens, with the moment it exits (wrapped: a promise would be awaited too).
 * `timeline`: the daemon's own timeline goes there (CRIU_TS_TIMELINE, written as it exits).
 */
export async function startDaemon(img: string, timeline?: string): Promise<{ gone: Promise<bigint> }> {
  rmSync(join(img, 'lazy-pages.socket'), { force: true });
  const env = timeline === undefined ? process.env : { ...process.env, CRIU_TS_TIMELINE: timeline };
  const daemon = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'lazy-pages', '-D', img], { stdio: 'ignore', env });
  const gone = new Promise<bigint>((res) => daemon.on('exit', () => res(realNs())));
  for (let k = 0; k < 5000 && !existsSync(join(img, 'lazy-pages.socket')); k++) await sleep(2);
  return { gone };
}

/** Start the lazy-first subject (`mib` MiB, its first-run record at `record`) and dump it into `img`. */
export async function dumpSubject(exe: string, mib: number, dir: string, img: string, record: string): Promise<void> {
  const h = await startHeld(exe, [String(mib), join(dir, 'ready'), record], join(dir, 'ready'));
  try {
    mkdirSync(img);
    await dump({ pid: h.pid, imagesDir: img, progress: false });
    await h.exited();
  } finally {
    await killHeld(h);
  }
}

export async function lazyCase(mib: number, runs: number): Promise<LazyResult> {
  const exe = buildHelper('lazy-first');
  const r: Record<'pf' | 'pa' | 'lf' | 'la' | 'cf' | 'ca', number[]> = { pf: [], pa: [], lf: [], la: [], cf: [], ca: [] };
  for (let i = 0; i <= runs; i++) {
    const keep = i > 0;
    const tag = `lazy restore of ${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}`;
    const dir = shmDir(`lazy-${mib}m`);
    const img = join(dir, 'img');
    const record = join(dir, 'record');
    try {
      status(`${tag}: dump`);
      await dumpSubject(exe, mib, dir, img, record);
      status(`${tag}: plain restore`);
      writeFileSync(record, Buffer.alloc(4096));
      let t0 = realNs();
      const plain = await restore({ imagesDir: img, progress: false, skipChecksums: SKIP });
      const plainAll = Number(realNs() - t0) / 1e6;
      const plainFirst = await firstRunAfter(record, t0);
      await killRestored(plain.pids);
      status(`${tag}: lazy restore`);
      writeFileSync(record, Buffer.alloc(4096));
      let { gone } = await startDaemon(img);
      t0 = realNs();
      const lazy = await restore({ imagesDir: img, progress: false, lazyPages: true, skipChecksums: SKIP });
      const lazyFirst = await firstRunAfter(record, t0);
      const lazyAll = Number((await gone) - t0) / 1e6;
      await killRestored(lazy.pids);
      status(`${tag}: lazy restore through the CLI`);
      writeFileSync(record, Buffer.alloc(4096));
      ({ gone } = await startDaemon(img));
      const pidfile = join(dir, 'pid');
      t0 = realNs();
      const cli = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'restore', '-D', img, '-d', '--lazy-pages', '--pidfile', pidfile,
        ...(SKIP ? ['--skip-checksums'] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (cli.status !== 0) throw new Error(`criu-ts restore --lazy-pages: ${cli.stderr.toString().trim()}`);
      const cliFirst = await firstRunAfter(record, t0);
      const cliAll = Number((await gone) - t0) / 1e6;
      await killRestored([Number(readFileSync(pidfile, 'utf8'))]);
      if (keep) {
        r.pf.push(plainFirst);
        r.pa.push(plainAll);
        r.lf.push(lazyFirst);
        r.la.push(lazyAll);
        r.cf.push(cliFirst);
        r.ca.push(cliAll);
      }
    } finally {
      removeDir(dir);
    }
  }
  return {
    mib, runs, plainFirstMs: median(r.pf), plainAllMs: median(r.pa), lazyFirstMs: median(r.lf), lazyAllMs: median(r.la),
    cliFirstMs: median(r.cf), cliAllMs: median(r.ca),
  };
}

export function lazyLines(r: LazyResult): string[] {
  const all = r.lazyAllMs / r.plainAllMs;
  return [
    `Lazy restore, ${r.mib} MiB process, median of ${r.runs} (from the restore's start; first instruction = the subject's own clock when it first runs; ${SKIP ? 'images checksums not checked in either' : 'images checksums checked in both'}):`,
    `  plain restore   first instruction ${r.plainFirstMs.toFixed(1)} ms, memory in place ${r.plainAllMs.toFixed(1)} ms (restore returned)`,
    `  lazy restore    first instruction ${r.lazyFirstMs.toFixed(1)} ms, memory in place ${r.lazyAllMs.toFixed(1)} ms (lazy-pages daemon done)`,
    `  lazy, CLI       first instruction ${r.cliFirstMs.toFixed(1)} ms, memory in place ${r.cliAllMs.toFixed(1)} ms (\`criu-ts restore -d --lazy-pages\`: Node's start included)`,
    `  first instruction lazy/plain ${(r.lazyFirstMs / r.plainFirstMs).toFixed(3)} (target: within 20 ms: ${r.lazyFirstMs <= 20 ? 'met' : 'NOT met'})`,
    `  memory in place lazy/plain ${all.toFixed(3)} (target <= 1.2: ${all <= 1.2 ? 'met' : 'NOT met'})`,
  ];
}

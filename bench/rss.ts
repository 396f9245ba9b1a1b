/**
 * Peak RSS of criu-ts itself (issue 9 point 7: under 64 MiB for a dump or
 * a restore of any size): each case's subject dumped and restored through
 * the CLI (bin/criu-ts, as a user runs it), each whole process measured by
 * bench/c/measure (wait4's ru_maxrss, the VmHWM of the process), beside a
 * plain `cp -r` of the same images (what moving those bytes costs a small
 * C program). With --criu, vs-criu.ts shows CRIU's own figure instead.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readImage } from '../src/images/index.js';
import { buildHelper, killHeld, killRestored, removeDir, shmDir, startHeld, status, repoRoot } from './helpers.js';

export interface RssCase {
  name: string;
  runs: number;
  /** the largest ru_maxrss over the runs, KiB */
  dumpKiB: number;
  restoreKiB: number;
  cpKiB: number;
  /** a run that failed: why */
  failed?: string;
}

/** ru_maxrss (KiB) of one whole command; throws on a non-zero exit. */
function peakKiB(cmd: string[], log: string): number {
  const out = execFileSync(buildHelper('measure'), [log, ...cmd], { encoding: 'utf8' });
  const [, rss, code] = out.trim().split(/\s+/).map(Number);
  if (code !== 0) throw new Error(`${cmd.slice(0, 2).join(' ')} exited ${code}`);
  return rss ?? 0;
}

async function rssCase(name: string, helper: string, args: (ready: string) => string[], runs: number): Promise<RssCase> {
  const exe = buildHelper(helper);
  const cli = join(repoRoot(), 'bin', 'criu-ts');
  const c: RssCase = { name, runs, dumpKiB: 0, restoreKiB: 0, cpKiB: 0 };
  for (let i = 1; i <= runs && c.failed === undefined; i++) {
    const dir = shmDir(`rss-${helper}`);
    try {
      status(`peak RSS, ${name}, run ${i}/${runs}`);
      const ready = join(dir, 'ready');
      const h = await startHeld(exe, args(ready), ready);
      const imgs = join(dir, 'img');
      const log = join(dir, 'log');
      try {
        execFileSync('mkdir', ['-p', imgs]);
        c.dumpKiB = Math.max(c.dumpKiB, peakKiB([cli, 'dump', '-t', String(h.pid), '-D', imgs, '-o', join(imgs, 'dump.log')], log));
        await h.exited();
        const pids = readImage(join(imgs, 'pstree.img')).entries.map((e) => Number(e['pid']));
        await killRestored(pids); // orphans of the killed tree come back to us: reap them, freeing their pids
        c.cpKiB = Math.max(c.cpKiB, peakKiB(['cp', '-r', imgs, join(dir, 'copy')], log));
        removeDir(join(dir, 'copy')); // a 4 GiB case must not hold three copies of its memory
        c.restoreKiB = Math.max(c.restoreKiB, peakKiB([cli, 'restore', '-d', '-D', imgs, '-o', join(imgs, 'restore.log')], log));
        await killRestored(pids);
      } catch (e) {
        c.failed = (e as Error).message.replace(/\s+/g, ' ').slice(0, 120);
      } finally {
        await killHeld(h);
      }
    } finally {
      removeDir(dir);
    }
  }
  return c;
}

/** The cases of the benchmark; `quick` leaves out 1 and 4 GiB and runs each once (4 GiB once anyway: it needs 8 GiB of /dev/shm and memory). */
export async function rssCases(quick: boolean): Promise<RssCase[]> {
  const runs = quick ? 1 : 2;
  const mem = (mib: number) => (ready: string): string[] => [String(mib), ready];
  const tasks = (n: number) => (ready: string): string[] => [String(n), ready];
  const out: RssCase[] = [];
  out.push(await rssCase('1 MiB process', 'mem-hold', mem(1), runs));
  out.push(await rssCase('256 MiB process', 'mem-hold', mem(256), runs));
  if (!quick) out.push(await rssCase('1024 MiB process', 'mem-hold', mem(1024), runs));
  if (!quick) out.push(await rssCase('4096 MiB process', 'mem-hold', mem(4096), 1));
  out.push(await rssCase('100-process tree', 'tree-hold', tasks(100), runs));
  out.push(await rssCase('1000-thread process', 'thread-hold', tasks(1000), runs));
  out.push(await rssCase('10,000 fds', 'fds-hold', tasks(10_000), runs));
  // zdtm maps06's shape: a file page, an anonymous page, a PROT_NONE page, again and again.
  out.push(await rssCase('20,000 VMAs', 'vma-hold', tasks(20_000), runs));
  return out;
}

const mib = (kib: number): string => (kib > 0 ? `${(kib / 1024).toFixed(1)} MiB` : '-');
const verdict = (kib: number): string => (kib <= 0 ? '' : kib < 64 * 1024 ? '(met)' : '(missed)').padEnd(8);

export function rssLines(cases: readonly RssCase[]): string[] {
  const rows = cases.map((c) => (c.failed !== undefined
    ? `  ${c.name.padEnd(20)} failed: ${c.failed}`
    : `  ${c.name.padEnd(20)} dump ${mib(c.dumpKiB).padStart(9)} ${verdict(c.dumpKiB)}   restore ${mib(c.restoreKiB).padStart(9)} ${verdict(c.restoreKiB)}   cp -r of the images ${mib(c.cpKiB).padStart(8)}`));
  return ['peak RSS of criu-ts through its CLI (ru_maxrss, largest of the runs; target < 64 MiB), beside a plain cp of the same images:', ...rows];
}

/**
 * criu-ts beside CRIU itself, in one run: for each case both tools dump and
 * restore the same kind of subject through their command lines, taking
 * turns going first, and each whole process is measured for wall time and
 * peak RSS (bench/c/measure.c, wait4's ru_maxrss). criu-ts is also timed
 * through the library in this Node process, where there is no start-up.
 * Images on /dev/shm; restores are detached (-d) and the restored tree is
 * killed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dump, restore } from '../src/api/index.js';
import { readImage } from '../src/images/index.js';
import { setChildSubreaper } from '../src/sys/index.js';
import { buildHelper, startHeld, killHeld, killRestored, shmDir, removeDir, nowS, median, status, repoRoot } from './helpers.js';

export interface ToolFigures {
  /** wall seconds of each measured run */
  s: number[];
  /** peak RSS of each run, KiB */
  rssKiB: number[];
}

export interface OpFigures {
  ours: ToolFigures;
  criu: ToolFigures;
  /** criu-ts through the library in this process (no node start) */
  lib: number[];
}

export interface SideCase {
  name: string;
  runs: number;
  dump: OpFigures;
  restore?: OpFigures;
  /** targets of the speed issue, as ratios criu-ts / CRIU */
  target: { dump: number; restore?: number; lib?: number };
  /** a tool that failed on this case: why (its later runs are skipped) */
  failed?: Partial<Record<'ours' | 'criu', string>>;
}

interface Measured { s: number; rssKiB: number }

function newOp(): OpFigures {
  return { ours: { s: [], rssKiB: [] }, criu: { s: [], rssKiB: [] }, lib: [] };
}

/** Run a whole command under bench/c/measure; throws with its log on failure. */
function measure(cmd: string[], log: string, toolLog: string): Measured {
  const out = execFileSync(buildHelper('measure'), [log, ...cmd], { encoding: 'utf8' });
  const [s, rss, code] = out.trim().split(/\s+/).map(Number);
  if (code !== 0) {
    let why = '';
    for (const f of [toolLog, log]) {
      try {
        // The last error line: CRIU logs warnings it lives with as "Error" too.
        why ||= execFileSync('sh', ['-c', 'grep -i error "$1" | tail -n 1', 'sh', f], { encoding: 'utf8' }).trim();
      } catch {
        // no such line or file
      }
    }
    throw new Error(`${cmd[1]} exited ${code}${why ? `: ${why}` : ''}`);
  }
  return { s: s ?? Number.NaN, rssKiB: rss ?? 0 };
}

/** Every pid of a dump (pstree.img), to wait until a killed tree is gone before its restore. */
function dumpedPids(imgs: string): number[] {
  return readImage(join(imgs, 'pstree.img')).entries.map((e) => Number(e['pid']));
}

function push(f: ToolFigures, m: Measured): void {
  f.s.push(m.s);
  f.rssKiB.push(m.rssKiB);
}

interface Subject {
  helper: string;
  args(readyFile: string): string[];
}

export interface Tools {
  ours: string;
  criu: string;
}

/**
 * One subject, dumped and restored by each tool in turn. Run 0 warms the
 * machine up (the VM's first touch of memory is slow) and is not counted.
 */
async function sideBySide(name: string, subject: Subject, runs: number, tools: Tools, target: SideCase['target'], lib: boolean): Promise<SideCase> {
  const exe = buildHelper(subject.helper);
  const c: SideCase = { name, runs, dump: newOp(), restore: newOp(), target };
  for (let i = 0; i <= runs; i++) {
    const keep = i > 0;
    const order: ('ours' | 'criu' | 'lib')[] = i % 2 === 0 ? ['ours', 'criu'] : ['criu', 'ours'];
    if (lib) order.push('lib');
    for (const who of order) {
      const dir = shmDir(`vs-${subject.helper}`);
      try {
        status(`${name}, ${keep ? `run ${i}/${runs}` : 'warm-up'}: ${who}`);
        const h = await startHeld(exe, subject.args(join(dir, 'ready')), join(dir, 'ready'));
        const imgs = join(dir, 'img');
        const log = join(dir, 'log');
        try {
          execFileSync('mkdir', ['-p', imgs]);
          if (who === 'lib') {
            const t0 = nowS();
            await dump({ pid: h.pid, imagesDir: imgs, progress: false });
            const dt = nowS() - t0;
            await h.exited();
            const t1 = nowS();
            const r = await restore({ imagesDir: imgs, progress: false });
            const rt = nowS() - t1;
            await killRestored(r.pids);
            if (keep) {
              c.dump.lib.push(dt);
              c.restore?.lib.push(rt);
            }
            continue;
          }
          if (c.failed?.[who] !== undefined) continue;
          const bin = who === 'ours' ? tools.ours : tools.criu;
          let d: Measured;
          let r: Measured;
          try {
            d = measure([bin, 'dump', '-t', String(h.pid), '-D', imgs, '-o', join(imgs, 'dump.log')], log, join(imgs, 'dump.log'));
            await h.exited();
            // The killed tree's orphans are ours (we are a subreaper): reap them, or their pids stay taken.
            await killRestored(dumpedPids(imgs));
            r = measure([bin, 'restore', '-d', '-D', imgs, '-o', join(imgs, 'restore.log')], log, join(imgs, 'restore.log'));
            await killRestored(dumpedPids(imgs));
          } catch (e) {
            c.failed = { ...c.failed, [who]: (e as Error).message.slice(0, 160) };
            continue;
          }
          if (keep) {
            push(c.dump[who], d);
            if (c.restore) push(c.restore[who], r);
          }
        } finally {
          await killHeld(h);
        }
      } finally {
        removeDir(dir);
      }
    }
  }
  return c;
}

async function checkCase(runs: number, tools: Tools): Promise<SideCase> {
  const c: SideCase = { name: 'check', runs, dump: newOp(), target: { dump: 1.5 } };
  const dir = shmDir('vs-check');
  try {
    for (let i = 0; i <= runs; i++) {
      for (const who of i % 2 === 0 ? (['ours', 'criu'] as const) : (['criu', 'ours'] as const)) {
        status(`check, run ${i}/${runs}: ${who}`);
        const m = measure([who === 'ours' ? tools.ours : tools.criu, 'check'], join(dir, 'log'), join(dir, 'log'));
        if (i > 0) push(c.dump[who], m);
      }
    }
  } finally {
    removeDir(dir);
  }
  return c;
}

const mem = (mib: number): Subject => ({ helper: 'mem-hold', args: (ready) => [String(mib), ready] });
const tasks = (helper: string, n: number): Subject => ({ helper, args: (ready) => [String(n), ready] });

/** Every case of the speed issue; `quick` keeps one small run of each cheap case. */
export async function runVsCriu(tools: Tools, quick: boolean): Promise<SideCase[]> {
  setChildSubreaper(true); // detached restored roots come back to us to be reaped
  const n = (full: number): number => (quick ? 1 : full);
  const out: SideCase[] = [];
  out.push(await sideBySide('1 MiB process', mem(1), n(7), tools, { dump: 1.5, restore: 1.5, lib: 0.5 }, true));
  out.push(await sideBySide('256 MiB process', mem(256), n(5), tools, { dump: 1.0, restore: 1.0 }, !quick));
  if (!quick) {
    out.push(await sideBySide('1024 MiB process', mem(1024), 5, tools, { dump: 0.8, restore: 1.0 }, true));
    out.push(await sideBySide('4096 MiB process', mem(4096), 3, tools, { dump: 0.8, restore: 1.0 }, false));
  }
  out.push(await sideBySide('100-process tree', tasks('tree-hold', 100), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick));
  out.push(await sideBySide('1000-thread process', tasks('thread-hold', 1000), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick));
  out.push(await sideBySide('10,000 fds of mixed kinds', tasks('fds-hold', 10_000), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick));
  out.push(await checkCase(n(7), tools));
  return out;
}

const ms = (x: number): string => (Number.isFinite(x) ? (x < 1 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s`) : '-');
const mib = (kib: number): string => (kib > 0 ? `${(kib / 1024).toFixed(0)} MiB` : '-');
const spread = (xs: number[]): string => (xs.length > 1 ? ` (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})` : '');

export const VS_HEADER = ['case', 'op', 'runs', 'criu-ts CLI', 'CRIU 4.2', 'ratio', 'target', 'criu-ts library', 'lib ratio', 'peak RSS criu-ts', 'peak RSS CRIU'];

/** Table rows: medians (min–max), ratio to CRIU, and whether the target is met. */
export function vsRows(cases: readonly SideCase[]): string[][] {
  const rows: string[][] = [];
  for (const c of cases) {
    const ops: [string, OpFigures | undefined, number | undefined][] = [
      [c.restore ? 'dump' : 'run', c.dump, c.target.dump],
      ['restore', c.restore, c.target.restore],
    ];
    for (const [op, f, target] of ops) {
      if (!f) continue;
      const ours = median(f.ours.s);
      const criu = median(f.criu.s);
      const ratio = ours / criu;
      const lib = median(f.lib);
      const libRatio = lib / criu;
      const met = (r: number, t: number | undefined): string => (t === undefined || !Number.isFinite(r) ? '' : `<= ${t}x: ${r <= t ? 'met' : 'missed'}`);
      const failed = (who: 'ours' | 'criu', text: string): string => (c.failed?.[who] !== undefined ? `failed (${c.failed[who]})` : text);
      rows.push([
        c.name, op, String(c.runs), failed('ours', `${ms(ours)}${spread(f.ours.s)}`), failed('criu', `${ms(criu)}${spread(f.criu.s)}`),
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-', met(ratio, target),
        f.lib.length ? ms(lib) : '-', f.lib.length ? `${libRatio.toFixed(2)}x${c.target.lib !== undefined ? ` (${met(libRatio, c.target.lib)})` : ''}` : '-',
        `${mib(Math.max(0, ...f.ours.rssKiB))}${Math.max(0, ...f.ours.rssKiB) > 0 ? (Math.max(...f.ours.rssKiB) < 64 * 1024 ? ' (< 64: met)' : ' (< 64: missed)') : ''}`,
        mib(Math.max(0, ...f.criu.rssKiB)),
      ]);
    }
  }
  return rows;
}

/** The CRIU binary to compare with: --criu PATH, else $CRIU_BIN; undefined runs the plain baselines. */
export function criuBinFrom(argv: readonly string[]): string | undefined {
  const i = argv.indexOf('--criu');
  const given = i >= 0 ? argv[i + 1] : process.env['CRIU_BIN'];
  return given === undefined || given === '' ? undefined : given;
}

export function oursBin(): string {
  return join(repoRoot(), 'bin', 'criu-ts');
}

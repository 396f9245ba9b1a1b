/**
 * The benchmark cases. Each run starts a fresh holding process, measures a
 * plain-C baseline on it in the same run, then our dump() and restore()
 * through the library API (images on /dev/shm, restore detached, the
 * restored tree killed afterwards). Times are medians over the runs.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore, isCriuTsError } from '../src/api/index.js';
import {
  buildHelper, startHeld, killHeld, killRestored, runTimed, shmDir, removeDir, nowS, median, status, repoRoot,
} from './helpers.js';

/** One measured operation beside its baseline; `note` replaces figures that could not be taken. */
export interface Measure {
  oursS: number;
  baseS: number;
  /** bytes moved, for GB/s (0: not a memory case) */
  bytes: number;
  note?: string;
  /** dump only: the part spent after the images were complete (killing the task, waiting for its memory to be freed) */
  releaseS?: number;
}

export interface CaseResult {
  name: string;
  runs: number;
  dump: Measure;
  restore: Measure;
  dumpBaseline: string;
  restoreBaseline: string;
}

const NOT_YET = (e: unknown): string | undefined =>
  isCriuTsError(e) && e.code === 'EUNSUPPORTED' ? `not yet (${e.message})` : undefined;

function pagesBytes(dir: string): number {
  return statSync(join(dir, 'pages-1.img')).size;
}

/** N MiB of touched private anonymous memory in one process. */
export async function memoryCase(mib: number, runs: number): Promise<CaseResult> {
  const hold = buildHelper('mem-hold');
  const copyOut = buildHelper('copy-out');
  const fillIn = buildHelper('fill-in');
  const d = { ours: [] as number[], base: [] as number[], release: [] as number[] };
  const r = { ours: [] as number[], base: [] as number[] };
  let dumpBytes = 0;
  let restoreBytes = 0;
  // Run 0 is a warm-up and not counted: the VM's first touch of guest memory
  // is slow, and would otherwise land on whichever step happens to run first.
  for (let i = 0; i <= runs; i++) {
    const keep = i > 0;
    const dir = shmDir(`${mib}m`);
    try {
      status(`${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}: starting the subject`);
      const h = await startHeld(hold, [String(mib), join(dir, 'ready')], join(dir, 'ready'));
      const [addr, len] = h.info;
      try {
        status(`${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}: baseline copy out`);
        const db = runTimed(copyOut, [String(h.pid), addr ?? '0', len ?? '0', join(dir, 'baseline.img')]);
        removeDir(join(dir, 'baseline.img'));
        status(`${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}: dump`);
        const imgs = join(dir, 'img');
        const t0 = nowS();
        const { stats } = await dump({ pid: h.pid, imagesDir: imgs, progress: false });
        const dt = nowS() - t0;
        await h.exited(); // the dump killed it; its pid must be free before the restore
        const bytes = pagesBytes(imgs);
        dumpBytes = bytes;
        restoreBytes = bytes;
        // Restore and its baseline take turns going first: whichever runs
        // second may find memory the other just freed and be faster for it.
        const fill = (): number => {
          status(`${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}: baseline fill in`);
          return runTimed(fillIn, [join(imgs, 'pages-1.img'), String(bytes)]);
        };
        const rbFirst = i % 2 === 0 ? fill() : undefined;
        status(`${mib} MiB, ${keep ? `run ${i}/${runs}` : 'warm-up'}: restore`);
        const t1 = nowS();
        const res = await restore({ imagesDir: imgs, progress: false });
        const rt = nowS() - t1;
        await killRestored(res.pids);
        const rb = rbFirst ?? fill();
        if (keep) {
          d.base.push(db);
          d.ours.push(dt);
          d.release.push(Math.max(0, dt - stats.frozenTimeUs / 1e6));
          r.base.push(rb);
          r.ours.push(rt);
        }
      } finally {
        await killHeld(h);
      }
    } finally {
      removeDir(dir);
    }
  }
  return {
    name: `${mib} MiB process`,
    runs,
    dump: { oursS: median(d.ours), baseS: median(d.base), bytes: dumpBytes, releaseS: median(d.release) },
    restore: { oursS: median(r.ours), baseS: median(r.base), bytes: restoreBytes },
    dumpBaseline: 'process_vm_readv + write to /dev/shm (C)',
    restoreBaseline: 'mmap fresh + pread from /dev/shm (C)',
  };
}

/**
 * A case whose subject is `helper N READY` and whose baseline is
 * `helper --baseline N` (creating the same tasks and letting them go).
 */
async function tasksCase(name: string, helperName: string, n: number, runs: number, baseline: string): Promise<CaseResult> {
  const exe = buildHelper(helperName);
  const d: number[] = [];
  const r: number[] = [];
  const base: number[] = [];
  let dumpNote: string | undefined;
  let restoreNote: string | undefined;
  for (let i = 0; i < runs && dumpNote === undefined; i++) {
    const dir = shmDir(helperName);
    try {
      status(`${name}, run ${i + 1}/${runs}: baseline`);
      base.push(runTimed(exe, ['--baseline', String(n)]));
      const h = await startHeld(exe, [String(n), join(dir, 'ready')], join(dir, 'ready'));
      try {
        status(`${name}, run ${i + 1}/${runs}: dump`);
        const imgs = join(dir, 'img');
        const t0 = nowS();
        try {
          await dump({ pid: h.pid, imagesDir: imgs, progress: false });
        } catch (e) {
          dumpNote = NOT_YET(e) ?? `failed: ${(e as Error).message}`;
          break;
        }
        d.push(nowS() - t0);
        await h.exited();
        if (restoreNote !== undefined) continue;
        status(`${name}, run ${i + 1}/${runs}: restore`);
        const t1 = nowS();
        try {
          const res = await restore({ imagesDir: imgs, progress: false });
          r.push(nowS() - t1);
          await killRestored(res.pids);
        } catch (e) {
          restoreNote = NOT_YET(e) ?? `failed: ${(e as Error).message}`;
        }
      } finally {
        await killHeld(h);
      }
    } finally {
      removeDir(dir);
    }
  }
  const m = (xs: number[], note: string | undefined): Measure =>
    note === undefined ? { oursS: median(xs), baseS: median(base), bytes: 0 } : { oursS: Number.NaN, baseS: median(base), bytes: 0, note };
  return {
    name, runs,
    dump: m(d, dumpNote),
    restore: m(r, restoreNote ?? dumpNote),
    dumpBaseline: baseline,
    restoreBaseline: baseline,
  };
}

export function treeCase(n: number, runs: number): Promise<CaseResult> {
  return tasksCase(`${n}-process tree`, 'tree-hold', n, runs, `fork+exit of ${n - 1} children (C)`);
}

export function threadsCase(n: number, runs: number): Promise<CaseResult> {
  return tasksCase(`${n}-thread process`, 'thread-hold', n, runs, `create+join ${n - 1} threads (C)`);
}

/** Wall time of whole CLI runs (node start, module load, work, exit) for a small process. */
export interface CliResult {
  mib: number;
  runs: number;
  dumpS: number;
  restoreS: number;
  /** `node -e 0`: the part of each CLI run no code of ours can remove */
  nodeStartS: number;
  /** `criu-ts --version`: node start plus loading the CLI bundle with its code cache (koffi included), doing nothing */
  loadS: number;
}

function wall(args: string[]): number {
  const t0 = nowS();
  const p = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const s = nowS() - t0;
  if (p.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${p.stderr.trim()}`);
  return s;
}

export async function cliCase(mib: number, runs: number): Promise<CliResult> {
  const hold = buildHelper('mem-hold');
  const cli = join(repoRoot(), 'bin', 'criu-ts');
  const d: number[] = [];
  const r: number[] = [];
  const n: number[] = [];
  const l: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = shmDir('cli');
    try {
      status(`CLI ${mib} MiB, run ${i + 1}/${runs}`);
      n.push(wall(['-e', '0']));
      l.push(wall([cli, '--version']));
      const h = await startHeld(hold, [String(mib), join(dir, 'ready')], join(dir, 'ready'));
      try {
        d.push(wall([cli, 'dump', '-t', String(h.pid), '-D', dir]));
        await h.exited();
        r.push(wall([cli, 'restore', '-d', '-D', dir]));
        await killRestored([h.pid]);
      } finally {
        await killHeld(h);
      }
    } finally {
      removeDir(dir);
    }
  }
  return { mib, runs, dumpS: median(d), restoreS: median(r), nodeStartS: median(n), loadS: median(l) };
}

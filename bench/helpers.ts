/**
 * What every benchmark case needs: the C helpers built with gcc into
 * build/bench/, holding processes started and awaited through ready files,
 * the timed runs of the baseline helpers, and clean removal of what a run
 * leaves (processes, image directories on /dev/shm).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitRestored } from '../src/api/index.js';

/** Nearest ancestor holding package.json: works from bench/ and dist/bench/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('criu-ts repo root not found');
    dir = up;
  }
  return dir;
}

const mtime = (p: string): number => (existsSync(p) ? statSync(p).mtimeMs : -1);

/** Compile bench/c/NAME.c into build/bench/NAME unless the binary is newer than the source and ready.h. */
export function buildHelper(name: string): string {
  const root = repoRoot();
  const src = join(root, 'bench', 'c', `${name}.c`);
  const outDir = join(root, 'build', 'bench');
  mkdirSync(outDir, { recursive: true });
  const exe = join(outDir, name);
  // The subjects share bench/c/ready.h: a change to it rebuilds them too.
  if (mtime(exe) >= Math.max(mtime(src), mtime(join(root, 'bench', 'c', 'ready.h')))) return exe;
  // A private name then rename: a concurrent run never executes half a binary.
  const tmp = `${exe}.tmp.${process.pid}`;
  execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', tmp, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  renameSync(tmp, exe);
  return exe;
}

export function hasGcc(): boolean {
  return spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function nowS(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

// What is alive or on disk right now, so an interrupted run can still clean up.
const liveGroups = new Set<number>();
const liveDirs = new Set<string>();

/** A fresh scratch directory on /dev/shm (tmpfs), so disk speed plays no part. */
export function shmDir(tag: string): string {
  const dir = mkdtempSync(`/dev/shm/criu-ts-bench-${tag}-`);
  liveDirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** Kill every process group we started and remove every scratch dir (for Ctrl-C). */
export function cleanupAll(): void {
  for (const g of liveGroups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
}

export interface Held {
  pid: number;
  /** words after the pid in the ready file (e.g. address and length) */
  info: string[];
  /**
   * Resolves once the pid is gone. Not through the 'exit' event: a dump
   * traces the task and, being its parent too, reaps it itself, so Node
   * never hears of the exit.
   */
  exited(): Promise<void>;
  child: ChildProcess;
}

/**
 * Start `exe args...` in its own session (dump wants a session leader or
 * --shell-job) and wait until it writes its ready file.
 */
export async function startHeld(exe: string, args: string[], readyFile: string, timeoutMs = 60_000): Promise<Held> {
  const child = spawn(exe, args, { detached: true, stdio: 'ignore' });
  let gone = false;
  child.once('exit', () => { gone = true; });
  // The pid may outlive this handle as a restored process: never let it hold the event loop.
  child.unref();
  const pid = child.pid ?? -1;
  liveGroups.add(pid);
  const exited = async (): Promise<void> => {
    for (let i = 0; i < 10_000 && existsSync(`/proc/${pid}`); i++) await sleep(1);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(readyFile)) {
      const words = readFileSync(readyFile, 'utf8').trim().split(/\s+/);
      rmSync(readyFile, { force: true });
      return { pid, info: words.slice(1), exited, child };
    }
    if (gone) throw new Error(`${exe} exited before it was ready`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${exe} not ready after ${timeoutMs} ms`);
    }
    await sleep(5);
  }
}

/** SIGKILL a process and its whole session if still there, and wait until its zombie is gone. */
export async function killHeld(h: Held): Promise<void> {
  try {
    process.kill(-h.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  liveGroups.delete(h.pid);
  await h.exited();
}

/** True while pid names a process that is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Kill a restored tree and wait until every pid is gone. restore() makes us
 * a child subreaper, so the root, and every task orphaned when its parent
 * dies, becomes our child: collect each one, or they stay zombies.
 */
export async function killRestored(pids: readonly number[]): Promise<void> {
  for (const p of [...pids].reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  let left = [...pids];
  for (let i = 0; i < 5000 && left.length > 0; i++) {
    left = left.filter((p) => {
      if (!existsSync(`/proc/${p}`)) return false;
      if (alive(p)) return true;
      try {
        waitRestored(p); // a zombie of ours: collect it
        return false;
      } catch {
        return true; // someone else's zombie (init collects it)
      }
    });
    if (left.length > 0) await sleep(1);
  }
}

/** Run a baseline helper that prints its own elapsed seconds on stdout. */
export function runTimed(exe: string, args: string[]): number {
  const out = execFileSync(exe, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const s = Number.parseFloat(out.trim());
  if (!Number.isFinite(s)) throw new Error(`${exe}: no timing in output ${JSON.stringify(out)}`);
  return s;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Progress on a terminal only: one line rewritten in place. */
export function status(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K`);
}

export function statusDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

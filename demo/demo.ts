/**
 * `npm start`: a guided tour of one checkpoint and restore. It builds a tiny
 * counting program, lets it count, checkpoints it with bin/criu-ts (which
 * stops and removes it), restores it from the images, shows it counting on
 * from where it was under the same pid, then stops it and removes every
 * file it made. Runs as root; needs gcc for the sample program.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TICK_LINE = /^counter = (\d+)\s+\(pid (\d+)\)$/;
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line = ''): void => { process.stdout.write(`${line}\n`); };

/** Nearest ancestor with package.json: works from demo/ and dist/demo/. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('criu-ts repo root not found');
    dir = up;
  }
  return dir;
}

/** Follows a growing log file and prints each new complete line, indented. */
class LogTail {
  private offset = 0;
  readonly counters: number[] = [];
  constructor(private readonly path: string) {}

  poll(): void {
    const text = readFileSync(this.path, 'utf8');
    const end = text.lastIndexOf('\n') + 1;
    if (end <= this.offset) return;
    for (const line of text.slice(this.offset, end).split('\n')) {
      if (line === '') continue;
      say(`    | ${line}`);
      const m = TICK_LINE.exec(line);
      if (m) this.counters.push(Number(m[1]));
    }
    this.offset = end;
  }

  async follow(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      this.poll();
      await sleep(50);
    }
    this.poll();
  }
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!gone(pid)) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  // A zombie still holds its pid until its parent collects it.
  while (existsSync(`/proc/${pid}`) && Date.now() < until) await sleep(20);
  return !existsSync(`/proc/${pid}`);
}

/** Run bin/criu-ts with `args`, echoing the command; returns seconds taken. Throws with its stderr on failure. */
function criuTs(args: string[]): number {
  say(`    $ criu-ts ${args.join(' ')}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`criu-ts ${args[0] ?? ''} failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}`);
  return secs;
}

function imagesSummary(dir: string): string {
  const files = readdirSync(dir);
  const bytes = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  const shown = files.filter((f) => /^(core|mm|pagemap|pages|fdinfo|files|pstree|inventory)/.test(f)).sort().join(', ');
  return `${files.length} files, ${(bytes / 1024).toFixed(0)} KiB: ${shown}${files.length > 8 ? ', ...' : ''}`;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    say('criu-ts demo: please run as root (checkpointing another process needs ptrace and clone3 with set_tid).');
    return 1;
  }
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    say('criu-ts demo: gcc is missing; install it first (apt-get install -y gcc).');
    return 1;
  }
  const work = mkdtempSync('/tmp/criu-ts-demo-');
  const images = join(work, 'images');
  const logPath = join(work, 'counter.log');
  let pid = -1;
  const cleanup = (): void => {
    if (pid > 0 && !gone(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    say(bold('criu-ts demo: checkpoint a running process, then bring it back'));
    say(`(everything happens in ${work}, removed at the end)`);
    say();

    say(bold('Step 1/6  Build the sample program'));
    say('    A small C program that adds 1 to a counter and prints it every 0.3 s.');
    const exe = join(work, 'counter');
    execFileSync('gcc', ['-O1', '-o', exe, join(repoRoot(), 'demo', 'counter.c')], { stdio: 'inherit' });
    say(`    $ gcc -o counter demo/counter.c   (ok)`);
    say();

    say(bold('Step 2/6  Start it and watch it count'));
    const logFd = openSync(logPath, 'a');
    // Its own session, like a daemon: criu-ts dumps whole sessions (or use --shell-job).
    const child = spawn(exe, [], { cwd: work, detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child.unref();
    pid = child.pid ?? -1;
    say(`    started as pid ${pid}; its output goes to counter.log:`);
    const tail = new LogTail(logPath);
    await tail.follow(2000);
    const before = tail.counters.length;
    const lastBefore = tail.counters[before - 1] ?? 0;
    say();

    say(bold('Step 3/6  Checkpoint it'));
    say('    criu-ts stops the process, saves its memory, registers and open files');
    say('    as CRIU image files, then kills it (add -R to leave it running).');
    mkdirSync(images); // like CRIU, the images directory must exist
    const dumpS = criuTs(['dump', '--tree', String(pid), '--images-dir', images]);
    tail.poll(); // a line printed just before the stop shows up here
    say(`    done in ${dumpS.toFixed(2)} s; the images: ${imagesSummary(images)}`);
    say();

    say(bold('Step 4/6  The process is gone'));
    const reallyGone = await waitGone(pid, 5000);
    say(`    /proc/${pid} ${reallyGone ? 'no longer exists' : 'still exists (unexpected)'}; the log stays quiet for a second:`);
    const quietFrom = tail.counters.length;
    await tail.follow(1000);
    if (tail.counters.length === quietFrom) say('    (nothing)');
    const lastDumped = tail.counters[quietFrom - 1] ?? lastBefore;
    say();

    say(bold('Step 5/6  Restore it from the images'));
    const pidfile = join(work, 'restored.pid');
    const restoreS = criuTs(['restore', '--restore-detached', '--images-dir', images, '--pidfile', pidfile]);
    const restored = Number(readFileSync(pidfile, 'utf8').trim());
    say(`    back in ${restoreS.toFixed(2)} s as pid ${restored}${restored === pid ? ' (the same pid as before)' : ''}; it carries on:`);
    pid = restored;
    const fromIndex = tail.counters.length;
    await tail.follow(2000);
    const after = tail.counters.slice(fromIndex);
    say();

    say(bold('Step 6/6  Stop it and clean up'));
    process.kill(pid, 'SIGTERM');
    const stopped = await waitGone(pid, 5000);
    tail.poll();
    say(`    sent SIGTERM to ${pid}: ${stopped ? 'it printed its last line and exited' : 'it did not exit'}`);
    say();

    const first = after[0];
    if (first === undefined) {
      say('Something went wrong: the restored process printed nothing.');
      return 1;
    }
    if (first !== lastDumped + 1) {
      say(`Something went wrong: the count went from ${lastDumped} to ${first} across the checkpoint.`);
      return 1;
    }
    say(bold(`It worked: the count reached ${lastDumped} before the checkpoint and went on with ${first} after the restore,`));
    say(bold('under the same pid: the process never started over.'));
    return 0;
  } finally {
    cleanup();
  }
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    say(`criu-ts demo failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);

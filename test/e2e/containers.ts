/**
 * What the runc and podman tests share: a busybox rootfs built from
 * Debian's busybox-static, a process that counts into a file in that
 * rootfs, running a client (runc, podman) with criu-ts as its criu, and
 * telling "criu-ts refused" (a skip naming the refusal) from any other
 * failure (red).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { pipe2 } from '../../src/sys/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../lib/subjects.js';

/** The counting loop: one number a line, ten a second, appended so a restart from 1 shows. */
export const COUNTER_SCRIPT = 'i=0; while :; do i=$((i+1)); echo $i >> /data/count; sleep 0.1; done';

export const CRIU_TS = join(repoRoot(), 'bin', 'criu-ts');

/** Where a binary is on PATH (or the first of `extra` that exists), else undefined. */
export function which(name: string, extra: readonly string[] = []): string | undefined {
  for (const p of extra) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const out = r.stdout.trim();
  return r.status === 0 && out !== '' ? out : undefined;
}

/** A statically linked busybox (Debian's busybox-static), or the reason there is none. */
export function staticBusybox(): { path: string } | { missing: string } {
  const path = which('busybox', ['/bin/busybox', '/usr/bin/busybox']);
  if (path === undefined) return { missing: 'busybox is not installed (apt-get install busybox-static)' };
  const head = readFileSync(path).subarray(0, 4096);
  // A dynamic ELF names its interpreter (PT_INTERP: "/lib64/ld-linux..."); busybox-static has none.
  if (head.includes('ld-linux')) return { missing: `${path} is dynamically linked (apt-get install busybox-static)` };
  return { path };
}

/** A rootfs with busybox as sh, sleep, cat, echo and the dirs a container needs; /data holds the count. */
export function makeRootfs(dir: string, busybox: string): void {
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'data', 'etc']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(busybox, join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'sleep', 'cat', 'echo', 'ls']) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
}

/** The numbers counted so far (the last complete line), 0 when none. */
export function lastCount(countFile: string): number {
  let text: string;
  try {
    text = readFileSync(countFile, 'utf8');
  } catch {
    return 0;
  }
  const lines = text.split('\n');
  lines.pop(); // a line is complete only once its newline is there
  return Number(lines[lines.length - 1] ?? 0) || 0;
}

/** Every number the counter wrote, in order. */
export function allCounts(countFile: string): number[] {
  const lines = readFileSync(countFile, 'utf8').split('\n');
  lines.pop();
  return lines.map(Number);
}

export interface Run {
  status: number | null;
  out: string;
}

/**
 * Run a client command; stdout and stderr together, as a user reads them.
 * They go to a file, not a pipe: a container started detached keeps the
 * client's stdio, and a pipe would never close.
 */
export function run(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Run {
  const outFile = join(tmpdir(), `criu-ts-client-${process.pid}-${(seq += 1)}.out`);
  const fd = openSync(outFile, 'w+', 0o600);
  try {
    const r = spawnSync(argv[0] as string, argv.slice(1), {
      env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, stdio: ['ignore', fd, fd],
    });
    return { status: r.status, out: `${readFileSync(outFile, 'utf8')}${r.error ? `\n${r.error.message}` : ''}` };
  } finally {
    closeSync(fd);
    rmSync(outFile, { force: true });
  }
}
let seq = 0;

const held: number[] = [];

const O_NONBLOCK = 0o4000;

/** What is queued in a non-blocking pipe, without waiting for writers to close it. */
function drain(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch {
      break; // EAGAIN: nothing more queued
    }
    if (n <= 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString();
}

/**
 * Run a client that starts a detached container (runc run -d, runc restore
 * -d, podman run -d) with real pipes as its stdio, as containerd and
 * podman give it (Node's own 'pipe' stdio is a socketpair): the container
 * keeps them (runc records them and hands them back with inherit_fd at
 * restore), so we wait for the client's exit, not for its pipes to close,
 * and read what it wrote from the pipe. Our ends stay open until
 * releasePipes().
 */
export function runDetaching(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const [inR, inW] = pipe2();
  const [outR, outW] = pipe2(O_NONBLOCK);
  held.push(inW, outR);
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { env: opts.env ?? process.env, stdio: [inR, outW, outW] });
    closeSync(inR);
    closeSync(outW);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ status: null, out: e.message });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code, out: drain(outR) });
    });
  });
}

/** Close our ends of the pipes runDetaching made. */
export function releasePipes(): void {
  for (const fd of held.splice(0)) closeSync(fd);
}

/**
 * What criu-ts answered when a client's checkpoint or restore failed: runc
 * prints "criu failed: type DUMP errno N\nlog file: PATH"; the first error
 * line of that log is criu-ts's one-line story.
 */
export interface CriuFailure {
  type: string;
  errno: number;
  logLine: string;
}

export function criuFailureOf(out: string): CriuFailure | undefined {
  const m = /criu failed: type (\w+) errno (\d+)(?:\\n|\s)+log file: ([^\s"]+)/.exec(out);
  if (!m) return undefined;
  let logLine = '(no log)';
  try {
    const log = readFileSync(m[3] as string, 'utf8');
    logLine = log.split('\n').find((l) => / Error /.test(l))?.replace(/^\([\d.]+\)\s*/, '') ?? '(no error line in the log)';
  } catch {
    // the log is gone with the container's directory
  }
  return { type: m[1] as string, errno: Number(m[2]), logLine };
}

const EOPNOTSUPP = 95;

/** criu-ts's one-line refusals of what it cannot do yet (EUNSUPPORTED), which CRIU 4.2 would answer without a cr_errno. */
const REFUSAL_LINE = /not supported|cannot (checkpoint|restore|dump) .* yet|not (done|implemented) yet|does not support/;

/**
 * The skip reason when criu-ts refused what the client asked (RPC options:
 * EOPNOTSUPP; a resource it cannot handle yet: no cr_errno, as CRIU, and
 * its one line says so), else undefined: any other failure is a real one.
 */
export function refusal(what: string, out: string): string | undefined {
  const f = criuFailureOf(out);
  if (f === undefined) return undefined;
  if (f.errno !== EOPNOTSUPP && !(f.errno === 0 && REFUSAL_LINE.test(f.logLine))) return undefined;
  return `criu-ts still refuses ${what} (${f.type} errno ${f.errno}): ${f.logLine}`;
}

/** A failed client's output with the error lines of criu's log, for an assertion message. */
export function failureStory(out: string): string {
  const m = /log file: ([^\s"]+)/.exec(out);
  let errors = '';
  try {
    if (m) errors = readFileSync(m[1] as string, 'utf8').split('\n').filter((l) => /Error/.test(l)).slice(0, 8).join('\n');
  } catch {
    // no log
  }
  return `${out}${errors === '' ? '' : `\n--- criu log errors:\n${errors}`}`;
}

/** The CRIU 4.2 binary named by CRIU_BIN, if it is there. */
export function criuBin(): string | undefined {
  const p = process.env['CRIU_BIN'];
  return p !== undefined && p !== '' && existsSync(p) ? p : undefined;
}

/** A directory holding `criu` -> the given binary, to put first on PATH (podman and runc look for `criu`). */
export function criuOnPath(dir: string, criu: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  symlinkSync(criu, join(dir, 'criu'));
  return { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
}

/** The first line of a failed command's output, for a skip reason. */
export function firstLine(out: string): string {
  return out.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '(no output)';
}

/** `ip netns` exists here (the external net namespace case). */
export function hasIpNetns(): boolean {
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

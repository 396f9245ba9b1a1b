/**
 * Build and run the C test subjects in test/subjects/ (protocol in
 * test/subjects/lib/subject.h). A subject may be checkpointed and restored
 * between ready and SIGTERM, after which it is no longer our child: every
 * check here goes by pid and files, never by the ChildProcess object.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo root: nearest ancestor with package.json (works from test/lib and dist/test/lib). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('criu-ts repo root not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export interface BuildOptions {
  pthread?: boolean;
  /** Link statically (no libc file mappings in the address space). */
  static?: boolean;
  /** Extra gcc flags, e.g. ["-mavx"]. */
  cflags?: string[];
}

function mtimeMs(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** Compile test/subjects/NAME.c (+ the subject library, every lib/*.c) into build/subjects/; returns the executable path. */
export function buildSubject(name: string, opts: BuildOptions = {}): string {
  const root = repoRoot();
  const srcDir = join(root, 'test', 'subjects');
  const src = join(srcDir, `${name}.c`);
  const libDir = join(srcDir, 'lib');
  const lib = readdirSync(libDir).filter((n) => n.endsWith('.c') || n.endsWith('.h')).sort().map((n) => join(libDir, n));
  const libSrc = lib.filter((f) => f.endsWith('.c'));
  if (!existsSync(src)) throw new Error(`no such subject: ${src}`);
  const outDir = join(root, 'build', 'subjects');
  mkdirSync(outDir, { recursive: true });
  const extra = opts.cflags ?? [];
  const flagsTag = extra.length === 0 ? '' : '-' + createHash('sha1').update(extra.join('\0')).digest('hex').slice(0, 8);
  const variant = (opts.static === true ? '-static' : '') + (opts.pthread === true ? '-pthread' : '') + flagsTag;
  const exe = join(outDir, name + variant);
  const newest = Math.max(mtimeMs(src), ...lib.map(mtimeMs));
  if (mtimeMs(exe) >= newest) return exe;
  // Build under a private name and rename, so concurrent test runs never exec a half-written file.
  const tmp = `${exe}.tmp.${process.pid}`;
  const args = ['-O1', '-g', '-Wall', '-Wextra', '-Wno-unused-parameter', '-I', join(srcDir, 'lib'), '-o', tmp, src, ...libSrc];
  if (opts.pthread === true) args.push('-pthread');
  if (opts.static === true) args.push('-static');
  args.push(...extra);
  try {
    execFileSync('gcc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message?: string };
    rmSync(tmp, { force: true });
    const out = `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`.trim();
    throw new Error(`gcc failed to build subject ${name}:\n${out || (err.message ?? String(e))}`);
  }
  renameSync(tmp, exe);
  return exe;
}

export interface SubjectResult {
  ok: boolean;
  text: string;
}

export interface Subject {
  name: string;
  pid: number;
  workDir: string;
  outFile: string;
  logFile: string;
  /** SIGKILL, ignoring a process that is already gone. */
  kill(): void;
  /** SIGTERM by pid, then wait for OUTFILE to say PASS or FAIL. */
  terminateAndResult(timeoutMs?: number): Promise<SubjectResult>;
  /** Kill and remove the work dir. */
  cleanup(): void;
}

export interface StartOptions extends BuildOptions {
  /** How long to wait for OUTFILE.ready (default 10 s). */
  readyTimeoutMs?: number;
  /** Use this work dir instead of a fresh /tmp/criu-ts-test-XXXXXX. */
  workDir?: string;
  /** Run as this user and group (the work dir is given to them). */
  uid?: number;
  gid?: number;
  /**
   * The process started only launches the subject (e.g. as the init of a
   * new pid namespace): the subject's pid is the one it writes to
   * OUTFILE.ready.
   */
  launcher?: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True while pid exists and is not a zombie (a restored subject's zombie may wait for a parent that is not us). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function tailOf(path: string, maxBytes = 2000): string {
  try {
    const t = readFileSync(path, 'utf8');
    return t.length > maxBytes ? '...' + t.slice(-maxBytes) : t;
  } catch {
    return '(no log)';
  }
}

function readIfExists(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

export async function startSubject(name: string, args: string[] = [], opts: StartOptions = {}): Promise<Subject> {
  const exe = buildSubject(name, opts);
  const workDir = opts.workDir ?? mkdtempSync('/tmp/criu-ts-test-');
  const outFile = join(workDir, `${name}.out`);
  const logFile = join(workDir, `${name}.log`);
  const logFd = openSync(logFile, 'a');
  const ids = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid };
  if (ids.uid !== undefined) {
    chownSync(workDir, ids.uid, ids.gid);
    chownSync(logFile, ids.uid, ids.gid);
  }
  let exited: string | undefined;
  const child = spawn(exe, ['--out', outFile, ...args], { cwd: workDir, detached: true, stdio: ['ignore', logFd, logFd], ...ids });
  closeSync(logFd);
  // 'exit' reaps the original child; after a restore the process lives on elsewhere.
  child.on('exit', (code, sig) => { exited = `exited with ${sig ?? code}`; });
  child.on('error', (e) => { exited = `spawn failed: ${e.message}`; });
  child.unref();
  let pid = child.pid ?? -1;

  // By subject.pid: a test that restored the subject elsewhere (a new pid namespace) sets it.
  const kill = (): void => {
    if (subject.pid > 0) {
      try { process.kill(subject.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  const subject: Subject = {
    name, pid, workDir, outFile, logFile, kill,
    async terminateAndResult(timeoutMs = 10_000): Promise<SubjectResult> {
      const pid = subject.pid;
      try {
        process.kill(pid, 'SIGTERM');
      } catch (e) {
        return { ok: false, text: `cannot signal ${pid}: ${(e as Error).message}\n--- log ---\n${tailOf(logFile)}` };
      }
      const deadline = Date.now() + timeoutMs;
      let goneSince: number | undefined;
      for (;;) {
        const out = readIfExists(outFile);
        if (out !== undefined && /^(PASS|FAIL)/.test(out)) {
          const ok = out.startsWith('PASS');
          return { ok, text: ok ? out.trim() : `${out.trim()}\n--- log ---\n${tailOf(logFile)}` };
        }
        if (!isAlive(pid)) {
          // Grace period: the rename may land just after the exit we saw.
          goneSince ??= Date.now();
          if (Date.now() - goneSince > 200) return { ok: false, text: `subject ${pid} died without a result\n--- log ---\n${tailOf(logFile)}` };
        }
        if (Date.now() > deadline) {
          return { ok: false, text: `timeout after ${timeoutMs} ms waiting for ${outFile}\n--- log ---\n${tailOf(logFile)}` };
        }
        await sleep(10);
      }
    },
    cleanup(): void {
      kill();
      if (opts.workDir === undefined) rmSync(workDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    const ready = readIfExists(`${outFile}.ready`);
    if (ready !== undefined && opts.launcher === true && /^[0-9]+$/.test(ready.trim())) {
      pid = Number(ready.trim());
      subject.pid = pid;
      return subject;
    }
    if (ready !== undefined && ready.trim() === String(pid)) return subject;
    if (exited !== undefined || Date.now() > deadline) {
      const why = exited ?? `not ready after ${opts.readyTimeoutMs ?? 10_000} ms`;
      subject.kill();
      throw new Error(`subject ${name} (pid ${pid}) ${why}\n--- log ---\n${tailOf(logFile)}`);
    }
    await sleep(10);
  }
}

/** The bytes subject_fill(p, len, seed) writes (test/subjects/lib/subject.c, xorshift64*): a subject's seeded data as it must be. */
export function subjectFill(len: number, seed: bigint): Buffer {
  const mask = (1n << 64n) - 1n;
  let s = seed === 0n ? 1n : seed;
  const rand = (): bigint => {
    let x = s;
    x ^= x >> 12n;
    x = (x ^ (x << 25n)) & mask;
    x ^= x >> 27n;
    s = x;
    return (x * 0x2545f4914f6cdd1dn) & mask;
  };
  const b = Buffer.alloc(len);
  let i = 0;
  for (; i + 8 <= len; i += 8) b.writeBigUInt64LE(rand(), i);
  for (; i < len; i++) b[i] = Number(rand() & 0xffn);
  return b;
}

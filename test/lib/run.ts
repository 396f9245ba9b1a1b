/** Run our own CLIs (bin/criu-ts, bin/crit-ts) as a user would, from the repo root. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './subjects.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

export function runCli(bin: 'criu-ts' | 'crit-ts', args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const root = repoRoot();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', bin), ...args], {
      cwd: opts.cwd ?? root,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString() + (timedOut ? `\n[runCli: killed after ${opts.timeoutMs ?? 60_000} ms]` : '');
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr });
    });
    child.stdin.on('error', () => { /* the CLI may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** A CLI run that failed as a user must see it: exit 1, one line on stderr matching `re`, nothing that looks like a stack frame. */
export function oneLineFailure(r: CliResult, re: RegExp, what = ''): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const at = what === '' ? '' : `${what}: `;
  assert.equal(r.code, 1, `${at}exit status (stderr: ${r.stderr})`);
  assert.equal(lines.length, 1, `${at}one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0] ?? '', re);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

/** Run `body` with CRIU_TS_FAULT set to `value` (src/fault.ts) for the criu-ts runs it starts. */
export async function withFault<T>(value: string, body: () => Promise<T>): Promise<T> {
  process.env['CRIU_TS_FAULT'] = value;
  try {
    return await body();
  } finally {
    delete process.env['CRIU_TS_FAULT'];
  }
}

/**
 * Shared pieces of the end-to-end checkpoint/restore tests: plain C programs
 * (not on the subject library, as a user would write them), process hygiene
 * for a test process that becomes the parent of restored tasks, and waits
 * that poll with generous deadlines instead of sleeping fixed times.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readImage } from '../../src/images/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { isAlive, repoRoot, startSubject, type StartOptions, type Subject } from './subjects.js';
import { __WALL, WNOHANG, setChildSubreaper, waitPid } from '../../src/sys/index.js';
import { closeInheritedFds } from './inherited-fds.js';

export { closeInheritedFds };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The restore stub's command line (src/restore/stub.ts): a leftover one is a leak. */
const STUB_ARGV = /^(\/usr)?\/bin\/sleep\u00001000000\u0000?$/;

/**
 * Make this test process the reaper of its orphans, as a restore does
 * anyway: a detached restored task or a shell's background job then
 * becomes our child, so we can reap it (no zombie keeps its pid taken) and
 * see any helper a failed restore would have left behind.
 */
export function becomeSubreaper(): void {
  setChildSubreaper(true);
}

function statField(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Reap pid if it is a zombie child of ours; true when it is gone. */
export function reapIfOurs(pid: number): boolean {
  const st = statField(pid);
  if (st === undefined) return true;
  if (st.ppid !== process.pid || st.state !== 'Z') return false;
  try {
    waitPid(pid, WNOHANG | __WALL);
  } catch {
    // libuv may have reaped it first
  }
  return statField(pid) === undefined;
}

/** Wait until /proc/PID is gone (reaping it when it is ours); false on timeout. */
export async function waitGone(pid: number, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (reapIfOurs(pid)) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

/** Every pid of a dumped tree (pstree.img), root first. */
export function dumpedPids(imagesDir: string): number[] {
  return readImage(join(imagesDir, 'pstree.img')).entries.map((e) => Number(e['pid']));
}

/** After a dump: wait until every task of the tree is gone (children of a killed root become ours to reap). */
export async function waitTreeGone(imagesDir: string, timeoutMs = 15_000): Promise<number[]> {
  const left: number[] = [];
  for (const pid of dumpedPids(imagesDir)) if (!(await waitGone(pid, timeoutMs))) left.push(pid);
  return left;
}

/** SIGKILL pid if it still exists, then wait for it to vanish. */
export async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await waitGone(pid, 5000);
}

/** A subject's end: killSubject, then `dir` removed. */
export async function finishSubject(s: Subject | undefined, dir: string): Promise<void> {
  await killSubject(s);
  removeDir(dir);
}

/** Whether CRIU's crit is on PATH (checks that decode our images with it run only then). */
export function hasCrit(): boolean {
  return spawnSync('crit', ['-h'], { stdio: 'ignore' }).status === 0;
}

/** Restore stubs (`sleep 1000000`) that are our children: a failed restore must leave none. */
export function strayStubs(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = statField(pid);
    if (st === undefined || st.ppid !== process.pid) continue;
    try {
      if (STUB_ARGV.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'))) out.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Every child of ours (by ppid, zombies too): compared before and after a restore, nothing new may stay. */
export function childrenOfUs(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && statField(pid)?.ppid === process.pid) out.push(pid);
  }
  return out;
}

/** The children of `pid`'s main thread, as /proc lists them; none once it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter((x) => x !== '').map(Number);
  } catch {
    return [];
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(`/tmp/criu-ts-${prefix}-`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Compile test/e2e/programs/NAME.c with plain gcc (no subject library) into build/e2e/; cached by mtime. */
export function buildProgram(name: string): string {
  const root = repoRoot();
  const src = join(root, 'test', 'e2e', 'programs', `${name}.c`);
  const outDir = join(root, 'build', 'e2e');
  mkdirSync(outDir, { recursive: true });
  const exe = join(outDir, name);
  if (existsSync(exe) && statSync(exe).mtimeMs >= statSync(src).mtimeMs) return exe;
  // Private name, then rename: a concurrent run never executes a half-written file.
  const tmp = `${exe}.tmp.${process.pid}`;
  try {
    execFileSync('gcc', ['-O1', '-Wall', '-o', tmp, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as { stderr?: Buffer };
    throw new Error(`gcc failed on ${src}:\n${err.stderr?.toString() ?? String(e)}`);
  }
  renameSync(tmp, exe);
  return exe;
}

/**
 * Wait until `pid` has exec'd a `sleep` (a process a test started as
 * `unshare ... sleep N`) and `also(pid)` holds (say: it is in a namespace of
 * its own by then); false on timeout.
 */
export async function waitSleeping(pid: number, also: (pid: number) => boolean = () => true, timeoutMs = 2000): Promise<boolean> {
  return waitFor(() => {
    try {
      return readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep') && also(pid);
    } catch {
      return false; // not exec'd yet
    }
  }, timeoutMs);
}

/** Image files of a dump dir (*.img, stats-*) with their permission bits. */
export function imageModes(dir: string): { name: string; mode: number }[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.img') || n.startsWith('stats-'))
    .map((name) => ({ name, mode: statSync(join(dir, name)).mode & 0o7777 }));
}

/** Wait until predicate() holds; false on timeout. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

/** Target of /proc/PID/fd/N, or undefined. */
export function fdTarget(pid: number, fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/**
 * The harness every e2e file sets up: close inherited fds, become a child
 * subreaper (restored roots become our children), and check at the end
 * that no restore stub was left behind.
 */
export function useE2eHarness(): void {
  before(() => {
    closeInheritedFds();
    becomeSubreaper();
  });
  after(() => {
    assert.deepEqual(strayStubs(), [], 'restore stubs left behind');
  });
}

/**
 * A test file that starts subjects and makes dirs as it goes: the usual
 * harness (no inherited fds, we are the subreaper) and, after the file,
 * every subject pushed killed and cleaned up and every dir removed.
 */
export function useSubjectCleanup(): { subjects: Subject[]; dirs: string[] } {
  const subjects: Subject[] = [];
  const dirs: string[] = [];
  before(() => {
    closeInheritedFds();
    becomeSubreaper();
  });
  after(async () => {
    for (const s of subjects) await killSubject(s);
    for (const d of dirs) removeDir(d);
  });
  return { subjects, dirs };
}

/**
 * What is left of a subject, gone: its process group killed (the children
 * of multi-process subjects, restored or not), the subject itself killed
 * and reaped, its work dir removed. For a `finally` after any test step.
 */
export async function killSubject(s: Subject | undefined): Promise<void> {
  if (s === undefined) return;
  try {
    process.kill(-s.pid, 'SIGKILL');
  } catch {
    // group gone
  }
  await killAndWait(s.pid);
  s.cleanup();
}

/**
 * Runs `body` with subject `name` (started with `args`, given 50 ms to
 * settle) and a temporary dir; whatever happens, the subject and what it
 * forked are killed (killSubject) and the dir removed.
 */
export async function withSubject(name: string, args: string[], prefix: string, body: (s: Subject, dir: string) => Promise<void>, opts: StartOptions = {}): Promise<void> {
  const dir = tempDir(prefix);
  let s: Subject | undefined;
  try {
    const started = await startSubject(name, args, opts);
    s = started;
    await sleep(50);
    await body(started, dir);
  } finally {
    await finishSubject(s, dir);
  }
}

/** A restored subject runs at its own pid and, on SIGTERM, finds its state whole (PASS). */
export async function passesAfterRestore(s: Subject): Promise<void> {
  assert.ok(isAlive(s.pid), `restored ${s.pid} is not running`);
  const res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);
}

/** `p` fails with a CriuTsError of `code` whose message is one line matching `re` (what a user is shown). */
export async function rejectsOneLine(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCriuTsError(e), String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

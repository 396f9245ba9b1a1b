/**
 * `dump --lazy-pages` (CRIU's lazy migration, issue 14 point 1 / issue 15
 * point 4): the dump writes every image but the pages of private anonymous
 * memory (PE_LAZY entries, no data), keeps the tree frozen, and serves those
 * pages from it on --address/--port to a `lazy-pages --page-server`
 * daemon; the tree goes only once the daemon has them all (CLOSE).
 *
 * One machine stands for two: the subject runs as pid 1 of a pid namespace
 * of its own (`unshare --pid --fork`), so its restore (into a new one)
 * does not collide with the original, still frozen at its pid. The images
 * are copied to another directory, as to another host. Covered: the
 * restored task checks every page of a 32 MiB region and its pid inside;
 * stats-dump counts the pages left lazy and pages-*.img holds only the
 * others; a plain restore of such images is refused with one line; a
 * daemon that goes away before it has every page fails the dump and
 * leaves the original running (it still passes its own check); the dump
 * killed (SIGKILL, SIGTERM, SIGINT) while it serves from the frozen tree,
 * with a daemon connected or not, leaves the original as before.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildSubject, isAlive, repoRoot, tailOf } from '../lib/subjects.js';
import { readImage } from '../../src/images/index.js';
import { killAndWait, removeDir, tempDir, useE2eHarness, waitFor, waitGone } from './helpers.js';
import { which } from './containers.js';
import { settled, snapshot } from '../lib/kill-walk.js';

useE2eHarness();

const unshare = which('unshare', ['/usr/bin/unshare', '/bin/unshare']);
const skip = unshare === undefined ? 'unshare is not installed (util-linux)' : false;
const CRIU_TS = join(repoRoot(), 'bin', 'criu-ts');
const cleanups: (() => Promise<void> | void)[] = [];

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Started { pid: number; dir: string; outFile: string; logFile: string }

/** big-memory as pid 1 of a new pid namespace; its pid here. */
async function startInPidNs(mib: number): Promise<Started> {
  const exe = buildSubject('big-memory');
  const dir = tempDir('lazy-migrate');
  const outFile = join(dir, 'out');
  const logFile = join(dir, 'subject.log');
  const u = spawn(unshare as string, ['--pid', '--fork', exe, '--out', outFile, '--mib', String(mib)], {
    detached: true, stdio: ['ignore', 'ignore', 'ignore'],
  });
  u.unref();
  assert.ok(await waitFor(() => existsSync(`${outFile}.ready`), 20_000), 'the subject did not start');
  const kids = readFileSync(`/proc/${u.pid}/task/${u.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const pid = kids[0] as number;
  const s = { pid, dir, outFile, logFile };
  cleanups.push(async () => {
    await killAndWait(s.pid);
    if (u.pid !== undefined) await killAndWait(u.pid);
    removeDir(dir);
  });
  return s;
}

function nsPid(pid: number): string {
  return /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim() ?? '';
}

/** SIGTERM, then the subject's verdict. */
async function verdict(pid: number, outFile: string): Promise<string> {
  process.kill(pid, 'SIGTERM');
  await waitFor(() => existsSync(outFile) && /^(PASS|FAIL)/.test(readFileSync(outFile, 'utf8')), 30_000);
  return existsSync(outFile) ? readFileSync(outFile, 'utf8').trim() : '(no result)';
}

type Proc = { exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>; kill: (sig: NodeJS.Signals) => void };

function run(args: string[], extraFd?: boolean): Proc & { ready?: Promise<boolean> } {
  const p = spawn(process.execPath, [CRIU_TS, ...args], { stdio: ['ignore', 'ignore', 'pipe', ...(extraFd ? ['pipe' as const] : [])] });
  let stderr = '';
  p.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => p.on('close', (code, signal) => res({ code, signal, stderr })));
  const kill = (sig: NodeJS.Signals): void => { p.kill(sig); };
  if (!extraFd) return { exit, kill };
  // --status-fd 3: one zero byte once the page server listens.
  const ready = new Promise<boolean>((res) => {
    const s = p.stdio[3] as NodeJS.ReadableStream;
    s.once('data', (b: Buffer) => res(b[0] === 0));
    s.once('end', () => res(false));
  });
  return { exit, ready, kill };
}

function portOf(log: string): number {
  const m = /the page server listens on port (\d+)/.exec(readFileSync(log, 'utf8'));
  assert.ok(m?.[1], `no port in ${log}`);
  return Number(m[1]);
}

test('dump --lazy-pages serves the frozen task\'s pages to lazy-pages --page-server; the restored copy checks every page', { skip, timeout: 180_000 }, async () => {
  const s = await startInPidNs(32);
  const src = join(s.dir, 'src');
  const dst = join(s.dir, 'dst');
  mkdirSync(src);
  mkdirSync(dst);
  const dlog = join(s.dir, 'dump.log');
  const d = run(['dump', '-t', String(s.pid), '-D', src, '--lazy-pages', '--address', '127.0.0.1', '--port', '0', '--status-fd', '3', '-v4', '-o', dlog], true);
  assert.equal(await d.ready, true, `no status byte: ${tailOf(dlog)}`);
  // The images are complete; the task waits, frozen, with its memory.
  assert.ok(isAlive(s.pid), 'the dumped task is still there');
  assert.match(readFileSync(`/proc/${s.pid}/stat`, 'latin1'), /\) t /, 'the dumped task stays stopped while its pages are served');
  const st = readImage(join(src, 'stats-dump')).entries[0] as { dump: { pages_lazy: bigint; pages_written: bigint } };
  assert.ok(st.dump.pages_lazy >= 8192n, `stats-dump: pages_lazy ${st.dump.pages_lazy}`);
  const pagesBytes = readdirSync(src).filter((f) => f.startsWith('pages-')).reduce((n, f) => n + statSync(join(src, f)).size, 0);
  assert.equal(pagesBytes, Number(st.dump.pages_written) * 4096, 'pages-*.img hold exactly the pages written, none of the lazy ones');
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dst, f));
  // Without the dump's page server, such images do not restore: one line, nothing left behind.
  const plain = run(['restore', '-D', dst, '-d']);
  const pr = await plain.exit;
  assert.equal(pr.code, 1);
  assert.match(pr.stderr.trim(), /in no image: a dump --lazy-pages served them/);
  assert.equal(pr.stderr.trim().split('\n').length, 1, pr.stderr);
  // The destination: the daemon asks the source's dump for the pages.
  const port = portOf(dlog);
  const lp = run(['lazy-pages', '-D', dst, '--page-server', '--address', '127.0.0.1', '--port', String(port), '-v4', '-o', join(s.dir, 'lp.log')]);
  const pidfile = join(s.dir, 'restored.pid');
  const r = run(['restore', '-D', dst, '-d', '--lazy-pages', '--pidfile', pidfile, '-v4', '-o', join(s.dir, 'restore.log')]);
  const rr = await r.exit;
  assert.equal(rr.code, 0, rr.stderr + tailOf(join(dst, 'restore.log')));
  const restored = Number(readFileSync(pidfile, 'utf8'));
  cleanups.push(() => killAndWait(restored));
  assert.notEqual(restored, s.pid);
  assert.match(nsPid(restored), /\s1$/, 'the restored task is pid 1 of its pid namespace again');
  const le = await lp.exit;
  assert.equal(le.code, 0, le.stderr + tailOf(join(s.dir, 'lp.log')));
  // Every page sent: the dump ends, and the original goes (as after any dump).
  const de = await d.exit;
  assert.equal(de.code, 0, de.stderr + tailOf(dlog));
  assert.ok(await waitGone(s.pid), 'the original is gone once its pages are served');
  assert.match(readFileSync(dlog, 'utf8'), /lazy pages: (\d+) page\(s\) served/);
  const served = Number(/lazy pages: (\d+) page\(s\) served/.exec(readFileSync(dlog, 'utf8'))?.[1]);
  assert.ok(served >= 8192, `the 32 MiB region was served (${served} pages)`);
  assert.equal(await verdict(restored, s.outFile), 'PASS');
});

test('dump --lazy-pages: a daemon that goes away before it has every page fails the dump; the original runs on', { skip, timeout: 120_000 }, async () => {
  const s = await startInPidNs(8);
  const src = join(s.dir, 'src');
  mkdirSync(src);
  const dlog = join(s.dir, 'dump.log');
  const d = run(['dump', '-t', String(s.pid), '-D', src, '--lazy-pages', '--address', '127.0.0.1', '--port', '0', '--status-fd', '3', '-v4', '-o', dlog], true);
  assert.equal(await d.ready, true, `no status byte: ${tailOf(dlog)}`);
  // A "daemon" that connects and hangs up without asking for anything.
  await new Promise<void>((res, rej) => {
    const c = connect(portOf(dlog), '127.0.0.1', () => {
      c.end();
      res();
    });
    c.on('error', rej);
  });
  const de = await d.exit;
  assert.equal(de.code, 1);
  assert.match(de.stderr.trim(), /the lazy-pages daemon went away after 0 page\(s\), before it had every page/);
  assert.ok(await waitFor(() => !/\) t /.test(readFileSync(`/proc/${s.pid}/stat`, 'latin1'))), 'the original runs again');
  assert.equal(await verdict(s.pid, s.outFile), 'PASS');
});

test('dump --lazy-pages killed while it serves from the frozen tree (SIGKILL, SIGTERM, SIGINT): the original runs on as before, untraced', { skip, timeout: 180_000 }, async () => {
  const s = await startInPidNs(8);
  const before = snapshot(s.pid);
  for (const [i, sig] of (['SIGKILL', 'SIGTERM', 'SIGINT'] as const).entries()) {
    const src = join(s.dir, `src${i}`);
    mkdirSync(src);
    const dlog = join(s.dir, `dump${i}.log`);
    const d = run(['dump', '-t', String(s.pid), '-D', src, '--lazy-pages', '--address', '127.0.0.1', '--port', '0', '--status-fd', '3', '-v4', '-o', dlog], true);
    assert.equal(await d.ready, true, `no status byte: ${tailOf(dlog)}`);
    assert.match(readFileSync(`/proc/${s.pid}/stat`, 'latin1'), /\) t /, 'frozen while it serves');
    // The second time a daemon is connected (it asks for nothing yet).
    const c = i === 1 ? connect(portOf(dlog), '127.0.0.1') : undefined;
    c?.on('error', () => undefined);
    if (c) await new Promise<void>((res) => c.once('connect', () => res()));
    d.kill(sig);
    const de = await d.exit;
    c?.destroy();
    assert.equal(de.signal, sig, de.stderr);
    assert.match(de.stderr, /criu-ts: interrupted; 1 dumped task\(s\) put back as they were/, de.stderr);
    assert.equal(await settled(s.pid, before), before, `${sig}: TracerPid, SigBlk or maps changed`);
    assert.ok(await waitFor(() => !/\) t /.test(readFileSync(`/proc/${s.pid}/stat`, 'latin1'))), `${sig}: the original runs again`);
  }
  assert.equal(await verdict(s.pid, s.outFile), 'PASS');
});

/**
 * The RPC service and unprivileged callers (docs/security.md). A real
 * unprivileged user (nobody) runs pycriu against `criu-ts service`:
 * - the default socket (0600) does not even let it connect;
 * - on a socket shared on purpose (--socket-mode 0666) it may dump and
 *   restore its own process, into and from its own directory (a
 *   pages-1.img it planted there first is replaced, not written through);
 * - it is refused with EPERM, and nothing happens to the target, when it
 *   asks for a root process, for a directory it cannot write, or for the
 *   restore of images of a root process.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { killAndWait, removeDir, tempDir, useSubjectCleanup, waitFor, waitGone } from '../lib/harness.js';
import { parseStatus } from '../../src/proc/index.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = join(repoRoot(), 'test', 'rpc', 'pycriu-client.py');
const BINARY = join(repoRoot(), 'bin', 'criu-ts');
const NOBODY = 65534;

function missing(): string | false {
  try {
    execFileSync(PYTHON, ['-c', 'import pycriu'], { stdio: 'ignore' });
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${PYTHON} cannot import pycriu (apt-get install criu), or setpriv is missing`;
  }
}
const skip = missing();

type Line = Record<string, unknown>;
interface Run { code: number; lines: Line[]; stderr: string }

/** pycriu as nobody (real, effective and saved ids, no groups). */
function asNobody(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', PYTHON, CLIENT, ...args, '--binary', BINARY],
      { timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        const lines = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line);
        resolve({ code, lines, stderr });
      });
  });
}

const tracerOf = (pid: number): number => parseStatus(pid).tracerPid;

const services: ChildProcess[] = [];
after(() => {
  for (const s of services) s.kill('SIGKILL');
});
const { subjects, dirs } = useSubjectCleanup();

async function startService(extra: string[]): Promise<string> {
  const dir = tempDir('rpc-sec');
  dirs.push(dir);
  const address = join(dir, 'criu.sock');
  const pidfile = join(dir, 'service.pid');
  const svc = spawn(process.execPath, [BINARY, 'service', '--address', address, '--pidfile', pidfile, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  services.push(svc);
  assert.ok(await waitFor(() => existsSync(pidfile), 10_000), 'service started');
  // The socket's directory must be reachable for nobody.
  execFileSync('chmod', ['0755', dir]);
  return address;
}

/** A directory owned by nobody. */
function nobodysDir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  chownSync(d, NOBODY, NOBODY);
  return d;
}

test('default service socket is 0600: an unprivileged user cannot connect', { skip, timeout: 60_000 }, async () => {
  const address = await startService([]);
  assert.equal(statSync(address).mode & 0o777, 0o600);
  const r = await asNobody(['dump', '--address', address, '--dir', nobodysDir('img'), '--pid', '1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Permission denied|EACCES|Errno 13/);
});

test('an unprivileged caller: refused for what it could not do itself, served for its own process', { skip, timeout: 180_000 }, async () => {
  const address = await startService(['--socket-mode', '0666']);
  assert.equal(statSync(address).mode & 0o777, 0o666);

  // A root process: refused before it is touched.
  const rootSubject = await startSubject('counter-loop');
  subjects.push(rootSubject);
  const mine = nobodysDir('img');
  let r = await asNobody(['dump', '--address', address, '--dir', mine, '--pid', String(rootSubject.pid)]);
  assert.equal(r.lines[0]?.['success'], false, JSON.stringify(r));
  assert.equal(r.lines[0]?.['cr_errno'], 1, 'EPERM');
  assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), /may not dump it: its uids are 0\/0\/0/);
  assert.ok(isAlive(rootSubject.pid), 'the root process runs on');
  assert.equal(tracerOf(rootSubject.pid), 0, 'and is not traced');
  assert.deepEqual(readdirSync(mine).filter((n) => n.endsWith('.img')), [], 'no image written');

  // Its own process that made itself non-dumpable (PR_SET_DUMPABLE 0): nobody could ptrace it, so neither may we for it.
  const sealed = spawn('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', PYTHON, '-c',
    'import ctypes, sys, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); print("ready", flush=True); time.sleep(120)'],
  { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  await new Promise((res2) => sealed.stdout?.once('data', res2));
  try {
    r = await asNobody(['dump', '--address', address, '--dir', mine, '--pid', String(sealed.pid), '--leave-running']);
    assert.equal(r.lines[0]?.['cr_errno'], 1, JSON.stringify(r));
    assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), /not dumpable/);
    assert.ok(isAlive(sealed.pid ?? -1) && tracerOf(sealed.pid ?? -1) === 0, 'non-dumpable process untouched');
  } finally {
    sealed.kill('SIGKILL');
  }

  // Its own process, into a directory it cannot write: refused, untouched.
  const own = await startSubject('counter-loop', [], { uid: NOBODY, gid: NOBODY });
  subjects.push(own);
  const rootsDir = tempDir('root-img');
  dirs.push(rootsDir);
  execFileSync('chmod', ['0755', rootsDir]); // nobody may open it, not write to it
  r = await asNobody(['dump', '--address', address, '--dir', rootsDir, '--pid', String(own.pid)]);
  assert.equal(r.lines[0]?.['cr_errno'], 1, JSON.stringify(r));
  assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), /may not write to the images directory/);
  assert.ok(isAlive(own.pid) && tracerOf(own.pid) === 0, 'own process untouched');

  // Its own process into its own directory, where it planted a pages-1.img of its own first.
  writeFileSync(join(mine, 'pages-1.img'), 'planted by the user');
  chownSync(join(mine, 'pages-1.img'), NOBODY, NOBODY);
  r = await asNobody(['dump', '--address', address, '--dir', mine, '--pid', String(own.pid), '--log-file', 'dump.log']);
  assert.equal(r.lines[0]?.['success'], true, JSON.stringify(r));
  assert.ok(await waitGone(own.pid), 'dumped (and killed, without leave_running)');
  const pages = statSync(join(mine, 'pages-1.img'));
  assert.equal(pages.uid, 0, 'pages-1.img is a new file of root, not the user file written through');
  assert.equal(pages.mode & 0o777, 0o600);
  assert.notEqual(readFileSync(join(mine, 'pages-1.img')).subarray(0, 19).toString(), 'planted by the user');

  // And restores it: its own credentials only.
  r = await asNobody(['restore', '--address', address, '--dir', mine]);
  assert.equal(r.lines[0]?.['success'], true, JSON.stringify(r));
  assert.equal(r.lines[0]?.['pid'], own.pid);
  const status = readFileSync(`/proc/${own.pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  assert.match(status, /^CapEff:\s+0+$/m);
  const res = await own.terminateAndResult();
  assert.ok(res.ok, res.text);

  // Images of a root process (dumped by root, handed over): refused, nothing created.
  const rootImages = nobodysDir('root-dump');
  const d = spawn(process.execPath, [BINARY, 'dump', '-t', String(rootSubject.pid), '-D', rootImages], { stdio: 'ignore' });
  await new Promise((res2) => d.on('exit', res2));
  assert.ok(await waitGone(rootSubject.pid), 'root subject dumped by root');
  r = await asNobody(['restore', '--address', address, '--dir', rootImages]);
  assert.equal(r.lines[0]?.['success'], false, JSON.stringify(r));
  assert.equal(r.lines[0]?.['cr_errno'], 1, 'EPERM');
  assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), /would run as uids 0\/0\/0\/0/);
  assert.equal(isAlive(rootSubject.pid), false, 'nothing restored');
});

test('an unprivileged caller: its own process in a uts namespace of its own is refused at dump, and such images at restore', { skip, timeout: 120_000 }, async () => {
  const address = await startService(['--socket-mode', '0666']);
  // Started in a new uts namespace by root, then running as nobody (dumpable again after its exec).
  // Its output goes to a file: a pipe to us would be a socket outside the tree.
  const outDir = nobodysDir('uts-out');
  const out = openSync(join(outDir, 'out'), 'w');
  const own = spawn('unshare', ['--uts', 'setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', PYTHON, '-c',
    'import time; print("ready", flush=True); time.sleep(120)'], { stdio: ['ignore', out, 'ignore'], detached: true });
  closeSync(out);
  assert.ok(await waitFor(() => readFileSync(join(outDir, 'out'), 'utf8').includes('ready'), 10_000), 'started');
  const pid = own.pid as number;
  try {
    const mine = nobodysDir('img-uts');
    let r = await asNobody(['dump', '--address', address, '--dir', mine, '--pid', String(pid), '--leave-running']);
    assert.equal(r.lines[0]?.['cr_errno'], 1, JSON.stringify(r));
    assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), new RegExp(`task ${pid}: uid ${NOBODY} may not dump it: it is in a uts namespace of its own`));
    assert.ok(isAlive(pid) && tracerOf(pid) === 0, 'untouched');

    // Dumped by root and handed over: re-creating the namespace is not the caller's to ask.
    const d = spawnSync(process.execPath, [BINARY, 'dump', '-t', String(pid), '-D', mine], { encoding: 'utf8' });
    assert.equal(d.status, 0, d.stderr);
    assert.ok(await waitGone(pid), 'dumped by root');
    r = await asNobody(['restore', '--address', address, '--dir', mine]);
    assert.equal(r.lines[0]?.['cr_errno'], 1, JSON.stringify(r));
    assert.match(String((r.lines[0]?.['resp'] as Line | undefined)?.['cr_errmsg']), new RegExp(`not restored for an unprivileged caller: task ${pid} was in a uts namespace of its own`));
    assert.equal(isAlive(pid), false, 'nothing restored');
  } finally {
    own.kill('SIGKILL');
    // Its exit is not this file's to wait for (it was dumped and killed by another process): never keep the test alive for it.
    own.unref();
  }
});

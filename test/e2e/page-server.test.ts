/**
 * The page server (issue 15, point 3): `criu-ts page-server` receives a
 * dump's pagemaps and pages over TCP (CRIU's protocol) while `criu-ts dump
 * --page-server` writes every other image locally; the two directories
 * together restore the subject, verified. Also: a dump whose page server
 * does not answer fails before the tree is touched; a transfer cut short
 * leaves no file on the server; -d with --pidfile; and, with CRIU_BIN, both
 * directions of interoperation with CRIU 4.2 (its page server receiving
 * ours, its dump sending to ours).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import { startPageServer } from '../lib/page-server.js';
import { runCli } from '../lib/run.js';
import { removeDir, tempDir, useSubjectCleanup, waitTreeGone } from './helpers.js';

const CRIU = process.env['CRIU_BIN'];
const noCriu = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;

const { subjects, dirs } = useSubjectCleanup();

function dir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** `criu-ts dump -t PID -D local --page-server` to a page server of ours writing into `remote`: both end well, the tree is gone. */
async function dumpToPageServer(pid: number, local: string, remote: string): Promise<void> {
  const ps = await startPageServer(remote);
  const d = await runCli('criu-ts', ['dump', '-t', String(pid), '-D', local, '--page-server', '--address', '127.0.0.1', '--port', String(ps.port)]);
  assert.equal(d.code, 0, d.stderr);
  const served = await ps.exit;
  assert.equal(served.code, 0, served.stderr);
  assert.deepEqual(await waitTreeGone(local), []);
}

test('dump --page-server: pages go to criu-ts page-server, the rest stays local; together they restore (verified)', { timeout: 120_000 }, async () => {
  const s = await startSubject('shmem-child-writes');
  subjects.push(s);
  await new Promise((r) => setTimeout(r, 100));
  const local = dir('ps-local');
  const remote = dir('ps-remote');
  await dumpToPageServer(s.pid, local, remote);
  assert.ok(!readdirSync(local).some((f) => f.startsWith('pagemap-') || f.startsWith('pages-')), 'no pagemap or pages image in the dump dir');
  const got = readdirSync(remote);
  assert.ok(got.some((f) => /^pagemap-\d+\.img$/.test(f)), `task pagemaps on the server: ${got.join(' ')}`);
  assert.ok(got.some((f) => /^pagemap-shmem-\d+\.img$/.test(f)), `the shared memory's pagemap on the server: ${got.join(' ')}`);
  assert.ok(got.some((f) => f === 'pages-65537.img'), 'pages ids from 0x10001, as CRIU');
  for (const f of got) cpSync(join(remote, f), join(local, f));
  const r = await runCli('criu-ts', ['restore', '-d', '-D', local, '--verify']);
  assert.equal(r.code, 0, r.stderr);
  const res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);
});

// A memfd's contents (the memfd kind) and a shared anonymous object mapped
// privately through map_files (zdtm's shmemfd-priv) go to the page server
// too, as CRIU sends them: no pagemap-shmem stays beside the dumper's
// checksums to be replaced by the server's copy in a shared dir (zdtm's way).
for (const [name, shared] of [['memfd', false], ['shmem-private-map', true]] as const) {
  test(`dump --page-server of ${name}${shared ? ' into the directory the page server writes too' : ''}: shared objects' pages on the server only; the restore is right`, { timeout: 120_000 }, async () => {
    const s = await startSubject(name);
    subjects.push(s);
    const local = dir('ps-shm-local');
    const remote = shared ? local : dir('ps-shm-remote');
    await dumpToPageServer(s.pid, local, remote);
    const got = readdirSync(remote);
    assert.ok(got.some((f) => /^pagemap-shmem-\d+\.img$/.test(f)), `shared objects' pagemaps on the server: ${got.join(' ')}`);
    if (!shared) {
      assert.ok(!readdirSync(local).some((f) => f.startsWith('pagemap-') || f.startsWith('pages-')), `no pagemap or pages image in the dump dir: ${readdirSync(local).join(' ')}`);
      for (const f of got) cpSync(join(remote, f), join(local, f));
    }
    const r = await runCli('criu-ts', ['restore', '-d', '-D', local]);
    assert.equal(r.code, 0, r.stderr);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
}

test('dump --page-server to a port nobody serves fails before the tree is touched', { timeout: 60_000 }, async () => {
  const s = await startSubject('counter-loop');
  subjects.push(s);
  const port = await freePort();
  const local = dir('ps-none');
  const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', local, '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
  assert.equal(d.code, 1);
  assert.match(d.stderr.trim(), /^Error.*cannot connect to the page server at 127\.0\.0\.1:\d+/);
  assert.equal(d.stderr.trim().split('\n').length, 1, d.stderr);
  assert.ok(isAlive(s.pid));
  assert.match(readFileSync(`/proc/${s.pid}/status`, 'latin1'), /\nTracerPid:\s+0\n/);
  const res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);
});

test('a transfer cut short (no CLOSE) leaves nothing on the page server, which says so', { timeout: 60_000 }, async () => {
  const remote = dir('ps-cut');
  const ps = await startPageServer(remote);
  await new Promise<void>((res) => {
    const c = connect(ps.port, '127.0.0.1', () => {
      // OPEN2 for pagemap-4242.img, then one entry of one page whose bytes never come.
      const open = Buffer.alloc(32);
      open.writeUInt32LE(4, 0);
      open.writeBigUInt64LE((4242n << 8n) | 1n, 24);
      const add = Buffer.alloc(32);
      add.writeUInt32LE((4 << 16) | 6, 0);
      add.writeBigUInt64LE(1n, 8);
      add.writeBigUInt64LE(0x10000n, 16);
      add.writeBigUInt64LE((4242n << 8n) | 1n, 24);
      c.write(Buffer.concat([open, add, Buffer.alloc(100)]));
      c.once('data', () => c.destroy());
      c.on('close', () => res());
    });
  });
  const served = await ps.exit;
  assert.equal(served.code, 1);
  assert.match(served.stderr, /went away before every page was sent/);
  assert.deepEqual(readdirSync(remote), [], 'no file left on the server');
});

test('page-server -d --pidfile: the command returns once a detached server listens', { timeout: 60_000 }, async () => {
  const remote = dir('ps-daemon');
  const port = await freePort();
  const pidfile = join(remote, '..', `ps-${process.pid}-${port}.pid`);
  const r = await runCli('criu-ts', ['page-server', '-d', '-D', remote, '--address', '127.0.0.1', '--port', String(port), '--pidfile', pidfile]);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(readFileSync(pidfile, 'utf8'));
  removeDir(pidfile);
  assert.ok(isAlive(pid), 'the daemon serves');
  // It serves one connection: a client that closes at once ends it.
  await new Promise<void>((res) => {
    const c = connect(port, '127.0.0.1', () => c.end());
    c.on('close', () => res());
  });
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((x) => setTimeout(x, 25));
  assert.ok(!isAlive(pid), 'the daemon exits after its connection');
});

test('CRIU 4.2 interoperates: its page server takes our pages, our page server takes its dump', { timeout: 120_000, skip: noCriu }, async () => {
  const criu = CRIU as string;
  // Ours to CRIU's page server.
  let s = await startSubject('counter-loop');
  subjects.push(s);
  let local = dir('ps-x-local');
  let remote = dir('ps-x-remote');
  let port = await freePort();
  // --status-fd: CRIU writes a zero byte once it listens.
  const theirs = spawn(criu, ['page-server', '-D', remote, '--address', '127.0.0.1', '--port', String(port), '--status-fd', '3'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const theirsDone = new Promise<number | null>((res) => theirs.on('close', res));
  await new Promise<void>((res) => {
    const ready = theirs.stdio[3];
    if (ready && 'once' in ready) ready.once('data', () => res());
    else res();
  });
  let d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', local, '--page-server', '--address', '127.0.0.1', '--port', String(port)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(await theirsDone, 0);
  assert.deepEqual(await waitTreeGone(local), []);
  for (const f of readdirSync(remote).filter((x) => x.endsWith('.img'))) cpSync(join(remote, f), join(local, f));
  let r = await runCli('criu-ts', ['restore', '-d', '-D', local, '--verify']);
  assert.equal(r.code, 0, r.stderr);
  let res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);

  // CRIU's dump to ours.
  s = await startSubject('counter-loop');
  subjects.push(s);
  local = dir('ps-y-local');
  remote = dir('ps-y-remote');
  const ps = await startPageServer(remote);
  port = ps.port;
  const cd = spawn(criu, ['dump', '-t', String(s.pid), '-D', local, '--shell-job', '--page-server', '--address', '127.0.0.1', '--port', String(port)], { stdio: 'ignore' });
  assert.equal(await new Promise((res) => cd.on('close', res)), 0, 'CRIU dump');
  assert.equal((await ps.exit).code, 0);
  assert.deepEqual(await waitTreeGone(local), []);
  for (const f of readdirSync(remote)) cpSync(join(remote, f), join(local, f));
  r = await runCli('criu-ts', ['restore', '-d', '--shell-job', '-D', local, '--verify']);
  assert.equal(r.code, 0, r.stderr);
  res = await s.terminateAndResult(30_000);
  assert.ok(res.ok, res.text);
});

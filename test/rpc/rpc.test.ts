/**
 * The RPC service against CRIU's own client library: Debian's pycriu runs
 * `criu-ts swrk FD` through use_binary() (test/rpc/pycriu-client.py), and a
 * raw SOCK_SEQPACKET client talks to `criu-ts service --address`. Real
 * subjects are dumped and restored through RPC and must PASS afterwards.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readImage } from '../../src/images/index.js';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { killAndWait, removeDir, sleep, tempDir, waitFor, waitGone, withSubject } from '../lib/harness.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = join(repoRoot(), 'test', 'rpc', 'pycriu-client.py');
const BINARY = join(repoRoot(), 'bin', 'criu-ts');

type Line = Record<string, unknown>;

function pycriuMissing(): string | false {
  try {
    execFileSync(PYTHON, ['-c', 'import pycriu'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${PYTHON} cannot import pycriu (apt-get install criu)`;
  }
}
const skip = pycriuMissing();

/** Run the client to its end; its JSON lines. */
function client(args: string[], timeoutMs = 60_000): Promise<Line[]> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [CLIENT, ...args, '--binary', BINARY], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`pycriu client ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line));
    });
  });
}

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** The test's frame: the counter-loop subject and an images dir. */
function withCounter(body: (s: Subject, dir: string) => Promise<void>): Promise<void> {
  return withSubject('counter-loop', [], 'rpc', body);
}

test('swrk: VERSION, FEATURE_CHECK, CPUINFO_DUMP and CPUINFO_CHECK, CHECK; NOTIFY out of turn is an invalid request', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('rpc');
  try {
    // VERSION 10, FEATURE_CHECK 9, CPUINFO_DUMP 7, CPUINFO_CHECK 8, NOTIFY 6 out of turn
    const [version, features, ...rest] = await client(['raw', '--types', '10,9,7,8,6', '--dir', dir]);
    assert.deepEqual(version, { type: 'VERSION', success: true, version: { major: 4, minor: 0, name: `criu-ts ${pkgVersion()}`, gitid: '' } });
    assert.equal(features?.['success'], true);
    const f = features?.['features'] as Record<string, boolean>;
    assert.equal(f['mem_track'], true, 'memory tracking: userfaultfd write-protect on this kernel');
    assert.equal(f['lazy_pages'], true, 'lazy pages: userfaultfd with the non-cooperative events on this kernel');
    assert.equal(typeof f['pidfd_store'], 'boolean');
    // The CPU saved into the images dir, then checked against itself.
    assert.deepEqual([rest[0]?.['type'], rest[0]?.['success']], ['CPUINFO_DUMP', true]);
    assert.ok(existsSync(join(dir, 'cpuinfo.img')), 'CPUINFO_DUMP wrote cpuinfo.img');
    assert.deepEqual([rest[1]?.['type'], rest[1]?.['success']], ['CPUINFO_CHECK', true]);
    // CRIU's answer to a request it does not serve: type EMPTY, no success.
    assert.equal(rest[2]?.['type'], 'EMPTY');
    assert.equal(rest[2]?.['success'], false);
    assert.deepEqual(await client(['check']), [{ success: true }]);
  } finally {
    removeDir(dir);
  }
});

function pkgVersion(): string {
  return (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

test('swrk: pycriu dumps the subject, then restores it; it passes', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid), '--log-file', 'dump.log']);
    assert.deepEqual(d, { success: true, restored: false });
    assert.ok(await waitGone(s.pid), 'the dumped subject is killed');
    assert.ok(existsSync(join(dir, 'pstree.img')));
    assert.match(readFileSync(join(dir, 'dump.log'), 'utf8'), /Dumped 1 task/);
    const [r] = await client(['restore', '--dir', dir, '--log-file', 'restore.log']);
    assert.equal(r?.['success'], true);
    assert.equal(r?.['pid'], s.pid, 'same pid as dumped');
    assert.ok(isAlive(s.pid));
    // No rst_sibling and a client that is no subreaper: like CRIU's detached restore, the tree goes up past the client.
    assert.notEqual(r?.['ppid'], r?.['me']);
    assert.ok(existsSync(join(dir, 'restore.log')));
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('swrk: PRE_DUMP, PRE_DUMP on it, DUMP on that, one connection (CRIU\'s pre-dump loop); the restore reads through the chain', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const dirs = ['pre1', 'pre2', 'final'].map((d) => join(dir, d));
    for (const d of dirs) mkdirSync(d);
    const answers = await client(['iterative', '--dirs', dirs.join(','), '--pid', String(s.pid)]);
    assert.deepEqual(answers.map((a) => [a['type'], a['success']]), [['PRE_DUMP', true], ['PRE_DUMP', true], ['DUMP', true]]);
    assert.equal(readlinkSync(join(dir, 'final', 'parent')), '../pre2');
    const st = readImage(join(dir, 'final', 'stats-dump')).entries[0] as { dump?: { pages_skipped_parent?: bigint } };
    assert.ok(Number(st.dump?.pages_skipped_parent ?? 0) > 0, 'the final dump left unchanged pages in the parent images');
    assert.ok(await waitGone(s.pid), 'the dumped subject is killed');
    const [r] = await client(['restore', '--dir', join(dir, 'final')]);
    assert.equal(r?.['success'], true);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('swrk: PAGE_SERVER_CHLD starts a page server (port 0: its own), a DUMP with ps sends it the pages, WAIT_PID sees it end; the dir restores', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [ps, d, w] = await client(['ps-dump', '--dir', dir, '--pid', String(s.pid), '--ps-address', '127.0.0.1', '--ps-port', '0']);
    assert.ok(Number(ps?.['ps_pid']) > 0 && Number(ps?.['ps_port']) > 0, JSON.stringify(ps));
    assert.deepEqual(d, { success: true, restored: false });
    assert.deepEqual(w, { status: 0 }, 'the page server exited 0 after its one dump');
    assert.ok(existsSync(join(dir, `pagemap-${s.pid}.img`)) && existsSync(join(dir, 'pages-65537.img')), 'pages stored by the page server');
    assert.ok(await waitGone(s.pid));
    const [r] = await client(['restore', '--dir', dir]);
    assert.equal(r?.['success'], true);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('swrk: leave_running keeps the subject going; the default log is criu.log in the images dir', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid), '--leave-running']);
    assert.deepEqual(d, { success: true, restored: false });
    assert.ok(isAlive(s.pid));
    assert.ok(existsSync(join(dir, 'criu.log')), 'CRIU writes criu.log when no log_file is named');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('swrk: a dump of a pid that does not exist fails with ESRCH and names the pid', { skip, timeout: 60_000 }, async () => {
  const dir = tempDir('rpc');
  try {
    const [d] = await client(['dump', '--dir', dir, '--pid', '4194000']);
    assert.equal(d?.['success'], false);
    assert.equal(d?.['cr_errno'], 3);
    const resp = d?.['resp'] as Line;
    assert.equal(resp['type'], 'DUMP');
    assert.equal(resp['success'], false);
    assert.match(String(resp['cr_errmsg']), /4194000/);
    // A request without an images directory is "bad options" (EBADRQC), as CRIU answers.
    const [bad] = await client(['dump', '--pid', '4194000']);
    assert.equal(bad?.['cr_errno'], 56);
  } finally {
    removeDir(dir);
  }
});

test('swrk: restore errors: no images has no cr_errno (as CRIU 4.2) and names the image, refused options are EOPNOTSUPP and named', { skip, timeout: 60_000 }, async () => {
  const dir = tempDir('rpc');
  try {
    const [none] = await client(['restore', '--dir', dir]);
    assert.equal(none?.['cr_errno'], 0, 'CRIU 4.2 sends no cr_errno for missing images (pycriu reads 0)');
    assert.match(String((none?.['resp'] as Line)['cr_errmsg']), /inventory\.img/);
    const [refused] = await client(['restore', '--dir', dir, '--unsupported']);
    assert.equal(refused?.['cr_errno'], 95);
    assert.match(String((refused?.['resp'] as Line)['cr_errmsg']), /ps\.fd \(page server socket\), lsm_profile/);
  } finally {
    removeDir(dir);
  }
});

test('notify_scripts: dump and restore notifications in CRIU order, pids where CRIU sends them', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid), '--notify', 'none']);
    assert.equal(d?.['success'], true, JSON.stringify(d));
    assert.deepEqual(d?.['notify'], [
      { script: 'pre-dump', pid: null }, { script: 'network-lock', pid: null }, { script: 'post-dump', pid: null },
    ]);
    assert.ok(await waitGone(s.pid));
    const [r] = await client(['restore', '--dir', dir, '--notify', 'none']);
    assert.equal(r?.['success'], true, JSON.stringify(r));
    assert.equal(r?.['restore_pid'], s.pid);
    assert.deepEqual((r?.['notify'] as Line[]).map((n) => n['script']), [
      'pre-restore', 'setup-namespaces', 'post-setup-namespaces', 'post-restore', 'network-unlock', 'pre-resume', 'post-resume',
    ]);
    for (const n of r?.['notify'] as Line[]) {
      const withPid = n['script'] === 'setup-namespaces' || n['script'] === 'post-restore';
      assert.equal(n['pid'], withPid ? s.pid : null, String(n['script']));
    }
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('notify_scripts: a refused pre-dump aborts the dump and leaves the subject untouched', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid), '--notify', 'pre-dump']);
    assert.equal(d?.['type'], 'DUMP');
    assert.equal(d?.['success'], false);
    assert.equal(d?.['cr_errno'], 125, 'ECANCELED');
    assert.match(String(d?.['cr_errmsg']), /pre-dump/);
    assert.deepEqual(d?.['notify'], [{ script: 'pre-dump', pid: null }]);
    assert.ok(!existsSync(join(dir, 'pstree.img')), 'nothing dumped');
    assert.ok(isAlive(s.pid));
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('notify_scripts: a refused post-restore kills the restored tree and fails the restore', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid)]);
    assert.equal(d?.['success'], true, JSON.stringify(d));
    assert.ok(await waitGone(s.pid));
    const [r] = await client(['restore', '--dir', dir, '--notify', 'post-restore']);
    assert.equal(r?.['success'], false);
    assert.equal(r?.['cr_errno'], 125);
    assert.ok(await waitFor(() => !isAlive(s.pid), 10_000), 'restored tree killed');
  });
});

test('rst_sibling: the restored root is born a child of the client (no subreaper), which reaps it', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid)]);
    assert.equal(d?.['success'], true, JSON.stringify(d));
    assert.ok(await waitGone(s.pid));
    const py = spawn(PYTHON, [CLIENT, 'restore', '--dir', dir, '--rst-sibling', '--wait', '--binary', BINARY], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(py);
    const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
    const first = JSON.parse(String((await lines.next()).value)) as Line;
    assert.equal(first['pid'], s.pid);
    assert.equal(first['ppid'], first['me'], 'the client is the parent of the restored root');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
    const second = JSON.parse(String((await lines.next()).value)) as Line;
    assert.deepEqual(second, { waited: s.pid, status: 0 });
  });
});

test('keep_open: RESTORE, then WAIT_PID on the same connection returns the exit status of the root', { skip, timeout: 120_000 }, async () => {
  await withCounter(async (s, dir) => {
    const [d] = await client(['dump', '--dir', dir, '--pid', String(s.pid)]);
    assert.equal(d?.['success'], true, JSON.stringify(d));
    assert.ok(await waitGone(s.pid));
    const py = spawn(PYTHON, [CLIENT, 'restore-wait', '--dir', dir, '--binary', BINARY], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(py);
    const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
    const first = JSON.parse(String((await lines.next()).value)) as Line;
    assert.deepEqual(first, { type: 'RESTORE', success: true, restore_pid: s.pid });
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
    const second = JSON.parse(String((await lines.next()).value)) as Line;
    assert.deepEqual(second, { status: 0 });
  });
});

test('service --address: VERSION and CHECK on one keep_open connection from a raw SEQPACKET client', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('rpc-service');
  const address = join(dir, 'criu.sock');
  const pidfile = join(dir, 'service.pid');
  const svc = spawn(process.execPath, [BINARY, 'service', '--address', address, '--pidfile', pidfile], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(svc);
  try {
    assert.ok(await waitFor(() => existsSync(pidfile), 10_000), 'service started');
    assert.equal(readFileSync(pidfile, 'utf8'), String(svc.pid));
    // VERSION 10 (keep_open), CHECK 3: then the worker closes the connection.
    const [version, check, eof] = await client(['service', '--address', address, '--types', '10,3']);
    assert.equal(version?.['type'], 'VERSION');
    assert.equal((version?.['version'] as Line)['major'], 4);
    assert.deepEqual(check, { type: 'CHECK', success: true });
    assert.deepEqual(eof, { eof: true });
    // The service carries on: a second client is served too.
    const [again] = await client(['service', '--address', address, '--types', '10']);
    assert.equal(again?.['success'], true);
  } finally {
    svc.kill('SIGTERM');
    await new Promise((r) => (svc.exitCode !== null || svc.signalCode !== null ? r(null) : svc.once('exit', r)));
    removeDir(dir);
  }
});

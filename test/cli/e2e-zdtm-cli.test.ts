/**
 * The command lines CRIU's zdtm.py (and scripts written like it) give criu,
 * run against a real subject: the exact dump/restore argument lists, the
 * "check --feature" query with its odd "-verbosity=0", --action-script
 * (environment and order; a refusing pre-dump script leaves the task
 * running), restore --exec-cmd, and flags zdtm adds that change nothing
 * for us (--auto-dedup, --status-fd, ...).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { isAlive, repoRoot, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone, useE2eHarness, withSubject } from '../lib/harness.js';

useE2eHarness();

/** zdtm's own prefix for every criu call (criu_cli.run plus __criu_act), which it also leaves in DIR/ACTION.cropt. */
function zdtmArgs(action: string, dir: string, extra: string[]): string[] {
  const args = ['--log-file', `${action}.log`, '--images-dir', dir, '--verbosity=4', ...extra];
  if (existsSync(dir)) writeFileSync(join(dir, `${action}.cropt`), `${args.join(' ')}\n`);
  return [action, '--no-default-config', ...args];
}

/** zdtm prints log lines with "Error" or "Warn"; a clean run must have none of the first. */
function noErrorLines(path: string): void {
  const bad = readFileSync(path, 'utf8').split('\n').filter((l) => l.includes('Error'));
  assert.deepEqual(bad, [], `${path} has Error lines`);
}

/** A script that appends "ACTION INIT_PID IMAGE_DIR" to FILE, and fails at the action named `failAt`. */
function recorder(work: string, file: string, failAt = ''): string {
  const path = join(work, 'record.sh');
  writeFileSync(path, [
    '#!/bin/sh',
    `echo "$CRTOOLS_SCRIPT_ACTION \${CRTOOLS_INIT_PID:-none} $CRTOOLS_IMAGE_DIR $PWD" >> ${file}`,
    `[ "$CRTOOLS_SCRIPT_ACTION" != "${failAt}" ]`,
    '',
  ].join('\n'));
  chmodSync(path, 0o755);
  return path;
}

/** The counter-loop subject and a work dir for the length of `body` (test/lib/harness.ts withSubject). */
function withCounter(body: (s: Subject, work: string) => Promise<void>): Promise<void> {
  return withSubject('counter-loop', [], 'e2e-zdtm', body);
}

/** Dump with zdtm's arguments (plus `extra`); the task is gone afterwards. */
async function zdtmDump(s: Subject, dir: string, extra: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const pidfile = join(s.workDir, 'test.pid');
  writeFileSync(pidfile, String(s.pid)); // zdtm passes the test's own (existing) pidfile to dump too
  const args = ['--tree', String(s.pid), '--pidfile', pidfile, ...extra, '--timeout', '10'];
  const d = await runCli('criu-ts', zdtmArgs('dump', dir, args));
  assert.equal(d.code, 0, `dump: ${d.stderr}`);
  assert.ok(await waitGone(s.pid), 'dumped task still there');
}

/** Restore detached with zdtm's arguments; returns the pid read back from the pidfile. */
async function zdtmRestore(dir: string, pidfile: string, extra: string[]): Promise<number> {
  const r = await runCli('criu-ts', zdtmArgs('restore', dir, ['--pidfile', pidfile, ...extra, '--restore-detached']));
  assert.equal(r.code, 0, `restore: ${r.stderr}`);
  return Number(readFileSync(pidfile, 'utf8').trim());
}

test('zdtm feature queries: "-verbosity=0 --feature X" answers by exit status', { timeout: 60_000 }, async () => {
  const ok = await runCli('criu-ts', ['check', '--no-default-config', '-verbosity=0', '--feature', 'clone3_set_tid']);
  assert.equal(ok.code, 0, ok.stderr);
  const unknown = await runCli('criu-ts', ['check', '--no-default-config', '-verbosity=0', '--feature', 'no_such_feature']);
  assert.equal(unknown.code, 1);
});

test('zdtm-style dump and restore, twice (--iters 2), with the flags zdtm adds', { timeout: 180_000 }, async () => {
  await withCounter(async (s, work) => {
    for (const iter of [1, 2]) {
      const dir = join(work, 'dump', String(iter));
      // --auto-dedup (--dedup), --manage-cgroups (freezer runs; the subject is in our cgroups), desc opts: all accepted, none changes the result.
      await zdtmDump(s, dir, ['--auto-dedup', '--manage-cgroups', '--link-remap', '--file-locks', '--ext-unix-sk', '--status-fd', '1']);
      noErrorLines(join(dir, 'dump.log'));
      const pidfile = join(s.workDir, 'test.pid');
      removeDir(pidfile); // zdtm unlinks it once the test is gone
      const pid = await zdtmRestore(dir, pidfile, ['--auto-dedup', '--manage-cgroups']);
      assert.equal(pid, s.pid, 'restored with the same pid, written to --pidfile');
      noErrorLines(join(dir, 'restore.log'));
    }
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('--action-script: every point, in order, with CRIU\'s environment', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    const record = join(work, 'actions.txt');
    const script = recorder(work, record);
    await zdtmDump(s, dir, ['--action-script', script]);
    const pidfile = join(work, 'restored.pid');
    await zdtmRestore(dir, pidfile, ['--action-script', script]);
    const p = String(s.pid);
    // The last word is the script's cwd: CRIU's work dir, the images dir by default.
    assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), [
      `pre-dump none ${dir} ${dir}`, `network-lock ${p} ${dir} ${dir}`, `post-dump ${p} ${dir} ${dir}`,
      `pre-restore none ${dir} ${dir}`, `setup-namespaces ${p} ${dir} ${dir}`, `post-setup-namespaces ${p} ${dir} ${dir}`,
      `post-restore ${p} ${dir} ${dir}`, `network-unlock ${p} ${dir} ${dir}`, `pre-resume ${p} ${dir} ${dir}`, `post-resume ${p} ${dir} ${dir}`,
    ]);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('a pre-dump script that fails fails the dump and leaves the task running', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    mkdirSync(dir);
    const record = join(work, 'actions.txt');
    const script = recorder(work, record, 'pre-dump');
    const d = await runCli('criu-ts', zdtmArgs('dump', dir, ['--tree', String(s.pid), '--action-script', script]));
    assert.equal(d.code, 1, d.stderr);
    assert.match(d.stderr, /Script .*record\.sh exited with 1/);
    assert.equal(readFileSync(record, 'utf8').trim(), `pre-dump none ${dir} ${dir}`);
    assert.ok(!existsSync(join(dir, 'pstree.img')), 'no images written');
    assert.ok(isAlive(s.pid), 'task still running');
    assert.doesNotMatch(readFileSync(`/proc/${s.pid}/status`, 'utf8'), /^TracerPid:\s+[1-9]/m);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('a failing post-dump script fails the dump and the task runs on, as with CRIU', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    mkdirSync(dir);
    const record = join(work, 'actions.txt');
    const script = recorder(work, record, 'post-dump');
    const d = await runCli('criu-ts', zdtmArgs('dump', dir, ['--tree', String(s.pid), '--action-script', script]));
    assert.equal(d.code, 1, d.stderr);
    assert.match(readFileSync(record, 'utf8'), /^post-dump \d+ /m);
    assert.ok(isAlive(s.pid), 'task still running');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('a failing post-restore script fails the restore and leaves nothing behind', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    await zdtmDump(s, dir, []);
    const record = join(work, 'actions.txt');
    const script = recorder(work, record, 'post-restore');
    const r = await runCli('criu-ts', zdtmArgs('restore', dir, ['--action-script', script, '--restore-detached']));
    assert.equal(r.code, 1, r.stderr);
    assert.ok(await waitGone(s.pid), 'half-restored task left behind');
    assert.ok(readFileSync(record, 'utf8').trim().endsWith(`post-restore ${s.pid} ${dir} ${dir}`));
  });
});

test('restore --exec-cmd runs the command once the tree runs and exits with its status', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    await zdtmDump(s, dir, []);
    const seen = join(work, 'seen');
    // The command sees the restored task alive, then ends; criu's exit status is the command's.
    const cmd = `kill -0 ${s.pid} && echo "alive in $PWD" > ${seen}; exit 7`;
    const r = await runCli('criu-ts', ['restore', '-D', dir, '-o', 'restore.log', '--exec-cmd', '--', 'sh', '-c', cmd]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(readFileSync(seen, 'utf8'), `alive in ${dir}\n`, 'run in the work dir, with the task alive');
    assert.ok(await waitFor(() => isAlive(s.pid), 5000), 'restored task runs on after the command');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  });
});

test('zdtm --sibling: restore -d --restore-sibling makes the root a child of criu\'s caller (no subreaper), which reaps it', { timeout: 120_000 }, async () => {
  await withCounter(async (s, work) => {
    const dir = join(work, 'images');
    await zdtmDump(s, dir, []);
    const pidfile = join(s.workDir, 'test.pid');
    removeDir(pidfile);
    const args = zdtmArgs('restore', dir, ['--restore-sibling', '--pidfile', pidfile, '--restore-detached']);
    // The caller, as zdtm's runner: runs criu, reads the pidfile, then waitpid()s the root itself.
    const caller = [
      'import json, os, subprocess, sys',
      'r = subprocess.run(sys.argv[1:])',
      `pid = int(open(${JSON.stringify(pidfile)}).read().strip())`,
      'st = open("/proc/%d/stat" % pid).read()',
      'print(json.dumps({"code": r.returncode, "pid": pid, "ppid": int(st[st.rindex(")") + 2:].split()[1]), "me": os.getpid()}), flush=True)',
      'w, status = os.waitpid(pid, 0)',
      'print(json.dumps({"waited": w, "status": status}), flush=True)',
    ].join('\n');
    const py = spawn('/usr/bin/python3', ['-c', caller, join(repoRoot(), 'bin', 'criu-ts'), ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
      const first = JSON.parse(String((await lines.next()).value)) as Record<string, number>;
      assert.equal(first['code'], 0, 'restore exit status');
      assert.equal(first['pid'], s.pid, 'restored with the same pid');
      assert.equal(first['ppid'], first['me'], 'the caller is the parent of the restored root');
      noErrorLines(join(dir, 'restore.log'));
      const res = await s.terminateAndResult(30_000);
      assert.ok(res.ok, res.text);
      const second = JSON.parse(String((await lines.next()).value)) as Record<string, number>;
      assert.deepEqual(second, { waited: s.pid, status: 0 }, 'the caller reaped its child');
    } finally {
      py.kill('SIGKILL');
    }
  });
});

test('--exec-cmd misuse is refused like CRIU does', { timeout: 60_000 }, async () => {
  const work = tempDir('e2e-zdtm');
  try {
    const cases: [string[], RegExp][] = [
      [['restore', '-D', work, '--exec-cmd'], /--exec-cmd requires a command/],
      [['dump', '-t', '1', '-D', work, '--exec-cmd', '--', 'true'], /--exec-cmd is available for the restore command only/],
      [['restore', '-D', work, '-d', '--exec-cmd', '--', 'true'], /--restore-detached and --exec-cmd cannot be used together/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli('criu-ts', args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, re);
    }
    assert.deepEqual(readdirSync(work), []);
  } finally {
    removeDir(work);
  }
});

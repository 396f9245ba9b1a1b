import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { oneLineFailure, runCli } from '../lib/run.js';
import { formatDumpStats, formatFeatureList, writePidfile } from '../../src/cli/commands.js';

/** One line on stderr, exit 1, and nothing that looks like a stack frame. */
async function oneLineError(args: string[], re: RegExp, cwd?: string): Promise<void> {
  oneLineFailure(await runCli('criu-ts', args, cwd === undefined ? {} : { cwd }), re, args.join(' '));
}

test('bad command lines: one stderr line, exit 1', async () => {
  const cases: [string[], RegExp][] = [
    [['dump', '-t', 'abc'], /^criu-ts: invalid argument for -t: abc$/],
    [['dump', '-t'], /^criu-ts: option -t requires an argument$/],
    [['dump', '--tree=-5'], /^criu-ts: invalid argument for --tree: -5$/],
    [['frobnicate'], /^criu-ts: unknown command: frobnicate$/],
    [['dump', '--no-such-flag', '-t', '1'], /^criu-ts: unknown option --no-such-flag$/],
    [['dump', '-Z'], /^criu-ts: unknown option -Z$/],
    [[], /^criu-ts: command is required/],
    [['dump'], /^criu-ts: pid not specified/],
    [['restore', '--external', 'mnt[]:q'], /^criu-ts: --external mnt\[\]:q: the flags after mnt\[\]: are m \(external masters\) and s \(external sharing\)$/],
    [['restore', '--veth-pair', 'eth0'], /^criu-ts: invalid argument for --veth-pair: eth0$/],
    [['restore', '--inherit-fd', 'fd1:x'], /^criu-ts: --inherit-fd fd1:x: expected fd\[N\]:KEY$/],
    [['dump', '-t', '1', '--page-server'], /^criu-ts: --page-server needs --address and --port of a running page server$/],
    [['restore', '--empty-ns', 'mnt'], /^criu-ts: unsupported empty namespace: mnt \(only net\)$/],
    [['restore', '-J', 'pid:1'], /^Error \(criu-ts\): --join-ns pid:1: joining a pid namespace is not supported \(net, uts, ipc\)$/],
    [['restore', '-J', 'net:/proc/self/ns/net', '--empty-ns', 'net'], /^Error \(criu-ts\): conflicting options: --join-ns net and --empty-ns net$/],
    [['lazy-pages', '-D', '/nonexistent/images'], /^criu-ts: cannot open images directory \/nonexistent\/images/],
    [['lazy-pages', '--page-server'], /^criu-ts: lazy-pages --page-server needs --address and --port/],
    [['pre-dump', '-t', '1', '--lazy-pages'], /^criu-ts: Cannot pre-dump with --lazy-pages/],
    [['dump', '-t', '1', '--lazy-pages', '--page-server', '--address', '127.0.0.1', '--port', '1'], /^criu-ts: dump --lazy-pages serves the pages itself on --address\/--port: it takes no --page-server/],
    [['page-server', '--tls'], /^criu-ts: --tls is not supported yet/],
    [['--config', '/nonexistent/criu.conf', 'check'], /^criu-ts: cannot read config file \/nonexistent\/criu.conf/],
  ];
  for (const [args, re] of cases) await oneLineError(args, re);
});

test('dump of a pid that does not exist', async () => {
  // pid_max is 32768 here, so this pid cannot exist
  await oneLineError(['dump', '-t', '4000000', '-D', '/tmp'], /^criu-ts: no process with pid 4000000$/);
});

test('dump and pre-dump of a zombie say so in one line, naming the parent that has not reaped it', async () => {
  // sleep never reaps: the subshell that ran `true`, its child, stays a zombie under it.
  const parent = spawn('sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore' });
  try {
    let zombie = 0;
    for (let i = 0; i < 200 && zombie === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        const kid = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(' ')[0]);
        if (kid > 0 && /^State:\s+Z/m.test(readFileSync(`/proc/${kid}/status`, 'utf8'))) zombie = kid;
      } catch {
        // not there yet
      }
    }
    assert.ok(zombie > 0, 'no zombie to try');
    for (const verb of ['dump', 'pre-dump']) {
      await oneLineError([verb, '-t', String(zombie), '-D', '/tmp'],
        new RegExp(`^Error \\(criu-ts\\): task ${zombie} \\(sh\\) is a zombie: it has exited and waits for its parent \\(pid ${parent.pid}\\) to reap it; nothing of it is left to ${verb}$`));
    }
  } finally {
    parent.kill('SIGKILL');
  }
});

test('restore while the dumped task still runs (dump -R): one line naming the pid and what holds it', async () => {
  const task = spawn('sleep', ['30'], { stdio: 'ignore' });
  const dir = mkdtempSync('/tmp/criu-ts-cli-');
  try {
    await new Promise((r) => setTimeout(r, 100));
    const d = await runCli('criu-ts', ['dump', '-t', String(task.pid), '-D', dir, '-R', '--shell-job']);
    assert.equal(d.code, 0, d.stderr);
    await oneLineError(['restore', '-D', dir, '--shell-job'], new RegExp(`^Error \\(criu-ts\\): pid ${task.pid} is already in use by sleep \\(a task restores at the pid it had; is the dumped task still running\\?\\)$`));
  } finally {
    task.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restore refuses a missing images dir or an existing pidfile before restoring', async () => {
  await oneLineError(['restore', '-D', '/nonexistent/images'], /^criu-ts: cannot open images directory \/nonexistent\/images/);
  const dir = mkdtempSync('/tmp/criu-ts-cli-');
  try {
    writeFileSync(join(dir, 'pid'), '1');
    await oneLineError(['restore', '-D', dir, '--pidfile', 'pid'], /^criu-ts: pidfile .*\/pid already exists$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-V and --version print CRIU-style "Version: X"', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['-V', '--version']) {
    const r = await runCli('criu-ts', [flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `Version: 4.0\nGitID: criu-ts-${pkg.version}\n`);
  }
});

test('--help prints usage on stdout, exit 0', async () => {
  const r = await runCli('criu-ts', ['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage:/);
  assert.match(r.stdout, /-t\|--tree PID/);
  assert.equal(r.stderr, '');
  const h = await runCli('criu-ts', ['dump', '-h']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage:/);
});

test('ignored options warn at the default level only', async () => {
  const r = await runCli('criu-ts', ['check', '--feature', 'list', '--cgroup-props', 'x']);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /--cgroup-props is not implemented by criu-ts and is ignored/);
  const q = await runCli('criu-ts', ['check', '--feature', 'list', '--cgroup-props', 'x', '-v1']);
  assert.equal(q.stderr, '');
});

test('check and check --feature', async () => {
  const r = await runCli('criu-ts', ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Looks good.\n');
  const s = await runCli('criu-ts', ['check', '--feature', 'clone3_set_tid']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, 'clone3_set_tid is supported\n');
  // this kernel has no CONFIG_MEM_SOFT_DIRTY, but userfaultfd write-protect tracking does the job
  const m = await runCli('criu-ts', ['check', '--feature', 'mem_dirty_track']);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(m.stdout, 'mem_dirty_track is supported\n');
  await oneLineError(['check', '--feature', 'no_such_feature'], /^criu-ts: unknown feature no_such_feature/);
  const l = await runCli('criu-ts', ['check', '--feature=list']);
  assert.equal(l.code, 0);
  const names = l.stdout.split(/\s+/).filter((n) => n !== '');
  for (const n of ['mnt_id', 'uffd-noncoop', 'clone3_set_tid', 'get_rseq_conf', 'pagemap_scan', 'uffd_wp_async']) {
    assert.ok(names.includes(n), n);
  }
});

test('-o writes the log (relative to -W) and errors go to it too', async () => {
  const dir = mkdtempSync('/tmp/criu-ts-cli-');
  try {
    const r = await runCli('criu-ts', ['dump', '-t', '4000000', '-D', dir, '-W', dir, '-o', 'dump.log'], { cwd: '/' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no process with pid 4000000/);
    assert.match(readFileSync(join(dir, 'dump.log'), 'utf8'), /Error .*no process with pid 4000000/);
    // no -o: no log file written anywhere (CRIU logs to stderr by default)
    const q = await runCli('criu-ts', ['check', '--feature', 'list', '-D', dir], { cwd: dir });
    assert.equal(q.code, 0);
    assert.deepEqual(readdir(dir), ['dump.log']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function readdir(dir: string): string[] {
  return readdirSync(dir).sort();
}

test('pidfile: plain decimal, no newline, 0600, never overwritten', () => {
  const dir = mkdtempSync('/tmp/criu-ts-pidfile-');
  try {
    const p = join(dir, 'pid');
    writePidfile(p, 1234);
    assert.equal(readFileSync(p, 'utf8'), '1234');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.throws(() => writePidfile(p, 5), /cannot write pidfile/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--display-stats format matches CRIU', () => {
  assert.deepEqual(formatDumpStats({
    freezingTimeUs: 10, frozenTimeUs: 20, memdumpTimeUs: 30, memwriteTimeUs: 40,
    pagesScanned: 300, pagesSkippedParent: 0, pagesWritten: 255, pagesLazy: 0, pagesZero: 45,
  }), [
    'Displaying dump stats:',
    'Freezing time: 10 us',
    'Frozen time: 20 us',
    'Memory dump time: 30 us',
    'Memory write time: 40 us',
    'Memory pages scanned: 300 (0x12c)',
    'Memory pages skipped from parent: 0 (0x0)',
    'Memory pages written: 255 (0xff)',
    'Lazy memory pages: 0 (0x0)',
  ]);
  const lines = formatFeatureList(['a'.repeat(50), 'b'.repeat(20), 'c'.repeat(20)]);
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.length <= 80));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, DEFAULT_LOG_LEVEL } from '../../src/cli/parse.js';
import type { CliOptions, ParseContext, ParsedCommand } from '../../src/cli/parse.js';
import { parseConfigText } from '../../src/cli/config-file.js';
import { isCriuTsError } from '../../src/errors.js';

function ctx(files: Record<string, string> = {}, extra: Partial<ParseContext> = {}): ParseContext {
  return { cwd: '/base', useDefaultFiles: false, readFile: (p) => files[p], ...extra };
}

function opts(argv: string[], c: ParseContext = ctx()): CliOptions {
  const r = parseArgs(argv, c);
  assert.equal(r.kind, 'command');
  return (r as Extract<ParsedCommand, { kind: 'command' }>).options;
}

function fails(argv: string[], re: RegExp, code = 'EUSAGE', c: ParseContext = ctx()): void {
  assert.throws(() => parseArgs(argv, c), (e: unknown) => {
    assert.ok(isCriuTsError(e), String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

test('short, long, --opt=value and clustered forms give the same options', () => {
  for (const argv of [
    ['dump', '-t', '42', '-D', 'img', '-R', '-j'],
    ['dump', '-t42', '-Dimg', '-Rj'],
    ['--tree=42', '--images-dir=img', 'dump', '--leave-running', '--shell-job'],
    ['--tree', '42', '--images-dir', 'img', '--leave-run', '--shell', 'dump'],
  ]) {
    const o = opts(argv);
    assert.equal(o.tree, 42, argv.join(' '));
    assert.equal(o.imagesDir, '/base/img');
    assert.equal(o.finalState, 'running');
    assert.equal(o.shellJob, true);
  }
});

test('command and subcommand', () => {
  const r = parseArgs(['cpuinfo', 'check'], ctx());
  assert.equal(r.kind, 'command');
  if (r.kind === 'command') {
    assert.equal(r.command, 'cpuinfo');
    assert.equal(r.action, 'check');
  }
  assert.deepEqual(parseArgs(['swrk', '3'], ctx()), { kind: 'swrk', fd: 3 });
  const list = parseArgs(['--feature', 'list'], ctx());
  assert.equal(list.kind === 'command' && list.command, 'check');
  assert.deepEqual(parseArgs(['dump', '--bogus', '-h'], ctx()), { kind: 'help' });
  assert.deepEqual(parseArgs(['-V', 'dump'], ctx()), { kind: 'version' });
});

test('verbosity levels', () => {
  assert.equal(opts(['check']).logLevel, DEFAULT_LOG_LEVEL);
  assert.equal(opts(['check', '-v']).logLevel, 3);
  assert.equal(opts(['check', '-vv']).logLevel, 4);
  assert.equal(opts(['check', '-vvv']).logLevel, 5);
  assert.equal(opts(['check', '-v0']).logLevel, 0);
  assert.equal(opts(['check', '-v4']).logLevel, 4);
  assert.equal(opts(['check', '--verbosity=1']).logLevel, 1);
  assert.equal(opts(['check', '--verbosity']).logLevel, 3);
  assert.equal(opts(['check', '-v', '-v']).logLevel, 4);
  // CRIU reads any other value with atoi(): zdtm's "-verbosity=0" is -v with "erbosity=0", i.e. 0.
  assert.equal(opts(['check', '-vx']).logLevel, 0);
  assert.equal(opts(['check', '-verbosity=0']).logLevel, 0);
  assert.equal(opts(['check', '--verbosity=3x']).logLevel, 3);
});

test('work dir, log file and pidfile resolution', () => {
  let o = opts(['restore', '-D', 'img', '-o', 'r.log', '--pidfile', 'p']);
  assert.equal(o.workDir, '/base/img');
  assert.equal(o.logFile, '/base/img/r.log');
  assert.equal(o.pidfile, '/base/img/p');
  o = opts(['restore', '-D', '/abs/img', '-W', 'work', '-o', '/var/log/x.log', '--pidfile=pid']);
  assert.equal(o.imagesDir, '/abs/img');
  assert.equal(o.workDir, '/base/work');
  assert.equal(o.logFile, '/var/log/x.log');
  assert.equal(o.pidfile, '/base/work/pid');
  o = opts(['restore']);
  assert.equal(o.imagesDir, '/base');
  assert.equal(o.logFile, undefined, 'no log file unless -o is given');
  assert.equal(opts(['check', '-o', '-']).logFile, '-');
});

test('dump and restore flags', () => {
  const o = opts(['dump', '-t', '1', '--ext-unix-sk', '--tcp-established', '--file-locks', '--ghost-limit', '2M',
    '--freeze-cgroup', '/sys/fs/cgroup/freezer/x', '--timeout', '5', '--display-stats', '--pre-dump-mode', 'read',
    '--prev-images-dir', '../parent', '--track-mem', '-s']);
  assert.equal(o.extUnixSk, true);
  assert.equal(o.tcpEstablished, true);
  assert.equal(o.fileLocks, true);
  assert.equal(o.ghostLimitBytes, 2 * 1024 * 1024);
  assert.equal(o.freezeCgroup, '/sys/fs/cgroup/freezer/x');
  assert.equal(o.timeoutSec, 5);
  assert.equal(o.displayStats, true);
  assert.equal(o.preDumpMode, 'read');
  assert.equal(o.prevImagesDir, '../parent');
  assert.equal(o.trackMem, true);
  assert.equal(o.finalState, 'stopped');
  assert.equal(opts(['dump', '-t1', '--ghost-limit=512K']).ghostLimitBytes, 512 * 1024);
  assert.equal(opts(['dump', '-t1', '--ghost-limit=1G']).ghostLimitBytes, 1024 ** 3);
  assert.equal(opts(['dump', '-t1', '--ghost-limit=100']).ghostLimitBytes, 100);
  const r = opts(['restore', '-d', '-S', '--no-shell-job', '-j']);
  assert.equal(r.restoreDetached, true);
  assert.equal(r.restoreSibling, true);
  assert.equal(r.shellJob, true);
  assert.equal(opts(['restore', '-j', '--no-shell-job']).shellJob, false);
  const c = opts(['check', '--feature', 'uffd', '--all']);
  assert.equal(c.feature, 'uffd');
  assert.equal(c.checkExtra && c.checkExperimental, true);
});

test('ignored and unsupported options', () => {
  const o = opts(['dump', '-t', '1', '--cgroup-props', 'x', '--link-remap', '--cgroup-props-file', 'y', '--no-page-server']);
  assert.deepEqual(o.ignored, ['--cgroup-props', '--cgroup-props-file']);
  assert.equal(o.linkRemap, true);
  fails(['restore', '--inherit-fd', '3:pipe[1]'], /--inherit-fd 3:pipe\[1\]: expected fd\[N\]:KEY/, 'EUSAGE');
  assert.deepEqual(opts(['restore', '--inherit-fd', 'fd[3]:pipe:[1]', '--inherit-fd', 'fd[4]:tmp/log']).inheritFd,
    [{ fd: 3, key: 'pipe:[1]' }, { fd: 4, key: 'tmp/log' }]);
  fails(['restore', '--external', 'mnt[]:x'], /^--external mnt\[\]:x: the flags after mnt\[\]: are m \(external masters\) and s \(external sharing\)$/, 'EUSAGE');
  const auto = opts(['dump', '-t', '1', '--external', 'mnt[]:s', '--enable-external-masters']);
  assert.deepEqual([auto.autoExtMounts, auto.extSharing, auto.extMasters, auto.extMounts], [true, true, true, []]);
  const m = opts(['restore', '-M', 'auto', '--enable-external-sharing']);
  assert.deepEqual([m.autoExtMounts, m.extSharing, m.extMasters], [true, true, false]);
  fails(['dump', '-t', '1', '--tls'], /--tls is not supported yet/, 'EUNSUPPORTED');
  assert.equal(opts(['restore', '--lazy-pages']).lazyPages, true);
});

test('--join-ns NS:FILE|PID[,EXTRA], repeatable; the form is checked here, the namespace by the restore', () => {
  const o = opts(['restore', '-J', 'net:/run/netns/a', '--join-ns', 'uts:123', '--join-ns=user:/x,0,0']);
  assert.deepEqual(o.joinNs, [{ ns: 'net', file: '/run/netns/a' }, { ns: 'uts', file: '123' }, { ns: 'user', file: '/x', extra: '0,0' }]);
  fails(['restore', '-J', 'net'], /^--join-ns net: expected NS:FILE or NS:PID/, 'EUSAGE');
  fails(['restore', '-J', 'net:'], /^--join-ns net:: expected NS:FILE/, 'EUSAGE');
});

test('--external as given (read by the API), --veth-pair IN=OUT[@BRIDGE]', () => {
  const o = opts(['restore', '--external', 'veth[eth0]:h0@br0', '--external=mnt[x]:y', '--veth-pair', 'eth1=h1', '--veth-pair=eth2=h2@br1']);
  // Mounts go to the mount kind's list (api/mount-options.ts), with -M's.
  assert.deepEqual(o.external, ['veth[eth0]:h0@br0']);
  assert.deepEqual(o.extMounts, [{ key: 'x', value: 'y' }]);
  assert.deepEqual(o.vethPairs, [{ inside: 'eth1', outside: 'h1' }, { inside: 'eth2', outside: 'h2', bridge: 'br1' }]);
  fails(['restore', '--veth-pair', '=h0'], /^invalid argument for --veth-pair: =h0$/, 'EUSAGE');
  fails(['restore', '--veth-pair', 'eth0='], /^invalid argument for --veth-pair: eth0=$/, 'EUSAGE');
});

test('--empty-ns net, the only one CRIU has', () => {
  assert.equal(opts(['dump', '-t', '1', '--empty-ns', 'net']).emptyNetNs, true);
  assert.equal(opts(['restore']).emptyNetNs, false);
  fails(['restore', '--empty-ns', 'ipc'], /^unsupported empty namespace: ipc \(only net\)$/, 'EUSAGE');
});

test('page server options: --page-server --address --port, page-server --status-fd', () => {
  const o = opts(['dump', '-t', '1', '--page-server', '--address', '127.0.0.1', '--port', '27000']);
  assert.equal(o.pageServer, true);
  assert.equal(o.address, '127.0.0.1');
  assert.equal(o.port, 27000);
  assert.equal(opts(['page-server', '-D', '/tmp', '--port', '0', '--status-fd', '5']).statusFd, 5);
  fails(['page-server', '--port', '70000'], /^invalid argument for --port: 70000$/, 'EUSAGE');
});

test('cgroup options: --manage-cgroups[=MODE], --cgroup-root [controller:]/path, --cgroup-yard', () => {
  assert.equal(opts(['dump', '-t', '1']).manageCgroups, undefined);
  assert.equal(opts(['dump', '-t', '1', '--manage-cgroups']).manageCgroups, 'soft');
  for (const m of ['none', 'props', 'soft', 'full', 'strict', 'ignore']) assert.equal(opts(['restore', `--manage-cgroups=${m}`]).manageCgroups, m);
  const r = opts(['restore', '--cgroup-root', '/newroot', '--cgroup-root', 'name=zdtmtst:/prefix', '--cgroup-yard', 'yard']);
  assert.deepEqual(r.cgroupRoot, ['/newroot', 'name=zdtmtst:/prefix']);
  assert.equal(r.cgroupYard, 'yard');
  assert.deepEqual(opts(['dump', '-t', '1', '--cgroup-dump-controller', 'cpu', '--cgroup-dump-controller', 'name=systemd']).cgroupDumpController, ['cpu', 'name=systemd']);
  fails(['restore', '--manage-cgroups=hard'], /invalid argument for --manage-cgroups: hard/);
  fails(['restore', '--cgroup-root', 'cpu:rel'], /--cgroup-root cpu:rel: expected \[controller:\]\/path/);
});

test('bad command lines name the problem', () => {
  fails(['dump', '-t', 'abc'], /^invalid argument for -t: abc$/);
  fails(['dump', '--tree=0'], /^invalid argument for --tree: 0$/);
  fails(['dump', '-t'], /^option -t requires an argument$/);
  fails(['dump', '--tree'], /^option --tree requires an argument$/);
  fails(['dump'], /pid not specified/);
  fails(['frob'], /^unknown command: frob$/);
  fails([], /command is required/);
  fails(['dump', '-q'], /^unknown option -q$/);
  fails(['dump', '--frobnicate'], /^unknown option --frobnicate$/);
  fails(['dump', '--tcp'], /ambiguous/);
  fails(['check', '--leave-running=yes'], /doesn't allow an argument/);
  fails(['check', 'extra'], /excessive parameter/);
  fails(['restore', '--restore-sibling'], /only makes sense with --restore-detached/);
  fails(['dump', '-t1', '--ghost-limit', '3T'], /invalid argument for --ghost-limit/);
  fails(['dump', '-t1', '--pre-dump-mode', 'fast'], /invalid argument for --pre-dump-mode: fast/);
  fails(['swrk'], /swrk needs a file descriptor/);
});

test('config files: CRIU syntax, priority, --config and --no-default-config', () => {
  assert.deepEqual(parseConfigText('# comment\ntcp-established\n  images-dir  "/a b" # trailing\nverbosity=4\n\n'),
    ['--tcp-established', '--images-dir', '/a b', '--verbosity=4']);
  const files = {
    '/etc/criu/default.conf': 'shell-job\nverbosity=3\n',
    '/home/u/.criu/default.conf': 'images-dir /from-user\n',
    '/my.conf': 'tcp-established\nimages-dir /from-config\nlog-file cfg.log\n',
  };
  const withDefaults = ctx(files, { useDefaultFiles: true, home: '/home/u' });
  let o = opts(['check'], withDefaults);
  assert.equal(o.shellJob, true);
  assert.equal(o.logLevel, 3);
  assert.equal(o.imagesDir, '/from-user');
  // the command line wins over files
  o = opts(['check', '-D', 'cli', '-v1'], withDefaults);
  assert.equal(o.imagesDir, '/base/cli');
  assert.equal(o.logLevel, 1);
  // --config replaces the default files
  o = opts(['check', '--config', '/my.conf'], withDefaults);
  assert.equal(o.shellJob, false);
  assert.equal(o.tcpEstablished, true);
  assert.equal(o.imagesDir, '/from-config');
  assert.equal(o.logFile, '/from-config/cfg.log');
  o = opts(['check', '--config=/my.conf', '-D', '/x'], withDefaults);
  assert.equal(o.imagesDir, '/x');
  o = opts(['check', '--no-default-config'], withDefaults);
  assert.equal(o.shellJob, false);
  assert.equal(o.imagesDir, '/base');
  // $CRIU_CONFIG_FILE comes after the default files
  o = opts(['check'], { ...withDefaults, envConfigFile: '/my.conf' });
  assert.equal(o.shellJob, true);
  assert.equal(o.imagesDir, '/from-config');
  fails(['check', '--config', '/missing.conf'], /cannot read config file \/missing.conf/);
  fails(['check', '--config', '/bad.conf'], /unknown option --frob/, 'EUSAGE', ctx({ '/bad.conf': 'frob\n' }));
});

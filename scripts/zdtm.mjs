#!/usr/bin/env node
// npm run zdtm -- --criu-src DIR [options] [zdtm.py run args]
//
// Runs CRIU's own test suite (zdtm) against criu-ts, or against any criu
// binary for comparison, and writes a summary per test and per flavour.
// zdtm is not part of `npm test`: it needs a checkout of CRIU's public
// source, which CI cannot fetch. See docs/zdtm.md.
//
// Nothing of CRIU's is copied into this repository. The harness is patched
// at run time, in a copy placed next to zdtm.py in the given checkout:
//  - tests keep running as root: zdtm switches each test to uid 18943
//    through ZDTM_UID/ZDTM_GID/ZDTM_GROUPS, and without CAP_SYS_RESOURCE
//    (as in this project's sandbox) the tests then fail on their rlimits;
//  - the copy starts itself, not zdtm.py, inside its zdtm_ct container.
// The tests themselves are never touched.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, readdirSync, statSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HARNESS_COPY = 'zdtm-criu-ts.py';
const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PYTHON = '/usr/bin/python3';

const USAGE = `usage: npm run zdtm -- --criu-src DIR [options] [zdtm.py run args]
  --criu-src DIR     a checkout of CRIU's source (checkpoint-restore/criu)
  --criu-bin PATH    criu binary to test (default: ${join(REPO, 'bin/criu-ts')})
  --crit-bin PATH    crit binary for zdtm (default: ${join(REPO, 'bin/crit-ts')})
  --results DIR      where the summary, output and failed tests' logs go (default: ${join(REPO, 'zdtm-results')})
  --summary NAME     summary file name, without extension (default: zdtm-summary)
  --compare FILE     another run's summary .json: list the tests it passes and this run does not
  --no-build         do not run make in the CRIU checkout
  --summarize-only   do not run zdtm; rebuild the summary from --results DIR
zdtm args default to: -T 'zdtm/static/.*' -f h --keep-going -k never -p 2
(each default is dropped when the same option is given)`;

function die(msg) {
  process.stderr.write(`zdtm: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { criuSrc: '', criuBin: join(REPO, 'bin/criu-ts'), critBin: join(REPO, 'bin/crit-ts'),
    results: join(REPO, 'zdtm-results'), summary: 'zdtm-summary', compare: '', build: true,
    summarizeOnly: false, zdtm: [] };
  const ours = { '--criu-src': 'criuSrc', '--criu-bin': 'criuBin', '--crit-bin': 'critBin',
    '--results': 'results', '--summary': 'summary', '--compare': 'compare' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    if (a === '--no-build') { o.build = false; continue; }
    if (a === '--summarize-only') { o.summarizeOnly = true; continue; }
    if (a === '--') { o.zdtm.push(...argv.slice(i + 1)); break; }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name in ours) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') die(`${name} needs a value`);
      o[ours[name]] = v;
      continue;
    }
    o.zdtm.push(a);
  }
  if (!o.criuSrc && !o.summarizeOnly) die('--criu-src DIR is required\n' + USAGE);
  for (const k of ['criuSrc', 'criuBin', 'critBin', 'results', 'compare']) if (o[k]) o[k] = resolve(o[k]);
  return o;
}

// Defaults for zdtm.py run; each is dropped when the caller gives that option.
function zdtmArgs(user) {
  const has = (...names) => user.some((a) => names.some((n) => a === n || a.startsWith(n + '=')));
  const out = [];
  if (!has('-t', '--test', '-T', '--tests', '-a', '--all', '--from', '--list')) out.push('-T', 'zdtm/static/.*');
  if (!has('-f', '--flavor')) out.push('-f', 'h');
  if (!has('--keep-going')) out.push('--keep-going');
  if (!has('-k', '--keep-img')) out.push('-k', 'never');
  if (!has('-p', '--parallel')) out.push('-p', '2');
  return [...out, ...user];
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) die(`${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : 'status ' + r.status})`);
}

function build(src, env) {
  run('make', ['-C', join(src, 'test/zdtm/lib')], { env });
  run('make', ['-j2', '-C', join(src, 'test/zdtm/static')], { env });
  // pycriu: zdtm reads stats-dump (and talks RPC in --rpc runs) through it.
  if (!existsSync(join(src, 'lib/pycriu/images/stats_pb2.py'))) run('make', ['-C', src, 'lib'], { env });
}

// The harness copy. Each patch must match exactly once: a harness that
// changed shape stops the run instead of running unpatched.
function makeHarnessCopy(testDir) {
  let text = readFileSync(join(testDir, 'zdtm.py'), 'utf8');
  const patches = [
    [/^(\s*)env\['ZDTM_UID'\] = "\d+"\n\s*env\['ZDTM_GID'\] = "\d+"\n\s*env\['ZDTM_GROUPS'\] = "[\d ]+"\n/m,
      '$1pass  # criu-ts wrapper: tests stay root (no CAP_SYS_RESOURCE for the uid switch)\n'],
    [/\["\.\/zdtm_ct", "zdtm\.py"\]/, `["./zdtm_ct", "${HARNESS_COPY}"]`],
  ];
  for (const [re, to] of patches) {
    const n = (text.match(new RegExp(re.source, re.flags + 'g')) ?? []).length;
    if (n !== 1) die(`cannot patch ${join(testDir, 'zdtm.py')}: ${re} matched ${n} times (harness changed?)`);
    text = text.replace(re, to);
  }
  const out = join(testDir, HARNESS_COPY);
  writeFileSync(out, text);
  chmodSync(out, 0o755);
  return out;
}

// ---- summary ----------------------------------------------------------

function parseTap(file) {
  const tests = new Map();
  if (!existsSync(file)) return tests;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    let m = /^ok \d+ - (\S+) # SKIP (.*)$/.exec(line);
    if (m) { tests.set(m[1], { status: 'skip', reason: m[2] }); continue; }
    m = /^not ok \d+ - (\S+) # flavor (\S*)/.exec(line);
    if (m) { tests.set(m[1], { status: 'fail', failedFlavour: m[2] }); continue; }
    m = /^ok \d+ - (\S+)\s*$/.exec(line);
    if (m) tests.set(m[1], { status: 'pass' });
  }
  return tests;
}

// The run's whole output: each test's log is printed in one piece, so the
// "Run T in F" / "Test T PASS" / "Test T FAIL at STEP" separators give the
// result of every flavour, and the lines zdtm greps out of criu's logs
// (printed as Python bytes, b'...') give the first error.
function parseOutput(file) {
  const per = new Map();
  if (!existsSync(file)) return per;
  let cur = null;
  const get = (t) => { if (!per.has(t)) per.set(t, { flavours: {}, errors: [], testOutput: [] }); return per.get(t); };
  let inTestOutput = false;
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    // print_sep centres " title " in 80 columns of '=' or '#': a title
    // longer than that ("FAIL at RPC for --x(--y) required") has no padding
    // left but the spaces around it.
    const line = raw.replace(/^[=#]* | [=#]*$/g, '');
    let m = /^Run (\S+) in (\S+)$/.exec(line);
    if (m) { cur = { test: m[1], flav: m[2] }; get(cur.test).flavours[cur.flav] = 'fail'; continue; }
    if (!cur) continue;
    m = /^Test (\S+) PASS$/.exec(line);
    if (m && m[1] === cur.test) { get(cur.test).flavours[cur.flav] = 'pass'; continue; }
    m = /^Test (\S+) FAIL at (.*)$/.exec(line);
    if (m && m[1] === cur.test) { get(cur.test).step ??= m[2].trim(); continue; }
    if (raw.startsWith('Test output: ')) { inTestOutput = true; continue; }
    if (raw.startsWith(' <<< ')) { inTestOutput = false; continue; }
    const e = get(cur.test);
    if (inTestOutput) { if (raw.trim()) e.testOutput.push(raw.trim()); continue; }
    m = /^b(['"])(.*)\1$/.exec(raw);
    if (m && /Error/.test(m[2])) e.errors.push(m[2].replace(/\\'/g, "'"));
  }
  return per;
}

// First error line of criu's own logs, copied into the report for failed tests.
function firstLogError(results, test, flav) {
  const dir = join(results, 'report', `${test.replace(/\//g, '_')}_${flav}`, 'images');
  if (!existsSync(dir)) return undefined;
  const logs = [];
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/^(dump|restore)\.log$/.test(n)) logs.push(p);
    }
  };
  walk(dir);
  logs.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  for (const p of logs) {
    const line = readFileSync(p, 'utf8').split('\n').find((l) => /Error/.test(l));
    if (line) return line.trim();
  }
  return undefined;
}

// Strip the elapsed-time stamp and pids so that equal causes group together.
export function causeOf(line) {
  return line
    .replace(/^\(\s*[\d.]+\)\s*/, '') // criu's elapsed-time stamp
    .replace(/^\d\d:\d\d:\d\d\.\d+:\s+\d+:\s*/, '') // a test's time and pid
    .replace(/\/\S*\/test\/zdtm\/static\/\S*/g, '<test file>')
    .replace(/^(FAIL|ERR): [\w.-]+\.c:\d+: /, '$1: ')
    .replace(/0x[0-9a-f]+(-0x[0-9a-f]+)?/gi, '0x..')
    .replace(/\b\d{2,}\b/g, 'N')
    .slice(0, 200);
}

function summarize(o, meta) {
  const tap = parseTap(join(o.results, 'report', 'criu-testreport.tap'));
  const out = parseOutput(join(o.results, 'zdtm-output.log'));
  const tests = {};
  const counts = { pass: 0, fail: 0, skip: 0 };
  const byFlavour = {};
  for (const [name, t] of [...tap].sort((a, b) => a[0].localeCompare(b[0]))) {
    const p = out.get(name);
    const entry = { status: t.status };
    counts[t.status]++;
    if (t.reason) entry.reason = t.reason;
    if (p) {
      entry.flavours = p.flavours;
      for (const [f, s] of Object.entries(p.flavours)) {
        byFlavour[f] ??= { pass: 0, fail: 0 };
        byFlavour[f][s]++;
      }
    }
    if (t.status === 'fail') {
      entry.flavour = t.failedFlavour;
      if (p?.step) entry.step = p.step;
      const err = firstLogError(o.results, name, t.failedFlavour) ?? p?.errors[0]
        ?? p?.testOutput.find((l) => /^(FAIL|ERR|Error)/.test(l)) ?? p?.testOutput[0];
      if (err) entry.firstError = err;
    }
    tests[name] = entry;
  }
  const summary = { ...meta, counts: { ...counts, total: tap.size }, byFlavour, tests };
  let compare;
  if (o.compare) {
    const other = JSON.parse(readFileSync(o.compare, 'utf8'));
    const groups = new Map();
    for (const [name, t] of Object.entries(other.tests)) {
      if (t.status !== 'pass' || tests[name]?.status === 'pass') continue;
      const ours = tests[name];
      const key = !ours ? 'not run here' : ours.status === 'skip' ? `skipped: ${ours.reason}`
        : `${ours.step ?? 'fail'}: ${ours.firstError ? causeOf(ours.firstError) : '(no error line)'}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(name.replace(/^zdtm\/static\//, ''));
    }
    compare = { against: o.compare, criuBin: other.criuBin, counts: other.counts,
      groups: [...groups].sort((a, b) => b[1].length - a[1].length).map(([cause, list]) => ({ cause, tests: list })) };
    summary.compare = compare;
  }
  writeFileSync(join(o.results, o.summary + '.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(o.results, o.summary + '.txt'), summaryText(summary));
  return summary;
}

function summaryText(s) {
  const L = [];
  L.push(`zdtm run: ${s.criuBin}`, `CRIU source: ${s.criuSrc ?? '?'} (${s.criuSrcRev ?? '?'})`,
    `zdtm args: ${(s.zdtmArgs ?? []).join(' ')}`, `started ${s.started ?? '?'}, took ${s.durationS ?? '?'} s`, '',
    `pass ${s.counts.pass}, fail ${s.counts.fail}, skip ${s.counts.skip}, total ${s.counts.total}`);
  for (const [f, c] of Object.entries(s.byFlavour)) L.push(`  flavour ${f}: pass ${c.pass}, fail ${c.fail}`);
  const by = (st) => Object.entries(s.tests).filter(([, t]) => t.status === st);
  L.push('', 'FAIL');
  for (const [n, t] of by('fail')) L.push(`  ${n} (${t.flavour}) at ${t.step ?? '?'}: ${t.firstError ?? ''}`);
  L.push('', 'SKIP');
  for (const [n, t] of by('skip')) L.push(`  ${n}: ${t.reason}`);
  L.push('', 'PASS');
  for (const [n, t] of by('pass')) L.push(`  ${n} (${Object.keys(t.flavours ?? {}).join(',')})`);
  if (s.compare) {
    L.push('', `PASS with ${s.compare.criuBin} (${s.compare.counts.pass} pass), not here, by cause:`);
    for (const g of s.compare.groups) L.push(`  [${g.tests.length}] ${g.cause}`, `      ${g.tests.join(' ')}`);
  }
  return L.join('\n') + '\n';
}

// ---- main -------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.results, { recursive: true });
  if (o.summarizeOnly) {
    const prev = existsSync(join(o.results, o.summary + '.json'))
      ? JSON.parse(readFileSync(join(o.results, o.summary + '.json'), 'utf8')) : {};
    const { tests: _t, counts: _c, byFlavour: _b, compare: _x, ...meta } = prev;
    const s = summarize(o, meta);
    process.stdout.write(`zdtm: pass ${s.counts.pass}, fail ${s.counts.fail}, skip ${s.counts.skip}\n`);
    return;
  }
  const testDir = join(o.criuSrc, 'test');
  if (!existsSync(join(testDir, 'zdtm.py'))) die(`${o.criuSrc} is not a CRIU checkout (no test/zdtm.py)`);
  if (!existsSync(o.criuBin)) die(`no criu binary at ${o.criuBin}`);
  const nodeDir = dirname(process.execPath);
  const env = { ...process.env, PATH: CLEAN_PATH.split(':').includes(nodeDir) ? CLEAN_PATH : `${CLEAN_PATH}:${nodeDir}` };
  for (const k of ['ZDTM_UID', 'ZDTM_GID', 'ZDTM_GROUPS', 'PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV']) delete env[k];
  if (o.build) build(o.criuSrc, env);
  const copy = makeHarnessCopy(testDir);
  const reportDir = join(o.results, 'report');
  rmSync(reportDir, { recursive: true, force: true });
  // `--set NAME` (zdtm's other test sets: inhfd) is an option of zdtm.py itself, before `run`.
  const setAt = o.zdtm.findIndex((a) => a === '--set' || a.startsWith('--set='));
  const set = setAt < 0 ? [] : o.zdtm.splice(setAt, o.zdtm[setAt] === '--set' ? 2 : 1);
  const args = zdtmArgs(o.zdtm);
  const full = [copy, ...set, 'run', ...args, '--criu-bin', o.criuBin, '--crit-bin', o.critBin, '--report', reportDir];
  const rev = spawnSync('git', ['-C', o.criuSrc, 'describe', '--tags', '--always'], { encoding: 'utf8' }).stdout?.trim();
  const started = new Date();
  process.stdout.write(`zdtm: ${PYTHON} ${full.join(' ')}\n`);
  const logPath = join(o.results, 'zdtm-output.log');
  const { createWriteStream } = await import('node:fs');
  const log = createWriteStream(logPath);
  const child = spawn(PYTHON, full, { cwd: testDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => { log.write(d); process.stdout.write(d); });
  const status = await new Promise((res) => child.on('close', (code, sig) => res(code ?? 128 + (sig ? 9 : 0))));
  await new Promise((res) => log.end(res));
  const s = summarize(o, { criuBin: o.criuBin, critBin: o.critBin, criuSrc: o.criuSrc, criuSrcRev: rev,
    zdtmArgs: args, started: started.toISOString(), durationS: Math.round((Date.now() - started.getTime()) / 1000),
    zdtmStatus: status });
  process.stdout.write(`zdtm: pass ${s.counts.pass}, fail ${s.counts.fail}, skip ${s.counts.skip}` +
    ` (summary: ${join(o.results, o.summary + '.txt')}, .json)\n`);
}

await main();

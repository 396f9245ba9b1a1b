/**
 * bin/criu-ts and bin/crit-ts as the kernel runs them (their `#!` line):
 * node starts without NODE_EXTRA_CA_CERTS (src/node-start.ts: Node 20
 * parses those certificates before any JavaScript, for TLS criu-ts never
 * makes), and the programs criu-ts starts still get the variable as the
 * caller set it. A file that does not exist makes Node print a warning
 * at its start: the launchers' runs must not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownNodeEnv, SAVED_ARENA_ENV, SAVED_CA_ENV, SAVED_MMAP_ENV } from '../../src/node-start.js';
import { repoRoot } from '../lib/subjects.js';
import { removeDir, tempDir } from '../lib/harness.js';

const MISSING = '/nonexistent/criu-ts-test-ca.pem';

function runBin(bin: string, args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const p = spawnSync(join(repoRoot(), 'bin', bin), args, { encoding: 'utf8', env });
  return { status: p.status, stdout: p.stdout, stderr: p.stderr };
}

test('node itself warns about a missing NODE_EXTRA_CA_CERTS (what the next tests rely on)', () => {
  const p = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', env: { ...process.env, NODE_EXTRA_CA_CERTS: MISSING } });
  assert.match(p.stderr, /extra certs/);
});

test('bin/criu-ts and bin/crit-ts start node without NODE_EXTRA_CA_CERTS', () => {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: MISSING };
  const c = runBin('criu-ts', ['--version'], env);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stderr, '');
  const t = runBin('crit-ts', ['--help'], env);
  assert.equal(t.status, 0, t.stderr);
  assert.doesNotMatch(t.stderr, /extra certs/);
});

test('a program criu-ts starts sees NODE_EXTRA_CA_CERTS, MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ as the caller set them, and nothing of ours', { timeout: 60_000 }, async () => {
  const work = tempDir('launcher');
  const target = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  try {
    const seen = join(work, 'seen.txt');
    const script = join(work, 'show-env.sh');
    // The pre-dump script refuses the dump: nothing is touched, the script's view is all we want.
    // Ours (the script's ancestor criu-ts, its environment as it started) had one malloc arena; the script gets the caller's value.
    const oursFile = join(work, 'ours.txt');
    writeFileSync(script, `#!/bin/sh\necho "ca=\${NODE_EXTRA_CA_CERTS-unset} saved=\${${SAVED_CA_ENV}-unset} arena=\${MALLOC_ARENA_MAX-unset} savedarena=\${${SAVED_ARENA_ENV}-unset} mmap=\${MALLOC_MMAP_THRESHOLD_-unset} savedmmap=\${${SAVED_MMAP_ENV}-unset}" > ${seen}\np=$PPID\nwhile [ "$p" -gt 1 ] && ! grep -q bin/criu-ts /proc/$p/cmdline; do p=$(cut -d' ' -f4 /proc/$p/stat); done\ncat /proc/$p/environ > ${oursFile}\nexit 1\n`);
    chmodSync(script, 0o755);
    const d = runBin('criu-ts', ['dump', '-t', String(target.pid), '-D', work, '--action-script', script], { ...process.env, NODE_EXTRA_CA_CERTS: MISSING, MALLOC_ARENA_MAX: '3', MALLOC_MMAP_THRESHOLD_: '65536' });
    assert.equal(d.status, 1);
    assert.match(d.stderr, /Script .*show-env\.sh exited with 1/);
    assert.doesNotMatch(d.stderr, /extra certs/);
    assert.equal(readFileSync(seen, 'utf8').trim(), `ca=${MISSING} saved=unset arena=3 savedarena=unset mmap=65536 savedmmap=unset`);
    const ours = readFileSync(oursFile, 'latin1').split('\0');
    assert.ok(ours.includes('MALLOC_ARENA_MAX=1') && ours.includes(`${SAVED_ARENA_ENV}=3`), `criu-ts's own start: ${ours.filter((v) => v.includes('ARENA')).join(', ')}`);
    assert.ok(ours.includes('MALLOC_MMAP_THRESHOLD_=131072') && ours.includes(`${SAVED_MMAP_ENV}=65536`), `criu-ts's own start: ${ours.filter((v) => v.includes('MMAP')).join(', ')}`);
  } finally {
    target.kill('SIGKILL');
    removeDir(work);
  }
});

test('ownNodeEnv keeps NODE_EXTRA_CA_CERTS, MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ aside for a node process of ours, as the launchers do', () => {
  const arena = { MALLOC_ARENA_MAX: '1', [SAVED_ARENA_ENV]: '', MALLOC_MMAP_THRESHOLD_: '131072', [SAVED_MMAP_ENV]: '' };
  assert.deepEqual(ownNodeEnv({ A: '1', NODE_EXTRA_CA_CERTS: '/x.pem' }), { A: '1', [SAVED_CA_ENV]: '/x.pem', ...arena });
  assert.deepEqual(ownNodeEnv({ A: '1', NODE_EXTRA_CA_CERTS: '' }), { A: '1', ...arena });
  assert.deepEqual(ownNodeEnv({ A: '1' }), { A: '1', ...arena });
  assert.deepEqual(ownNodeEnv({ A: '1', MALLOC_ARENA_MAX: '4' }), { ...arena, A: '1', [SAVED_ARENA_ENV]: '4' });
  assert.deepEqual(ownNodeEnv({ A: '1', MALLOC_MMAP_THRESHOLD_: '65536' }), { ...arena, A: '1', [SAVED_MMAP_ENV]: '65536' });
});

test('a command first drops the node binary\'s start-up pages from criu-ts\'s resident set (cli/trim-pages.ts), and runs as before; check does not', () => {
  const work = tempDir('launcher-trim');
  try {
    const images = join(work, 'images');
    mkdirSync(images);
    const log = join(work, 'dedup.log');
    const d = runBin('criu-ts', ['dedup', '-D', images, '-v4', '-o', log], process.env);
    assert.equal(d.status, 0, d.stderr);
    const m = /start-up pages dropped: (\d+) KiB/.exec(readFileSync(log, 'utf8'));
    assert.ok(m, 'the drop is logged');
    // Node's start alone maps 20-35 MiB of its binary.
    assert.ok(Number(m[1]) > 4096, `${m[1]} KiB dropped`);
    // check: its peak is Node's start, and the drop would be a tenth of its CPU.
    const checkLog = join(work, 'check.log');
    const c = runBin('criu-ts', ['check', '-v4', '-o', checkLog], process.env);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /Looks good/);
    assert.doesNotMatch(readFileSync(checkLog, 'utf8'), /start-up pages dropped/);
  } finally {
    removeDir(work);
  }
});

test('the bundles are ASCII: load-bundle.cjs reads them as latin1', () => {
  for (const name of ['criu-ts.cjs', 'crit-ts.cjs']) {
    const bytes = readFileSync(join(repoRoot(), 'dist', 'bundle', name));
    assert.ok(bytes.length > 0, name);
    assert.equal(bytes.findIndex((b) => b > 0x7f), -1, `${name}: a byte outside ASCII`);
  }
});

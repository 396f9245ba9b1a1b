/**
 * `npm run bench`'s command line (bench/run.ts): --help prints the usage and
 * runs nothing; a word it does not know is one line and exit 1, before any
 * subject is built or any case runs (a typo must not start a long run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../lib/subjects.js';

const RUN = join(repoRoot(), 'dist', 'bench', 'run.js');

test('bench --help prints the usage; an unknown option or a missing value is one line and exit 1', { timeout: 30_000 }, () => {
  const help = spawnSync(process.execPath, [RUN, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: npm run bench -- /);
  for (const args of [['--bogus'], ['--quick', 'extra'], ['--only'], ['--criu']]) {
    const r = spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^criu-ts bench: unknown option /);
  }
});

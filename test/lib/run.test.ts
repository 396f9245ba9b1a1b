import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './run.js';
import { repoRoot } from './subjects.js';

test('runCli runs bin/ with input, cwd and a timeout', async (t) => {
  if (!existsSync(join(repoRoot(), 'dist', 'src', 'cli', 'main.js'))) return t.skip('CLI not built yet (dist/src/cli/main.js missing)');
  const r = await runCli('criu-ts', ['--version'], { timeoutMs: 20_000 });
  assert.equal(typeof r.code, 'number');
  assert.equal(typeof r.stdout, 'string');
  assert.equal(typeof r.stderr, 'string');
});

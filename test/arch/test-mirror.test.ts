/**
 * Where test/ mirrors src/ file by file: the folders whose every module is
 * a unit a test can drive alone (the /proc parsers against live processes)
 * have test/<folder>/<file>.test.ts for each <file>.ts. The rest is
 * mirrored by folder and tested through what drives it (docs/testing.md,
 * "What is tested where"): kinds through the C subjects, dump and restore
 * through the API, sys through its callers and its probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SRC } from './src-files.js';

/** folder of src/ -> its modules that need no test of their own, each with why */
const MIRRORED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  proc: { 'index.ts': 'the barrel', 'read.ts': 'the reading and error helpers every parser uses (each parser\'s test drives them)' },
};

test('every module of a mirrored folder has its own test file', () => {
  const missing: string[] = [];
  for (const [dir, exempt] of Object.entries(MIRRORED)) {
    for (const name of readdirSync(join(SRC, dir)).filter((n) => n.endsWith('.ts'))) {
      if (exempt[name] !== undefined) continue;
      const t = join(ROOT, 'test', dir, name.replace(/\.ts$/, '.test.ts'));
      if (!existsSync(t)) missing.push(`src/${dir}/${name}: no test/${dir}/${name.replace(/\.ts$/, '.test.ts')}`);
    }
  }
  assert.deepEqual(missing, []);
});

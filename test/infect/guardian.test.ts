/**
 * The guardian's shell (infect/guardian.ts GUARDIAN_SCRIPT): it exits
 * quietly when the last line it read is "done", and otherwise hands
 * every line it read, in order and as written, to node (here a stand-in
 * script that keeps what it was given): a few lines (read by the shell's
 * own `read`), many (past the first 64, by cat), a last line cut short,
 * lines with spaces and backslashes. The e2e-killed-* tests run it for real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUARDIAN_SCRIPT } from '../../src/infect/guardian.js';

/** Run the shell on `input`: what the stand-in for node got (undefined when it was not started), and the exit status. */
function guard(input: string): { handed: string | undefined; args: string | undefined; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-guardian-sh-'));
  try {
    const fake = join(dir, 'node');
    writeFileSync(fake, `#!/bin/sh\ncat > '${dir}/handed'\nprintf '%s\\n' "$@" > '${dir}/args'\n`);
    chmodSync(fake, 0o755);
    const p = spawnSync('/bin/sh', ['-c', GUARDIAN_SCRIPT, fake, 'URL'], { input });
    const read = (f: string): string | undefined => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'latin1') : undefined);
    return { handed: read('handed'), args: read('args'), status: p.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = (n: number): string => Array.from({ length: n }, (_, i) => `F ${1000 + i} ${i}\n`).join('');

test('"done" last: the shell exits and starts nothing, whatever came before', () => {
  for (const input of ['done\n', 'done', `S 1 2 7f00 4096\n${lines(3)}done\n`, `${lines(63)}done\n`, `${lines(64)}done\n`, `${lines(500)}done\n`]) {
    const g = guard(input);
    assert.equal(g.status, 0);
    assert.equal(g.handed, undefined, `nothing handed on for ${input.length} bytes ending in done`);
  }
});

test('no "done": every line is handed on, in order and as written', () => {
  for (const n of [1, 3, 63, 64, 65, 500]) {
    const g = guard(lines(n));
    assert.equal(g.status, 0);
    assert.equal(g.handed, lines(n), `${n} lines`);
    assert.equal(g.args, `-e\n${g.args?.split('\n')[1] ?? ''}\nURL\n`);
  }
  const odd = 'W /tmp/a b\\c  \n  K 5 6\nS 1 2 3 4\n';
  assert.equal(guard(odd).handed, odd, 'spaces and backslashes kept');
  assert.equal(guard('S 1 2 3 4\nF 1').handed, 'S 1 2 3 4\nF 1\n', 'a last line cut short is handed on');
  assert.equal(guard(`${lines(70)}F 9`).handed, `${lines(70)}F 9\n`, 'and past the first 64 lines');
  assert.equal(guard('done\nS 1 2 3 4\n').handed, 'done\nS 1 2 3 4\n', '"done" counts only last');
});

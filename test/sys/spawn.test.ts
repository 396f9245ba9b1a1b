/**
 * sys/spawn.ts: programs of our own started through posix_spawn. What the
 * child gets (its stdin, no other fd of ours, its own session, default
 * signal actions, nothing blocked), a program that cannot run, and that
 * the child is collected (no zombie left) once it ends or is killed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { O_CLOEXEC, killAndReap, pipe2, reapWhenGone, spawnProgram } from '../../src/sys/index.js';
import { removeDir, tempDir } from '../lib/harness.js';

const gone = async (pid: number): Promise<boolean> => {
  for (let i = 0; i < 500; i++) {
    if (!existsSync(`/proc/${pid}`)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
};

test('the child reads the stdin given, has no other fd of ours, a session of its own, default signals', async () => {
  const work = tempDir('spawn');
  const leak = openSync('/dev/null', 'r'); // an fd of ours the child must not get
  try {
    const out = join(work, 'out');
    const [r, w] = pipe2(O_CLOEXEC);
    const script = `read line; echo "$line" > ${out}; ls /proc/self/fd | wc -l >> ${out}; ` +
      `grep -E '^(SigBlk|SigIgn)' /proc/self/status >> ${out}; ps -o sid= -p $$ >> ${out}; echo $$ >> ${out}`;
    const pid = spawnProgram('/bin/sh', ['/bin/sh', '-c', script], { stdin: r, setsid: true });
    closeSync(r);
    writeSync(w, 'hello\n');
    closeSync(w);
    reapWhenGone(pid);
    assert.ok(await gone(pid), 'collected once it ended');
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], 'hello');
    // 0, 1, 2 and the fd ls itself reads its directory through
    assert.equal(lines[1], '4');
    assert.equal(lines[2], 'SigBlk:\t0000000000000000');
    assert.equal(lines[3], 'SigIgn:\t0000000000000000'); // Node ignores SIGPIPE; the child does not
    assert.equal(lines[4], lines[5], 'its own session');
  } finally {
    closeSync(leak);
    removeDir(work);
  }
});

test('a program that cannot run is an error; a killed child is collected', async () => {
  assert.throws(() => spawnProgram('/nonexistent/program', ['x']), /posix_spawn: ENOENT/);
  const pid = spawnProgram('/bin/sleep', ['sleep', '100']);
  assert.ok(existsSync(`/proc/${pid}`));
  killAndReap(pid);
  assert.ok(await gone(pid), 'no zombie left');
});

test('a child still ending when we exit is collected first: no zombie handed to whoever adopts our orphans', () => {
  // A Node process of its own (the test runner is not the one exiting): it starts a shell that ends
  // a moment later, hands it to reapWhenGone and exits at once; its orphans would come to its parent.
  const spawnJs = new URL('../../src/sys/index.js', import.meta.url).pathname;
  const script = `import(${JSON.stringify(spawnJs)}).then((m) => {` +
    `const pid = m.spawnProgram('/bin/sh', ['/bin/sh', '-c', 'sleep 0.2']); m.reapWhenGone(pid); console.log(pid); });`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const pid = Number(out.trim());
  assert.ok(pid > 0, out);
  assert.ok(!existsSync(`/proc/${pid}`), `the shell ${pid} was left behind (a zombie for our parent)`);
});

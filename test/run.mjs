#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's own test
// runner, one file at a time: the tests seize, dump and restore real processes,
// and pids/ptrace make parallel files step on each other.
// Usage: node test/run.mjs [substring ...]  (filters test files by path)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;

const dist = join(root, 'dist', 'test');
if (!existsSync(dist)) {
  console.error('no compiled tests in dist/test: run `npm run build` first');
  process.exit(1);
}
// Fds a shell or CI agent leaked into us would be inherited by every test file (test/lib/inherited-fds.ts).
const { closeInheritedFds } = await import(pathToFileURL(join(dist, 'lib', 'inherited-fds.js')).href);
closeInheritedFds();
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(dist, []).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// A test stuck in a synchronous kernel wait (ptrace, waitpid) cannot be
// stopped by node:test's own timeouts: a watchdog ends the whole run
// instead, so a hang fails in minutes, not at CI's time limit.
const WATCHDOG_MS = Number(process.env.CRIU_TS_TEST_WATCHDOG_MS ?? 30 * 60 * 1000);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
  timeout: WATCHDOG_MS,
  killSignal: 'SIGKILL',
});
if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL') {
  console.error(`test run killed by the watchdog after ${WATCHDOG_MS / 60000} minutes (a test hung)`);
  process.exit(1);
}
process.exit(r.status ?? 1);

/**
 * A big restore through the CLI collects V8's heap and drops the node
 * binary's code pages before the task bodies (and collects again before
 * the final steps if the bodies grew the heap enough: src/heap.ts;
 * docs/performance.md "Peak RSS, ninth pass"): the restore goes on with
 * its code paged back in, and the task comes back whole. A small one
 * does neither, and keeps the start-up pages too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../lib/run.js';
import { passesAfterRestore, useE2eHarness, waitGone, withSubject } from '../lib/harness.js';

useE2eHarness();

async function roundTrip(args: string[], prefix: string): Promise<string> {
  let log = '';
  await withSubject('threads', args, prefix, async (s, dir) => {
    const img = join(dir, 'img');
    mkdirSync(img);
    const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', img, '-o', 'dump.log'], { timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    assert.ok(await waitGone(s.pid), `pid ${s.pid} still exists after the dump`);
    const r = await runCli('criu-ts', ['restore', '-d', '-D', img, '-v4', '-o', 'restore.log'], { timeoutMs: 120_000 });
    log = readFileSync(join(img, 'restore.log'), 'utf8');
    assert.equal(r.code, 0, `${r.stderr}\n${log.slice(-1000)}`);
    await passesAfterRestore(s);
  }, { pthread: true });
  return log;
}

test('a 1000-thread restore through the CLI trims its heap and code pages, and the task passes', { timeout: 300_000 }, async () => {
  const log = await roundTrip(['--threads', '1000', '--fpu', '0', '--stack-kib', '64'], 'heap-trims');
  assert.ok(/heap collected \(.*\) and code pages dropped before the task bodies/.test(log), 'no trim before the task bodies in the restore log');
  // 1000 core images: not a small job (cli/trim-pages.ts smallJob), so the start-up pages went first.
  assert.match(log, /start-up pages dropped: \d+ KiB/);
});

test('an 8-thread restore through the CLI does neither', { timeout: 120_000 }, async () => {
  const log = await roundTrip([], 'heap-trims-small');
  assert.ok(!/heap collected/.test(log), 'a trim in a small restore');
  // A few small images: the start-up pages are kept (cli/trim-pages.ts smallJob).
  assert.match(log, /start-up pages kept: a small job/);
  assert.doesNotMatch(log, /start-up pages dropped/);
});

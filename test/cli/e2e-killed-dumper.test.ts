/**
 * criu-ts killed in the middle of a dump or a restore (issue 9, points 3, 4
 * and 6). CRIU_TS_FAULT=@K:SIG makes criu-ts send itself SIG at the K-th
 * fault point it passes (src/fault.ts), so the kills land at exact,
 * repeatable moments spread over the whole run, injected syscalls included.
 *
 * Dump: one dump-victim (4 threads, a SIGUSR1 handler, a 64 MiB heap, FPU
 * and general registers held live) is dumped and killed 30 times over,
 * with and without -R, by SIGKILL, SIGTERM, SIGINT and SIGHUP. After each kill (and
 * the guardian's clean-up: runCli waits until stderr closes, the guardian
 * holds it) the victim must be alive, untraced in every thread, with every
 * thread's mask and the address space as before, and must handle a
 * SIGUSR1; at the end it checks its own registers, heap and masks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { waitTreeGone } from '../lib/harness.js';
import { dumpPasses, handlesUsr1, passesOf, settled, spread, withDumpVictim } from '../lib/kill-walk.js';
import { FAULT_POINTS } from '../../src/fault.js';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const;

test('criu-ts killed at 30 points of a dump (SIGKILL/SIGTERM/SIGINT/SIGHUP, with and without -R): the target carries on as before, 30/30', async () => {
  await withDumpVictim(['--usr1', '30'], '/tmp/criu-ts-killed-', async (s, work, before) => {
    const names = await dumpPasses(s.pid, work);
    // Every pass, the first injected call (the scratch mmap, covered since
    // session 9: infect/first-call.ts) included.
    const firstInject = names.indexOf('inject') + 1;
    const imagesAt = names.indexOf('dump.images') + 1;
    assert.ok(firstInject > 0 && imagesAt > 0, names.join(' '));
    // -R: the whole run, release included; without -R: up to the last
    // point before the dump kills the tree on purpose.
    const plan = [
      { k: firstInject, leaveRunning: true },
      ...spread(1, names.length, 14, new Set([firstInject])).map((k) => ({ k, leaveRunning: true })),
      { k: firstInject, leaveRunning: false },
      ...spread(1, imagesAt, 14, new Set([firstInject])).map((k) => ({ k, leaveRunning: false })),
    ];
    let ok = 0;
    for (const [i, p] of plan.entries()) {
      const sig = SIGNALS[i % SIGNALS.length] as string;
      const what = `kill ${i + 1}/30 at pass ${p.k} (${names[p.k - 1]}) with ${sig}${p.leaveRunning ? ', -R' : ''}`;
      const args = ['dump', '-t', String(s.pid), '-D', work, ...(p.leaveRunning ? ['-R'] : [])];
      const r = await withFault(`@${p.k}:${sig}`, () => runCli('criu-ts', args));
      assert.notEqual(r.code, 0, `${what}: the dump did not fail\n${r.stderr}`);
      assert.ok(isAlive(s.pid), `${what}: the target died\n${r.stderr}`);
      assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed\n${r.stderr}`);
      assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian`);
      assert.ok(await handlesUsr1(s.pid), `${what}: SIGUSR1 not handled`);
      ok++;
    }
    assert.equal(ok, 30);
  });
});

test('CRIU_TS_FAULT=N: every dump fault point fails the dump with one line and leaves the target as before', async () => {
  await withDumpVictim([], '/tmp/criu-ts-fault-', async (s, work, before) => {
    for (const [i, name] of FAULT_POINTS.entries()) {
      if (!name.startsWith('dump.') && name !== 'inject' && name !== 'cure') continue;
      for (const leaveRunning of [true, false]) {
        if (name === 'cure' && !leaveRunning) continue; // a dump without -R never cures
        const args = ['dump', '-t', String(s.pid), '-D', work, ...(leaveRunning ? ['-R'] : [])];
        const r = await withFault(String(i + 1), () => runCli('criu-ts', args));
        const what = `fault ${i + 1} (${name})${leaveRunning ? ' -R' : ''}`;
        if (name === 'cure') {
          // Past the images: the dump succeeded; the thread is cured as on any error.
          assert.ok(isAlive(s.pid), `${what}: target died\n${r.stderr}`);
        } else {
          assert.equal(r.code, 1, `${what}: ${r.stderr}`);
          assert.match(r.stderr.trim().split('\n').pop() ?? '', new RegExp(`fault ${i + 1} \\(${name}\\) injected`), what);
        }
        assert.equal(await settled(s.pid, before), before, `${what}: threads or maps changed\n${r.stderr}`);
      }
    }
  });
});

test('criu-ts killed at 20 points of a restore, or failed at each restore fault point: nothing left behind, the next restore works', async () => {
  const s = await startSubject('ghost-files', [], {});
  const work = mkdtempSync('/tmp/criu-ts-killed-restore-');
  try {
    const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', work]);
    assert.equal(d.code, 0, d.stderr);
    const r0 = await withFault('count', () => runCli('criu-ts', ['restore', '-D', work, '-d']));
    assert.equal(r0.code, 0, r0.stderr);
    const names = passesOf(r0.stderr);
    process.kill(s.pid, 'SIGKILL');
    for (let t = 0; t < 200 && isAlive(s.pid); t++) await new Promise((res) => setTimeout(res, 10));
    const imagesBefore = readdirSync(work).sort().join(' ');
    // No task of the dump alive, and the subject's own directory (where its
    // ghost files are written back) exactly as before.
    const leftovers = (): string => `${isAlive(s.pid) ? `pid ${s.pid} alive; ` : ''}${readdirSync(s.workDir).sort().join(' ')}`;
    const baseline = leftovers();
    // A restore's count of injected calls varies from run to run (the
    // stub's own layout is undone call by call): 14 kills spread over the
    // first 70% of the passes, and one at each restore point.
    const byCount = spread(1, Math.floor(names.length * 0.7), 14, new Set()).map((k) => `@${k}`);
    const byName = FAULT_POINTS.filter((n) => n.startsWith('restore.')).map((n) => `@${n}`);
    const kills = [...byCount, ...byName].map((k, i) => `${k}:${i % 2 === 0 ? 'SIGKILL' : 'SIGTERM'}`);
    assert.equal(kills.length, 20);
    const faults = FAULT_POINTS.flatMap((n, i) => (n.startsWith('restore.') ? [String(i + 1)] : []));
    for (const f of [...kills, ...faults]) {
      const r = await withFault(f, () => runCli('criu-ts', ['restore', '-D', work, '-d']));
      assert.notEqual(r.code, 0, `${f}: restore did not fail\n${r.stderr}`);
      for (let t = 0; t < 300 && isAlive(s.pid); t++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(leftovers(), baseline, `${f}: left behind\n${r.stderr}`);
      assert.equal(readdirSync(work).sort().join(' '), imagesBefore, `${f}: files changed in the images dir`);
    }
    const ok = await runCli('criu-ts', ['restore', '-D', work, '-d']);
    assert.equal(ok.code, 0, ok.stderr);
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

test('criu-ts killed while a dump (no -R) kills the tree it dumped: the guardian finishes the kill, no task of it is left, the images restore', { timeout: 600_000 }, async () => {
  const s = await startSubject('tree', []);
  const work = mkdtempSync('/tmp/criu-ts-killed-kill-');
  try {
    // Each dump in a fresh dir (a restored tree's shared memory has new ids): dump N restores from dump N-1.
    let n = 0;
    const next = (): string => {
      const d = join(work, String(n++));
      mkdirSync(d);
      return d;
    };
    let dir = next();
    const r0 = await withFault('count', () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]));
    assert.equal(r0.code, 0, r0.stderr);
    const names = passesOf(r0.stderr);
    assert.deepEqual(await waitTreeGone(dir), [], 'the dump killed its tree');
    const imagesAt = names.indexOf('dump.images') + 1;
    // Passes of the kill (the held parents' rt_sigaction and wait4 among them), at most 6.
    const after = [...new Set(spread(imagesAt + 1, names.length, Math.min(6, names.length - imagesAt), new Set()))];
    assert.ok(after.length >= 2, `passes after the images: ${names.slice(imagesAt).join(' ')}`);
    for (const [i, k] of after.entries()) {
      const back = await runCli('criu-ts', ['restore', '-D', dir, '-d']);
      assert.equal(back.code, 0, back.stderr);
      dir = next();
      const sig = i % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      const what = `killed at pass ${k} (${names[k - 1]}) with ${sig}`;
      const r = await withFault(`@${k}:${sig}`, () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', dir]));
      assert.notEqual(r.code, 0, `${what}: the dump did not fail\n${r.stderr}`);
      assert.match(r.stderr, /criu-ts: interrupted; the dump was killing its tree/, `${what}: ${r.stderr}`);
      assert.deepEqual(await waitTreeGone(dir), [], `${what}: tasks of the tree left`);
    }
    const back = await runCli('criu-ts', ['restore', '-D', dir, '-d']);
    assert.equal(back.code, 0, back.stderr);
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    // The tree spans three sessions: its process group is not all of it.
    for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(s.outFile)) process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone, or not ours to read
      }
    }
    s.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

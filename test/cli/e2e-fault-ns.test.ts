/**
 * CRIU_TS_FAULT over the restore of trees in namespaces of their own (issue
 * 9, point 6): the mnt-ns subject (mount, pid, uts, ipc and net namespaces
 * of its own under a private root: tmpfs contents, binds, peers, a slave,
 * proc, devpts, mqueue) and the net-ns subject (addresses, a route,
 * sysctls, a listener). Every restore fault point is made to fail in turn
 * (CRIU_TS_FAULT=N), and criu-ts is killed at each of them
 * (CRIU_TS_FAULT=@NAME, SIGKILL and SIGTERM in turn) and at passes spread
 * over the run. After each: the restore failed, and nothing of it is left
 * in our system: no process below us, no stub, our mount table line for
 * line as before, no device, nft table or cgroup the images name, no file
 * in the images dir, the subject's root or the restore's working dir.
 * Then a plain restore of the same images succeeds and the subject passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { FAULT_POINTS } from '../../src/fault.js';
import { startSubject, type StartOptions } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { leftovers, namesIn, tree, world } from '../lib/leftovers.js';
import { errorLines, ourDescendants } from '../security/fuzz-lib.js';
import { reapIfOurs, removeDir, strayStubs, tempDir, useSubjectCleanup, waitGone } from '../e2e/helpers.js';

const { subjects, dirs } = useSubjectCleanup();


/** Live processes below us (zombies reaped): what a failed restore must not leave. */
async function settledBelow(already: Set<number>): Promise<string[]> {
  const below = (): number[] => ourDescendants().filter((p) => !already.has(p) && !reapIfOurs(p));
  let left = below();
  for (let t = 0; t < 300 && left.length > 0; t++) {
    await new Promise((res) => setTimeout(res, 10));
    left = below();
  }
  return left.map((p) => { try { return `${p} ${readFileSync(`/proc/${p}/stat`, 'latin1').split(' ').slice(1, 3).join(' ')}`; } catch { return `${p}`; } });
}

/** Kill every process below us (a restored tree) and wait until they are gone. */
async function killBelow(already: Set<number>): Promise<void> {
  for (let t = 0; t < 50; t++) {
    const left = ourDescendants().filter((p) => !already.has(p) && !reapIfOurs(p));
    if (left.length === 0) return;
    for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    for (const p of left) await waitGone(p, 5000);
  }
}

interface Case {
  name: string;
  args: (root: string) => string[];
  opts: (root: string) => StartOptions;
  root: boolean;
}

const CASES: readonly Case[] = [
  { name: 'mnt-ns', root: true, args: (root) => ['--root', root], opts: (root) => ({ static: true, launcher: true, workDir: join(root, 'w') }) },
  { name: 'net-ns', root: false, args: () => [], opts: () => ({}) },
];

for (const c of CASES) {
  test(`${c.name}: a restore failed at each fault point and killed at each, and at passes between, leaves nothing; the next restore works`, { timeout: 20 * 60_000 }, async () => {
    let root = '';
    if (c.root) {
      root = tempDir('fault-ns-root');
      dirs.push(root);
      for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'n', 'n2', 'o1', 'o2']) mkdirSync(join(root, d), { recursive: true });
    }
    const s = await startSubject(c.name, c.args(root), c.opts(root));
    subjects.push(s);
    const images = tempDir('fault-ns-img');
    const cwd = tempDir('fault-ns-cwd');
    dirs.push(images, cwd);
    const d = await dump({ pid: s.pid, imagesDir: images, progress: false });
    for (const p of d.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const already = new Set(ourDescendants());
    const names = namesIn(images, /^(netdev|cgroup|inventory|ifaddr|route)/);
    const ourDirs = [images, cwd, s.workDir, ...(c.root ? [root] : [])];
    const filesBefore = ourDirs.map(tree);
    const pidfile = join(cwd, 'restored.pid');
    const restoreArgs = ['restore', '-d', '-D', images, '--pidfile', pidfile, ...(c.root ? ['--root', root] : [])];

    // The passes of a whole restore, to spread kills over the first 70% of (their count varies from run to
    // run: the stub's own layout is undone call by call); the tree it restored is killed.
    const count = await withFault('count', () => runCli('criu-ts', restoreArgs, { cwd, timeoutMs: 120_000 }));
    assert.equal(count.code, 0, count.stderr);
    await killBelow(already);
    rmSync(pidfile);
    const passes = Number(/fault passes: (\d+)/.exec(count.stderr)?.[1] ?? 0);
    assert.ok(passes > 20, count.stderr);
    const points = FAULT_POINTS.flatMap((n, i) => (n.startsWith('restore.') ? [{ n, i: i + 1 }] : []));
    const runs = [
      ...points.map((p) => String(p.i)),
      ...points.map((p, k) => `@${p.n}:${k % 2 === 0 ? 'SIGKILL' : 'SIGTERM'}`),
      ...[0.1, 0.25, 0.4, 0.55, 0.7].map((f, k) => `@${Math.max(1, Math.floor(passes * f))}:${k % 2 === 0 ? 'SIGTERM' : 'SIGKILL'}`),
    ];
    for (const f of runs) {
      const before = world();
      const r = await withFault(f, () => runCli('criu-ts', restoreArgs, { cwd, timeoutMs: 120_000 }));
      const what = `CRIU_TS_FAULT=${f}`;
      assert.notEqual(r.code, 0, `${what}: the restore did not fail\n${r.stderr}`);
      if (!f.startsWith('@')) {
        const lines = errorLines(r.stderr);
        assert.equal(lines.length, 1, `${what}: one error line expected:\n${r.stderr}`);
        assert.match(lines[0] ?? '', /fault \d+ \(restore\.[a-z]+\) injected/, what);
      }
      assert.deepEqual(await settledBelow(already), [], `${what}: processes left behind\n${r.stderr}`);
      assert.deepEqual(strayStubs(), [], `${what}: restore stubs left behind`);
      assert.deepEqual(leftovers(before, { dirs: ourDirs, names }), [], `${what}: left in our namespaces\n${r.stderr}`);
      assert.deepEqual(ourDirs.map(tree).map((t) => t.filter((n) => n !== 'stats-restore')), filesBefore.map((t) => t.filter((n) => n !== 'stats-restore')), `${what}: files left behind\n${r.stderr}`);
      assert.ok(!existsSync(pidfile), `${what}: a pidfile for a restore that failed`);
    }
    const before = world();
    const ok = await runCli('criu-ts', [...restoreArgs, '--verify'], { cwd, timeoutMs: 120_000 });
    assert.equal(ok.code, 0, ok.stderr);
    s.pid = Number(readFileSync(pidfile, 'utf8').trim());
    const out = await s.terminateAndResult(20_000);
    assert.ok(out.ok, out.text);
    await waitGone(s.pid);
    assert.deepEqual(await settledBelow(already), []);
    assert.deepEqual(leftovers(before, { dirs: ourDirs, names }), [], 'the restored tree, gone, left something');
    removeDir(cwd);
  });
}

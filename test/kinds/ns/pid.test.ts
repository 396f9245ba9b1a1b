/**
 * The pid namespace kind (src/kinds/ns/pid.ts): a tree whose root is the
 * init of a pid namespace of its own is dumped with the pids it sees and
 * restored in a new pid namespace, where every task, thread, group,
 * session, helper and zombie has its pid again (the pid-ns subject checks
 * them from inside); crit 3.17 reads the images. A pre-dump of such a
 * tree names its images by those pids too, so the final dump and the
 * restore find their pages in it (runc checkpoint --pre-dump). What is not
 * done yet is refused with one line, and the tree runs on. Pid namespaces
 * nested in the tree's: pid-nested.test.ts.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { dump, preDump, restore } from '../../../src/api/index.js';
import { readImage, writeImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { becomeSubreaper, childrenOfUs, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitFor, waitGone } from '../../lib/harness.js';
import { sameAsCrit, sameAsCritWithout } from '../files/round-trip.js';
import { SubjectRun } from '../../lib/subject-run.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

function nsPid(pid: number): number[] {
  const line = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? '';
  return line.split(/\s+/).filter((x) => x !== '').map(Number);
}

async function gone(pids: readonly number[]): Promise<void> {
  for (const p of pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
}

test('the init of a pid namespace and its tree come back in a new pid namespace with every pid (threads, groups, a helper, a zombie)', TIMEOUT, async () => {
  const dir = tempDir('pid-ns');
  const run = new SubjectRun();
  run.removes(dir);
  try {
    const s = (run.subject = await startSubject('pid-ns', [], { pthread: true, launcher: true }));
    assert.deepEqual(nsPid(s.pid).slice(1), [1], 'the subject is pid 1 of its namespace');
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    await gone(r.pids);
    const pstree = readImage(join(dir, 'pstree.img')).entries;
    // As CRIU writes them: the pids the tree sees, init first with threads 1 and 2.
    assert.deepEqual(pstree[0], { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 2] });
    assert.ok(pstree.every((e) => Number(e['pid']) < 100), 'every pid is the namespace\'s');
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as { root_ids: Record<string, number> };
    assert.notEqual(ids['pid_ns_id'], inv.root_ids['pid_ns_id'], 'the init has a pid namespace of its own');
    assert.equal(ids['net_ns_id'], inv.root_ids['net_ns_id']);
    sameAsCrit(dir, ['pstree.img', 'ids-1.img', 'ids-3.img']);
    sameAsCritWithout(dir, 'inventory.img', ['dump_criu_run_id']);
    // --verify reads every task back (by its pid here) and compares it with its images.
    const res = await restore({ imagesDir: dir, progress: false, verify: true });
    run.restored = res.pid;
    const levels = nsPid(res.pid);
    assert.equal(levels.length, 2, 'one pid namespace below ours');
    assert.equal(levels[1], 1, 'the root is pid 1 inside');
    assert.equal(levels[0], res.pid, 'the result names the root by its pid here');
    assert.equal(res.pids.length, pstree.length);
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('a pid namespace tree: pre-dump, then a dump on top of it (pages in the parent), restored; images named by the pids it sees', TIMEOUT, async () => {
  const base = tempDir('pid-ns-pre');
  const pre = join(base, 'pre');
  const fin = join(base, 'fin');
  const run = new SubjectRun();
  run.removes(base);
  try {
    const s = (run.subject = await startSubject('pid-ns', [], { pthread: true, launcher: true }));
    const r1 = await preDump({ pid: s.pid, imagesDir: pre, progress: false });
    assert.ok(isAlive(s.pid), 'a pre-dump leaves the tree running');
    assert.ok(existsSync(join(pre, 'pagemap-1.img')), 'the init\'s pagemap is named by its pid inside');
    assert.ok(!existsSync(join(pre, `pagemap-${s.pid}.img`)));
    assert.ok(r1.stats.pagesWritten > 0);
    const r2 = await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre', trackMem: true, progress: false });
    await gone(r2.pids);
    assert.ok(r2.stats.pagesSkippedParent > 0, 'the final dump finds pages in the pre-dump');
    const res = await restore({ imagesDir: fin, progress: false });
    run.restored = res.pid;
    assert.equal(nsPid(res.pid)[1], 1, 'the root is pid 1 inside');
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('in a pid namespace, members of a session whose leader is not their ancestor (alive, or a zombie) and of a group whose leader exited come back in them, children of init', TIMEOUT, async () => {
  const dir = tempDir('pid-ns-sessions');
  const run = new SubjectRun();
  run.removes(dir);
  try {
    const s = (run.subject = await startSubject('pid-ns-sessions', [], { launcher: true }));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    await gone(r.pids);
    const pstree = readImage(join(dir, 'pstree.img')).entries;
    // M and W: children of init, in a session led by a task that is not their ancestor.
    const strays = pstree.filter((e) => e['ppid'] === 1 && e['sid'] !== e['pid'] && e['sid'] !== 1);
    assert.equal(strays.length, 2, JSON.stringify(pstree));
    const res = await restore({ imagesDir: dir, progress: false, verify: true });
    run.restored = res.pid;
    assert.equal(res.pids.length, pstree.length, 'no helper is left');
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

/** Dump `pid` and expect a refusal matching `why`; the subject then runs on and passes. */
async function refused(s: Subject, pid: number, why: RegExp): Promise<void> {
  const dir = tempDir('pid-ns-refused');
  try {
    await rejectsOneLine(dump({ pid, imagesDir: dir, progress: false }), 'EUNSUPPORTED', why);
    assert.ok(isAlive(s.pid), 'the tree runs on');
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
  } finally {
    removeDir(dir);
  }
}

test('a task whose next children would be born in another pid namespace is refused', TIMEOUT, async () => {
  const s = await startSubject('pid-ns', ['--unshared', '1'], { pthread: true, launcher: true });
  try {
    await refused(s, s.pid, new RegExp(`^task ${s.pid} \\(pid-ns\\S*\\) would start its children in another pid namespace .*: nested pid namespaces are not supported$`));
  } finally {
    s.cleanup();
  }
});

test('a tree inside a pid namespace but not rooted at its init is refused', TIMEOUT, async () => {
  const s = await startSubject('pid-ns', [], { pthread: true, launcher: true });
  try {
    const child = Number(readFileSync(`/proc/${s.pid}/task/${s.pid}/children`, 'latin1').trim().split(/\s+/)[0]);
    assert.ok(child > 0);
    await refused(s, child, new RegExp(`^task ${child} \\(pid-ns\\S*\\) is pid \\d+ of its own pid namespace, not its init`));
  } finally {
    s.cleanup();
  }
});

test('images of a pid namespace nested in the tree\'s are refused at restore before anything is created', TIMEOUT, async () => {
  const dir = tempDir('pid-ns-nested-img');
  const s = await startSubject('pid-ns', ['--threads', '0'], { launcher: true });
  try {
    await gone((await dump({ pid: s.pid, imagesDir: dir, progress: false })).pids);
    const child = readImage(join(dir, 'pstree.img')).entries.find((e) => e['pid'] !== 1 && (e['threads'] as number[])[0] !== 0);
    const vpid = Number(child?.['pid']);
    const path = join(dir, `ids-${vpid}.img`);
    const ids = readImage(path).entries[0] as Record<string, number>;
    writeImage(path, 'IDS', [{ ...ids, pid_ns_id: 99 }]);
    const before = childrenOfUs();
    // The image is edited on purpose: past the checksums, to the check itself.
    await assert.rejects(restore({ imagesDir: dir, progress: false, skipChecksums: true }), (e: unknown) => {
      assert.ok(isCriuTsError(e) && e.code === 'EUNSUPPORTED', String(e));
      assert.match(e.message, new RegExp(`^task ${vpid} was dumped in a pid namespace nested in the tree's \\(ns id 99\\) without its pids there \\(pstree.img ns_pid\\): the images were not made by a criu-ts that dumps nested pid namespaces$`));
      return true;
    });
    // (the restore's guardian shell exits too, and node reaps it a moment later)
    const left = (): number[] => childrenOfUs().filter((p) => !before.includes(p));
    assert.ok(await waitFor(() => left().length === 0, 5000), `left behind: ${left().join(' ')}`);
  } finally {
    s.cleanup();
    removeDir(dir);
  }
});

// CRIU 4.2 itself, both ways (CRIU_BIN, as in test/e2e/criu-restores-ours.test.ts).
const CRIU = process.env['CRIU_BIN'];
const noCriu = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;

function criu(args: string[], dir: string): void {
  const r = spawnSync(CRIU as string, [...args, '-D', dir, '-o', `${args[0]}.log`, '-v4'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, `criu ${args[0]} failed (see ${dir}/${args[0]}.log): ${r.stderr}`);
}

test('CRIU 4.2 restores criu-ts\'s dump of a pid namespace, and criu-ts restores CRIU\'s', { ...TIMEOUT, skip: noCriu }, async () => {
  for (const [dumper, restorer] of [['criu-ts', 'criu'], ['criu', 'criu-ts']] as const) {
    const dir = tempDir(`pid-ns-${dumper}`);
    let s: Subject | undefined;
    let root: number | undefined;
    try {
      s = await startSubject('pid-ns', [], { pthread: true, launcher: true });
      if (dumper === 'criu') {
        criu(['dump', '-t', String(s.pid)], dir);
        assert.ok(await waitGone(s.pid), 'the init is gone after CRIU\'s dump');
      } else {
        await gone((await dump({ pid: s.pid, imagesDir: dir, progress: false })).pids);
      }
      if (restorer === 'criu') {
        criu(['restore', '-d', '--pidfile', join(dir, 'root.pid')], dir);
        root = Number(readFileSync(join(dir, 'root.pid'), 'latin1').trim());
      } else {
        root = (await restore({ imagesDir: dir, progress: false, skipChecksums: true })).pid;
      }
      assert.deepEqual(nsPid(root).slice(1), [1], `${restorer}: the root is pid 1 of a new pid namespace`);
      s.pid = root;
      const out = await s.terminateAndResult(30_000);
      assert.ok(out.ok, `${dumper} -> ${restorer}: ${out.text}`);
    } finally {
      if (root !== undefined) await killAndWait(root);
      s?.cleanup();
      removeDir(dir);
    }
  }
});

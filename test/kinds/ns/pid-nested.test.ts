/**
 * Pid namespaces nested in the dumped tree's (src/kinds/ns/pid.ts,
 * src/dump/pids.ts): the pid-ns-nested subject clones N with CLONE_NEWPID
 * (pid 1 below the tree's namespace; with --deeper 1 a second level under
 * it), its children, a thread, a session whose leader is gone, a zombie;
 * the tree is in our pid namespace or (--own-ns 1) in one of its own.
 * Dumped, killed, restored: every task checks its pids from inside, N
 * reaps an orphan and signals a child by its pid there; the parent
 * `unshare -fp` leaves gets its pid_for_children back. pstree.img keeps
 * CRIU's fields as crit 3.17 decodes them, the pids below the tree's
 * level in fields of criu-ts's own (1000+). A pre-dump chain works; the
 * same images without those fields (as CRIU or an older criu-ts would
 * write them) are refused at restore in one line, before anything runs.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dump, preDump, restore } from '../../../src/api/index.js';
import { readImage, writeImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import { becomeSubreaper, childrenOfUs, closeInheritedFds, tempDir, waitFor, waitGone } from '../../lib/harness.js';
import { sameAsCritWithout } from '../files/round-trip.js';
import { SubjectRun } from '../../lib/subject-run.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 180_000 };
const CRIT = '/usr/bin/crit';
const OWN_FIELDS = ['ns_pid', 'ns_threads', 'ns_pgid', 'ns_sid'];

function nsPid(pid: number): number[] {
  const line = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? '';
  return line.split(/\s+/).filter((x) => x !== '').map(Number);
}

async function gone(pids: readonly number[]): Promise<void> {
  for (const p of pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
}

type Entry = Record<string, unknown>;
const list = (e: Entry | undefined, k: string): number[] => (e?.[k] as number[] | undefined) ?? [];

/** The nested init N (ns_pid [1]), its children at one level down, D (two levels) and its child. */
function checkNested(pstree: Entry[]): void {
  const n = pstree.find((e) => list(e, 'ns_pid').length === 1 && list(e, 'ns_pid')[0] === 1);
  assert.ok(n, 'the nested init has pid 1 below the tree\'s level');
  assert.equal(list(n, 'ns_threads').length, 2, 'its thread too');
  assert.equal(list(n, 'ns_threads')[0], 1);
  assert.deepEqual(list(n, 'ns_sid'), [0], 'its session is led from outside its namespace');
  const kids = pstree.filter((e) => e['ppid'] === n['pid']);
  assert.ok(kids.length >= 4, 'C1, S2, the zombie, D');
  for (const k of kids) assert.ok(list(k, 'ns_pid').length >= 1 && list(k, 'ns_pid')[0] !== 1, `${JSON.stringify(k)}: a pid in N's namespace`);
  const d = pstree.find((e) => list(e, 'ns_pid').length === 2 && list(e, 'ns_pid')[1] === 1);
  assert.ok(d, 'D is pid 1 two levels down');
  const zombie = kids.find((e) => list(e, 'threads')[0] === 0);
  assert.ok(zombie && !('ns_threads' in zombie), 'the zombie has its pid there, no threads');
  // The tree's root is CRIU's entry, byte for byte: no field of ours.
  assert.ok(OWN_FIELDS.every((f) => !(f in (pstree[0] ?? {}))));
}

/** crit 3.17 decodes pstree.img: every field CRIU knows, ours skipped. */
function critDecodes(dir: string): void {
  if (!existsSync(CRIT)) return;
  const shown = JSON.parse(execFileSync(CRIT, ['show', join(dir, 'pstree.img')], { encoding: 'utf8' })) as { entries: Entry[] };
  assert.ok(shown.entries.length >= 7);
  sameAsCritWithout(dir, 'pstree.img', OWN_FIELDS);
}

for (const own of [false, true]) {
  const where = own ? 'in a pid namespace of its own' : 'in ours';
  test(`a tree ${where} with pid namespaces nested in it (two levels): every task and thread back with its pids at every level`, TIMEOUT, async () => {
    const run = new SubjectRun();
    const dir = run.dir('pid-nested');
    try {
      const s = (run.subject = await startSubject('pid-ns-nested', ['--deeper', '1', ...(own ? ['--own-ns', '1'] : [])], { pthread: true, launcher: own }));
      const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
      await gone(r.pids);
      const pstree = readImage(join(dir, 'pstree.img')).entries as Entry[];
      checkNested(pstree);
      critDecodes(dir);
      const res = await restore({ imagesDir: dir, progress: false, verify: true });
      run.restored = res.pid;
      assert.equal(res.pids.length, pstree.length);
      if (own) assert.deepEqual(nsPid(res.pid).slice(1), [1], 'the root is pid 1 of its namespace');
      else assert.equal(res.pid, s.pid, 'the root has its pid');
      await run.passesAt(res.pid);
    } finally {
      await run.cleanup();
    }
  });
}

test('the parent `unshare -fp` leaves (its next children go to its child\'s pid namespace) is dumped and gets that back', TIMEOUT, async () => {
  const run = new SubjectRun();
  const dir = run.dir('pid-nested-unshare');
  try {
    const s = (run.subject = await startSubject('pid-ns-nested', ['--unshare', '1'], { pthread: true }));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    await gone(r.pids);
    const pstree = readImage(join(dir, 'pstree.img')).entries as Entry[];
    const n = pstree.find((e) => e['ppid'] === s.pid && list(e, 'ns_pid')[0] === 1);
    assert.ok(n, 'the nested init is the root\'s child');
    const ids = (vpid: unknown): Record<string, number> => readImage(join(dir, `ids-${String(vpid)}.img`)).entries[0] as Record<string, number>;
    assert.equal(ids(s.pid)['pid_for_children_ns_id'], ids(n['pid'])['pid_ns_id'], 'the root\'s next children go to its child\'s namespace');
    assert.equal(ids(n['pid'])['pid_for_children_ns_id'], undefined, 'written only where it differs');
    const res = await restore({ imagesDir: dir, progress: false });
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('nested pid namespaces: a pre-dump, then a dump on top of it, restored', TIMEOUT, async () => {
  const run = new SubjectRun();
  const base = run.dir('pid-nested-pre');
  const pre = join(base, 'pre');
  const fin = join(base, 'fin');
  try {
    const s = (run.subject = await startSubject('pid-ns-nested', [], { pthread: true }));
    await preDump({ pid: s.pid, imagesDir: pre, progress: false });
    assert.ok(isAlive(s.pid), 'a pre-dump leaves the tree running');
    const r = await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre', trackMem: true, progress: false });
    await gone(r.pids);
    assert.ok(r.stats.pagesSkippedParent > 0, 'the final dump finds pages in the pre-dump');
    const res = await restore({ imagesDir: fin, progress: false });
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('images of a nested pid namespace without criu-ts\'s fields (as CRIU writes them) are refused at restore in one line', TIMEOUT, async () => {
  const run = new SubjectRun();
  const dir = run.dir('pid-nested-stripped');
  try {
    const s = (run.subject = await startSubject('pid-ns-nested', [], { pthread: true }));
    await gone((await dump({ pid: s.pid, imagesDir: dir, progress: false })).pids);
    const path = join(dir, 'pstree.img');
    const entries = (readImage(path).entries as Entry[]).map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !OWN_FIELDS.includes(k))));
    const n = entries.find((e) => e['ppid'] === s.pid);
    writeImage(path, 'PSTREE', entries);
    const before = childrenOfUs();
    await assert.rejects(restore({ imagesDir: dir, progress: false, skipChecksums: true }), (e: unknown) => {
      assert.ok(isCriuTsError(e) && e.code === 'EUNSUPPORTED', String(e));
      assert.match(e.message, new RegExp(`^task ${String(n?.['pid'])} was dumped in a pid namespace nested in the tree's \\(ns id \\d+\\) without its pids there \\(pstree.img ns_pid\\)`));
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    const left = (): number[] => childrenOfUs().filter((p) => !before.includes(p));
    assert.ok(await waitFor(() => left().length === 0, 5000), `left behind: ${left().join(' ')}`);
  } finally {
    await run.cleanup();
  }
});

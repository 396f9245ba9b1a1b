/**
 * Pre-dump and incremental dumps with memory tracked by an async
 * write-protect userfaultfd (no soft-dirty on this kernel), issue 15:
 * pre-dump twice, then dump with the chain, restore through it, and the
 * subject (mem-dirty) checks every page against its model. Between the
 * steps the subject writes known pages, drops some (DONTNEED), maps, unmaps
 * and mremaps; the second pre-dump must copy exactly the pages of its
 * region written since the first. Also: criu-ts gone between pre-dumps
 * leaves a task that writes at full speed; a broken chain is one error; a
 * parent whose record was used once is not trusted twice; a final dump
 * that kills the tree leaves the tracker to the kill, and closes it when it
 * fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dump, preDump, restore, isCriuTsError } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import { startSubject, type Subject } from '../lib/subjects.js';
import { memDirtyPhase, pagesIn } from '../lib/page-server.js';
import { runCli, withFault } from '../lib/run.js';
import { writeProtectedPages } from '../lib/kill-walk.js';
import { FAULT_POINTS } from '../../src/fault.js';
import { waitFor, waitGone, useE2eHarness, killSubject } from '../lib/harness.js';

const PS = 4096n;
const R_PAGES = 256n;

useE2eHarness();

function uffdFds(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[userfaultfd]';
    } catch {
      return false;
    }
  });
}

/** A final dump (CLI) on top of ../pre1 into `fin`, then a restore: the task comes back with no tracker and passes its checks. */
async function finalDumpRestoresClean(s: Subject, fin: string): Promise<void> {
  const r = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', fin, '--prev-images-dir', '../pre1']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await waitGone(s.pid));
  await restore({ imagesDir: fin });
  assert.deepEqual(uffdFds(s.pid), [], 'the restored task has no tracker');
  const res = await s.terminateAndResult();
  assert.ok(res.ok, res.text);
}

/** Fresh image dirs NAMES under the subject's work dir (pre-dump chains name their parents as ../NAME). */
function imageDirs<const N extends string>(s: Subject, ...names: N[]): Record<N, string> {
  const out = {} as Record<N, string>;
  for (const n of names) {
    out[n] = join(s.workDir, n);
    mkdirSync(out[n]);
  }
  return out;
}

test('pre-dump, pre-dump, dump through the chain, restore: every page as the model says, no tracker left', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const { pre1, pre2, final: fin } = imageDirs(s, 'pre1', 'pre2', 'final');
    const r1 = await preDump({ pid: s.pid, imagesDir: pre1 });
    assert.equal(r1.stats.pagesSkippedParent, 0);
    assert.ok(r1.stats.pagesWritten >= Number(R_PAGES), `first pre-dump copies everything (${r1.stats.pagesWritten})`);
    assert.equal(uffdFds(s.pid).length, 1, 'one tracker in the task between pre-dumps');

    const p1 = await memDirtyPhase(s, 1);
    const r2 = await preDump({ pid: s.pid, imagesDir: pre2, prevImagesDir: '../pre1' });
    assert.equal(readlinkSync(join(pre2, 'parent')), '../pre1');
    // In R: exactly the pages written in phase 1 are copied again; the rest
    // (but the 4 dropped by DONTNEED and the 8 unmapped) are in the parent.
    const inR = pagesIn(pre2, s.pid, p1.rAddr, p1.rAddr + R_PAGES * PS);
    assert.equal(inR.copied, p1.written, `pages of R copied by the second pre-dump (${JSON.stringify(inR)})`);
    assert.equal(inR.parent, Number(R_PAGES) - p1.written - 4 - 8);
    assert.ok(r2.stats.pagesSkippedParent >= inR.parent);
    // Everything else the task touched meanwhile is small: its stack, libc's data, the new 16-page mapping.
    assert.ok(r2.stats.pagesWritten < p1.written + 16 + 40, `second pre-dump copied ${r2.stats.pagesWritten} pages`);
    const st = readImage(join(pre2, 'stats-dump')).entries[0] as { dump?: { pages_written: bigint; pages_skipped_parent: bigint } };
    assert.equal(Number(st.dump?.pages_written), r2.stats.pagesWritten);
    assert.equal(Number(st.dump?.pages_skipped_parent), r2.stats.pagesSkippedParent);

    const p2 = await memDirtyPhase(s, 2);
    const r3 = await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre2' });
    assert.ok(r3.stats.pagesSkippedParent > 0);
    const finR = pagesIn(fin, s.pid, p2.rAddr, p2.rAddr + R_PAGES * PS);
    // Phase 2's writes, plus R[110] (dropped, then written): in p2.written. R[104..106) are the zero page now: copied.
    assert.equal(finR.copied, p2.written + 2, `pages of R copied by the final dump (${JSON.stringify(finR)})`);
    assert.ok(await waitGone(s.pid), 'the dump killed the task');
    const r = await restore({ imagesDir: fin });
    assert.equal(r.pid, s.pid);
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
  }
});

test('a region of many runs (80 MiB, 2 pages in 7 written): the final dump copies exactly the pages written since, each once, and every page comes back', { timeout: 180_000 }, async () => {
  // The tracker's PAGEMAP_SCAN of R answers with about 5,800 runs: more
  // than one call's vector, and on 6.18 a last call's walk_end short of the
  // end (sys/uffd.ts pagemapScan): each page must still be reported once.
  const pages = 20480n;
  const s = await startSubject('mem-dirty', ['--pages', String(pages)]);
  try {
    const { pre1, final: fin } = imageDirs(s, 'pre1', 'final');
    await preDump({ pid: s.pid, imagesDir: pre1 });
    const p1 = await memDirtyPhase(s, 1);
    const p2 = await memDirtyPhase(s, 2);
    const r = await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre1' });
    const finR = pagesIn(fin, s.pid, p2.rAddr, p2.rAddr + pages * PS);
    // Both phases' writes (R[110], dropped and written again, among phase 2's), and R[104..106), the zero page now.
    assert.equal(finR.copied, p1.written + p2.written + 2, `pages of R copied by the final dump (${JSON.stringify(finR)}; written ${p1.written} + ${p2.written})`);
    // R[100..104), dropped in phase 1, are gone but R[100] (i % 7 == 2, written again in phase 2); R[200..208) are unmapped.
    const dropped = [100, 101, 102, 103].filter((i) => i % 7 !== 2).length;
    assert.equal(finR.parent, Number(pages) - finR.copied - dropped - 8, 'the rest of R left in the parent');
    assert.ok(r.stats.pagesSkippedParent >= finR.parent);
    assert.ok(await waitGone(s.pid), 'the dump killed the task');
    await restore({ imagesDir: fin });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
  }
});

function inodeOfFd(pid: number, fd: string): bigint {
  return statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino;
}

test('a poll the pre-dump stopped is in restart_syscall at the dump: the restored poll returns EINTR, not another call\'s restart state', { timeout: 120_000 }, async () => {
  const s = await startSubject('poll-restart', []);
  try {
    const [pre1, fin] = ['pre1', 'final'].map((n) => join(s.workDir, n)) as [string, string];
    for (const d of [pre1, fin]) mkdirSync(d);
    await preDump({ pid: s.pid, imagesDir: pre1 });
    // Let go, the poll goes back in through restart_syscall (orig_rax 219).
    assert.ok(await waitFor(() => readFileSync(`/proc/${s.pid}/syscall`, 'utf8').startsWith('219 '), 5000), 'poll restarted through restart_syscall');
    await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre1', trackMem: true });
    assert.ok(await waitGone(s.pid));
    // Stored as CRIU stores it: the call returns EINTR (no restart_syscall to re-issue in another task).
    const core = readImage(join(fin, `core-${s.pid}.img`)).entries[0] as { thread_info?: { gpregs?: { ax?: bigint; orig_ax?: bigint } } };
    assert.equal(BigInt.asIntN(64, BigInt(core.thread_info?.gpregs?.ax ?? 0)), -4n, 'rax = -EINTR');
    await restore({ imagesDir: fin });
    // Its poll came back EINTR and it polls again (7); re-issued, restart_syscall would run the stub's sleep.
    assert.ok(await waitFor(() => readFileSync(`/proc/${s.pid}/syscall`, 'utf8').startsWith('7 '), 5000), `in ${readFileSync(`/proc/${s.pid}/syscall`, 'utf8')}`);
    const r = await s.terminateAndResult(30_000);
    assert.equal(r.text, 'PASS');
  } finally {
    await killSubject(s);
  }
});

test('a child forked between pre-dumps: its inherited copy of the tracker is replaced by its own, its memory comes back through the chain', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', ['--fork', '1']);
  try {
    const { pre1, pre2, final: fin } = imageDirs(s, 'pre1', 'pre2', 'final');
    await preDump({ pid: s.pid, imagesDir: pre1 });
    await memDirtyPhase(s, 1);
    const kids = readFileSync(`/proc/${s.pid}/task/${s.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(kids.length, 1, 'the subject forked one child');
    const child = kids[0] as number;
    const parentUffd = uffdFds(s.pid);
    assert.equal(parentUffd.length, 1);
    // Inherited through fork: the same tracker (same inode), but the child's VMAs are not registered.
    assert.deepEqual(uffdFds(child).map((fd) => inodeOfFd(child, fd)), parentUffd.map((fd) => inodeOfFd(s.pid, fd)));
    const r2 = await preDump({ pid: s.pid, imagesDir: pre2, prevImagesDir: '../pre1' });
    assert.deepEqual(r2.pids, [s.pid, child]);
    const childUffd = uffdFds(child);
    assert.equal(childUffd.length, 1, 'the child has one tracker');
    assert.notEqual(inodeOfFd(child, childUffd[0] as string), inodeOfFd(s.pid, uffdFds(s.pid)[0] as string), 'the child has a tracker of its own');
    // The child was not in pre1: everything of it is copied.
    assert.equal(pagesIn(pre2, child, 0n, 2n ** 64n).parent, 0);
    const p2 = await memDirtyPhase(s, 2);
    const [, childWritten] = readFileSync(`${s.outFile}.child2`, 'utf8').trim().split(' ');
    await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre2' });
    const childR = pagesIn(fin, child, p2.rAddr, p2.rAddr + R_PAGES * PS);
    assert.equal(childR.copied, Number(childWritten), `the child's pages copied by the final dump (${JSON.stringify(childR)})`);
    assert.ok(childR.parent > 0);
    assert.ok(await waitGone(s.pid) && await waitGone(child));
    await restore({ imagesDir: fin });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
  }
});

test('criu-ts gone between pre-dumps: the task writes at full speed, then a final dump and restore leave its fds clean', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', ['--speed', '256']);
  try {
    const { pre1, final: fin } = imageDirs(s, 'pre1', 'final');
    // The CLI: a criu-ts process that ends after the pre-dump.
    const cli = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', pre1]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(uffdFds(s.pid).length, 1);
    process.kill(s.pid, 'SIGUSR2');
    const speedFile = `${s.outFile}.speed`;
    assert.ok(await waitFor(() => existsSync(speedFile), 30_000), 'no speed report');
    const [base, pass1, pass2, faults1, faults2] = readFileSync(speedFile, 'utf8').trim().split(' ').map(Number) as [number, number, number, number, number];
    // Pass 1 takes one minor fault per page left write-protected; then nothing is protected any more:
    // three more passes over the 65,536 pages take (next to) no fault, which is what full speed is made of.
    // (Speeds are shown, not checked: a loaded machine skews them.)
    console.log(`write speed over 256 MiB: before pre-dump ${base} GB/s; after: first pass ${pass1} GB/s (${faults1} minor faults), then ${pass2} GB/s (${faults2} faults in 3 passes)`);
    assert.ok(faults2 <= 655, `after the first pass no page is write-protected any more: ${faults2} minor faults in 3 passes over 65,536 pages (first pass: ${faults1})`);
    await finalDumpRestoresClean(s, fin);
  } finally {
    s.cleanup();
  }
});

test('a record is used once: a second dump from the same parent copies everything; a missing parent is one error', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const { pre1, pre2, again } = imageDirs(s, 'pre1', 'pre2', 'again');
    await preDump({ pid: s.pid, imagesDir: pre1 });
    await memDirtyPhase(s, 1);
    await preDump({ pid: s.pid, imagesDir: pre2, prevImagesDir: '../pre1' });
    // pre1's tracking was consumed by pre2: its pages may have changed since
    // in ways only pre2 knows. A dump from pre1 again must not trust it.
    const r = await preDump({ pid: s.pid, imagesDir: again, prevImagesDir: '../pre1' });
    assert.equal(r.stats.pagesSkippedParent, 0);
    // A chain whose parent went away: restore says so in one error.
    const fin = join(s.workDir, 'final');
    mkdirSync(fin);
    await memDirtyPhase(s, 2);
    await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../again', leaveRunning: true });
    renameSync(again, join(s.workDir, 'moved'));
    assert.deepEqual(uffdFds(s.pid), [], 'dump closed the tracker even with --leave-running');
    process.kill(s.pid, 'SIGKILL');
    assert.ok(await waitGone(s.pid));
    await assert.rejects(restore({ imagesDir: fin }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EIMAGE');
      assert.match(e.message, /parent/);
      return true;
    });
    assert.ok(!existsSync(`/proc/${s.pid}`), 'a failed restore leaves nothing');
  } finally {
    s.cleanup();
  }
});

test('dedup: the parents lose the pages the last dump holds again, and the last dump still restores', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const { pre1, pre2, final: fin } = imageDirs(s, 'pre1', 'pre2', 'final');
    await preDump({ pid: s.pid, imagesDir: pre1 });
    await memDirtyPhase(s, 1);
    await preDump({ pid: s.pid, imagesDir: pre2, prevImagesDir: '../pre1' });
    await memDirtyPhase(s, 2);
    await dump({ pid: s.pid, imagesDir: fin, prevImagesDir: '../pre2' });
    assert.ok(await waitGone(s.pid));
    const blocks = (d: string): bigint => readdirSync(d).filter((n) => /^pages-\d+\.img$/.test(n))
      .reduce((n, f) => n + statSync(join(d, f), { bigint: true }).blocks, 0n);
    const before = blocks(pre1) + blocks(pre2);
    const size = statSync(join(pre1, 'pages-1.img')).size;
    const cli = await runCli('criu-ts', ['dedup', '-D', fin]);
    assert.equal(cli.code, 0, cli.stderr);
    const after = blocks(pre1) + blocks(pre2);
    console.log(`dedup: parent pages files ${before * 512n} -> ${after * 512n} bytes allocated`);
    assert.ok(after < before, 'blocks freed in the parents');
    assert.equal(statSync(join(pre1, 'pages-1.img')).size, size, 'files keep their size (holes)');
    await restore({ imagesDir: fin });
    const res = await s.terminateAndResult();
    assert.ok(res.ok, res.text);
  } finally {
    s.cleanup();
  }
});

test('dump --track-mem -R twice (zdtm --snaps): the tracker the first dump leaves in the task is not dumped as its fd; the chain restores', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const { snap1, snap2 } = imageDirs(s, 'snap1', 'snap2');
    await dump({ pid: s.pid, imagesDir: snap1, leaveRunning: true, trackMem: true });
    assert.equal(uffdFds(s.pid).length, 1, 'the tracker stays in the task');
    await memDirtyPhase(s, 1);
    const r = await dump({ pid: s.pid, imagesDir: snap2, prevImagesDir: '../snap1', trackMem: true });
    assert.ok(r.stats.pagesSkippedParent > 0, 'the second dump takes pages from the first');
    assert.ok(await waitGone(s.pid));
    await restore({ imagesDir: snap2 });
    assert.equal(uffdFds(s.pid).length, 0, 'no userfaultfd in the restored task');
    assert.equal((await s.terminateAndResult(20_000)).text, 'PASS');
  } finally {
    await killSubject(s);
  }
});

test('a final dump that fails after the memory (dump.files) closes the tracker it would have left to the kill: the task runs on untracked', { timeout: 120_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  try {
    const { pre1, final: fin } = imageDirs(s, 'pre1', 'final');
    await preDump({ pid: s.pid, imagesDir: pre1 });
    assert.equal(uffdFds(s.pid).length, 1);
    const fault = String(FAULT_POINTS.indexOf('dump.files') + 1);
    const r = await withFault(fault, () => runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', fin, '--prev-images-dir', '../pre1']));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /injected by CRIU_TS_FAULT/);
    assert.deepEqual(uffdFds(s.pid), [], 'no tracker left in the task');
    assert.equal(writeProtectedPages(s.pid), 0, 'no page left write-protected');
    // And the chain still works: the pre-dump's record was used, so this dump copies everything.
    await finalDumpRestoresClean(s, fin);
  } finally {
    s.cleanup();
  }
});

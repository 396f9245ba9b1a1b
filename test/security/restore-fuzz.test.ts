/**
 * Restore fuzzer (issue 9, point 6). Dumps of a few subjects are copied
 * and damaged, one way per copy: a field of a decoded image set to an
 * edge value (0, -1, +1, a flipped bit, a huge number), an entry removed,
 * doubled or swapped, an image file removed or truncated, bytes flipped.
 * Each copy is restored through the command line, as a user would, with
 * --verify (a restore that says success must have put back what the
 * images say) and, mostly, --skip-checksums (or the checksums would stop
 * every case at the door). Every case must end in success or one error
 * line with a non-zero exit, within its time limit; afterwards no task of
 * the dump, no restore stub and no new file in the subject's directory
 * may be left.
 *
 * A few hundred cases run in `npm test`; CRIU_TS_FUZZ_CASES=10000 makes the
 * nightly-sized run. CRIU_TS_FUZZ_SEED replays a run; a failure names its
 * case number and mutation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, statSync, truncateSync, unlinkSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { removeDir, strayStubs, tempDir, useSubjectCleanup, waitGone, waitTreeGone } from '../e2e/helpers.js';

const TOTAL = Number(process.env['CRIU_TS_FUZZ_CASES'] ?? 150);
const SEED = Number(process.env['CRIU_TS_FUZZ_SEED'] ?? 20261206);
/** One restore of a few small tasks; a hang is what this catches. */
const CASE_TIMEOUT_MS = 60_000;
const SUBJECTS: readonly { name: string; pthread?: boolean }[] = [
  { name: 'threads', pthread: true },
  { name: 'pipe-data' },
  { name: 'mappings' },
];

/** Small deterministic PRNG (mulberry32), so a failing case can be replayed from the seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
function pick<T>(r: Rand, list: readonly T[]): T {
  const v = list[int(r, list.length)];
  if (v === undefined) throw new Error('pick from an empty list');
  return v;
}

type Leaf = { holder: Record<string, unknown> | unknown[]; key: string | number; value: unknown; path: string };
type ArrayRef = { arr: unknown[]; path: string };

/** Every number, bigint and boolean in a decoded entry, and every array, with where it sits. */
function walk(v: unknown, path: string, leaves: Leaf[], arrays: ArrayRef[]): void {
  if (Buffer.isBuffer(v) || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    arrays.push({ arr: v, path });
    v.forEach((x, i) => {
      if (typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean') leaves.push({ holder: v, key: i, value: x, path: `${path}[${i}]` });
      else walk(x, `${path}[${i}]`, leaves, arrays);
    });
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean') leaves.push({ holder: v as Record<string, unknown>, key: k, value: x, path: `${path}.${k}` });
    else walk(x, `${path}.${k}`, leaves, arrays);
  }
}

function edgeValue(r: Rand, v: number | bigint | boolean): number | bigint | boolean {
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'bigint') {
    const choices = [0n, 1n, v + 1n, v - 1n, v ^ (1n << BigInt(int(r, 64))), (1n << 64n) - 1n, 1n << 63n, 1n << 32n, BigInt(int(r, 1 << 30))];
    return BigInt.asUintN(64, pick(r, choices));
  }
  const choices = [0, 1, v + 1, v - 1, v ^ (1 << int(r, 31)), 0x7fffffff, 0xffffffff, -1, int(r, 1 << 20)];
  return pick(r, choices);
}

/** Damage one image of `dir` in one way; returns what was done (replays and failure messages name it). */
function mutate(dir: string, r: Rand): string {
  const files = readdirSync(dir).filter((f) => f !== 'criu-ts-checksums.img' && !f.startsWith('stats-'));
  for (let attempt = 0; attempt < 20; attempt++) {
    const file = pick(r, files);
    const path = join(dir, file);
    const how = r();
    if (how < 0.04) {
      unlinkSync(path);
      return `${file}: removed`;
    }
    if (how < 0.1) {
      const size = statSync(path).size;
      const to = int(r, size);
      truncateSync(path, to);
      return `${file}: truncated to ${to} of ${size} bytes`;
    }
    if (how < 0.18 || file.startsWith('pages-')) {
      const b = readFileSync(path);
      if (b.length === 0) continue;
      const at = int(r, b.length);
      const bit = int(r, 8);
      b[at] = (b[at] ?? 0) ^ (1 << bit);
      writeFileSync(path, b);
      return `${file}: bit ${bit} of byte ${at} flipped`;
    }
    let img;
    try {
      img = readImage(path);
    } catch {
      continue;
    }
    const leaves: Leaf[] = [];
    const arrays: ArrayRef[] = [{ arr: img.entries, path: 'entries' }];
    img.entries.forEach((e, i) => walk(e, `[${i}]`, leaves, arrays));
    let what: string;
    if (how < 0.8 && leaves.length > 0) {
      const leaf = pick(r, leaves);
      const to = edgeValue(r, leaf.value as number | bigint | boolean);
      (leaf.holder as Record<string | number, unknown>)[leaf.key] = to;
      what = `${leaf.path}: ${String(leaf.value)} -> ${String(to)}`;
    } else {
      const withItems = arrays.filter((a) => a.arr.length > 0);
      if (withItems.length === 0) continue;
      const a = pick(r, withItems);
      const i = int(r, a.arr.length);
      const op = int(r, 3);
      if (op === 0) {
        a.arr.splice(i, 1);
        if (a.arr === img.entries) img.extras.splice(i, 1);
        what = `${a.path}[${i}] removed`;
      } else if (op === 1) {
        a.arr.splice(i, 0, a.arr[i]);
        if (a.arr === img.entries) img.extras.splice(i, 0, img.extras[i]);
        what = `${a.path}[${i}] doubled`;
      } else {
        const j = int(r, a.arr.length);
        [a.arr[i], a.arr[j]] = [a.arr[j], a.arr[i]];
        if (a.arr === img.entries) [img.extras[i], img.extras[j]] = [img.extras[j], img.extras[i]];
        what = `${a.path}[${i}] and [${j}] swapped`;
      }
    }
    try {
      writeImage(path, img.kind.name, img.entries, img.extras);
    } catch {
      continue; // the value does not fit the field's type: the encoder refuses it, so no image could carry it
    }
    return `${file}: ${what}`;
  }
  return 'nothing (no mutable image found)';
}

/** A task we may kill: one of ours (restored trees are reparented to us, the subreaper), never someone else's. */
function isOurDescendant(pid: number): boolean {
  let cur = pid;
  for (let depth = 0; depth < 32; depth++) {
    let status: string;
    try {
      status = readFileSync(`/proc/${cur}/status`, 'latin1');
    } catch {
      return false;
    }
    const ppid = Number(/\nPPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (ppid === process.pid) return true;
    if (ppid <= 1) return false;
    cur = ppid;
  }
  return false;
}

/** Pids the (possibly damaged) dump names, for cleaning up after a case. */
function pidsIn(dir: string, fallback: readonly number[]): number[] {
  try {
    const e = readImage(join(dir, 'pstree.img')).entries as { pid?: number; threads?: number[] }[];
    return [...new Set([...fallback, ...e.flatMap((x) => [x.pid ?? 0, ...(x.threads ?? [])]).filter((p) => p > 1 && p < 1 << 22)])];
  } catch {
    return [...fallback];
  }
}

const { subjects, dirs } = useSubjectCleanup();

test(`restore fuzzer: ${TOTAL} damaged dumps of ${SUBJECTS.length} subjects end in success (verified) or one error line, leaving nothing`, { timeout: 60 * 60_000 }, async () => {
  const r = rng(SEED);
  const tally = { restored: 0, refused: 0, timedOut: 0 };
  const perSubject = Math.ceil(TOTAL / SUBJECTS.length);
  for (const sub of SUBJECTS) {
    const s = await startSubject(sub.name, [], { pthread: sub.pthread });
    subjects.push(s);
    await new Promise((res) => setTimeout(res, 50));
    const base = tempDir('fuzz-base');
    dirs.push(base);
    await dump({ pid: s.pid, imagesDir: base, progress: false });
    assert.deepEqual(await waitTreeGone(base), []);
    const dumpedPids = pidsIn(base, [s.pid]);
    const before = readdirSync(s.workDir).sort();
    for (let i = 0; i < perSubject; i++) {
      const caseNo = `${sub.name} #${i}`;
      const dir = tempDir('fuzz-case');
      try {
        cpSync(base, dir, { recursive: true });
        const what = mutate(dir, r);
        const skipChecksums = r() < 0.9;
        const args = ['restore', '-d', '-D', dir, '--verify', ...(skipChecksums ? ['--skip-checksums'] : [])];
        const res = await runCli('criu-ts', args, { timeoutMs: CASE_TIMEOUT_MS });
        const label = `case ${caseNo} (seed ${SEED}): ${what}${skipChecksums ? ' (--skip-checksums)' : ''}`;
        assert.notEqual(res.code, null, `${label}: restore did not finish in ${CASE_TIMEOUT_MS} ms`);
        if (res.code === 0) {
          tally.restored++;
        } else {
          tally.refused++;
          // One error line; the restore's own warnings (default -v2) may come before it.
          const lines = res.stderr.trim().split('\n').filter((l) => l.trim() !== '' && !/^\(\d+\.\d+\) Warn /.test(l));
          assert.equal(lines.length, 1, `${label}: expected one error line, got:\n${res.stderr}`);
          assert.match(lines[0] ?? '', /^Error/, `${label}: ${res.stderr}`);
          assert.doesNotMatch(res.stderr, /\n\s+at /, `${label}: a stack trace`);
          assert.doesNotMatch(res.stderr, /EINTERNAL|TypeError|RangeError|ReferenceError|Cannot read prop/, `${label}: an internal error`);
        }
        // Nothing left: the tree (restored or not) is killed; no stub, no new file beside the subject's.
        for (const pid of pidsIn(dir, dumpedPids)) {
          if (res.code !== 0 && isAlive(pid) && dumpedPids.includes(pid)) {
            let status = '';
            try {
              status = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').slice(0, 8).join(' | ');
            } catch {
              status = '(gone since)';
            }
            assert.fail(`${label}: task ${pid} left behind by a failed restore: ${res.stderr} ${status}`);
          }
          if (isAlive(pid) && isOurDescendant(pid)) {
            try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
          }
        }
        for (const pid of dumpedPids) assert.ok(await waitGone(pid), `${label}: task ${pid} would not go`);
        assert.deepEqual(strayStubs(), [], `${label}: restore stubs left behind`);
        assert.deepEqual(readdirSync(s.workDir).sort(), before, `${label}: files left in the subject's directory`);
      } finally {
        removeDir(dir);
      }
    }
  }
  process.stdout.write(`# restore fuzzer: ${JSON.stringify(tally)}\n`);
  assert.ok(tally.refused > 0, 'no case was refused: the mutations did nothing');
});

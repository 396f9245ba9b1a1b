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
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { dump } from '../../src/api/index.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { assertOneErrorLine, isOurDescendant, mutate, pidsIn, rng } from './fuzz-lib.js';
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
          assertOneErrorLine(label, res.stderr);
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

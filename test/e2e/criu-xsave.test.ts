/**
 * AVX-512 state across the two implementations: the avx512 subject (live
 * values in zmm0-31 and k1-k7 while it spins in user space) is dumped by
 * the real CRIU and restored by criu-ts, and its registers are intact. The
 * other way round (criu-ts's image restored by CRIU) is checked for the
 * XSAVE fields: the same fields with the same sizes as CRIU writes them.
 * Needs a CRIU binary: set CRIU_BIN (e.g. a 4.2 build's criu/criu); skipped
 * without it, or on a CPU without AVX-512.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import type { CoreEntry, UserX86FpregsEntry } from '../../src/images/messages.js';
import { startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { SUBJECTS } from '../lib/subject-table.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitTreeGone } from './helpers.js';

const CRIU = process.env['CRIU_BIN'];
const avx = SUBJECTS.find((c) => c.name === 'avx512');
const skip = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU binary to run this test'
  : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist`
    : avx?.skip;

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});


function fpregsOf(dir: string): UserX86FpregsEntry {
  const core = readdirSync(dir).find((f) => /^core-\d+\.img$/.test(f));
  assert.ok(core, `no core image in ${dir}`);
  const e = readImage(join(dir, core)).entries[0] as unknown as CoreEntry;
  const fp = e.thread_info?.fpregs;
  assert.ok(fp, 'fpregs in the core image');
  return fp;
}

/** Field name -> element count, for the XSAVE part of an fpregs entry (what CRIU checks on restore). */
function shape(fp: UserX86FpregsEntry): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(fp.xsave ?? {})) if (Array.isArray(v)) out[k] = v.length;
  for (const k of ['st_space', 'xmm_space', 'padding'] as const) if (fp[k] !== undefined) out[k] = (fp[k] as number[]).length;
  return out;
}

async function finish(s: Subject | undefined, dirs: string[]): Promise<void> {
  if (s) {
    await killAndWait(s.pid);
    s.cleanup();
  }
  for (const d of dirs) removeDir(d);
}

test('an AVX-512 subject dumped by CRIU is restored by criu-ts with zmm0-31 and k1-k7 intact; our image has CRIU\'s XSAVE fields', { skip, timeout: 120_000 }, async () => {
  let s: Subject | undefined;
  const theirs = tempDir('criu-xsave');
  const ours = tempDir('criu-xsave');
  try {
    s = await startSubject('avx512', [], {});
    await new Promise((r) => setTimeout(r, 100));
    const d = spawnSync(CRIU as string, ['dump', '-t', String(s.pid), '-D', theirs, '-o', 'dump.log', '-v4'], { encoding: 'utf8' });
    assert.equal(d.status, 0, `criu dump: ${d.stderr}`);
    assert.deepEqual(await waitTreeGone(theirs), [], 'task gone after CRIU\'s dump');
    const criuShape = shape(fpregsOf(theirs));
    assert.ok((criuShape['opmask_reg'] ?? 0) > 0 && (criuShape['hi16_zmm'] ?? 0) > 0, `CRIU wrote AVX-512 fields: ${JSON.stringify(criuShape)}`);
    const r = await restore({ imagesDir: theirs, progress: false });
    assert.equal(r.pid, s.pid);
    // Dump it again with criu-ts: the XSAVE fields must have CRIU's names and sizes.
    await dump({ pid: s.pid, imagesDir: ours, progress: false });
    assert.deepEqual(shape(fpregsOf(ours)), criuShape, 'XSAVE fields as CRIU writes them');
    await restore({ imagesDir: ours, progress: false });
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finish(s, [theirs, ours]);
  }
});

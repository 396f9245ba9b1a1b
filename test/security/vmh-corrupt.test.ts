/**
 * A pages file big enough for vmh256 (images/vmh.ts; 4 MiB or more): one
 * flipped bit anywhere in it is refused at restore through the CLI in one
 * line naming the file, the bytes and the algorithm, with no task left and
 * no stub (the file is checked beside the fill, images/beside-checks.ts:
 * the refusal rolls back the tasks already made); the same dump with the
 * bit put back restores and the subject passes its own check of every
 * page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import { vmhAvailable } from '../../src/images/vmh.js';
import { isAlive } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { passesAfterRestore, strayStubs, useE2eHarness, waitGone, withSubject } from '../lib/harness.js';

useE2eHarness();

test('vmh256: a flipped bit in a 16 MiB pages file is refused in one line, nothing left; put back, the dump restores', { skip: vmhAvailable() ? false : 'no WebAssembly SIMD', timeout: 180_000 }, async () => {
  await withSubject('big-memory', ['--mib', '16'], 'vmh', async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir });
    assert.ok(await waitGone(s.pid));
    const pagesName = readdirSync(dir).find((n) => /^pages-\d+\.img$/.test(n)) as string;
    const sums = readImage(join(dir, 'criu-ts-checksums')).entries as { name: string; size: bigint; algorithm?: string }[];
    const e = sums.find((x) => x.name === pagesName);
    assert.equal(e?.algorithm, 'vmh256', 'the pages digest is vmh256');
    assert.ok(Number(e?.size) >= 16 << 20);
    const path = join(dir, pagesName);
    const bytes = readFileSync(path);
    const at = Math.floor(bytes.length * 0.61) + 12_345; // inside some block, not on a boundary
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x10, at);
    writeFileSync(path, bytes);
    const r = await runCli('criu-ts', ['restore', '-d', '-D', dir]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const block = Math.floor(at / 65536) * 65536;
    assert.match(r.stderr, new RegExp(`${pagesName.replace('.', '\\.')}: contents changed since the dump at bytes ${block}\\.\\.${block + 65536} \\(vmh256 differs`));
    assert.ok(await waitGone(s.pid), 'nothing restored (the task made before the check is gone)');
    assert.equal(isAlive(s.pid), false);
    assert.deepEqual(strayStubs(), [], 'no stub left');
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x10, at);
    writeFileSync(path, bytes);
    const ok = await runCli('criu-ts', ['restore', '-d', '-D', dir]);
    assert.equal(ok.code, 0, ok.stderr);
    await passesAfterRestore(s);
  });
});

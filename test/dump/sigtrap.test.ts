/**
 * A pending SIGTRAP: the dump refuses it with one line, as CRIU does (zdtm
 * sigtrap is crfail), and leaves it exactly where it was: nothing of ours
 * takes a SIGTRAP any more (every signal blocked while held, no
 * single-step), so the subject still finds it in the process's and the
 * thread's queue, from its sender, with its handler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, isCriuTsError } from '../../src/api/index.js';
import { startSubject } from '../lib/subjects.js';
import { useE2eHarness } from '../e2e/helpers.js';

useE2eHarness();

test('a pending SIGTRAP is refused at dump and stays pending in both queues, handler kept', { timeout: 60_000 }, async () => {
  const s = await startSubject('sigtrap-pending', []);
  try {
    const dir = join(s.workDir, 'img');
    mkdirSync(dir);
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`task ${s.pid}: a SIGTRAP is pending`));
      return true;
    });
    const r = await s.terminateAndResult(30_000);
    assert.ok(r.ok, r.text);
  } finally {
    s.cleanup();
  }
});

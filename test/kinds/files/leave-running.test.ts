/**
 * Dumping pipes, FIFOs and unix sockets reads their queued bytes without
 * consuming them: a task dumped with leaveRunning still finds every byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../../src/api/dump.js';
import { startSubject } from '../../lib/subjects.js';

for (const name of ['pipe-data', 'fifo', 'unix-pair', 'unix-bound', 'unix-fork']) {
  test(`${name}: a dump with leaveRunning leaves every queued byte in place`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `criu-ts-leave-${name}-`));
    const s = await startSubject(name, []);
    try {
      await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
      assert.equal((await s.terminateAndResult(10_000)).text, 'PASS');
    } finally {
      s.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * Every subject must PASS when simply started, signalled and checked, with
 * no checkpoint in between (only a SIGSTOP/SIGCONT, as a freeze would do):
 * proves the subjects themselves before dump and restore tests rely on them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSubject, startSubject } from '../lib/subjects.js';
import { SUBJECTS } from '../lib/subject-table.js';

// Build all first so a compile error is reported for the subject that has it.
for (const c of SUBJECTS) {
  test(`subject ${c.name} builds`, () => {
    buildSubject(c.name, { pthread: c.pthread });
  });
}

for (const c of SUBJECTS) {
  test(`subject ${c.name} passes without checkpoint`, c.skip === undefined ? {} : { skip: c.skip }, async () => {
    const s = await startSubject(c.name, c.args, { pthread: c.pthread });
    try {
      if (c.runMs > 0) await new Promise((r) => setTimeout(r, c.runMs));
      // A dump freezes the task; a stop/continue must not disturb any subject (no EINTR, no lost state).
      process.kill(s.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 30));
      process.kill(s.pid, 'SIGCONT');
      const res = await s.terminateAndResult(10_000);
      assert.ok(res.ok, res.text);
    } finally {
      s.cleanup();
    }
  });
}

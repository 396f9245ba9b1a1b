/**
 * Every subject must PASS when simply started, signalled and checked, with
 * no checkpoint in between (only a SIGSTOP/SIGCONT, as a freeze would do):
 * proves the subjects themselves before dump and restore tests rely on them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSubject, startSubject } from '../lib/subjects.js';

interface Case {
  name: string;
  pthread?: boolean;
  args?: string[];
  /** Time to let the subject run between ready and SIGTERM. */
  runMs?: number;
}

const CASES: Case[] = [
  { name: 'counter-loop', runMs: 100 },
  { name: 'mappings' },
  { name: 'big-memory', args: ['--mib', '64'] },
  { name: 'signals' },
  { name: 'itimer', runMs: 120 },
  { name: 'file-offsets' },
  { name: 'fpu', runMs: 100 },
  { name: 'sleep-nanosleep', runMs: 50 },
  { name: 'read-pipe', args: ['--delay-ms', '300'] },
  { name: 'wait-child', args: ['--delay-ms', '300'] },
  { name: 'poll', args: ['--delay-ms', '300'] },
  { name: 'fd-kinds', args: ['--fanotify', '1', '--tty', '1'] },
  { name: 'proc-target', pthread: true },
];

// Build all first so a compile error is reported for the subject that has it.
for (const c of CASES) {
  test(`subject ${c.name} builds`, () => {
    buildSubject(c.name, { pthread: c.pthread === true });
  });
}

for (const c of CASES) {
  test(`subject ${c.name} passes without checkpoint`, async () => {
    const s = await startSubject(c.name, c.args ?? [], { pthread: c.pthread === true });
    try {
      if (c.runMs !== undefined) await new Promise((r) => setTimeout(r, c.runMs));
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

/**
 * The task-state registry: every kind has a name of its own and puts back
 * what it dumps at some restore point (a kind that only dumped would be
 * state lost without a word).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TASK_STATE_KINDS } from '../../../src/kinds/index.js';
import { TASK_RESTORE_POINTS } from '../../../src/kinds/task/types.js';

test('task-state kinds have unique names and restore at known points', () => {
  const names = TASK_STATE_KINDS.map((k) => k.name);
  assert.equal(new Set(names).size, names.length, `duplicate names: ${names.join(', ')}`);
  for (const k of TASK_STATE_KINDS) {
    const points = Object.keys(k.restore);
    assert.ok(points.length > 0, `${k.name} restores nothing`);
    for (const p of points) assert.ok((TASK_RESTORE_POINTS as readonly string[]).includes(p), `${k.name}: unknown restore point ${p}`);
  }
});

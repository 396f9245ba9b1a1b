import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { listThreads, listChildren, walkTree } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { startProcTarget, infoNum } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

test('threads, children of every thread, and the tree', () => {
  const pid = t.subject.pid;
  const [child1, child2, grandchild] = [infoNum(t, 'child1'), infoNum(t, 'child2'), infoNum(t, 'grandchild')];
  assert.deepEqual(listThreads(pid), [pid, infoNum(t, 'thread')].sort((a, b) => a - b));
  // child2 was forked by the second thread: only the union over task/*/children has it.
  assert.deepEqual(listChildren(pid), [child1, child2].sort((a, b) => a - b));
  assert.deepEqual(listChildren(child1), [grandchild]);
  assert.deepEqual(walkTree(pid), [pid, ...[child1, child2].sort((a, b) => a - b), grandchild]);
  assert.throws(() => walkTree(99999), (e) => isCriuTsError(e) && e.code === 'ENOTASK');
});

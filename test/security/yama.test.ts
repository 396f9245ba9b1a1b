/**
 * Yama's ptrace_scope for callers we act for (issue 9 point 1: the
 * kernel's ptrace rules). This kernel may have no Yama, so the rule is
 * tested as a decision with the scope given: scope 1 lets a caller trace
 * only its descendants (unless it holds CAP_SYS_PTRACE), 2 only with
 * CAP_SYS_PTRACE, 3 nobody; a refusal is EPERM naming the task and why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { checkTraceable, isDescendantOf, readYamaScope, yamaRefusal } from '../../src/dump/authorize.js';
import type { CallerCreds } from '../../src/caller.js';

test('Yama: the decision for each scope', () => {
  for (const cap of [false, true]) {
    for (const desc of [false, true]) {
      assert.equal(yamaRefusal(undefined, cap, desc), undefined, 'no Yama: classic rules only');
      assert.equal(yamaRefusal(0, cap, desc), undefined);
      assert.equal(yamaRefusal(1, cap, desc) === undefined, cap || desc);
      assert.equal(yamaRefusal(2, cap, desc) === undefined, cap);
      assert.match(yamaRefusal(3, cap, desc) ?? '', /ptrace_scope is 3/);
    }
  }
  const scope = readYamaScope();
  assert.ok(scope === undefined || Number.isInteger(scope));
});

test('Yama: descendants by real parent; a caller that is not an ancestor is refused under scope 1', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const sibling = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const pid = child.pid as number;
    assert.ok(isDescendantOf(pid, process.pid));
    assert.ok(isDescendantOf(pid, 1), 'init is everyone\'s ancestor');
    assert.ok(!isDescendantOf(process.pid, pid));
    assert.ok(!isDescendantOf(pid, sibling.pid));
    assert.ok(!isDescendantOf(pid, undefined));
    // Root's own child: the classic rules let a uid 0 caller trace it; only Yama decides here.
    const as = (callerPid: number | undefined, capSysPtrace = false): CallerCreds => ({ uid: 0, gid: 0, groups: [], capSysPtrace, pid: callerPid });
    checkTraceable([pid], as(process.pid), 1);
    checkTraceable([pid], as(sibling.pid, true), 1);
    checkTraceable([pid], as(sibling.pid), 0);
    for (const [caller, scope, why] of [
      [as(sibling.pid), 1, /ptrace_scope is 1 and it is not a descendant of the caller/],
      [as(undefined), 1, /ptrace_scope is 1/],
      [as(process.pid), 2, /only CAP_SYS_PTRACE/],
      [as(process.pid, true), 3, /no process may attach/],
    ] as const) {
      assert.throws(() => checkTraceable([pid], caller, scope), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'EPERM');
        assert.match(e.message, new RegExp(`^task ${pid}: uid 0 may not dump it: `));
        assert.match(e.message, why);
        return true;
      });
    }
  } finally {
    child.kill('SIGKILL');
    sibling.kill('SIGKILL');
  }
});

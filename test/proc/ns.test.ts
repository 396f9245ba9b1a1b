import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { inOwnNs, nsLinkOf, readNsLink, readNsLinkOrWhy } from '../../src/proc/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { waitSleeping } from '../lib/harness.js';

test('ns links: ours, a child in namespaces of its own, a task that is gone', async () => {
  assert.equal(readNsLink('self', 'net'), readlinkSync('/proc/self/ns/net'));
  assert.equal(readNsLink('thread-self', 'uts'), readlinkSync('/proc/thread-self/ns/uts'));
  assert.match(readNsLink(process.pid, 'pid_for_children'), /^pid:\[\d+\]$/);
  const child = spawn('unshare', ['--uts', '--ipc', 'sleep', '30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  try {
    assert.ok(await waitSleeping(pid));
    assert.match(readNsLink(pid, 'uts'), /^uts:\[\d+\]$/);
    assert.notEqual(readNsLink(pid, 'uts'), readNsLink('self', 'uts'));
    assert.equal(inOwnNs(pid, 'uts'), false);
    assert.equal(inOwnNs(pid, 'ipc'), false);
    assert.equal(inOwnNs(pid, 'net'), true);
    assert.equal(nsLinkOf(pid, 'no-such-kind'), undefined);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  assert.equal(nsLinkOf(pid, 'net'), undefined);
  assert.equal(inOwnNs(pid, 'net'), undefined);
  assert.throws(() => readNsLink(pid, 'net'), (e) => isCriuTsError(e) && e.code === 'ENOTASK' && /cannot read \/proc\/\d+\/ns\/net/.test(e.message));
});

test('why a link is missing: a kind this kernel lacks, a task gone, a pid namespace for children not entered yet', async () => {
  assert.deepEqual(readNsLinkOrWhy(process.pid, 'net'), { link: readlinkSync('/proc/self/ns/net') });
  const why = (pid: number, type: string): string | undefined => {
    const r = readNsLinkOrWhy(pid, type);
    return 'why' in r ? r.why : undefined;
  };
  assert.equal(why(process.pid, 'no-such-kind'), 'no-such-kind');
  // unshare --pid without --fork: sleep's next children would be born in a namespace no task has entered yet.
  const child = spawn('unshare', ['--pid', 'sleep', '30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  try {
    assert.ok(await waitSleeping(pid));
    assert.equal(why(pid, 'pid_for_children'), 'not-entered');
    assert.equal(why(pid, 'pid'), undefined);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  assert.equal(why(pid, 'net'), 'gone');
});

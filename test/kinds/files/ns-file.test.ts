/**
 * Namespace files held open: the task's own namespaces come back (NS
 * entries that crit 3.17 reads as we do); an fd of a namespace the task is
 * not in is refused at dump with one line, the task running on.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { dump } from '../../../src/api/index.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import { removeDir, tempDir } from '../../e2e/helpers.js';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

test('the task\'s own net and uts namespaces held as fds come back', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'ns-fd',
    check(dir) {
      const ns = fileEntries(dir).filter((e) => e.type === 'NS');
      assert.deepEqual(ns.map((e) => e.nsf?.ns_cflag ?? 0).sort((a, b) => a - b), [0x04000000, 0x40000000]);
      sameAsCrit(dir, ['files.img']);
    },
  });
});

test('an fd of a namespace the task is not in is refused at dump, naming it', { timeout: STEP_TIMEOUT_MS }, async () => {
  const other = spawn('unshare', ['--uts', 'sleep', '60'], { stdio: 'ignore' });
  const dir = tempDir('kind-ns-refused');
  try {
    let link = '';
    for (let i = 0; i < 200 && (link === '' || link === readlinkSync('/proc/self/ns/uts')); i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        link = readlinkSync(`/proc/${other.pid}/ns/uts`);
      } catch {
        link = '';
      }
    }
    const s = await startSubject('ns-fd', ['--extra', `/proc/${other.pid}/ns/uts`]);
    try {
      await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'EUNSUPPORTED');
        assert.match(e.message, /fd 22/);
        assert.match(e.message, /a namespace the task is not in/);
        return true;
      });
      assert.ok(isAlive(s.pid), 'a refused dump leaves the task running');
    } finally {
      s.cleanup();
    }
  } finally {
    other.kill('SIGKILL');
    removeDir(dir);
  }
});

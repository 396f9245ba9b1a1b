/**
 * The time namespace kind (src/kinds/ns/time.ts): a task in a time
 * namespace of its own (monotonic and boottime clocks moved ahead) is
 * restored in a new one where both clocks go on from their dumped values;
 * timens-<id>.img is CRIU's (crit 3.17 reads it; CRIU 4.2 restores ours
 * and criu-ts restores CRIU's, with CRIU_BIN). A nested time namespace is
 * refused with one line, and so are a pid or time namespace of their own
 * for an unprivileged caller (they take capabilities it lacks).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage, writeImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitGone } from '../../e2e/helpers.js';
import { sameAsCrit } from '../files/round-trip.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };
const CRIU = process.env['CRIU_BIN'];
const noCriu = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;

function offsets(pid: number): string {
  return readFileSync(`/proc/${pid}/timens_offsets`, 'latin1');
}

function criu(args: string[], dir: string): void {
  const r = spawnSync(CRIU as string, [...args, '-D', dir, '-o', `${args[0]}.log`, '-v4'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, `criu ${args[0]} failed (see ${dir}/${args[0]}.log): ${r.stderr}`);
}

async function roundTrip(dumper: 'criu-ts' | 'criu', restorer: 'criu-ts' | 'criu'): Promise<void> {
  const dir = tempDir(`time-ns-${dumper}`);
  let s: Subject | undefined;
  try {
    s = await startSubject('time-ns', [], { launcher: true });
    assert.match(offsets(s.pid), /monotonic\s+864000\s/);
    if (dumper === 'criu') {
      criu(['dump', '-t', String(s.pid)], dir);
      assert.ok(await waitGone(s.pid));
    } else {
      const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
      for (const p of r.pids) assert.ok(await waitGone(p));
      const ids = readImage(join(dir, `ids-${s.pid}.img`)).entries[0] as Record<string, number>;
      const inv = readImage(join(dir, 'inventory.img')).entries[0] as { root_ids: Record<string, number> };
      assert.notEqual(ids['time_ns_id'], inv.root_ids['time_ns_id']);
      const file = `timens-${ids['time_ns_id']}.img`;
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('timens-')), [file]);
      const e = readImage(join(dir, file)).entries[0] as { monotonic: { tv_sec: bigint } };
      assert.ok(e.monotonic.tv_sec >= 864000n, 'the clock as the task saw it');
      sameAsCrit(dir, [file]);
    }
    // Let time pass: the restored clocks must not have moved by it.
    await new Promise((r) => setTimeout(r, 1500));
    if (restorer === 'criu') {
      criu(['restore', '-d', '--pidfile', join(dir, 'root.pid')], dir);
    } else {
      await restore({ imagesDir: dir, progress: false, skipChecksums: dumper === 'criu' });
    }
    assert.ok(isAlive(s.pid), 'restored');
    // The offsets make up for the time the task was away (a little less than before).
    const mono = Number(/monotonic\s+(\d+)/.exec(offsets(s.pid))?.[1]);
    assert.ok(mono < 864000 && mono > 864000 - 600, `monotonic offset ${mono}`);
    const out = await s.terminateAndResult(30_000);
    assert.ok(out.ok, `${dumper} -> ${restorer}: ${out.text}`);
  } finally {
    if (s) await killAndWait(s.pid);
    s?.cleanup();
    removeDir(dir);
  }
}

test('a task in a time namespace of its own comes back in a new one, its clocks going on from their dumped values', TIMEOUT, async () => {
  await roundTrip('criu-ts', 'criu-ts');
});

test('CRIU 4.2 restores criu-ts\'s dump of a time namespace, and criu-ts restores CRIU\'s', { ...TIMEOUT, skip: noCriu }, async () => {
  await roundTrip('criu-ts', 'criu');
  await roundTrip('criu', 'criu-ts');
});

test('a time namespace nested in the tree\'s is refused with one line, the tree runs on', TIMEOUT, async () => {
  const s = await startSubject('time-ns', ['--nested', '1'], { launcher: true });
  const dir = tempDir('time-ns-nested');
  try {
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e) && e.code === 'EUNSUPPORTED', String(e));
      assert.match(e.message, /^task \d+ \(time-ns\) would start its children in another time namespace .*: nested time namespaces are not supported$/);
      return true;
    });
    assert.ok(isAlive(s.pid));
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
  } finally {
    s.cleanup();
    removeDir(dir);
  }
});

test('for an unprivileged caller, images asking for a pid or time namespace of their own are refused with EPERM, nothing made', TIMEOUT, async () => {
  const dir = tempDir('ns-unpriv');
  const s = await startSubject('counter-loop', [], { uid: 65534, gid: 65534 });
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(s.pid));
    const path = join(dir, `ids-${s.pid}.img`);
    const ids = readImage(path).entries[0] as Record<string, number>;
    const caller = { uid: 65534, gid: 65534, groups: [], capSysPtrace: false };
    for (const [field, what] of [['pid_ns_id', 'pid'], ['time_ns_id', 'time']] as const) {
      writeImage(path, 'IDS', [{ ...ids, [field]: 99 }]);
      // The image is edited on purpose: past the checksums, to the check itself.
      await assert.rejects(restore({ imagesDir: dir, progress: false, skipChecksums: true, asCaller: caller }), (e: unknown) => {
        assert.ok(isCriuTsError(e) && e.code === 'EPERM', String(e));
        assert.equal(e.message, `not restored for an unprivileged caller: task ${s.pid} would be in a ${what} namespace of its own`);
        return true;
      });
      assert.ok(!isAlive(s.pid), 'nothing restored');
    }
  } finally {
    s.cleanup();
    removeDir(dir);
  }
});

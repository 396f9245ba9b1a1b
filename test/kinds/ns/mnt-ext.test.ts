/**
 * External mounts of a container (src/kinds/ns/mnt/): a directory of a
 * shared tmpfs of ours bound into the mnt-ns subject's tree (--ext): /e1
 * a private bind of it that mountinfo lists before /e2, its bind, named
 * external (as zdtm's mnt_ext_collision has it); /e3 a bind that stays a
 * slave of our mount's peer group, named external (zdtm's mnt_root_ext,
 * mnt_ext_multiple). The restore binds both from the one source given,
 * /e1 again from /e2 (no files of it saved), and /e3 is a slave of the
 * source's group again: a mount made under the source here shows there.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { parseMountinfo } from '../../../src/proc/index.js';
import { startSubject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, tempDir, waitGone } from '../../e2e/helpers.js';
import { SubjectRun } from '../../lib/subject-run.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

function sh(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

test('external mounts: a slave of a shared mount of ours and a bind of one listed before it come back from the source given, the slave still receiving our mounts', TIMEOUT, async () => {
  const root = tempDir('mnt-ext-root');
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'e1', 'e2', 'e3']) mkdirSync(join(root, d), { recursive: true });
  const src = tempDir('mnt-ext-src');
  const dir = tempDir('mnt-ext-img');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  let mounted = false;
  try {
    sh('mount', ['-t', 'tmpfs', 'criu-ts-ext', src]);
    mounted = true;
    sh('mount', ['--make-shared', src]);
    writeFileSync(join(src, 'hello'), 'from outside\n');
    mkdirSync(join(src, 'sub'));
    const s = (run.subject = await startSubject('mnt-ns', ['--root', root, '--ext', src], { static: true, launcher: true, workDir: join(root, 'w') }));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false, extMounts: [{ key: '/e2', value: 'E2' }, { key: '/e3', value: 'E3' }] });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    type M = { mountpoint: string; ext_key?: string; master_id?: number };
    const mounts = readImage(join(dir, `mountpoints-${ids['mnt_ns_id']}.img`)).entries as M[];
    const order = mounts.map((m) => m.mountpoint);
    assert.ok(order.indexOf('/e1') < order.indexOf('/e2'), order.join(' '));
    assert.deepEqual(mounts.filter((m) => m.ext_key !== undefined).map((m) => [m.mountpoint, m.ext_key]), [['/e2', 'E2'], ['/e3', 'E3']]);
    assert.notEqual(mounts.find((m) => m.mountpoint === '/e3')?.master_id ?? 0, 0, '/e3 is a slave of our group');
    // Only the subject's own tmpfs are saved: /e1 is the external /e2's filesystem.
    assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 2);

    const res = await restore({ imagesDir: dir, progress: false, root, extMounts: [{ key: 'E2', value: src }, { key: 'E3', value: src }] });
    run.restored = res.pid;
    for (const e of ['e1', 'e2', 'e3']) assert.equal(readFileSync(`/proc/${res.pid}/root/${e}/hello`, 'utf8'), 'from outside\n', e);
    // /e3 is a slave of the source's peer group again: a mount made here under the source shows there.
    const group = parseMountinfo(process.pid).filter((m) => m.mountpoint === src).pop()?.shared ?? 0;
    assert.notEqual(group, 0);
    assert.equal(parseMountinfo(res.pid).find((m) => m.mountpoint === '/e3')?.master, group);
    sh('mount', ['-t', 'tmpfs', 'criu-ts-ext-sub', join(src, 'sub')]);
    try {
      assert.ok(parseMountinfo(res.pid).some((m) => m.mountpoint === '/e3/sub'), '/e3 receives our mount');
      assert.ok(!parseMountinfo(res.pid).some((m) => m.mountpoint === '/e2/sub'), '/e2 (private) does not');
    } finally {
      sh('umount', [join(src, 'sub')]);
    }
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
    if (mounted) spawnSync('umount', ['-l', src]);
    spawnSync('rmdir', [src]);
  }
});

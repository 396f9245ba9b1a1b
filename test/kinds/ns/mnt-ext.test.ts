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
import { dump, restore, type DumpOptions } from '../../../src/api/index.js';
import { parseMountinfo } from '../../../src/proc/index.js';
import { isAlive } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, tempDir } from '../../lib/harness.js';
import { dumpGone, inRoot, mountsOf } from './mnt-root.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

function sh(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/**
 * Runs `body` with a shared tmpfs of ours (source `name`) at a temporary
 * dir, holding a file `hello` and an empty dir `sub`, and its peer group;
 * then it is unmounted and removed.
 */
async function withSharedSource(name: string, body: (src: string, group: number) => Promise<void>): Promise<void> {
  const src = tempDir(`${name}-src`);
  let mounted = false;
  try {
    sh('mount', ['-t', 'tmpfs', name, src]);
    mounted = true;
    sh('mount', ['--make-shared', src]);
    writeFileSync(join(src, 'hello'), 'from outside\n');
    mkdirSync(join(src, 'sub'));
    const group = parseMountinfo(process.pid).filter((m) => m.mountpoint === src).pop()?.shared ?? 0;
    assert.notEqual(group, 0);
    await body(src, group);
  } finally {
    if (mounted) spawnSync('umount', ['-l', src]);
    spawnSync('rmdir', [src]);
  }
}

/** With a tmpfs mounted at src/sub for the length of `check`: which of the restored tree's mounts receive it. */
function withSubMount(src: string, check: () => void): void {
  sh('mount', ['-t', 'tmpfs', 'criu-ts-ext-sub', join(src, 'sub')]);
  try {
    check();
  } finally {
    sh('umount', [join(src, 'sub')]);
  }
}

test('external mounts: a slave of a shared mount of ours and a bind of one listed before it come back from the source given, the slave still receiving our mounts', TIMEOUT, () => withSharedSource('criu-ts-ext', (src, group) => inRoot('mnt-ext', async ({ root, dir, run, start }) => {
  const s = await start(['--ext', src]);
  await dumpGone(s.pid, dir, { extMounts: [{ key: '/e2', value: 'E2' }, { key: '/e3', value: 'E3' }] });
  const mounts = mountsOf<{ mountpoint: string; ext_key?: string; master_id?: number }>(dir);
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
  assert.equal(parseMountinfo(res.pid).find((m) => m.mountpoint === '/e3')?.master, group);
  withSubMount(src, () => {
    assert.ok(parseMountinfo(res.pid).some((m) => m.mountpoint === '/e3/sub'), '/e3 receives our mount');
    assert.ok(!parseMountinfo(res.pid).some((m) => m.mountpoint === '/e2/sub'), '/e2 (private) does not');
  });
  await run.passesAt(res.pid);
})));

/**
 * Automatic external mounts (--external mnt[], with
 * --enable-external-masters and --enable-external-sharing): the subject's
 * /e1 (a private bind of our shared tmpfs), /e2 (its bind), /e3 (a slave
 * of our tmpfs's group), /e4 (a peer of it, attached from a clone taken in
 * our namespace) and /fb (a bind of a file of it), and /ro (a bind of the
 * root's filesystem), are found at dump from our own mounts, each refusal
 * on the way naming the mount and the option; the restore binds each from
 * the path saved, /e3 a slave and /e4 a peer of our group again.
 */
test('automatic external mounts: found from our mounts at dump (a slave and a peer of our group only with --enable-external-masters/-sharing), bound again at restore, back in our group', TIMEOUT, () => withSharedSource('criu-ts-auto', (src, group) => inRoot('mnt-auto', async ({ root, dir, run, start }) => {
  const refused = async (pid: number, o: Partial<DumpOptions>, re: RegExp): Promise<void> => {
    await assert.rejects(dump({ pid, imagesDir: dir, progress: false, ...o }), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
    assert.ok(isAlive(pid), 'a refused dump leaves the tree running');
  };
  // A first subject without /e4 and /fb (only /e1, /e2, /e3), in a root of its own: /e3's master is our group alone.
  await inRoot('mnt-auto-first', async (first) => {
    writeFileSync(join(first.root, 'fb'), '');
    const s0 = await first.start(['--ext', src]);
    const e3 = `: mount \\d+ at /e3 \\(tmpfs criu-ts-auto, root /\\): it receives mounts from peer group ${group} outside its mount namespace: `;
    await refused(s0.pid, {}, new RegExp(`${e3}keep it with --external mnt\\[\\] --enable-external-masters \\(mnt\\[\\]:m\\), or name it with --external mnt\\[MOUNTPOINT\\]:KEY$`));
    await refused(s0.pid, { autoExtMounts: true }, new RegExp(`${e3}keep it with --enable-external-masters \\(mnt\\[\\]:m\\)$`));
  });
  writeFileSync(join(root, 'fb'), '');
  const s = await start(['--ext', src, '--ext-auto', '1']);
  const e4 = `: mount \\d+ at /e4 \\(tmpfs criu-ts-auto, root /\\): it is shared with ${src} outside its mount namespace \\(peer group ${group}\\): `;
  await refused(s.pid, {}, new RegExp(`${e4}keep it with --external mnt\\[\\] --enable-external-sharing \\(mnt\\[\\]:s\\)$`));
  await refused(s.pid, { autoExtMounts: true, extMasters: true }, new RegExp(`${e4}keep it with --enable-external-sharing \\(mnt\\[\\]:s\\)$`));

  await dumpGone(s.pid, dir, { autoExtMounts: true, extMasters: true, extSharing: true });
  const mounts = mountsOf<{ mountpoint: string; ext_key?: string; source?: string; internal_sharing?: boolean }>(dir);
  const auto = mounts.filter((m) => m.ext_key === 'CRIU:AUTOGENERATED').map((m) => [m.mountpoint, m.source]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  assert.deepEqual(auto.filter(([p]) => p !== '/ro'), [['/e1', src], ['/e2', src], ['/e3', src], ['/e4', src], ['/fb', `${src}/hello`]]);
  // /ro shows the root's filesystem, which our "/" mounts too.
  assert.deepEqual(auto.find(([p]) => p === '/ro'), ['/ro', join(root, 'data/sub')]);
  assert.equal(mounts.find((m) => m.mountpoint === '/e4')?.internal_sharing, undefined, '/e4 is shared with our group, not only inside');
  assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 2, 'only the subject\'s own tmpfs are saved');

  await assert.rejects(restore({ imagesDir: dir, progress: false, root }), /: mount \d+ at \/e\d is an external mount found automatically at dump \(source .*\): give --external mnt\[\] to bind it from there again$/);
  const res = await restore({ imagesDir: dir, progress: false, root, autoExtMounts: true });
  run.restored = res.pid;
  for (const e of ['e1', 'e2', 'e3', 'e4', 'fb']) assert.equal(readFileSync(`/proc/${res.pid}/root/${e}${e === 'fb' ? '' : '/hello'}`, 'utf8'), 'from outside\n', e);
  const theirs = parseMountinfo(res.pid);
  assert.equal(theirs.find((m) => m.mountpoint === '/e3')?.master, group, '/e3 a slave of our group');
  assert.equal(theirs.find((m) => m.mountpoint === '/e4')?.shared, group, '/e4 a peer of our group');
  withSubMount(src, () => {
    const now = parseMountinfo(res.pid);
    for (const e of ['/e3', '/e4']) assert.ok(now.some((m) => m.mountpoint === `${e}/sub`), `${e} receives our mount`);
    for (const e of ['/e1', '/e2']) assert.ok(!now.some((m) => m.mountpoint === `${e}/sub`), `${e} (private) does not`);
  });
  await run.passesAt(res.pid);
})));

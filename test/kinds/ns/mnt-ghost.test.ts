/**
 * Unlinked files of a tree in a mount namespace of its own (files/ghost/,
 * files/tree-paths.ts): the mnt-ns subject with --ghosts holds an fd on an
 * unlinked file of its root's filesystem, a shared mapping of an unlinked
 * tmpfs file, a removed cwd and an unlinked file on a read-only bind (made
 * writable in the namespace while the ghost is made and opened, read-only
 * again before the tree runs: the subject compares its mount tree). They are dumped through the task's view,
 * and at restore made again inside the new namespace once its tree is
 * built, opened, mapped and entered by the task, and removed: the subject
 * checks contents, offset, the names its fds read and that no name is
 * left; here, that nothing is left under --root either.
 * With --nested --link-remap, a task of a nested mount namespace holds a
 * file still linked elsewhere through a mount of its parent's namespace:
 * the dump's link_remap.N is made through that very mount (linkat across
 * mounts is EXDEV), the restore reopens it there and removes it; a ghost
 * held through the parent's /t and the nested namespace's /t3 (a bind of
 * /t/dir, where it had another name) comes back with each fd on its own
 * mount, the ghost linked into /t/dir for that (zdtm's mntns_link_ghost). In a user
 * namespace (zdtm's uns maps) the ghost on the tmpfs the container mounted
 * and that link are made with ids the container's namespace maps (root of
 * the initial namespace is refused there with EOVERFLOW).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { startSubject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, tempDir, waitGone } from '../../e2e/helpers.js';
import { SubjectRun } from '../../lib/subject-run.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

test('unlinked files, an unlinked mapping and a removed cwd of a tree in its own mount namespace come back inside it under --root', TIMEOUT, async () => {
  const root = tempDir('mnt-ghost-root');
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub']) mkdirSync(join(root, d), { recursive: true });
  const dir = tempDir('mnt-ghost');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startSubject('mnt-ns', ['--root', root, '--ghosts', '1'], { static: true, launcher: true, workDir: join(root, 'w') }));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    // Names as the task saw them, in its tree; one ghost image per inode.
    const files = readImage(join(dir, 'files.img')).entries as { id: number; reg?: { name: string } }[];
    const remaps = readImage(join(dir, 'remap-fpath.img')).entries as { orig_id: number; remap_type?: string | number }[];
    const remapped = remaps.map((x) => files.find((f) => f.id === x.orig_id)?.reg?.name).sort();
    assert.deepEqual([...new Set(remapped)], ['/data/g1', '/data/gone', '/ro/gro', '/t/g2']);
    assert.equal(readdirSync(dir).filter((n) => n.startsWith('ghost-file-')).length, 4);

    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
    run.restored = res.pid;
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount of the restore shows in our namespace');
    // The root's filesystem as we see it: the ghosts' names are gone again.
    assert.deepEqual(readdirSync(join(root, 'data')).sort(), ['sub']);
    assert.deepEqual(readdirSync(join(root, 'data', 'sub')).sort(), ['file']);
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

function ghostRoot(top: string): string {
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'n', 'n2']) mkdirSync(join(top, d), { recursive: true });
  return top;
}

/** Dump (with --link-remap), check what is left in the images, restore under --root, and expect PASS from inside. */
async function nestedLinkRemap(args: string[], tag: string): Promise<void> {
  const top = tempDir(`mnt-lr-${tag}`);
  const root = ghostRoot(join(top, 'root'));
  const dir = tempDir(`mnt-lr-${tag}-img`);
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(top);
  try {
    chmodSync(top, 0o755);
    const s = (run.subject = await startSubject('mnt-ns', ['--root', root, '--nested', '1', '--link-remap', '1', ...args], { static: true, launcher: true, workDir: join(root, 'w') }));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false, linkRemap: true });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const files = readImage(join(dir, 'files.img')).entries as { id: number; reg?: { name: string; mnt_id?: number } }[];
    const remaps = readImage(join(dir, 'remap-fpath.img')).entries as { orig_id: number; remap_id: number; remap_type?: string | number }[];
    const linked = remaps.filter((x) => x.remap_type === 'LINKED');
    assert.equal(linked.length, 1, 'one link remap');
    const [l] = linked;
    const orig = files.find((f) => f.id === l?.orig_id)?.reg;
    const link = files.find((f) => f.id === l?.remap_id)?.reg;
    assert.equal(orig?.name, '/t/lr');
    assert.match(link?.name ?? '', /^\/t\/link_remap\.\d+$/);
    assert.equal(link?.mnt_id, orig?.mnt_id, 'the link is on the mount the file was opened through');
    // The ghost held through /t (the subject's) and /t3 (the nested namespace's): one image, two mounts.
    const gh = remaps.filter((x) => x.remap_type === 'GHOST').map((x) => files.find((f) => f.id === x.orig_id)?.reg).filter((f) => /^\/t3?\/gh$/.test(f?.name ?? ''));
    assert.deepEqual(gh.map((f) => f?.name).sort(), ['/t/gh', '/t3/gh']);
    assert.notEqual(gh[0]?.mnt_id, gh[1]?.mnt_id);
    assert.equal(new Set(remaps.filter((x) => x.remap_type === 'GHOST' && gh.includes(files.find((f) => f.id === x.orig_id)?.reg)).map((x) => x.remap_id)).size, 1);
    const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
    run.restored = res.pid;
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
}

test('a file still linked elsewhere, held in a nested mount namespace through a mount of its parent\'s: linked (--link-remap) and reopened through that mount, the link removed; a ghost held through two mounts reopened through each', TIMEOUT, async () => {
  await nestedLinkRemap([], 'ns');
});

test('in a user namespace (zdtm\'s uns maps): a ghost on the container\'s own tmpfs and a link remap there are made with ids it maps', TIMEOUT, async () => {
  await nestedLinkRemap(['--userns', '1', '--ghosts', '1'], 'uns');
});

/**
 * Files criu-ts writes as root never follow a user's links (docs/security.md).
 * The images dir and the subject's work dir belong to an unprivileged user,
 * who plants a symlink to a root-only file at every name a dump or restore
 * could create there: every image, the pages files, the log (-o), the
 * restore pidfile, the restore stats and the ghost files' temporary names;
 * then swaps the directory the ghosts go back to for a link to a root-only
 * directory (a link of a user's on the way is never followed). The root-only file must stay
 * untouched (contents, mode, owner), and each operation either succeeds
 * with the links replaced, or is refused with one line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, lchownSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readImage } from '../../src/images/index.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitGone } from '../e2e/helpers.js';

/** nobody: an unprivileged owner for the directories (its uid is all that matters here). */
const USER = 65534;

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

interface Victim {
  path: string;
  check(): void;
}

/** A root-only file in a root-only directory, with contents we can recognise. */
function makeVictim(dir: string): Victim {
  const path = join(dir, 'root-only.secret');
  const text = 'root only: must never be written, truncated, chowned or chmodded\n';
  writeFileSync(path, text, { mode: 0o600 });
  const before = statSync(path);
  return {
    path,
    check(): void {
      const st = statSync(path);
      assert.equal(readFileSync(path, 'utf8'), text, 'the root-only file was written through a planted link');
      assert.equal(st.mode, before.mode, 'the root-only file changed mode');
      assert.equal(st.uid, 0, 'the root-only file changed owner');
      assert.equal(st.ino, before.ino);
    },
  };
}

function plant(dir: string, names: Iterable<string>, target: string): void {
  for (const n of names) {
    rmSync(join(dir, n), { force: true });
    symlinkSync(target, join(dir, n));
  }
}

/** The names a restore may give ghosts, from remap-fpath.img and files.img. */
function ghostTempNames(imagesDir: string): { dir: string; name: string }[] {
  const files = new Map<number, string>();
  for (const e of readImage(join(imagesDir, 'files.img')).entries as { id: number; reg?: { name: string } }[]) {
    if (e.reg) files.set(e.id, e.reg.name);
  }
  const out: { dir: string; name: string }[] = [];
  for (const r of readImage(join(imagesDir, 'remap-fpath.img')).entries as { orig_id: number; remap_id: number }[]) {
    const path = files.get(r.orig_id);
    if (path === undefined) continue;
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    // A ghost is made at `<name>.cr.<id>.ghost`, a removed directory at its own name if free.
    out.push({ dir, name: `${basename(path)}.cr.${r.remap_id.toString(16)}.ghost` }, { dir, name: basename(path) });
  }
  return out;
}

const oneLine = (s: string): boolean => s.trim().split('\n').length === 1;

let subject: Subject | undefined;
const dirs: string[] = [];
after(async () => {
  if (subject !== undefined) {
    await killAndWait(subject.pid);
    subject.cleanup();
  }
  for (const d of dirs) removeDir(d);
});

test('links planted at every name a dump or restore creates are never followed', { timeout: 120_000 }, async () => {
  const rootDir = tempDir('victim');
  const reference = tempDir('ref');
  const images = tempDir('user-images');
  dirs.push(rootDir, reference, images);
  const victim = makeVictim(rootDir);
  chownSync(images, USER, USER);

  subject = await startSubject('ghost-files');
  chownSync(subject.workDir, USER, USER);
  // A reference dump (-R) tells us every name a dump of this subject writes.
  const ref = await runCli('criu-ts', ['dump', '-t', String(subject.pid), '-D', reference, '-R']);
  assert.equal(ref.code, 0, ref.stderr);
  const names = new Set(readdirSync(reference));
  names.add('dump.log');
  assert.ok([...names].some((n) => n.startsWith('pages-')), 'the reference dump wrote pages');
  plant(images, names, victim.path);

  // The dump replaces the links with its own files.
  const d = await runCli('criu-ts', ['dump', '-t', String(subject.pid), '-D', images, '-v4', '-o', 'dump.log']);
  assert.equal(d.code, 0, d.stderr);
  victim.check();
  assert.ok(await waitGone(subject.pid), 'the dump (without -R) ends the subject');
  for (const n of readdirSync(reference)) {
    const st = lstatSync(join(images, n));
    assert.ok(st.isFile(), `${n} is a regular file of the dump, not the planted link`);
  }
  assert.ok(lstatSync(join(images, 'dump.log')).isFile(), 'dump.log replaced');
  assert.match(readFileSync(join(images, 'dump.log'), 'utf8'), /dump/);

  // Restore: a pidfile, a log and stats at planted names; ghosts' temporary names planted too.
  const ghosts = ghostTempNames(images);
  assert.ok(ghosts.length >= 2, 'the subject has ghost files');
  for (const g of ghosts) plant(g.dir, [g.name], victim.path);
  plant(images, ['restore.pid', 'restore.log', 'stats-restore'], victim.path);
  const restoreArgs = ['restore', '-d', '-D', images, '--pidfile', join(images, 'restore.pid'), '-o', 'restore.log'];

  let r = await runCli('criu-ts', restoreArgs);
  assert.notEqual(r.code, 0, 'a pidfile name that exists refuses the restore');
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /pidfile .* already exists/);
  assert.equal(isAlive(subject.pid), false, 'nothing restored');
  victim.check();

  unlinkSync(join(images, 'restore.pid'));
  r = await runCli('criu-ts', restoreArgs);
  assert.notEqual(r.code, 0, 'a planted ghost name refuses the restore');
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /ghost .*(EEXIST|exists)/);
  assert.equal(isAlive(subject.pid), false, 'nothing restored');
  victim.check();
  for (const g of ghosts) assert.ok(lstatSync(join(g.dir, g.name)).isSymbolicLink(), 'the planted ghost name is left as it was');

  for (const g of ghosts) unlinkSync(join(g.dir, g.name));

  // The user swaps its directory (where the ghosts go back) for a link to a
  // root-only directory: the ghosts' names are free there, but a link of a
  // user's on the way is never followed by root.
  const work = subject.workDir;
  const moved = `${work}.moved`;
  renameSync(work, moved);
  symlinkSync(rootDir, work);
  lchownSync(work, USER, USER);
  const rootDirBefore = readdirSync(rootDir).sort().join(' ');
  r = await runCli('criu-ts', restoreArgs);
  assert.notEqual(r.code, 0, 'a user\'s link on the way to the ghosts refuses the restore');
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /ghost .*symlink of uid 65534, not followed as root/);
  assert.equal(isAlive(subject.pid), false, 'nothing restored');
  assert.equal(readdirSync(rootDir).sort().join(' '), rootDirBefore, 'nothing made in the root-only directory');
  victim.check();
  unlinkSync(work);
  renameSync(moved, work);

  r = await runCli('criu-ts', restoreArgs);
  assert.equal(r.code, 0, r.stderr);
  victim.check();
  assert.equal(readFileSync(join(images, 'restore.pid'), 'utf8'), String(subject.pid));
  assert.ok(lstatSync(join(images, 'restore.log')).isFile(), 'restore.log replaced');
  assert.ok(lstatSync(join(images, 'stats-restore')).isFile(), 'stats-restore replaced');
  for (const g of ghosts) assert.throws(() => lstatSync(join(g.dir, g.name)), 'ghost temporary names removed after restore');
  const res = await subject.terminateAndResult();
  assert.ok(res.ok, res.text);
  victim.check();
});

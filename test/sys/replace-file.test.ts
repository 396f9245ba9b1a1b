/**
 * createOrReplaceFile (images): a new name written in place, an existing
 * one (a planted symlink) replaced, never written through; holdDir keeps
 * one fd on the directory while held and closes it on release.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOrReplaceFile, holdDir } from '../../src/sys/index.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('createOrReplaceFile: a new file in place, an existing name replaced and never written through', () => {
  const dir = mkdtempSync('/tmp/criu-ts-test-replace-');
  try {
    createOrReplaceFile(join(dir, 'a.img'), Buffer.from('one'));
    assert.equal(readFileSync(join(dir, 'a.img'), 'utf8'), 'one');
    assert.equal(lstatSync(join(dir, 'a.img')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['a.img'], 'no temporary name left');
    // An earlier image is replaced.
    createOrReplaceFile(join(dir, 'a.img'), Buffer.from('two'));
    assert.equal(readFileSync(join(dir, 'a.img'), 'utf8'), 'two');
    // A planted link is replaced, its target untouched.
    writeFileSync(join(dir, 'victim'), 'keep');
    symlinkSync(join(dir, 'victim'), join(dir, 'b.img'));
    createOrReplaceFile(join(dir, 'b.img'), Buffer.from('img'));
    assert.ok(lstatSync(join(dir, 'b.img')).isFile());
    assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'keep');
    assert.deepEqual(readdirSync(dir).sort(), ['a.img', 'b.img', 'victim']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('holdDir: one fd on the directory while held, closed on release', () => {
  const dir = mkdtempSync('/tmp/criu-ts-test-hold-');
  try {
    const before = openFds();
    const release = holdDir(dir);
    assert.equal(openFds(), before, 'opened at the first file made there');
    for (let i = 0; i < 5; i++) createOrReplaceFile(join(dir, `core-${i}.img`), Buffer.from([i]));
    assert.equal(openFds(), before + 1);
    const inner = holdDir(join(dir, '.'));
    inner();
    assert.equal(openFds(), before + 1, 'holds nest');
    release();
    release();
    assert.equal(openFds(), before);
    assert.equal(readdirSync(dir).length, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * bin/load-bundle.cjs: the code cache beside the CLI bundle. Made by the
 * first run, taken by the next, and never trusted when someone else could
 * have written it or when it was made from another bundle. Runs on a copy
 * of bin/ and dist/bundle/ in a temp dir (node_modules linked), so the
 * repository's own cache is not touched. A cache V8 takes is left alone; one
 * the loader refuses or V8 rejects is replaced at exit: the inode says which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync,
  writeFileSync, lstatSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../lib/subjects.js';

function setUp(): string {
  const root = repoRoot();
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-cc-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist', 'bundle'), { recursive: true });
  for (const f of ['criu-ts', 'load-bundle.cjs', 'package.json']) copyFileSync(join(root, 'bin', f), join(dir, 'bin', f));
  copyFileSync(join(root, 'dist', 'bundle', 'criu-ts.cjs'), join(dir, 'dist', 'bundle', 'criu-ts.cjs'));
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

function criuTs(dir: string, args: string[]): void {
  const p = spawnSync(process.execPath, [join(dir, 'bin', 'criu-ts'), ...args], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
}

function version(dir: string): void {
  const p = spawnSync(process.execPath, [join(dir, 'bin', 'criu-ts'), '--version'], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /^Version: \d+\.\d+\nGitID: criu-ts-/);
  assert.equal(p.stderr, '');
}

/** The cache of `command` ("help": a run without one), the only one there is. */
function cacheOf(dir: string, command = 'help'): string {
  const names = readdirSync(join(dir, 'dist', 'bundle')).filter((f) => f.endsWith(`.${command}.cache`));
  assert.equal(names.length, 1, `one cache file for ${command}: ${names.join(' ')}`);
  return join(dir, 'dist', 'bundle', names[0] as string);
}

function fails(dir: string, args: string[]): void {
  const p = spawnSync(process.execPath, [join(dir, 'bin', 'criu-ts'), ...args], { encoding: 'utf8' });
  assert.notEqual(p.status, 0, p.stderr);
}

test('the first run writes the cache (owner-only writable), the next takes it as it is', () => {
  const dir = setUp();
  try {
    version(dir);
    const cache = cacheOf(dir);
    const st = statSync(cache);
    assert.equal(st.uid, process.geteuid?.());
    assert.equal(st.mode & 0o022, 0);
    assert.match(readFileSync(cache).subarray(0, 200).toString('latin1'), /^criu-ts code cache 1 v\d+/);
    version(dir);
    assert.equal(statSync(cacheOf(dir)).ino, st.ino, 'a valid cache is used, not rewritten');
    assert.equal(readdirSync(join(dir, 'dist', 'bundle')).filter((f) => f.endsWith('.tmp')).length, 0);
    // Each command has a cache of its own (with its functions), written by its first run, taken by the next.
    const images = join(dir, 'images');
    mkdirSync(images);
    criuTs(dir, ['dedup', '-D', images]);
    const dedup = statSync(cacheOf(dir, 'dedup'));
    assert.equal(statSync(cacheOf(dir)).ino, st.ino, 'the --help cache is left as it was');
    assert.match(readFileSync(cacheOf(dir)).toString('latin1').split('\n')[1] ?? '', /^- *$/);
    assert.match(readFileSync(cacheOf(dir, 'dedup')).toString('latin1').split('\n')[1] ?? '', /^dedup *$/);
    // V8 copies cached data that is not pointer-aligned: the code starts at a multiple of 8 in each file.
    for (const c of [cacheOf(dir), cacheOf(dir, 'dedup')]) {
      const bytes = readFileSync(c);
      assert.equal((bytes.indexOf(10, bytes.indexOf(10) + 1) + 1) % 8, 0, `${c}: the code is 8-byte aligned`);
    }
    criuTs(dir, ['dedup', '-D', images]);
    version(dir);
    assert.equal(statSync(cacheOf(dir, 'dedup')).ino, dedup.ino, 'then left alone');
    assert.equal(statSync(cacheOf(dir)).ino, st.ino);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed run\'s cache names no command: used, and made again until a run succeeds', () => {
  const dir = setUp();
  try {
    fails(dir, ['dedup', '-D', join(dir, 'no-such-dir')]);
    const failed = statSync(cacheOf(dir, 'dedup'));
    assert.match(readFileSync(cacheOf(dir, 'dedup')).toString('latin1').split('\n')[1] ?? 'x', /^ *$/);
    const images = join(dir, 'images');
    mkdirSync(images);
    criuTs(dir, ['dedup', '-D', images]);
    const ok = statSync(cacheOf(dir, 'dedup'));
    assert.notEqual(ok.ino, failed.ino, 'made again by the run that succeeded');
    assert.match(readFileSync(cacheOf(dir, 'dedup')).toString('latin1').split('\n')[1] ?? '', /^dedup *$/);
    criuTs(dir, ['dedup', '-D', images]);
    assert.equal(statSync(cacheOf(dir, 'dedup')).ino, ok.ino, 'then left alone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cache others could write, another owner\'s, a link or one made from another bundle is not used', () => {
  const dir = setUp();
  try {
    version(dir);
    const cache = cacheOf(dir);
    const cases: Array<[string, () => void]> = [
      ['group-writable', () => chmodSync(cache, 0o664)],
      ['world-writable', () => chmodSync(cache, 0o646)],
      ['owned by nobody', () => chownSync(cache, 65534, 65534)],
      ['stamped for another bundle', () => {
        const b = readFileSync(cache);
        const nl = b.indexOf(10);
        // The same length, another ctime: what a rebuilt bundle of the same size would look like.
        const stamp = b.subarray(0, nl).toString('latin1');
        const head = stamp.slice(0, -1) + String((Number(stamp.slice(-1)) + 1) % 10);
        writeFileSync(cache, Buffer.concat([Buffer.from(head, 'latin1'), b.subarray(nl)]), { mode: 0o644 });
      }],
      ['a symlink to a valid cache', () => {
        const real = `${cache}.real`;
        copyFileSync(cache, real);
        rmSync(cache);
        symlinkSync(real, cache);
      }],
    ];
    for (const [what, spoil] of cases) {
      version(dir);
      spoil();
      const before = lstatSync(cache).ino;
      version(dir);
      const after = lstatSync(cache);
      assert.notEqual(after.ino, before, `${what}: replaced by a fresh cache`);
      assert.ok(after.isFile(), `${what}: a plain file again`);
      assert.equal(after.uid, process.geteuid?.(), what);
      assert.equal(after.mode & 0o777, 0o644, what);
      rmSync(`${cache}.real`, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unwritable place for the cache costs nothing but the compile', () => {
  const dir = setUp();
  try {
    // Not the bundle's owner: the run never writes (what a user running a root-owned install gets).
    chownSync(join(dir, 'dist', 'bundle', 'criu-ts.cjs'), 65534, 65534);
    version(dir);
    assert.deepEqual(readdirSync(join(dir, 'dist', 'bundle')).sort(), ['criu-ts.cjs']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

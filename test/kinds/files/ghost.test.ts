/**
 * Unlinked files in the images: one ghost per inode whatever reaches it,
 * sparse data runs as ghost_chunk_entry, --ghost-limit against allocated
 * blocks, and --link-remap (refused without it; its temporary name goes
 * away when the tasks run on).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../../src/api/dump.js';
import { isCriuTsError } from '../../../src/errors.js';
import { readImage } from '../../../src/images/index.js';
import type { GhostFileEntry, GhostChunkEntry, RemapFilePathEntry, FileEntry } from '../../../src/images/messages.js';
import { startSubject, type Subject } from '../../lib/subjects.js';
import { sameAsCrit } from './round-trip.js';
import { killSubject } from '../../lib/harness.js';

async function withSubject(name: string, run: (s: Subject, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `criu-ts-ghost-${name}-`));
  const s = await startSubject(name);
  try {
    await run(s, dir);
  } finally {
    await killSubject(s);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('one ghost per unlinked inode, sparse runs as chunks, limit by allocated blocks', { timeout: 60_000 }, async () => {
  await withSubject('ghost-shared', async (s, dir) => {
    // 64 MiB apparent, 16 KiB allocated: under the default 1 MiB limit.
    await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
    const files = new Map((readImage(join(dir, 'files.img')).entries as unknown as FileEntry[]).map((f) => [f.id, f]));
    const remaps = readImage(join(dir, 'remap-fpath.img')).entries as unknown as RemapFilePathEntry[];
    const byGhost = new Map<number, string[]>();
    for (const r of remaps) {
      assert.equal(r.remap_type, 'GHOST');
      const name = files.get(r.orig_id)?.reg?.name ?? '?';
      byGhost.set(r.remap_id, [...(byGhost.get(r.remap_id) ?? []), name]);
    }
    const ghostOf = (base: string): number => {
      const hit = [...byGhost].find(([, names]) => names.some((n) => n.endsWith(`/${base}`)));
      assert.ok(hit, `no ghost for ${base}: ${JSON.stringify([...byGhost])}`);
      return hit[0];
    };
    // Two names, two opens: one ghost. An fd and a mapping: one ghost. The removed cwd and its fd: one ghost.
    assert.equal(ghostOf('name1'), ghostOf('name2'));
    assert.ok((byGhost.get(ghostOf('mapped')) ?? []).length >= 2, 'fd and mapping share the ghost');
    assert.ok((byGhost.get(ghostOf('cwd-dir')) ?? []).length >= 2, 'cwd and fd share the ghost');
    const sparse = readImage(join(dir, `ghost-file-${ghostOf('sparse.dat').toString(16)}.img`));
    const g = sparse.entries[0] as unknown as GhostFileEntry;
    assert.equal(g.chunks, true);
    assert.equal(g.mode & 0o7777, 0o6751);
    assert.equal(g.size, BigInt(8192 * 2 + (64 << 20)));
    const chunks = sparse.entries.slice(1) as unknown as GhostChunkEntry[];
    assert.deepEqual(chunks.map((c) => [c.off, c.len]), [[0n, 8192n], [BigInt(8192 + (64 << 20)), 8192n]]);
    assert.deepEqual(sparse.extras.slice(1).map((b) => b?.length), [8192, 8192]);

    // 16 KiB allocated is over a 12 KiB limit: refused by name, the task runs on.
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true, ghostLimit: 12 * 1024 }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`^task ${s.pid} fd \\d+: unlinked file .*sparse\\.dat takes 16384 bytes on disk, more than --ghost-limit 12288$`));
      return true;
    });
    const r = await s.terminateAndResult(10_000);
    assert.equal(r.text, 'PASS');
  });
});

test('a file unlinked but linked elsewhere: refused without --link-remap, linked with it', { timeout: 60_000 }, async () => {
  await withSubject('link-remap', async (s, dir) => {
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`^task ${s.pid} fd \\d+: .*/first-name was unlinked but is still linked elsewhere \\(nlink 1\\); use --link-remap$`));
      return true;
    });
    await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true, linkRemap: true });
    const remaps = readImage(join(dir, 'remap-fpath.img')).entries as unknown as RemapFilePathEntry[];
    assert.equal(remaps.length, 1);
    assert.equal(remaps[0]?.remap_type, 'LINKED');
    const files = readImage(join(dir, 'files.img')).entries as unknown as FileEntry[];
    const link = files.find((f) => f.id === remaps[0]?.remap_id)?.reg?.name ?? '';
    assert.match(link, /\/link_remap\.\d+$/);
    // The tasks run on: the temporary name must not stay behind.
    assert.equal(existsSync(link), false, `${link} left behind`);
    assert.deepEqual(readdirSync(s.workDir).filter((n) => n.startsWith('link_remap.')), []);
    const r = await s.terminateAndResult(10_000);
    assert.equal(r.text, 'PASS');
  });
});

test('an unlinked symlink held by an O_PATH fd: a ghost with its target, crit 3.17 reads it', async () => {
  await withSubject('opath-symlink', async (s, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
    const ghosts = readdirSync(dir).filter((n) => n.startsWith('ghost-file-'));
    assert.equal(ghosts.length, 1, 'one ghost: the unlinked symlink');
    const g = readImage(join(dir, ghosts[0] ?? '')).entries[0] as unknown as GhostFileEntry;
    assert.equal(g.mode & 0o170000, 0o120000, 'a symlink');
    assert.equal(g.symlnk_target, '/nowhere/at/all');
    assert.deepEqual([g.uid, g.gid], [4242, 4343]);
    const files = readImage(join(dir, 'files.img')).entries as unknown as FileEntry[];
    assert.ok(files.some((f) => f.reg?.name.endsWith('/link')), 'the linked symlink is a REG entry by its path');
    sameAsCrit(dir, ['files.img', ghosts[0] ?? '']);
    const r = await s.terminateAndResult();
    assert.ok(r.ok, r.text);
  });
});

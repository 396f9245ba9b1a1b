/**
 * Interoperability the other way round: criu-ts restores an image that the
 * real CRIU 4.2 made (../shared/vectors/criu-4.2/loop, see its README). The
 * subject program is rebuilt from its source at the path the image names;
 * with the same compiler and libc it is the same binary (the build id in
 * files.img proves it), so the file mappings line up. The restored task
 * must carry on: its counter (at image base + 0x4030) keeps growing and its
 * 64 KiB heap pattern is intact. Skipped, with the reason, when the
 * vectors, a matching binary or libc, or the dumped pid are not available.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import type { FileEntry, PstreeEntry } from '../../src/images/messages.js';
import { repoRoot } from '../lib/subjects.js';
import { tempDir, removeDir, killAndWait, sleep, becomeSubreaper } from './helpers.js';

const vectors = join(repoRoot(), '..', 'shared', 'vectors');
const imgDir = join(vectors, 'criu-4.2', 'loop', 'img');

function buildIdHex(words: readonly number[]): string {
  return words.map((w) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(w >>> 0);
    return b.toString('hex');
  }).join('');
}

function elfBuildId(path: string): string | undefined {
  try {
    return /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', path], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

function readU64(pid: number, addr: bigint, len = 8): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, Number(addr));
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Why this machine cannot run the test, or undefined when it can. */
function unavailable(): string | undefined {
  if (!existsSync(imgDir)) return `no CRIU vectors at ${imgDir}`;
  const files = readImage(join(imgDir, 'files.img')).entries as unknown as FileEntry[];
  const exe = files.find((f) => f.reg?.name === '/tmp/vec-work/loop')?.reg;
  if (!exe?.build_id) return 'files.img does not name the loop binary';
  try {
    mkdirSync('/tmp/vec-work', { recursive: true });
    execFileSync('gcc', ['-O1', '-o', '/tmp/vec-work/loop', join(vectors, 'subjects', 'loop.c')], { stdio: 'ignore' });
  } catch {
    return 'gcc cannot build the loop subject';
  }
  if (elfBuildId('/tmp/vec-work/loop') !== buildIdHex(exe.build_id)) return 'this gcc builds a different loop binary than the one CRIU dumped';
  for (const f of files) {
    const r = f.reg;
    if (!r?.build_id || r.name === '/tmp/vec-work/loop') continue;
    if (!existsSync(r.name) || statSync(r.name).size !== Number(r.size) || elfBuildId(r.name) !== buildIdHex(r.build_id)) {
      return `${r.name} differs from the one in the image`;
    }
  }
  const pid = (readImage(join(imgDir, 'pstree.img')).entries[0] as unknown as PstreeEntry).pid;
  if (existsSync(`/proc/${pid}`)) return `pid ${pid} is in use here`;
  return undefined;
}

const why = unavailable();

test('an image made by CRIU 4.2 (loop) is restored by criu-ts and carries on', { skip: why ?? false, timeout: 60_000 }, async () => {
  becomeSubreaper();
  const dir = tempDir('criu42-img');
  const pid = (readImage(join(imgDir, 'pstree.img')).entries[0] as unknown as PstreeEntry).pid;
  try {
    cpSync(imgDir, dir, { recursive: true });
    const r = await restore({ imagesDir: dir, detach: true, progress: false });
    assert.equal(r.pid, pid);
    // From the vectors README: counter at image base + 0x4030, heap pointer at + 0x4028.
    const base = BigInt(`0x${/^([0-9a-f]+)-/m.exec(execFileSync('cat', [`/proc/${pid}/maps`], { encoding: 'latin1' }))?.[1] ?? '0'}`);
    const c0 = readU64(pid, base + 0x4030n).readBigUInt64LE(0);
    await sleep(600);
    const c1 = readU64(pid, base + 0x4030n).readBigUInt64LE(0);
    assert.ok(c1 > c0, `counter did not move: ${c0} -> ${c1}`);
    const heap = readU64(pid, base + 0x4028n).readBigUInt64LE(0);
    const data = readU64(pid, heap, 65536);
    for (let i = 0; i < data.length; i++) assert.equal(data[i], (i * 7 + 3) & 0xff, `heap byte ${i}`);
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});

/**
 * Interoperability the other way round: criu-ts restores images that the
 * real CRIU 4.2 made (../shared/vectors/criu-4.2/{loop,tree,fds}, see its README). The
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
import { constants, cpSync, existsSync, mkdirSync, openSync, readSync, closeSync, statSync, writeFileSync, rmSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import type { FileEntry, PstreeEntry } from '../../src/images/messages.js';
import { repoRoot } from '../lib/subjects.js';
import { tempDir, removeDir, killAndWait, sleep, becomeSubreaper } from './helpers.js';

const vectors = join(repoRoot(), '..', 'shared', 'vectors');
const imgOf = (name: string): string => join(vectors, 'criu-4.2', name, 'img');

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

/** Why this machine cannot restore vector `name`, or undefined when it can. */
function unavailable(name: string, flags: string[]): string | undefined {
  const imgDir = imgOf(name);
  if (!existsSync(imgDir)) return `no CRIU vectors at ${imgDir}`;
  const bin = `/tmp/vec-work/${name}`;
  const files = readImage(join(imgDir, 'files.img')).entries as unknown as FileEntry[];
  const exe = files.find((f) => f.reg?.name === bin)?.reg;
  if (!exe?.build_id) return `files.img does not name the ${name} binary`;
  try {
    mkdirSync('/tmp/vec-work', { recursive: true });
    execFileSync('gcc', ['-O1', ...flags, '-o', bin, join(vectors, 'subjects', `${name}.c`)], { stdio: 'ignore' });
  } catch {
    return `gcc cannot build the ${name} subject`;
  }
  if (elfBuildId(bin) !== buildIdHex(exe.build_id)) return `this gcc builds a different ${name} binary than the one CRIU dumped`;
  for (const f of files) {
    const r = f.reg;
    if (!r?.build_id || r.name === bin) continue;
    if (!existsSync(r.name) || statSync(r.name).size !== Number(r.size) || elfBuildId(r.name) !== buildIdHex(r.build_id)) {
      return `${r.name} differs from the one in the image`;
    }
  }
  for (const e of readImage(join(imgDir, 'pstree.img')).entries as unknown as PstreeEntry[]) {
    for (const tid of [e.pid, ...(e.threads ?? [])]) if (tid !== 0 && existsSync(`/proc/${tid}`)) return `pid ${tid} is in use here`;
  }
  return undefined;
}

function stat(pid: number): string[] {
  const s = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'latin1' });
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

const why = unavailable('loop', []);

test('an image made by CRIU 4.2 (loop) is restored by criu-ts and carries on', { skip: why ?? false, timeout: 60_000 }, async () => {
  becomeSubreaper();
  const dir = tempDir('criu42-img');
  const pid = (readImage(join(imgOf('loop'), 'pstree.img')).entries[0] as unknown as PstreeEntry).pid;
  try {
    cpSync(imgOf('loop'), dir, { recursive: true });
    const r = await restore({ imagesDir: dir, progress: false });
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

const whyTree = unavailable('tree', ['-pthread']);

test('a CRIU 4.2 image of a tree (5 processes, 4 threads, a zombie, its own group) is restored by criu-ts', { skip: whyTree ?? false, timeout: 60_000 }, async () => {
  becomeSubreaper();
  const dir = tempDir('criu42-tree');
  const tree = readImage(join(imgOf('tree'), 'pstree.img')).entries as unknown as PstreeEntry[];
  try {
    cpSync(imgOf('tree'), dir, { recursive: true });
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, tree[0]?.pid);
    await sleep(300);
    for (const e of tree) {
      const [state, ppid, pgid, sid] = stat(e.pid);
      const zombie = (e.threads ?? []).length === 1 && e.threads?.[0] === 0;
      assert.equal(state === 'Z', zombie, `task ${e.pid} state ${state}`);
      if (e !== tree[0]) assert.equal(Number(ppid), e.ppid, `task ${e.pid} ppid`);
      assert.equal(Number(pgid), e.pgid, `task ${e.pid} pgid`);
      assert.equal(Number(sid), e.sid, `task ${e.pid} sid`);
      if (!zombie) assert.equal(Number(/Threads:\s+(\d+)/.exec(execFileSync('cat', [`/proc/${e.pid}/status`], { encoding: 'latin1' }))?.[1]), (e.threads ?? []).length);
    }
  } finally {
    // Root first: its children then come to us (a subreaper) and we reap them.
    for (const e of tree) {
      try {
        process.kill(e.pid, 'SIGKILL');
      } catch {
        // a zombie, or gone
      }
    }
    for (const e of tree) await killAndWait(e.pid);
    removeDir(dir);
  }
});

/** The fds subject's files as vectors/README.md describes them (contents aside, only the size is checked at restore). */
function prepareFdsFiles(): string | undefined {
  try {
    writeFileSync('/tmp/vec-work/fds-reg.txt', Buffer.alloc(2000, 0x78));
    rmSync('/tmp/vec-work/fds-fifo', { force: true });
    rmSync('/tmp/vec-work/fds-dgram.sock', { force: true });
    execFileSync('mkfifo', ['/tmp/vec-work/fds-fifo']);
    return undefined;
  } catch (e) {
    return `cannot prepare /tmp/vec-work for the fds vector: ${(e as Error).message}`;
  }
}

const whyFds = unavailable('fds', []) ?? prepareFdsFiles();

test('the CRIU 4.2 image with every fd kind (pipes with data, FIFO, unix/TCP/UDP sockets, eventfd, epoll, timerfd, signalfd, inotify, memfds) is restored by criu-ts', { skip: whyFds ?? false, timeout: 60_000 }, async () => {
  becomeSubreaper();
  const dir = tempDir('criu42-fds');
  const pid = (readImage(join(imgOf('fds'), 'pstree.img')).entries[0] as unknown as PstreeEntry).pid;
  try {
    cpSync(imgOf('fds'), dir, { recursive: true });
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, pid);
    const link = (fd: number): string => readlinkSync(`/proc/${pid}/fd/${fd}`);
    assert.equal(link(3), '/tmp/vec-work/fds-reg.txt');
    assert.match(link(4), /^pipe:/);
    assert.equal(link(4), link(5));
    assert.match(link(11), /eventfd/);
    assert.match(link(12), /eventpoll/);
    assert.match(link(13), /timerfd/);
    assert.match(link(14), /signalfd/);
    assert.match(link(15), /inotify/);
    assert.match(link(18), /^\/memfd:vec-memfd/);
    // The 100 bytes that were in the pipe at dump time are there again.
    const rd = openSync(`/proc/${pid}/fd/4`, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const b = Buffer.alloc(200);
      const n = readSync(rd, b, 0, 200, null);
      assert.equal(n, 100);
      assert.equal(b.subarray(0, 26).toString(), 'abcdefghijklmnopqrstuvwxyz');
    } finally {
      closeSync(rd);
    }
    // The MAP_SHARED|MAP_ANONYMOUS region CRIU dumped as the memfd "/dev/zero": i ^ 0x5a.
    const maps = execFileSync('cat', [`/proc/${pid}/maps`], { encoding: 'latin1' });
    const zero = /^([0-9a-f]+)-[0-9a-f]+ rw-s .*\/dev\/zero/m.exec(maps)?.[1];
    assert.ok(zero, 'shared /dev/zero mapping missing');
    const data = readU64(pid, BigInt(`0x${zero}`), 65536);
    for (let i = 0; i < data.length; i++) assert.equal(data[i], (i ^ 0x5a) & 0xff, `shared byte ${i}`);
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});

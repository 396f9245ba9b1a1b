/**
 * --inherit-fd (CLI) and inherit_fd (RPC, as runc uses it for a
 * container's stdio pipes): a shell loop writes into a pipe whose other
 * end is outside the dump; at restore the caller hands over the write end
 * of a new pipe, by CRIU's key `pipe:[ino]`, and the restored loop writes
 * there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync, writeSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import { NR, POLLIN, addr, ioctlTry, pipe2, pollFd, sysTry } from '../../src/sys/index.js';
import { repoRoot } from '../lib/subjects.js';
import { killAndWait, removeDir, sleep, tempDir, useE2eHarness, waitFor, waitGone } from './helpers.js';

useE2eHarness();

const O_NONBLOCK = 0o4000;

async function readFor(fd: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let out = '';
  const buf = Buffer.alloc(4096);
  while (Date.now() < deadline) {
    if ((pollFd(fd, POLLIN, 0) & POLLIN) !== 0) {
      try {
        const n = readSync(fd, buf);
        if (n === 0) break;
        out += buf.subarray(0, n).toString();
      } catch {
        await sleep(10);
      }
    } else await sleep(10);
  }
  return out;
}

test('restore --inherit-fd fd[N]:pipe:[ino]: the restored task writes into the pipe the caller handed over', { timeout: 60_000 }, async () => {
  const dir = tempDir('inherit-fd');
  const [r, w] = pipe2(O_NONBLOCK);
  const job = spawn('sh', ['-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'], { stdio: ['ignore', w, 'ignore'], detached: true });
  job.unref();
  closeSync(w);
  const pid = job.pid as number;
  const key = `pipe:[${fstatSync(r).ino}]`;
  let r2 = -1;
  try {
    assert.match(await readFor(r, 300), /tick \d+/);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(pid));
    closeSync(r);
    const [nr, nw] = pipe2(O_NONBLOCK);
    r2 = nr;
    // fd 3 of the CLI is the new pipe's write end.
    const res = spawnSync(join(repoRoot(), 'bin', 'criu-ts'), ['restore', '-d', '-D', dir, '--inherit-fd', `fd[3]:${key}`],
      { stdio: ['ignore', 'pipe', 'pipe', nw], encoding: 'utf8', timeout: 60_000 });
    closeSync(nw);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), `pipe:[${fstatSync(r2).ino}]`, 'fd 1 is the pipe handed over');
    assert.match(await readFor(r2, 1000), /tick \d+/, 'the restored loop does not write into the handed-over pipe');
  } finally {
    await killAndWait(pid);
    if (r2 >= 0) closeSync(r2);
    removeDir(dir);
  }
});

test('--inherit-fd: a malformed value or an fd that is not open is one line and exit 1', { timeout: 60_000 }, () => {
  const dir = tempDir('inherit-fd-bad');
  try {
    for (const v of ['3:pipe:[1]', 'fd[x]:pipe:[1]', 'fd[77]:pipe:[1]']) {
      const res = spawnSync(join(repoRoot(), 'bin', 'criu-ts'), ['restore', '-D', dir, '--inherit-fd', v], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(res.status, 1, v);
      assert.equal(res.stderr.trim().split('\n').length, 1, `${v}: ${res.stderr}`);
      assert.match(res.stderr, /inherit-fd/, v);
    }
  } finally {
    removeDir(dir);
  }
});

/** A program of its own session writing its stdout into file `out`; returns its pid. */
function startWritingTo(out: string, prog: string, args: string[]): number {
  const w = openSync(out, 'w');
  const job = spawn(prog, args, { stdio: ['ignore', w, 'ignore'], detached: true });
  job.unref();
  closeSync(w);
  return job.pid as number;
}

/** The mount id a task sees an fd of its own on (fdinfo mnt_id). */
function mntIdOf(pid: number, fd: number): number {
  return Number(/^mnt_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1]);
}

test('--external file[mnt:ino]: the file is saved by key only, refused at restore without --inherit-fd, the caller\'s file with it', { timeout: 60_000 }, async () => {
  const dir = tempDir('external-file');
  const out1 = join(dir, 'out1');
  const out2 = join(dir, 'out2');
  const pid = startWritingTo(out1, 'sh', ['-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done']);
  const imgs = join(dir, 'img');
  mkdirSync(imgs);
  let w2 = -1;
  try {
    assert.ok(await waitFor(() => readFileSync(out1, 'utf8').includes('tick 3')));
    const key = `file[${mntIdOf(pid, 1).toString(16)}:${statSync(out1).ino.toString(16)}]`;
    await dump({ pid, imagesDir: imgs, progress: false, externalFiles: [key] });
    assert.ok(await waitGone(pid));
    const names = readImage(join(imgs, 'files.img')).entries.map((e) => (e['reg'] as { name?: string } | undefined)?.name);
    assert.ok(names.includes(key), `files.img names ${key}: ${JSON.stringify(names)}`);
    await assert.rejects(restore({ imagesDir: imgs, progress: false }), (e: Error) => e.message.includes(`--inherit-fd fd[N]:${key}`));
    w2 = openSync(out2, 'w');
    const r = await restore({ imagesDir: imgs, progress: false, inheritFd: [{ fd: w2, key }] });
    assert.equal(r.pid, pid);
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), out2);
    assert.ok(await waitFor(() => /tick \d+/.test(readFileSync(out2, 'utf8'))), 'the restored loop does not write into the file handed over');
  } finally {
    await killAndWait(pid);
    if (w2 >= 0) closeSync(w2);
    removeDir(dir);
  }
});

test('--external tty[rdev:dev]: a pty slave whose master is ours is dumped without it and comes back as the terminal handed over', { timeout: 60_000 }, async () => {
  const dir = tempDir('external-tty');
  const TIOCSPTLCK = 0x40045431;
  const TIOCGPTN = 0x80045430;
  const openPty = (): { master: number; slave: number; path: string } => {
    const master = openSync('/dev/ptmx', fsc.O_RDWR | fsc.O_NOCTTY | O_NONBLOCK);
    ioctlTry(master, TIOCSPTLCK, Buffer.alloc(4));
    const n = Buffer.alloc(4);
    ioctlTry(master, TIOCGPTN, n);
    const path = `/dev/pts/${n.readInt32LE(0)}`;
    return { master, slave: openSync(path, fsc.O_RDWR | fsc.O_NOCTTY), path };
  };
  const a = openPty();
  const job = spawn('sh', ['-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'], { stdio: ['ignore', a.slave, 'ignore'], detached: true });
  job.unref();
  const st = fstatSync(a.slave);
  closeSync(a.slave);
  const pid = job.pid as number;
  let b: ReturnType<typeof openPty> | undefined;
  try {
    assert.match(await readFor(a.master, 300), /tick \d+/);
    const key = `tty[${st.rdev.toString(16)}:${st.dev.toString(16)}]`;
    await assert.rejects(dump({ pid, imagesDir: dir, progress: false, leaveRunning: true }), /master is outside the dump/);
    await dump({ pid, imagesDir: dir, progress: false, externalFiles: [key] });
    assert.ok(await waitGone(pid));
    b = openPty();
    const r = await restore({ imagesDir: dir, progress: false, inheritFd: [{ fd: b.slave, key }] });
    assert.equal(r.pid, pid);
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), b.path);
    assert.match(await readFor(b.master, 1000), /tick \d+/, 'the restored loop does not write to the terminal handed over');
  } finally {
    await killAndWait(pid);
    closeSync(a.master);
    if (b) {
      closeSync(b.master);
      closeSync(b.slave);
    }
    removeDir(dir);
  }
});

test('--inherit-fd fd[N]:/memfd:NAME (CRIU\'s key, zdtm inhfd/memfd.py): the restored task reads the memfd the caller handed over', { timeout: 60_000 }, async () => {
  const dir = tempDir('inherit-memfd');
  const out = join(dir, 'out');
  // A reader of its own memfd's second description (offset 1: it read the first byte), waiting for more.
  const script = [
    'import os, time',
    'fd = os.memfd_create("inh0", 0)',
    'os.write(fd, b"x")',
    'r = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)',
    'os.read(r, 1)',
    'os.close(fd)',
    'print("ready", flush=True)',
    'while True:',
    '    d = os.read(r, 16)',
    '    if d:',
    '        print("got " + d.decode(), flush=True)',
    '        break',
    '    time.sleep(0.02)',
  ].join('\n');
  const pid = startWritingTo(out, '/usr/bin/python3', ['-c', script]);
  const imgs = join(dir, 'img');
  mkdirSync(imgs);
  let ours = -1;
  try {
    assert.ok(await waitFor(() => readFileSync(out, 'utf8').includes('ready')));
    await dump({ pid, imagesDir: imgs, progress: false });
    assert.ok(await waitGone(pid));
    const name = Buffer.from('inh0\0');
    ours = sysTry(NR.memfd_create, addr(name), 0);
    assert.ok(ours >= 0, 'memfd_create');
    const r = await restore({ imagesDir: imgs, progress: false, inheritFd: [{ fd: ours, key: '/memfd:inh0' }] });
    assert.equal(r.pid, pid);
    const theirs = readdirSync(`/proc/${pid}/fd`).map((f) => readlinkSync(`/proc/${pid}/fd/${f}`)).filter((l) => l.startsWith('/memfd:'));
    assert.deepEqual(theirs, ['/memfd:inh0 (deleted)']);
    // Written at offset 0 of the memfd handed over: the restored reader, at that description's offset 0, reads it.
    writeSync(ours, 'hello', 0, 'utf8');
    assert.ok(await waitFor(() => readFileSync(out, 'utf8').includes('got hello')), `the restored task did not read the memfd handed over: ${readFileSync(out, 'utf8')}`);
  } finally {
    await killAndWait(pid);
    if (ours >= 0) closeSync(ours);
    removeDir(dir);
  }
});

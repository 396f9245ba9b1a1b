/**
 * --external unix[INO] (issue 14 point 3; CRIU's key, the inode in
 * decimal): a unix socket of the tree whose peer is outside it and has no
 * name (one end of a socketpair; the other end held by a process that is
 * not in the tree) is saved, its peer as an external entry, only when the
 * key names it. The restore must then be given a socket for it with
 * --inherit-fd fd[N]:socket:[INO] (as runc hands back a container's stdio
 * sockets); without one it fails with one line saying so.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { dump } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isAlive, repoRoot, startSubject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitTreeGone } from '../../e2e/helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const CRIU_TS = join(repoRoot(), 'bin', 'criu-ts');

test('--external unix[INO]: a socket whose nameless peer is outside is saved by key and comes back through --inherit-fd', { timeout: 120_000 }, async () => {
  const s = await startSubject('unix-ext-pair');
  const holder = Number(readFileSync(`${s.outFile}.holder`, 'utf8'));
  const dir = tempDir('unix-external');
  try {
    const ino = Number(statSync(`/proc/${s.pid}/fd/20`).ino);
    // Without the key: refused as before, the task runs on.
    await rejectsOneLine(dump({ pid: s.pid, imagesDir: dir, progress: false }), 'EUNSUPPORTED', new RegExp(`fd 20: unix socket ${ino} is connected to socket \\d+ outside the dumped tree`));
    await rejectsOneLine(dump({ pid: s.pid, imagesDir: dir, progress: false, extUnixSk: true }), 'EUNSUPPORTED', /outside the dump and has no name to reconnect to/);
    assert.ok(isAlive(s.pid));
    await dump({ pid: s.pid, imagesDir: dir, progress: false, external: [`unix[${ino}]`] });
    assert.deepEqual(await waitTreeGone(dir), []);
    const files = readImage(join(dir, 'files.img')).entries as unknown as { usk?: { ino: number; peer: number; uflags: number } }[];
    const ours = files.find((f) => f.usk?.ino === ino)?.usk;
    assert.ok(ours, 'the socket is in files.img');
    const ext = files.find((f) => f.usk?.ino === ours.peer)?.usk;
    assert.equal(ext?.uflags, 1, 'its peer is an external entry (USK_EXTERN)');

    // No socket given back: one line naming the way to give it.
    const bare = spawn(process.execPath, [CRIU_TS, 'restore', '-D', dir, '-d'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    bare.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
    const code = await new Promise<number | null>((res) => bare.on('close', (c) => res(c)));
    assert.equal(code, 1);
    assert.match(err.trim(), new RegExp(`its peer was outside the dump and has no name \\(--external unix\\[${ino}\\]\\): give the socket back with --inherit-fd fd\\[N\\]:socket:\\[${ino}\\]$`));
    assert.equal(err.trim().split('\n').length, 1, err);
    assert.ok(!isAlive(s.pid));

    // fd 3 of the restore is one end of a socketpair (node's 'pipe'); the other end stays here.
    const r = spawn(process.execPath, [CRIU_TS, 'restore', '-D', dir, '-d', '--inherit-fd', `fd[3]:socket:[${ino}]`], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    const ours3 = r.stdio[3] as Duplex;
    let rerr = '';
    r.stderr?.on('data', (b: Buffer) => { rerr += b.toString(); });
    // 'exit', not 'close': the restored task holds fd 3's socket, so that stream never closes.
    assert.equal(await new Promise<number | null>((res) => r.on('exit', (c) => res(c))), 0, rerr);
    assert.ok(isAlive(s.pid), 'restored with its pid');
    const got = new Promise<string>((res) => ours3.once('data', (b: Buffer) => res(b.toString())));
    const verdict = s.terminateAndResult(15_000);
    assert.equal(await got, 'after', 'the restored fd 20 is the socket handed over');
    ours3.write('ok');
    assert.equal((await verdict).text, 'PASS');
    ours3.destroy();
  } finally {
    s.cleanup();
    await killAndWait(holder);
    removeDir(dir);
  }
});

test('--external unix[..]: a malformed key is one line naming it', async () => {
  await rejectsOneLine(dump({ pid: process.pid, imagesDir: '/tmp', progress: false, external: ['unix[0x10]'] }), 'EUSAGE', /^--external unix\[0x10\]: expected unix\[INODE\], the socket's inode in decimal$/);
});

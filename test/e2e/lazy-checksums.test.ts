/**
 * Lazy restore and the dump's checksums (criu-ts-checksums): a lazy
 * restore checks every image but the pages of lazy VMAs before it creates
 * anything; the lazy-pages daemon checks each run of those pages against
 * the dump's per-block digests as it serves it. A byte changed in a lazy
 * page: the restore runs, the daemon refuses that block with one line
 * naming the file and its offset, and the task dies (SIGBUS from the
 * watchdog) instead of running on with it. A plain restore refuses the same
 * images before anything exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { dumpedSubject, startLazyDaemon } from '../lib/page-server.js';
import { runCli } from '../lib/run.js';
import { readImage } from '../../src/images/index.js';
import type { CriuTsChecksumEntry } from '../../src/images/messages.js';
import { useSubjectCleanup, waitGone } from '../lib/harness.js';

const { subjects } = useSubjectCleanup();

/** Flip one byte of `path` at `off`. */
function flip(path: string, off: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, off);
    b[0] = (b[0] as number) ^ 0x5a;
    writeSync(fd, b, 0, 1, off);
  } finally {
    closeSync(fd);
  }
}

test('checksums of lazily served pages: block digests in criu-ts-checksums; a changed lazy page refused by the daemon, the task killed; a plain restore refuses it first', { timeout: 180_000 }, async () => {
  const { s, dir } = await dumpedSubject('big-memory', ['--mib', '32'], subjects);
  const sums = readImage(join(dir, 'criu-ts-checksums')).entries as unknown as CriuTsChecksumEntry[];
  // The biggest pages image holds the 32 MiB region; its middle is in it.
  const pages = readdirSync(dir).filter((n) => /^pages-\d+\.img$/.test(n)).sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0] as string;
  const e = sums.find((x) => x.name === pages);
  assert.ok(e, `${pages} is listed`);
  assert.equal(e.block_size, 65536);
  assert.equal(e.blocks?.length, Math.ceil(Number(e.size) / 65536) * 32, 'one digest per 64 KiB block');
  const at = Math.floor(statSync(join(dir, pages)).size / 2 / 65536) * 65536 + 100;
  flip(join(dir, pages), at);

  const plain = await runCli('criu-ts', ['restore', '-d', '-D', dir]);
  assert.notEqual(plain.code, 0, 'a plain restore refuses the changed pages');
  assert.match(plain.stderr, new RegExp(`${pages}: contents changed since the dump at bytes ${at - 100}\\.\\.${at - 100 + 65536} `));
  assert.equal(plain.stderr.trim().split('\n').length, 1, plain.stderr);
  assert.ok(!existsSync(`/proc/${s.pid}`), 'nothing restored');

  const lp = startLazyDaemon(dir, 3000);
  const r = await runCli('criu-ts', ['restore', '-d', '-D', dir, '--lazy-pages']);
  assert.equal(r.code, 0, `the lazy restore leaves the lazy pages to the daemon's check: ${r.stderr}`);
  // The subject now checks its 32 MiB: the changed block's fault makes the daemon refuse it.
  process.kill(s.pid, 'SIGTERM');
  const { code, stderr } = await lp.exit;
  assert.notEqual(code, 0, 'the daemon fails');
  assert.match(stderr, new RegExp(`${pages}: contents changed since the dump at bytes ${at - 100}\\.\\.${at - 100 + 65536} `));
  assert.ok(await waitGone(s.pid, 15_000), 'the task is gone');
  assert.ok(!existsSync(s.outFile) || !readFileSync(s.outFile, 'utf8').startsWith('PASS'), 'it never finished its check on the changed page');
});

test('lazy restore: a changed image that is not lazy pages is refused before anything exists', { timeout: 120_000 }, async () => {
  const { s, dir } = await dumpedSubject('big-memory', ['--mib', '8'], subjects);
  flip(join(dir, `fs-${s.pid}.img`), 10);
  const r = await runCli('criu-ts', ['restore', '-d', '-D', dir, '--lazy-pages']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`fs-${s.pid}\\.img: contents changed since the dump`));
  assert.ok(!existsSync(`/proc/${s.pid}`), 'nothing restored');
});
